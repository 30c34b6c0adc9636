package collector

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// Collector serves the store's last results as the per-run gauges, labelled
// with target and module. A result changes once per interval but is
// scraped many times, so MetricsHandler keeps the encoding of its gauges
// (cachedTarget, kept with the store's entry).
type Collector struct {
	store *Store
	descs *resultDescs
}

// NewCollector returns a collector over store.
func NewCollector(store *Store) *Collector {
	return &Collector{store: store, descs: newResultDescs("target", "module")}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { c.descs.describe(ch) }

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.refresh() {
		for _, m := range c.descs.metrics(t.result, t.name, t.module) {
			ch <- m
		}
	}
}

// cachedTarget is one stored result and the encodings of its gauges per
// exposition format, made by the one Result→gauges mapping
// (resultDescs.samples) when a scrape first asks for that format; the
// store's entry holds it, and Store.encMu guards the encodings. The
// samples themselves are not kept: making them again is cheap, and a
// format is asked for once.
type cachedTarget struct {
	result       *probes.Result
	name, module string
	encoded      [numFastFormats]encodedTarget
}

// refresh returns the store's targets in name order (Snapshot's), each
// with what is kept of its result. The store makes a new entry per result
// and never changes a stored one.
func (c *Collector) refresh() []*cachedTarget {
	entries := c.store.Snapshot()
	out := make([]*cachedTarget, len(entries))
	for i, e := range entries {
		out[i] = e.cached
	}
	return out
}

// encodedTargets implements TargetSource.
func (c *Collector) encodedTargets(f int) ([][]byte, []encodedTarget) {
	targets := c.refresh()
	c.store.encMu.Lock()
	defer c.store.encMu.Unlock()
	out := make([]encodedTarget, len(targets))
	for i, t := range targets {
		if !t.encoded[f].kept() {
			t.encoded[f] = c.descs.fams.encode(c.descs.samples(t.result, t.name, t.module), f)
		}
		out[i] = t.encoded[f]
	}
	return c.descs.fams.headers(f), out
}
