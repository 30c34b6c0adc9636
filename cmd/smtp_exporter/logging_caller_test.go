package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// TestWithTimestamp_CallerAndFilter: the caller names the line that
// logged, through the level helpers every line goes through, and a line below
// the level costs next to nothing (no time or caller worked out).
func TestWithTimestamp_CallerAndFilter(t *testing.T) {
	var buf bytes.Buffer
	l := withTimestamp(log.NewLogfmtLogger(&buf), "info")
	level.Info(l).Log("msg", "one")
	level.Warn(l).Log("msg", "two")
	level.Info(log.With(l, "target", "x")).Log("msg", "three")
	level.Debug(l).Log("msg", "dropped")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("logged %d lines, want 3 (the debug line filtered):\n%s", len(lines), buf.String())
	}
	for _, line := range lines {
		if !strings.Contains(line, "caller=logging_caller_test.go:") || !strings.Contains(line, "time=") {
			t.Errorf("line %q does not name this file as its caller, with a time", line)
		}
	}
	debug := level.Debug(log.With(l, "target", "x"))
	if n := testing.AllocsPerRun(100, func() { debug.Log("msg", "dropped", "n", 1) }); n > 3 {
		t.Errorf("a filtered debug line allocates %v times, want at most 3", n)
	}
}
