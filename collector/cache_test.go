//go:build unix

package collector

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// TestMetricsHandler_KeptEncodingCostsItsSize holds the memory a scrape
// leaves behind, the kept encodings of every target, to about the size of
// what it wrote: at 10,000 targets every byte kept per byte written is
// 23 MB of heap, twice that in RSS with the garbage collector's headroom.
func TestMetricsHandler_KeptEncodingCostsItsSize(t *testing.T) {
	const targets = 2000
	store := NewStore()
	rm := newRunMetrics()
	for i := range targets {
		tg := &config.Target{Name: fmt.Sprintf("mx%05d.example.net", i), Address: "127.0.0.1:25", Module: "submission", Interval: time.Minute}
		res := benchResult(i)
		res.Target, res.Module = tg.Name, tg.Module
		rm.observe(tg, res)
		rm.lag.WithLabelValues(tg.Name, tg.Module).Set(0.001)
		store.Set(StoreEntry{Target: tg, Result: res})
	}
	handler := MetricsHandler(prometheus.NewRegistry(), NewCollector(store), rm)
	req := httptest.NewRequest("GET", "/metrics", nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := &discard{h: http.Header{}}
	handler.ServeHTTP(d, req)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(handler)
	kept := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if limit := int64(d.n) * 5 / 4; kept > limit {
		t.Errorf("a scrape of %d bytes keeps %d bytes (%.2f×), want at most 1.25×", d.n, kept, float64(kept)/float64(d.n))
	}
}

// TestRunMetrics_ChangeDropsEncoding: a target's encoding goes when its
// series change, not at the next scrape, so that no target holds two
// results' worth of series between scrapes.
func TestRunMetrics_ChangeDropsEncoding(t *testing.T) {
	rm := newRunMetrics()
	rm.lag.WithLabelValues("mx", "m").Set(1)
	rm.encodedTargets(fastText)
	st := rm.state["mx"][0]
	if !st.encoded[fastText].enc.kept() {
		t.Fatal("the scrape kept no encoding")
	}
	rm.lag.WithLabelValues("mx", "m").Set(2)
	if st.encoded[fastText].enc.kept() {
		t.Error("the encoding of the old value is still kept")
	}
}

// TestCollector_ReplacedResultIsReleased: once the store holds a target's
// new result, the old one and its kept encoding are garbage at once, not
// at the next scrape: between scrapes no target holds two results.
func TestCollector_ReplacedResultIsReleased(t *testing.T) {
	store := NewStore()
	tg := &config.Target{Name: "mx", Address: "127.0.0.1:25", Module: "m", Interval: time.Minute}
	store.Set(StoreEntry{Target: tg, Result: successResult()})
	c := NewCollector(store)
	c.encodedTargets(fastText)
	released := make(chan struct{})
	runtime.SetFinalizer(store.Snapshot()[0].Result, func(*probes.Result) { close(released) })
	store.Set(StoreEntry{Target: tg, Result: successResult()})
	runtime.GC()
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Error("the replaced result is still reachable")
	}
	runtime.KeepAlive(c)
}
