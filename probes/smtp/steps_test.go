package smtp

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

func TestSend_ReturnsWhatIdentifiesTheMessage(t *testing.T) {
	srv := probestest.NewScriptServer(t, probestest.Dialog{Replies: map[string]string{"DOT": "250 2.0.0 Ok: queued as 4Z1x2Y3w"}}.Serve)
	res, sent := Send(context.Background(), srv.Addr, dialogModule(), nil)
	requireSuccess(t, res)
	if sent == nil {
		t.Fatal("Send returned no Sent for an accepted message")
	}
	if sent.MessageID == "" || sent.MessageID != res.SMTP.MessageID || sent.QueueID != "4Z1x2Y3w" || sent.Accepted.Code != 250 {
		t.Errorf("Sent = %+v, result facts %+v", sent, res.SMTP)
	}
	if sent.At.Before(res.Start) || sent.At.After(res.Start.Add(res.Duration)) {
		t.Errorf("accepted at %v, outside the run %v + %v", sent.At, res.Start, res.Duration)
	}
}

func TestSend_RefusedMessageIsNotSent(t *testing.T) {
	srv := probestest.NewScriptServer(t, probestest.Dialog{Replies: map[string]string{"DOT": "554 5.7.1 spam"}}.Serve)
	res, sent := Send(context.Background(), srv.Addr, dialogModule(), nil)
	if res.Success || sent != nil {
		t.Errorf("success=%t sent=%+v, want a failure and no Sent", res.Success, sent)
	}
	if res.FailedPhase != probes.PhaseData {
		t.Errorf("failed in %s, want data", res.FailedPhase)
	}
}

func TestHandshake_NoTransaction(t *testing.T) {
	ca := probestest.NewCA(t)
	srv := probestest.NewScriptServer(t, probestest.Dialog{TLS: probestest.ServerTLSConfig(ca.Valid(t, "localhost"))}.Serve)
	m := tlsModule(t, ca, probes.TLSStartTLS)
	m.SMTP.MailFrom, m.SMTP.RcptTo, m.SMTP.Send = "a@example.test", []string{"b@example.test"}, true
	res := Handshake(context.Background(), srv.Addr, m, nil)
	requireSuccess(t, res)
	if res.TLS == nil || len(res.TLS.Certificates) == 0 {
		t.Fatalf("no certificate in the TLS facts: %+v", res.TLS)
	}
	if slices.ContainsFunc(srv.Received(), func(l string) bool { return strings.HasPrefix(l, "MAIL") || strings.HasPrefix(l, "RCPT") }) {
		t.Errorf("Handshake opened a transaction: %q", srv.Received())
	}
}
