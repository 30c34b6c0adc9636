package delivery

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

const sampleToken = "5f0c3e7a9b21d4c68e0f1a2b"

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "bounces", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// crlf gives a sample the line endings it has on the wire and in IMAP.
func crlf(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

// TestParseBounceSamples runs the parser on each MTA's bounce
// (testdata/README.md names the source of each).
func TestParseBounceSamples(t *testing.T) {
	for _, tc := range []struct {
		file      string
		format    string
		recipient string
		action    Action
		status    string
		code      int
		enhanced  string
		reason    probes.Reason
		temporary bool
		text      string // a part of the verdict's text
		messageID string
	}{
		{
			file: "postfix-user-unknown.eml", format: FormatDSN, recipient: "nobody@example.net",
			action: ActionFailed, status: "5.1.1", code: 550, enhanced: "5.1.1",
			reason: probes.ReasonMailboxUnavailable,
			// The folded Diagnostic-Code reads as one line.
			text: "5.1.1 <nobody@example.net>: Recipient address rejected: User unknown in local recipient table",
		},
		{
			// No reply code: the Status's class stands in (4 → 450). The
			// classifier of replies knows no network reasons: an MX that
			// refuses connections (4.4.1) is a service unavailable.
			// Delayed is temporary.
			file: "postfix-delayed.eml", format: FormatDSN, recipient: "slow@example.net",
			action: ActionDelayed, status: "4.4.1", code: 450, enhanced: "4.4.1",
			reason: probes.ReasonServiceUnavailable, temporary: true,
			text: "connect to mx.example.net[192.0.2.25]:25: Connection refused",
		},
		{
			// Exim's Status is a generic 5.0.0: the remote's own 5.1.1 is
			// the enhanced code.
			file: "exim-user-unknown.eml", format: FormatDSN, recipient: "nobody@example.net",
			action: ActionFailed, status: "5.0.0", code: 550, enhanced: "5.1.1",
			reason: probes.ReasonMailboxUnavailable,
			text:   "User unknown in virtual mailbox table",
		},
		{
			file: "sendmail-user-unknown.eml", format: FormatDSN, recipient: "nobody@example.net",
			action: ActionFailed, status: "5.1.1", code: 550, enhanced: "5.1.1",
			reason: probes.ReasonMailboxUnavailable,
			text:   "<nobody@example.net>... User unknown",
		},
		{
			file: "exchange-online-recipient-not-found.eml", format: FormatDSN, recipient: "nobody@contoso.com",
			action: ActionFailed, status: "5.1.10", code: 550, enhanced: "5.1.10",
			reason: probes.ReasonMailboxUnavailable,
			text:   "RESOLVER.ADR.RecipientNotFound; Recipient nobody@contoso.com not found by SMTP address lookup",
		},
		{
			// The repeated "550-5.1.1" Gmail's wrapping left mid-line is
			// dropped, so that the phrase reads whole.
			file: "gmail-remote-rejected.eml", format: FormatDSN, recipient: "nobody@example.net",
			action: ActionFailed, status: "5.1.1", code: 550, enhanced: "5.1.1",
			reason:    probes.ReasonMailboxUnavailable,
			text:      "User unknown in local recipient table",
			messageID: "<" + sampleToken + "@gmail.com>",
		},
		{
			// No reply code at all: 550 from the Status class.
			file: "gmail-no-such-user.eml", format: FormatDSN, recipient: "nobody.here@gmail.com",
			action: ActionFailed, status: "5.1.1", code: 550, enhanced: "5.1.1",
			reason: probes.ReasonMailboxUnavailable,
			text:   "The email account that you tried to reach does not exist. Please try double-checking",
		},
		{
			// A 4xx reply in a failed report: the message expired in the
			// queue, so it failed for good; the Action decides.
			file: "rfc3464-timeout.eml", format: FormatDSN, recipient: "slow@slip.example.net",
			action: ActionFailed, status: "4.0.0", code: 426, enhanced: "4.0.0",
			reason: probes.ReasonServiceUnavailable, temporary: false,
			text: "connection timed out",
		},
		{
			file: "qmail-remote-said.eml", format: FormatText, recipient: "nobody@example.net",
			action: ActionFailed, status: "5.1.1", code: 550, enhanced: "5.1.1",
			reason: probes.ReasonMailboxUnavailable,
			text:   "Recipient address rejected: User unknown",
		},
		{
			file: "qmail-no-mailbox.eml", format: FormatText, recipient: "nobody@example.net",
			action: ActionFailed, status: "5.1.1", code: 550, enhanced: "5.1.1",
			reason: probes.ReasonMailboxUnavailable,
			text:   "Sorry, no mailbox here by that name. (#5.1.1)",
		},
	} {
		for _, wire := range []bool{false, true} {
			name := tc.file
			raw := readSample(t, tc.file)
			if wire {
				name, raw = name+"/crlf", crlf(raw)
			}
			t.Run(name, func(t *testing.T) {
				b, ok := ParseBounce(bytes.NewReader(raw))
				if !ok {
					t.Fatal("not recognised as a bounce")
				}
				v := b.Verdict
				if b.Format != tc.format || v.FinalRecipient != tc.recipient || v.Action != tc.action ||
					v.Status != tc.status || v.Code != tc.code || v.EnhancedCode != tc.enhanced ||
					v.Reason != tc.reason || v.Temporary != tc.temporary {
					t.Errorf("got format %q recipient %q action %q status %q code %d enhanced %q reason %q temporary %v,\n"+
						"want format %q recipient %q action %q status %q code %d enhanced %q reason %q temporary %v",
						b.Format, v.FinalRecipient, v.Action, v.Status, v.Code, v.EnhancedCode, v.Reason, v.Temporary,
						tc.format, tc.recipient, tc.action, tc.status, tc.code, tc.enhanced, tc.reason, tc.temporary)
				}
				if !strings.Contains(v.Text, tc.text) {
					t.Errorf("text %q does not contain %q", v.Text, tc.text)
				}
				if strings.Contains(v.Text, "\n") || strings.Contains(v.Text, "550-") {
					t.Errorf("text %q is not unfolded", v.Text)
				}
				wantID := tc.messageID
				if wantID == "" {
					wantID = "<" + sampleToken + "@example.com>"
				}
				if b.ProbeToken != sampleToken || b.MessageID != wantID {
					t.Errorf("returned message: token %q, Message-ID %q; want %q, %q", b.ProbeToken, b.MessageID, sampleToken, wantID)
				}
			})
		}
	}
}

// TestParseBounceDSNFields checks the per-message and per-recipient fields
// beyond the verdict.
func TestParseBounceDSNFields(t *testing.T) {
	b, ok := ParseBounce(bytes.NewReader(readSample(t, "postfix-user-unknown.eml")))
	if !ok {
		t.Fatal("not a bounce")
	}
	if b.ReportingMTA != "mail.example.com" || len(b.Recipients) != 1 {
		t.Fatalf("reporting MTA %q, %d recipients", b.ReportingMTA, len(b.Recipients))
	}
	rc := b.Recipients[0]
	if rc.RemoteMTA != "mx.example.net" || rc.OriginalRecipient != "nobody@example.net" || rc.DiagnosticType != "smtp" {
		t.Errorf("recipient %+v", rc)
	}
	d, ok := ParseBounce(bytes.NewReader(readSample(t, "postfix-delayed.eml")))
	if !ok || d.Verdict.DiagnosticType != "x-postfix" {
		t.Errorf("delayed: ok %v, diagnostic type %q", ok, d.Verdict.DiagnosticType)
	}
}

// TestParseBounceVerdict: the report is about the recipient that failed,
// whatever order the MTA listed them in; a report of only successes is no
// failure.
func TestParseBounceVerdict(t *testing.T) {
	const head = "From: MAILER-DAEMON@mail.example.com\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"Reporting-MTA: dns; mail.example.com\r\n\r\n"
	const tail = "--B--\r\n"
	delivered := "Final-Recipient: rfc822; ok@example.net\r\nAction: delivered\r\nStatus: 2.0.0\r\n\r\n"
	delayed := "Final-Recipient: rfc822; later@example.net\r\nAction: delayed\r\nStatus: 4.2.2\r\n" +
		"Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\r\n\r\n"
	failed := "Final-Recipient: rfc822; gone@example.net\r\nAction: Failed (bad mailbox)\r\nStatus: 5.1.1\r\n\r\n"
	noAction := "Final-Recipient: rfc822; full@example.net\r\nStatus: 5.2.2\r\n\r\n"

	for _, tc := range []struct {
		name, groups string
		recipient    string
		action       Action
		reason       probes.Reason
		temporary    bool
	}{
		{"failed after others", delivered + delayed + failed, "gone@example.net", ActionFailed, probes.ReasonMailboxUnavailable, false},
		{"delayed after delivered", delivered + delayed, "later@example.net", ActionDelayed, probes.ReasonMailboxFull, true},
		{"only delivered", delivered, "ok@example.net", ActionDelivered, probes.ReasonOK, false},
		{"action from the status", noAction, "full@example.net", ActionFailed, probes.ReasonMailboxFull, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, ok := ParseBounce(strings.NewReader(head + tc.groups + tail))
			if !ok {
				t.Fatal("not a bounce")
			}
			v := b.Verdict
			if v.FinalRecipient != tc.recipient || v.Action != tc.action || v.Reason != tc.reason || v.Temporary != tc.temporary {
				t.Errorf("got %q %q %q temporary %v, want %q %q %q %v",
					v.FinalRecipient, v.Action, v.Reason, v.Temporary, tc.recipient, tc.action, tc.reason, tc.temporary)
			}
		})
	}
}

