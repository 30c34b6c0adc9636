package probes

import (
	"bytes"
	"strings"
	"testing"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

func TestDebugLogger(t *testing.T) {
	var buf bytes.Buffer
	base := log.NewLogfmtLogger(&buf)

	if DebugLogger(nil) != nil {
		t.Error("DebugLogger(nil) is not nil")
	}
	d := DebugLogger(LoggerWith(base, "target", "t1"))
	if d == nil {
		t.Fatal("an unmarked logger gave no debug logger")
	}
	d.Log("msg", "line")
	if got := buf.String(); !strings.Contains(got, "level=debug") || !strings.Contains(got, "target=t1") {
		t.Errorf("debug line %q lacks its level or the caller's keys", got)
	}

	buf.Reset()
	quiet := LoggerWith(WithoutDebug(base), "target", "t2")
	if DebugLogger(quiet) != nil {
		t.Error("a logger marked WithoutDebug, then given keys, still gives a debug logger")
	}
	if WithoutDebug(quiet) != quiet {
		t.Error("marking twice wraps twice")
	}
	// Everything above debug still goes through, with the keys.
	level.Warn(quiet).Log("msg", "failed")
	if got := buf.String(); !strings.Contains(got, "level=warn") || !strings.Contains(got, "target=t2") {
		t.Errorf("warn line %q through a WithoutDebug logger lost its level or keys", got)
	}
	if WithoutDebug(nil) != nil {
		t.Error("WithoutDebug(nil) is not nil")
	}
}
