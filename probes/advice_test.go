package probes

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var updateRunbook = flag.Bool("update", false, "rewrite the reasons' advice in examples/RUNBOOK.md from the table")

const (
	runbookPath        = "../examples/RUNBOOK.md"
	runbookAdviceBegin = "<!-- BEGIN reason advice: generated from probes/advice.go by `go test ./probes -run TestAdvice_Runbook -update` -->\n"
	runbookAdviceEnd   = "<!-- END reason advice -->\n"
)

// runbookAdvice is the RUNBOOK's part that carries the table: a section
// per reason, whose heading is the anchor the dashboard links to
// (RUNBOOK.md#mailbox_busy).
func runbookAdvice() string {
	var b strings.Builder
	for _, r := range AllReasons {
		fmt.Fprintf(&b, "\n### `%s`\n\nWhat to do first: %s.\n", r, r.Advice())
	}
	b.WriteString("\n")
	return b.String()
}

// Every reason has one line of advice, a single line that reads after
// "What to do first: ".
func TestAdvice_EveryReason(t *testing.T) {
	for _, r := range AllReasons {
		a := r.Advice()
		if a == "" {
			t.Errorf("reason %q has no advice", r)
		}
		if strings.ContainsAny(a, "\n\r") || strings.HasSuffix(a, ".") || a != strings.TrimSpace(a) {
			t.Errorf("reason %q: advice %q is not one line without a final period", r, a)
		}
	}
	if len(reasonAdvice) != len(AllReasons) {
		t.Errorf("the table has %d entries for %d reasons: one names no reason", len(reasonAdvice), len(AllReasons))
	}
}

// The RUNBOOK says what the probe command and /history say: its reasons'
// sections are the table's lines, every reason has one.
func TestAdvice_Runbook(t *testing.T) {
	doc, err := os.ReadFile(runbookPath)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := bytes.Cut(doc, []byte(runbookAdviceBegin))
	if !ok {
		t.Fatalf("%s lacks the line %q", runbookPath, runbookAdviceBegin)
	}
	got, after, ok := bytes.Cut(rest, []byte(runbookAdviceEnd))
	if !ok {
		t.Fatalf("%s lacks the line %q", runbookPath, runbookAdviceEnd)
	}
	want := runbookAdvice()
	if string(got) == want {
		return
	}
	if *updateRunbook {
		out := append(append(append(append(before, runbookAdviceBegin...), want...), runbookAdviceEnd...), after...)
		if err := os.WriteFile(runbookPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s's reasons disagree with probes/advice.go; run go test ./probes -run TestAdvice_Runbook -update.\nwant:\n%s\ngot:\n%s", runbookPath, want, got)
}
