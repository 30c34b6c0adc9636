package collector

import (
	"context"
	"testing"

	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// TestScheduler_BothFamiliesRunPinned: the runs a target of an ip_protocol
// both module expands to each probe with the module pinned to their
// family, under the configured module's name.
func TestScheduler_BothFamiliesRunPinned(t *testing.T) {
	cfg, err := config.Parse([]byte(`modules:
  dual: {ip_protocol: both, smtp: {tls: none}}
targets:
  - {name: mx1, address: "mx1.example.net", module: dual, interval: 24h}
`), "x.yml")
	if err != nil {
		t.Fatal(err)
	}
	fake := newFakeProbe(func(*probeCall) *probes.Result { return okResult() })
	s, _, _ := newTestScheduler(t, fake, 4)
	s.Apply(cfg)
	for _, family := range []string{probes.IPProtocol4, probes.IPProtocol6} {
		name := "mx1/" + family
		res, _, err := s.RunNow(context.Background(), name, 0, nil)
		if err != nil {
			t.Fatalf("RunNow(%s): %v", name, err)
		}
		if res.Target != name || res.Module != "dual" {
			t.Errorf("RunNow(%s): result for target %q module %q, want %[1]s and dual", name, res.Target, res.Module)
		}
		calls := fake.callsTo("mx1.example.net")
		m := calls[len(calls)-1].module
		if m.IPProtocol != family || *m.IPProtocolFallback {
			t.Errorf("RunNow(%s) probed with ip_protocol %s fallback %t, want %s without fallback", name, m.IPProtocol, *m.IPProtocolFallback, family)
		}
	}
}
