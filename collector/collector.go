package collector

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// Collector serves the store's last results as the per-run gauges, labelled
// with target and module. A result changes once per interval but is
// scraped many times, so its gauges are made once per result and kept
// (cachedTarget), and MetricsHandler keeps their encoding.
type Collector struct {
	store *Store
	descs *resultDescs

	mu      sync.Mutex
	targets map[string]*cachedTarget // by target name
}

// NewCollector returns a collector over store.
func NewCollector(store *Store) *Collector {
	return &Collector{store: store, descs: newResultDescs("target", "module"), targets: map[string]*cachedTarget{}}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { c.descs.describe(ch) }

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	targets := c.refresh()
	c.mu.Unlock()
	for _, t := range targets {
		for _, m := range c.descs.metrics(t.result, t.name, t.module) {
			ch <- m
		}
	}
}

// cachedTarget is one stored result and the encodings of its gauges per
// exposition format, made by the one Result→gauges mapping
// (resultDescs.samples) when a scrape first asks for that format. The
// samples themselves are not kept: making them again is cheap, and a
// format is asked for once.
type cachedTarget struct {
	result       *probes.Result
	name, module string
	encoded      [numFastFormats]encodedTarget
}

// refresh returns the store's targets in name order (Snapshot's), each
// with what was kept of its result; what was kept of a replaced result or
// a target gone from the store is dropped. The store keeps a new result
// per run and never changes a stored one, so an unchanged pointer is an
// unchanged result. c.mu must be held.
func (c *Collector) refresh() []*cachedTarget {
	entries := c.store.Snapshot()
	out := make([]*cachedTarget, 0, len(entries))
	kept := make(map[string]*cachedTarget, len(entries))
	for _, e := range entries {
		t := c.targets[e.Target.Name]
		if t == nil || t.result != e.Result || t.module != e.Target.Module {
			t = &cachedTarget{result: e.Result, name: e.Target.Name, module: e.Target.Module}
		}
		kept[t.name] = t
		out = append(out, t)
	}
	c.targets = kept
	return out
}

// encodedTargets implements TargetSource.
func (c *Collector) encodedTargets(f int) ([][]byte, []encodedTarget) {
	c.mu.Lock()
	defer c.mu.Unlock()
	targets := c.refresh()
	out := make([]encodedTarget, len(targets))
	for i, t := range targets {
		if !t.encoded[f].kept() {
			t.encoded[f] = c.descs.fams.encode(c.descs.samples(t.result, t.name, t.module), f)
		}
		out[i] = t.encoded[f]
	}
	return c.descs.fams.headers(f), out
}
