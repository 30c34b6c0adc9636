package collector

import (
	"sync"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

// History keeps the most recent results, scheduled and on demand, so that
// an operator can read the transcript of a failure after the fact.
type History struct {
	mu      sync.Mutex
	limit   int
	nextID  uint64
	entries []HistoryEntry // oldest first
}

// HistoryEntry is one remembered result.
type HistoryEntry struct {
	ID     uint64
	Source string // "schedule" or "probe"
	Time   time.Time
	Result *probes.Result
}

// NewHistory keeps at most limit results.
func NewHistory(limit int) *History { return &History{limit: max(limit, 0)} }

// Add remembers a compact copy of a result (compactResult), dropping the
// oldest beyond the limit.
func (h *History) Add(source string, r *probes.Result) {
	if h.keeps() {
		h.addCompact(source, compactResult(r))
	}
}

// keeps reports whether the history keeps anything.
func (h *History) keeps() bool { return h != nil && h.limit > 0 }

// addCompact remembers r, a compactResult that no one changes (the
// scheduler shares it with the Store).
func (h *History) addCompact(source string, r *probes.Result) {
	if !h.keeps() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	h.entries = append(h.entries, HistoryEntry{ID: h.nextID, Source: source, Time: r.Start, Result: r})
	if over := len(h.entries) - h.limit; over > 0 {
		// Copy down rather than reslice, so dropped results can be freed.
		n := copy(h.entries, h.entries[over:])
		clear(h.entries[n:])
		h.entries = h.entries[:n]
	}
}

// List returns the entries, newest first.
func (h *History) List() []HistoryEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]HistoryEntry, len(h.entries))
	for i, e := range h.entries {
		out[len(out)-1-i] = e
	}
	return out
}

// Get returns the entry with id.
func (h *History) Get(id uint64) (HistoryEntry, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.entries {
		if e.ID == id {
			return e, true
		}
	}
	return HistoryEntry{}, false
}

// LastFailure returns the newest failed run of target kept, of module
// when module is not "".
func (h *History) LastFailure(target, module string) (HistoryEntry, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.entries) - 1; i >= 0; i-- {
		if e := h.entries[i]; !e.Result.Success && e.matches(target, module) {
			return e, true
		}
	}
	return HistoryEntry{}, false
}

// matches reports whether the entry is of target and module; "" matches
// any.
func (e HistoryEntry) matches(target, module string) bool {
	return (target == "" || e.Result.Target == target) && (module == "" || e.Result.Module == module)
}
