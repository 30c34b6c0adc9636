package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

// TestWriteText_QueueID: the message line names the queue id when the
// server gave one, and says nothing of queueing when it did not (aiosmtpd's
// "250 OK"), rather than "queued as" with nothing after it.
func TestWriteText_QueueID(t *testing.T) {
	for _, tc := range []struct {
		queueID, want string
	}{
		{"4Z1x2Y3w", "\nMessage <p1@example.test> queued as 4Z1x2Y3w\n"},
		{"", "\nMessage <p1@example.test>\n"},
	} {
		var out bytes.Buffer
		writeText(&out, &probes.Result{Success: true, SMTP: &probes.SMTPFacts{MessageID: "<p1@example.test>", QueueID: tc.queueID}})
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("queue id %q: output lacks %q:\n%s", tc.queueID, tc.want, out.String())
		}
		if tc.queueID == "" && strings.Contains(out.String(), "queued as") {
			t.Errorf("no queue id, yet the output says \"queued as\":\n%s", out.String())
		}
	}
}

// A result without SMTP facts (another prober's, or a prober missing from
// the build) prints without them rather than crashing the command.
func TestWriteText_NoSMTPFacts(t *testing.T) {
	var out strings.Builder
	writeText(&out, &probes.Result{Reason: probes.ReasonOther, FailedPhase: probes.PhaseResolve})
	if !strings.Contains(out.String(), "Result: FAILED in phase resolve") {
		t.Errorf("output without SMTP facts:\n%s", out.String())
	}
}