// TestParseBounceNotABounce: ordinary mail, and the probe message itself
// even from a postmaster address, are no bounces.
func TestParseBounceNotABounce(t *testing.T) {
	for name, raw := range map[string][]byte{
		"probe from postmaster": readSample(t, "probe-from-postmaster.eml"),
		"ordinary mail":         []byte("From: alice@example.com\r\nSubject: lunch?\r\n\r\nNoon at the usual place.\r\n"),
		"empty":                 nil,
		"header only":           []byte("From: MAILER-DAEMON@example.com\r\n"),
		"broken header":         []byte(" leading blank\r\n\r\nbody"),
	} {
		t.Run(name, func(t *testing.T) {
			if b, ok := ParseBounce(bytes.NewReader(raw)); ok {
				t.Errorf("read as a bounce: %+v", b)
			}
		})
	}
}

// TestParseBounceBounded: a bounce far larger than any real one is read
// only up to the bound, quickly, and what came before the bound counts.
func TestParseBounceBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: MAILER-DAEMON@mail.example.com\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"Reporting-MTA: dns; mail.example.com\r\n\r\n" +
		"Final-Recipient: rfc822; gone@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 no such user")
	// One endless folded line, then endless recipients.
	for range 200_000 {
		b.WriteString("\r\n more text")
	}
	for range 100_000 {
		b.WriteString("\r\n\r\nFinal-Recipient: rfc822; x@example.net\r\nAction: failed")
	}
	r := &countingReader{r: strings.NewReader(b.String())}
	start := time.Now()
	bounce, ok := ParseBounce(r)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
	if r.n > maxBounceBytes+4096 {
		t.Errorf("read %d bytes, bound is %d", r.n, maxBounceBytes)
	}
	if !ok || bounce.Verdict.FinalRecipient != "gone@example.net" || len(bounce.Verdict.Text) > maxTextBytes+3 {
		t.Errorf("ok %v, verdict %q with %d bytes of text", ok, bounce.Verdict.FinalRecipient, len(bounce.Verdict.Text))
	}
	if len(bounce.Recipients) > maxRecipients {
		t.Errorf("%d recipients kept", len(bounce.Recipients))
	}
}

