package main

import (
	"bytes"
	"strings"
	"testing"

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