// A delivery result prints where the message landed and the verdicts.
func TestWriteText_Delivery(t *testing.T) {
	var out strings.Builder
	writeText(&out, &probes.Result{Success: true, SMTP: &probes.SMTPFacts{MessageID: "<p1@example.test>"},
		Delivery: &probes.DeliveryFacts{Found: true, Folder: "junk", TimeToInbox: 1500 * time.Millisecond,
			SPF: "pass", DKIM: "fail", DMARC: "fail", Hops: 2}})
	for _, want := range []string{"Delivery: in junk after 1.500s; spf=pass dkim=fail dmarc=fail", "2 hops"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// A module that trusts no Authentication-Results (neither authserv_id nor
// authres_without_id) has no verdicts: the output says unknown rather
// than printing empty results.
func TestWriteText_DeliveryAuthUnknown(t *testing.T) {
	var out strings.Builder
	writeText(&out, &probes.Result{Success: true, Delivery: &probes.DeliveryFacts{Found: true, Folder: "inbox"}})
	if want := "spf=unknown dkim=unknown dmarc=unknown (no Authentication-Results trusted: set delivery.authserv_id or delivery.authres_without_id)"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}

// A domain result prints a posture report: each MX host by preference
// with each address's session, then each check's verdict, then the
// MTA-STS policy.
func TestWriteText_Domain(t *testing.T) {
	notAfter := time.Now().Add(30*24*time.Hour + time.Hour)
	r := &probes.Result{Target: "example.com", Module: "posture", Success: false, FailedPhase: probes.PhaseSPF,
		Reason: probes.ReasonSPFTooManyLookups, Duration: 2 * time.Second,
		Domain: &probes.DomainFacts{
			MX: []probes.MXHostFacts{
				{Host: "mx1.example.com", Preference: 10, Addresses: []probes.MXAddressFacts{
					{Address: "192.0.2.25", Family: "ip4", Accepts: true, Reason: probes.ReasonOK, STARTTLSOffered: true,
						Greeting: "mx1.example.com", Duration: 150 * time.Millisecond,
						TLS: &probes.TLSInfo{Version: "TLS 1.3", Verified: true, EarliestExpiry: notAfter}},
					{Address: "2001:db8::25", Family: "ip6", Reason: probes.ReasonTimeout, Phase: probes.PhaseConnect,
						Error: "dial tcp [2001:db8::25]:25: i/o timeout", Duration: 5 * time.Second},
				}},
				{Host: "mx2.example.com", Preference: 20, Error: "no A or AAAA record"},
				{Host: "mx3.example.com", Preference: 30, Addresses: []probes.MXAddressFacts{
					{Address: "192.0.2.27", Family: "ip4", Accepts: true, Reason: probes.ReasonOK,
						TLS: &probes.TLSInfo{Version: "TLS 1.2", Verified: false, VerifyError: errors.New("x509: certificate signed by unknown authority")}},
				}},
			},
			Checks: []probes.DomainCheck{
				{Name: probes.PhaseMX, Result: probes.CheckWarn, Reason: probes.ReasonMXUnreachable, Detail: "mx1.example.com ip6 does not accept"},
				{Name: probes.PhaseSPF, Result: probes.CheckFail, Reason: probes.ReasonSPFTooManyLookups, Detail: "13 DNS lookups (limit 10)"},
				{Name: probes.PhaseDMARC, Result: probes.CheckPass, Reason: probes.ReasonOK},
			},
			MTASTSMode: "enforce", MTASTSPolicyID: "20250301", MTASTSMaxAge: 7 * 24 * time.Hour,
		}}
	var out strings.Builder
	writeText(&out, r)
	got := out.String()
	for _, want := range []string{
		"\nDomain example.com: 3 MX hosts, 2 accepting mail\n",
		"\n  MX 10 mx1.example.com\n",
		"\n    192.0.2.25 (ip4): accepts mail, 150ms; STARTTLS, TLS 1.3, certificate verified, expires " + notAfter.UTC().Format("2006-01-02") + " (30 days); greets as mx1.example.com\n",
		"\n    2001:db8::25 (ip6): no session: timeout in phase connect, 5000ms (dial tcp [2001:db8::25]:25: i/o timeout)\n",
		"\n  MX 20 mx2.example.com: no address (no A or AAAA record)\n",
		"\n    192.0.2.27 (ip4): accepts mail, 0ms; no STARTTLS offered, TLS 1.2, certificate not verified (x509: certificate signed by unknown authority)\n",
		"\nChecks:\n  mx       warn   mx_unreachable        mx1.example.com ip6 does not accept\n  spf      fail   spf_too_many_lookups  13 DNS lookups (limit 10)\n  dmarc    pass   ok\n",
		"\nMTA-STS policy: mode enforce, id 20250301, max_age 604800s (7.0 days)\n",
		"Result: FAILED in phase spf",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	var null strings.Builder
	writeText(&null, &probes.Result{Target: "example.org", Success: true, Domain: &probes.DomainFacts{NullMX: true}})
	if !strings.Contains(null.String(), "Domain example.org: null MX (RFC 7505): accepts no mail\n") {
		t.Errorf("null MX output:\n%s", null.String())
	}
}

// failedRcptResult is a probe refused at RCPT, as the probe command gets
// it from probestest's server.
func failedRcptResult() *probes.Result {
	const text = "5.1.1 <nobody@example.test>: Recipient address rejected: User unknown"
	rep := probes.Reply{Code: 550, EnhancedCode: "5.1.1", Lines: []string{text}}
	return &probes.Result{Target: "127.0.0.1:2525", Module: "cli", FailedPhase: probes.PhaseRcpt,
		Reason: probes.ReasonMailboxUnavailable, Code: 550, EnhancedCode: "5.1.1", ReplyText: text,
		Err: errors.New("RCPT: server replied 550 " + text),
		Phases: []*probes.PhaseResult{
			{Phase: probes.PhaseMail, Reason: probes.ReasonOK, Replies: []probes.Reply{{Code: 250, EnhancedCode: "2.1.0", Lines: []string{"2.1.0 Ok"}}}},
			{Phase: probes.PhaseRcpt, Reason: probes.ReasonMailboxUnavailable, Replies: []probes.Reply{rep}},
		},
		Transcript: []probes.TranscriptLine{{Dir: probes.DirRecv, Text: "550 " + text}}}
}

// The server's reply that failed the probe is printed once after the
// transcript, in the verdict: not again in the phase list and the error.
func TestWriteText_VerdictReplyOnce(t *testing.T) {
	r := failedRcptResult()
	var out strings.Builder
	writeText(&out, r)
	_, afterTranscript, ok := strings.Cut(out.String(), "\nPhases:\n")
	if !ok {
		t.Fatalf("no phase list:\n%s", out.String())
	}
	if n := strings.Count(afterTranscript, "Recipient address rejected"); n != 1 {
		t.Errorf("the reply appears %d times after the transcript, want once:\n%s", n, out.String())
	}
	for _, want := range []string{
		"  rcpt ", " 550 5.1.1  [mailbox_unavailable]\n",
		"reason=mailbox_unavailable (permanent) code=550 enhanced_code=5.1.1\n",
		"  server said: 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown\n",
	} {
		if !strings.Contains(afterTranscript, want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// An error that says more than the reply is still printed.
func TestWriteText_ErrorBeyondTheReply(t *testing.T) {
	r := &probes.Result{FailedPhase: probes.PhaseBanner, Reason: probes.ReasonTimeout, Temporary: true,
		Err: errors.New("no banner within 5s")}
	var out strings.Builder
	writeText(&out, r)
	if !strings.Contains(out.String(), "\n  error: no banner within 5s\n") {
		t.Errorf("output lacks the error:\n%s", out.String())
	}
}

// A failure ends with what to do first about its reason, the RUNBOOK's
// line; a success with none.
func TestWriteText_Advice(t *testing.T) {
	var out strings.Builder
	writeText(&out, failedRcptResult())
	want := "What to do first: " + probes.ReasonMailboxUnavailable.Advice() + "\n"
	if !strings.HasSuffix(out.String(), want) {
		t.Errorf("output does not end with %q:\n%s", want, out.String())
	}
	out.Reset()
	writeText(&out, &probes.Result{Success: true})
	if strings.Contains(out.String(), "What to do first") {
		t.Errorf("a success gets advice:\n%s", out.String())
	}
}
