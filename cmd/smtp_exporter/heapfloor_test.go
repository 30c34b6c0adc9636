package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestGOGCFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		base, want  int
	}{
		{live: 2 * mib, floor: 32 * mib, base: 100, want: 1500},      // goal 2 MiB × 16 = 32 MiB
		{live: 2.5 * mib, floor: 32 * mib, base: 100, want: 1180},    // rounded up: the goal reaches the floor
		{live: 16 * mib, floor: 32 * mib, base: 100, want: 100},      // base already gets there
		{live: 20 * mib, floor: 32 * mib, base: 100, want: 100},      // more than enough
		{live: 200 * mib, floor: 32 * mib, base: 100, want: 100},     // a fleet's heap: untouched
		{live: 16 * mib, floor: 32 * mib, base: 50, want: 100},       // a lower base is raised as far as needed
		{live: 1024, floor: 32 * mib, base: 100, want: maxTunedGOGC}, // bounded
		{live: 0, floor: 32 * mib, base: 100, want: 100},             // nothing measured yet
		{live: 2 * mib, floor: 0, base: 100, want: 100},              // off
		{live: 2 * mib, floor: 32 * mib, base: -1, want: -1},         // GC off stays off
	} {
		if got := gogcFor(c.live, c.floor, c.base); got != c.want {
			t.Errorf("gogcFor(live %d, floor %d, base %d) = %d, want %d", c.live, c.floor, c.base, got, c.want)
		}
	}
}

// TestHeapFloor_TunesAfterCycles runs the real thing: after a cycle the
// finalizer has raised GOGC for this test binary's small heap, and stop
// gives it back.
func TestHeapFloor_TunesAfterCycles(t *testing.T) {
	t.Setenv("GOGC", "")
	h := startHeapFloor(1 << 30) // far above any test heap: GOGC must rise
	if h == nil {
		t.Fatal("no heap floor started")
	}
	defer debug.SetGCPercent(100)
	deadline := time.Now().Add(10 * time.Second)
	for h.gogc() == 100 {
		if time.Now().After(deadline) {
			t.Fatal("GOGC still 100 after cycles: the finalizer never tuned it")
		}
		runtime.GC()
		runtime.Gosched()
	}
	got := debug.SetGCPercent(h.gogc())
	if got != h.gogc() || got <= 100 {
		t.Fatalf("runtime GOGC %d, tuner says %d; want the same and above 100", got, h.gogc())
	}
	h.stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC after stop = %d, want 100", got)
	}
	// Stopped: later cycles leave GOGC alone.
	debug.SetGCPercent(100)
	runtime.GC()
	runtime.GC()
	if h.gogc() != 100 {
		t.Errorf("tuner still tuning after stop: %d", h.gogc())
	}
}

func TestHeapFloor_OffWhenGOGCSetOrZero(t *testing.T) {
	t.Setenv("GOGC", "200")
	if h := startHeapFloor(32 << 20); h != nil {
		t.Error("heap floor started although GOGC is set in the environment")
	}
	t.Setenv("GOGC", "")
	if h := startHeapFloor(0); h != nil {
		t.Error("heap floor started with floor 0")
	}
}