type countingReader struct {
	r interface{ Read([]byte) (int, error) }
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func FuzzParseBounce(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "bounces"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		f.Add(readSample(f, e.Name()))
	}
	f.Add([]byte("Content-Type: multipart/report; boundary=x\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\nDiagnostic-Code: smtp; 5"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, ok := ParseBounce(bytes.NewReader(data))
		if !ok {
			return
		}
		for _, rc := range append(b.Recipients, b.Verdict) {
			if !validAction(rc.Action) {
				t.Errorf("action %q outside the fixed set", rc.Action)
			}
			if !validReason(rc.Reason) {
				t.Errorf("reason %q outside the fixed set", rc.Reason)
			}
			if len(rc.Text) > maxTextBytes+3 {
				t.Errorf("text of %d bytes", len(rc.Text))
			}
		}
		if len(b.Recipients) > maxRecipients {
			t.Errorf("%d recipients", len(b.Recipients))
		}
	})
}

func validAction(a Action) bool {
	switch a {
	case ActionFailed, ActionDelayed, ActionDelivered, ActionRelayed, ActionExpanded, ActionOther:
		return true
	}
	return false
}

func validReason(r probes.Reason) bool {
	for _, x := range probes.AllReasons {
		if r == x {
			return true
		}
	}
	return false
}
