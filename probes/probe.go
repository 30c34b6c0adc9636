package probes

import (
	"context"
	"fmt"
	"time"

	"github.com/go-kit/log"
)

// ProbeFunc runs one probe of target with module m. Every prober has this
// shape: it never returns nil, never panics on what a server sends, and
// returns within the module's timeout (plus the short grace a prober may
// take to leave the server politely). logger may be nil.
type ProbeFunc func(ctx context.Context, target string, m Module, logger log.Logger) *Result

// Registry maps a module's prober name to its probe function. It is an
// explicit map, wired in the command as blackbox_exporter's Probers map is:
// no prober registers itself, so what runs is visible in one place.
type Registry map[string]ProbeFunc

// Probe runs the prober that m names. A module whose prober the registry
// lacks fails with reason other, as a configuration problem of the
// exporter's, not the server's.
func (r Registry) Probe(ctx context.Context, target string, m Module, logger log.Logger) *Result {
	if f, ok := r[m.Prober]; ok {
		return f(ctx, target, m, logger)
	}
	return &Result{
		Target: target, Start: time.Now(), Reason: ReasonOther, FailedPhase: PhaseResolve,
		Err: fmt.Errorf("no prober %q in this build", m.Prober),
	}
}
