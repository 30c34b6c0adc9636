//go:build unix

package collector

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// benchResult is a realistic STARTTLS+AUTH LOGIN+send dialog: 12 replies.
func benchResult(i int) *probes.Result {
	res := successResult()
	res.Start = testStart.Add(time.Duration(i) * time.Millisecond)
	for _, pr := range res.Phases {
		if pr.Phase == probes.PhaseAuth {
			pr.Replies = []probes.Reply{
				okReply(334, "", "VXNlcm5hbWU6"),
				okReply(334, "", "UGFzc3dvcmQ6"),
				okReply(235, "2.7.0", "2.7.0 Authentication successful"),
			}
		}
	}
	return res
}

// discard is a ResponseWriter that throws the body away.
type discard struct {
	h http.Header
	n int
}

func (d *discard) Header() http.Header { return d.h }
func (d *discard) Write(b []byte) (int, error) {
	d.n += len(b)
	return len(b), nil
}
func (d *discard) WriteHeader(int) {}

var _ io.Writer = (*discard)(nil)

// BenchmarkCollect_10000Targets measures one full scrape of /metrics with
// 10,000 scheduled targets: their last results (per-run gauges) and the
// run metrics of one observed run each, served as serve.go serves them.
// HTTP* are scrapes in each format with every result already encoded;
// HTTPChurn records a quarter of the results again (store and run
// metrics) before each scrape, as a 15 s scrape of 60 s targets sees; HTTPGzip* are gzipped, as Prometheus
// asks. cpu-ms/op is the process's CPU time per scrape (GC included), the
// figure that holds on a busy machine. Gather is the registry path (formats
// not kept, and the tests' registries).
func BenchmarkCollect_10000Targets(b *testing.B) {
	const targets = 10000
	store := NewStore()
	rm := newRunMetrics()
	replies := 0
	entries := make([]StoreEntry, targets)
	for i := range targets {
		t := &config.Target{Name: fmt.Sprintf("mx%05d.example.net", i), Address: fmt.Sprintf("mx%05d.example.net:587", i), Module: "submission", Interval: time.Minute}
		res := benchResult(i)
		res.Target, res.Module = t.Name, t.Module
		if i == 0 {
			for _, pr := range res.Phases {
				replies += len(pr.Replies)
			}
		}
		rm.observe(t, res)
		rm.lag.WithLabelValues(t.Name, t.Module).Set(0.001)
		rm.backoff.WithLabelValues(t.Name, t.Module).Set(1)
		entries[i] = StoreEntry{Target: t, Result: res}
		store.Set(entries[i])
	}
	rm.targets.Set(targets)
	reg := prometheus.NewRegistry()
	reg.MustRegister(rm.shared()...)
	c := NewCollector(store)
	handler := MetricsHandler(reg, c, rm)
	all := prometheus.Gatherers{reg, sourcesGatherer(c, rm)}
	if replies != 12 {
		b.Fatalf("bench result has %d replies, want 12", replies)
	}

	b.Run("Gather", func(b *testing.B) {
		b.ReportAllocs()
		series := 0
		for b.Loop() {
			mfs, err := all.Gather()
			if err != nil {
				b.Fatal(err)
			}
			series = 0
			for _, mf := range mfs {
				series += len(mf.GetMetric())
			}
		}
		b.ReportMetric(float64(series), "series")
	})
	scrape := func(b *testing.B, accept string, gzip, churn bool) {
		req := httptest.NewRequest("GET", "/metrics", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if gzip {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		handler.ServeHTTP(&discard{h: http.Header{}}, req) // encodes every result once
		b.ReportAllocs()
		next := 0
		var cpu time.Duration
		for b.Loop() {
			if churn {
				b.StopTimer()
				for range targets / 4 {
					e := entries[next%targets]
					store.Set(StoreEntry{Target: e.Target, Result: e.Result})
					rm.observe(e.Target, e.Result) // a run changes both sources
					next++
				}
				b.StartTimer()
			}
			d := &discard{h: http.Header{}}
			start := probestest.ProcessCPU(b)
			handler.ServeHTTP(d, req)
			cpu += probestest.ProcessCPU(b) - start
			b.SetBytes(int64(d.n))
		}
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
	b.Run("HTTP", func(b *testing.B) { scrape(b, "", false, false) })
	b.Run("HTTPOpenMetrics", func(b *testing.B) { scrape(b, openMetricsAccept, false, false) })
	b.Run("HTTPProto", func(b *testing.B) { scrape(b, protoAccept, false, false) })
	b.Run("HTTPChurn", func(b *testing.B) { scrape(b, "", false, true) })
	b.Run("HTTPGzip", func(b *testing.B) { scrape(b, "", true, false) })
	b.Run("HTTPGzipChurn", func(b *testing.B) { scrape(b, "", true, true) })
}

// sourcesGatherer is a registry of sources alone.
func sourcesGatherer(sources ...TargetSource) prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	for _, s := range sources {
		reg.MustRegister(s)
	}
	return reg
}
