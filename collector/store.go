package collector

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// Store keeps the last scheduled result of every target, for the per-run
// gauges on /metrics.
type Store struct {
	mu      sync.RWMutex
	entries map[string]StoreEntry
}

// StoreEntry is a target's last result with the module it ran with (after
// the send rate limit), which decides the phases reported.
type StoreEntry struct {
	Target *Target
	Module *probes.Module
	Result *probes.Result
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{entries: map[string]StoreEntry{}} }

// Set records a target's latest result.
func (s *Store) Set(e StoreEntry) {
	s.mu.Lock()
	s.entries[e.Target.Name] = e
	s.mu.Unlock()
}

// Delete forgets a target.
func (s *Store) Delete(name string) {
	s.mu.Lock()
	delete(s.entries, name)
	s.mu.Unlock()
}

// Get returns a target's last entry.
func (s *Store) Get(name string) (StoreEntry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.entries[name]
	return e, ok
}

// Snapshot returns every entry, ordered by target name.
func (s *Store) Snapshot() []StoreEntry {
	s.mu.RLock()
	out := make([]StoreEntry, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Target.Name < out[j].Target.Name })
	return out
}

// Collector serves the store's last results as the per-run gauges, labelled
// with target and module.
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
	for _, e := range c.store.Snapshot() {
		c.descs.collect(ch, e.Result, e.Module, e.Target.Name, e.Target.Module)
	}
}
