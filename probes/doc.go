// Package probes holds what every prober shares and imports none of them:
// the module configuration (Module, with one sub-struct per prober and the
// methods the collector asks instead of reading a prober's settings), the
// Result with its common fields and per-prober facts, the Phase and Reason
// taxonomy, SMTP replies and their classifier (bounces reuse it), TLS
// facts, the transcript, the Redactor that keeps secrets out of every
// output, and ProbeFunc with the Registry that maps prober names to probes.
// It knows nothing of Prometheus. ARCHITECTURE.md §3 states the prober
// contract and walks through adding a prober.
package probes
