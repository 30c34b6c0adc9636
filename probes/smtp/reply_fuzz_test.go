package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"bufio"
	"bytes"
	"slices"
	"strings"
	"testing"
)

func FuzzReadReply(f *testing.F) {
	for _, seed := range []string{
		"220 mx.example.com ESMTP Postfix\r\n",
		"250-mx.example.com\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n",
		"550-5.7.26 This mail has been blocked because the sender is unauthenticated.\r\n550 5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM.\r\n",
		"550-Verification failed for <a@example.net>\r\n550-Unrouteable address\r\n550 5.1.1 Sender verify failed\r\n",
		"451 5.7.3 STARTTLS is required to send mail\r\n",
		"553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n",
		"421 4.7.0 mail.example.com Error: too many connections from 192.0.2.25\r\n",
		"354\r\n",
		"250 ok\n",
		"250-a\r\n251 b\r\n",
		"hello\r\n",
		"25\r\n",
		"2500 x\r\n",
		"250-a\r\n",
		"",
		"\r\n",
		"550 " + strings.Repeat("x", maxReplyLineBytes) + "\r\n",
		strings.Repeat("250-x\r\n", maxReplyLines) + "250 x\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var seen []string
		rep, err := readReply(bufio.NewReader(bytes.NewReader(data)), func(l string) { seen = append(seen, l) })
		if err != nil {
			return
		}
		if rep.Code < 200 || rep.Code > 599 {
			t.Fatalf("code %d outside 200..599", rep.Code)
		}
		if c := rep.Class(); c != "2xx" && c != "3xx" && c != "4xx" && c != "5xx" {
			t.Fatalf("class %q for code %d", c, rep.Code)
		}
		if !slices.Contains(probes.AllReasons, rep.Reason) {
			t.Fatalf("reason %q not in AllReasons", rep.Reason)
		}
		if (rep.Reason == probes.ReasonOK) != rep.Positive() {
			t.Fatalf("reason %q for code %d", rep.Reason, rep.Code)
		}
		if e := rep.EnhancedCode; e != "" {
			if e[0] != byte('0'+rep.Code/100) {
				t.Fatalf("enhanced code %q for code %d", e, rep.Code)
			}
			if got, ok := probes.LeadingEnhancedCode(e); !ok || got != e {
				t.Fatalf("enhanced code %q does not parse as one", e)
			}
		}
		if len(rep.Lines) == 0 || len(rep.Lines) > maxReplyLines {
			t.Fatalf("%d lines, want 1..%d", len(rep.Lines), maxReplyLines)
		}
		if len(seen) != len(rep.Lines) {
			t.Fatalf("transcript saw %d lines for a %d-line reply", len(seen), len(rep.Lines))
		}
		for _, l := range rep.Lines {
			if len(l) > maxReplyLineBytes {
				t.Fatalf("line of %d bytes, limit %d", len(l), maxReplyLineBytes)
			}
		}
	})
}

func FuzzClassify(f *testing.F) {
	f.Add(550, "5.7.26", "Unauthenticated email from example.com is not accepted due to domain's DMARC policy")
	f.Add(421, "4.7.28", "421-4.7.28 unusual rate of 4.7.28 unsolicited mail")
	f.Add(451, "", "qq temporary problem (#4.3.0)")
	f.Add(250, "2.1.5", "OK")
	f.Add(0, "", "")
	f.Add(-1, "9.9.9", "#5.5.5")
	f.Add(700, "", "blocked using zen.spamhaus.org")
	f.Fuzz(func(t *testing.T, code int, enhanced, text string) {
		got := probes.Classify(code, enhanced, text)
		if !slices.Contains(probes.AllReasons, got) {
			t.Fatalf("Classify(%d, %q, %q) = %q, not in AllReasons", code, enhanced, text, got)
		}
		if positive := code >= 200 && code <= 399; (got == probes.ReasonOK) != positive {
			t.Fatalf("Classify(%d, %q, %q) = %q", code, enhanced, text, got)
		}
	})
}
