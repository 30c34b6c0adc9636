package probes

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/go-kit/log"
)

// hostileSecret has the characters that escaping changes, so that a
// redaction that matches only the literal secret misses its %q and JSON
// forms.
const hostileSecret = `pa"ss\wo'rd-Secr3t!xyz`

func TestRedactor_ShortSecretOnlyAsWord(t *testing.T) {
	var r Redactor
	r.Add("a")
	r.Add("s3cr3t-Pa55w0rd-xyz")
	for in, want := range map[string]string{
		"250 2.0.0 Roger, accepting mail from <monitor@example.net>": "250 2.0.0 Roger, accepting mail from <monitor@example.net>",
		"535 5.7.8 Authentication failed for a":                      "535 5.7.8 Authentication failed for <redacted>",
		"pass=a; user=b":                                             "pass=<redacted>; user=b",
		"x s3cr3t-Pa55w0rd-xyzs3cr3t-Pa55w0rd-xyz y":                 "x <redacted> y",
	} {
		if got := r.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every form of a fragment is replaced, and only the fragment: the text
// around it stays readable.
func TestRedactor_Forms(t *testing.T) {
	var r Redactor
	r.Add(hostileSecret)
	b64 := base64.StdEncoding.EncodeToString
	for _, tc := range []struct{ in, want string }{
		{"failed for " + hostileSecret + " today", "failed for <redacted> today"},
		{"a piece: wo'rd-Se.", "a piece: <redacted>."},
		{"five is not a fragment: Secr3 ok", "five is not a fragment: Secr3 ok"},
		{"two pieces ss\\wo'r and r3t!xyz", "two pieces <redacted> and <redacted>"},
		{"quoted " + strconv.Quote(hostileSecret), `quoted "<redacted>"`},
		{`json {"p":"pa\"ss\\wo"}`, `json {"p":"<redacted>"}`},
		{"b64 " + b64([]byte(hostileSecret)), "b64 <redacted>"},
		// At other alignments the characters that mix the secret's edge
		// bits with a neighbour's stay, with the neighbours' own.
		{"b64 " + b64([]byte("x"+hostileSecret+"y")), "b64 eH<redacted>p5"},
		{"b64 " + base64.RawURLEncoding.EncodeToString([]byte("xy"+hostileSecret)), "b64 eHl<redacted>"},
		// JSON writes "<" as \u003c, which would complete "cr3t!x".
		{"html <r3t!x", "html <redacted>"},
		// Go quotes \x03 as `\x03`, which would complete "3t!xyz".
		{"ctl \x03t!xyz", "ctl <redacted>"},
		{"nothing to see here", "nothing to see here"},
	} {
		if got := r.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Most probes have no secret; the ones that do see mostly clean lines.
// Neither may cost an allocation per line.
func TestRedactor_NoAllocations(t *testing.T) {
	var none Redactor
	lines := []string{"250-mx.example.net Hello", "250 SIZE 1000"}
	if n := testing.AllocsPerRun(100, func() {
		none.Redact("250 2.1.0 Sender <a@example.net> ok")
		none.RedactLines(lines, textAfterCode)
	}); n != 0 {
		t.Errorf("%v allocations without secrets, want 0", n)
	}
	var r Redactor
	r.Add(hostileSecret)
	if n := testing.AllocsPerRun(100, func() { r.Redact("250 2.1.0 Sender ok") }); n != 0 {
		t.Errorf("%v allocations for a clean line, want 0", n)
	}
}

// The escapers must write exactly what the outputs write, or a fragment an
// escape completes goes unseen.
func TestRedactor_EscapersMatchOutputs(t *testing.T) {
	var chars []string
	for b := 0; b < 256; b++ {
		chars = append(chars, string([]byte{byte(b)}))
	}
	chars = append(chars, "é", "\u2028", "\u2029", "\ufffd", "\u00a0", "😀", "\u200b")
	var logbuf bytes.Buffer
	logger := log.NewLogfmtLogger(&logbuf)
	for _, c := range chars {
		in := "a b" + c
		check := func(name string, esc escaper, want string) {
			t.Helper()
			got, _ := render(in, esc)
			if string(got) != want {
				t.Errorf("%s of %q: got %q, want %q", name, in, got, want)
			}
		}
		q := strconv.Quote(in)
		check("Go", escapeGo, q[1:len(q)-1])
		for _, html := range []bool{true, false} {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(html)
			_ = enc.Encode(in)
			j := strings.TrimSpace(b.String())
			if html {
				check("JSON", escapeJSONHTML, j[1:len(j)-1])
			} else {
				check("JSON without HTML escaping", escapeJSON, j[1:len(j)-1])
			}
		}
		logbuf.Reset()
		_ = logger.Log("v", in)
		l := strings.TrimSuffix(strings.TrimPrefix(logbuf.String(), `v="`), "\"\n")
		check("logfmt", escapeLogfmt, l)
	}
}

// textAfterCode stands in for the SMTP reply parser's rule: the text of a
// line starts after its code and separator.
func textAfterCode(line string) int { return min(len(line), 4) }

// A server may change the case of what it echoes (a domain is lower-cased):
// the secret is still found.
func TestRedactor_CaseFolded(t *testing.T) {
	var r Redactor
	r.Add("Correct-Horse-9!")
	for _, in := range []string{"d=xcorrect-horse-9!.example.org", "USER CORRECT-HORSE-9!"} {
		if got := r.Redact(in); strings.Contains(strings.ToLower(got), "horse-") {
			t.Errorf("Redact(%q) = %q: a case-folded piece survived", in, got)
		}
	}
}

// The marker itself, escaped as JSON renders it (\u003credacted\u003e),
// can finish a fragment with what follows it: found by FuzzAuthReplies, a
// secret followed by its own tail left "<redacted>cr3t!", which a JSON
// output shows as "\u003ecr3t!", holding "ecr3t!".
func TestRedact_MarkerCompletesAFragment(t *testing.T) {
	var r Redactor
	r.Add("Secr3t!x")
	for _, in := range []string{
		"reply Secr3t!xcr3t! end",
		"Secr3t!xcr3t!",
	} {
		out := r.Redact(in)
		js, _ := json.Marshal(out)
		if strings.Contains(strings.ToLower(string(js)), "ecr3t!") || strings.Contains(out, "cr3t!") {
			t.Errorf("Redact(%q) = %q, JSON %s: a fragment survives", in, out, js)
		}
		if strings.Contains(out, "<redacted<redacted>") {
			t.Errorf("Redact(%q) = %q: markers not folded into one", in, out)
		}
		lines := r.RedactLines([]string{"250-" + in, "250 ok"}, func(string) int { return 4 })
		js, _ = json.Marshal(lines)
		if strings.Contains(strings.ToLower(string(js)), "ecr3t!") {
			t.Errorf("RedactLines: %s: a fragment survives", js)
		}
	}
}
