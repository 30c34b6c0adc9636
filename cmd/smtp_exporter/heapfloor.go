package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// The garbage collector starts a cycle when the heap has grown by GOGC% of
// what the last cycle found live, but never below 4 MiB. An exporter
// watching a few targets keeps about 2.5 MiB live (compiled regular
// expressions, HTTP/2 tables, the config), so at GOGC=100 it collects
// every 1.5 MiB, every dozen probes: each cycle marks the whole live heap
// again, and profiling `/probe` showed a fifth of the exporter's CPU in
// the collector, where a bare client with a tiny heap spends almost
// nothing. A heap floor raises GOGC while the live heap is small, so the
// heap may grow to the floor between cycles, and gives GOGC back its
// usual value once the live heap is big enough for it to matter (a
// fleet's: there the floor changes nothing). It is Uber's GOGC tuner in
// its simplest form: a finalizer runs after every cycle and sets GOGC for
// the next from what that cycle left live.

// maxTunedGOGC bounds the raised GOGC, so that a nearly empty heap does
// not ask for an absurd percentage.
const maxTunedGOGC = 10000

// gogcFor is the GOGC that lets a heap of live bytes grow to floor before
// the next cycle, and never less than base (the GOGC the user asked for).
func gogcFor(live, floor uint64, base int) int {
	if floor == 0 || live == 0 || base < 0 {
		return base
	}
	if live >= floor {
		return base
	}
	want := float64(floor)/float64(live)*100 - 100
	if want <= float64(base) {
		return base
	}
	return int(math.Min(math.Ceil(want), maxTunedGOGC))
}

// heapFloor tunes GOGC after every GC cycle; stop ends the tuning and
// restores base.
type heapFloor struct {
	floor uint64
	base  int

	mu      sync.Mutex
	stopped bool
	current int
	sample  []metrics.Sample
}

// startHeapFloor keeps the heap goal at floor bytes or more while the
// live heap is small. It does nothing (and returns nil) when floor is 0 or
// when GOGC is set in the environment: an operator who tuned the
// collector by hand keeps that choice.
func startHeapFloor(floor uint64) *heapFloor {
	if floor == 0 || os.Getenv("GOGC") != "" {
		return nil
	}
	h := &heapFloor{
		floor:   floor,
		base:    100,
		current: 100,
		sample:  []metrics.Sample{{Name: "/gc/heap/live:bytes"}},
	}
	h.arm()
	return h
}

// arm attaches the finalizer to a fresh object that nothing references,
// so that it runs after the next cycle; the finalizer arms the next one.
func (h *heapFloor) arm() {
	runtime.SetFinalizer(&heapFloorSentinel{h: h}, func(s *heapFloorSentinel) {
		if s.h.tune() {
			s.h.arm()
		}
	})
}

// heapFloorSentinel holds a pointer, so it is never a tiny allocation
// (those share a block, which may outlive the cycle that freed them).
type heapFloorSentinel struct{ h *heapFloor }

// tune sets GOGC for the next cycle; false once stopped.
func (h *heapFloor) tune() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return false
	}
	metrics.Read(h.sample)
	if h.sample[0].Value.Kind() != metrics.KindUint64 {
		return false
	}
	next := gogcFor(h.sample[0].Value.Uint64(), h.floor, h.base)
	// A change of a few percent moves the goal by less than the heap
	// varies between cycles; setting GOGC is cheap but not free.
	if diff := next - h.current; diff > h.current/20 || -diff > h.current/20 {
		debug.SetGCPercent(next)
		h.current = next
	}
	return true
}

// gogc is the GOGC in force.
func (h *heapFloor) gogc() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.current
}

func (h *heapFloor) stop() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	if h.current != h.base {
		debug.SetGCPercent(h.base)
		h.current = h.base
	}
}
