package main

import (
	"bytes"
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
