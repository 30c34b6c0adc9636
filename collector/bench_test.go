package collector

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
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
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

var _ io.Writer = (*discard)(nil)

// BenchmarkCollect_10000Targets measures one full scrape of /metrics with
// 10,000 scheduled targets: their last results (per-run gauges) and the
// run metrics of one observed run each.
func BenchmarkCollect_10000Targets(b *testing.B) {
	const targets = 10000
	store := NewStore()
	rm := newRunMetrics()
	replies := 0
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
		store.Set(StoreEntry{Target: t, Result: res})
	}
	rm.targets.Set(targets)
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(store))
	reg.MustRegister(rm.collectors()...)
	if replies != 12 {
		b.Fatalf("bench result has %d replies, want 12", replies)
	}

	b.Run("Gather", func(b *testing.B) {
		b.ReportAllocs()
		series := 0
		for b.Loop() {
			mfs, err := reg.Gather()
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
	b.Run("HTTP", func(b *testing.B) {
		h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		req := httptest.NewRequest("GET", "/metrics", nil)
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(&discard{h: http.Header{}}, req)
		}
	})
}
