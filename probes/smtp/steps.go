package smtp

import (
	"context"
	"time"

	"github.com/go-kit/log"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// The steps other probers reuse: the delivery prober's send leg and the
// domain prober's look at each MX's certificate. Each is the same dialog
// as Probe, with the module narrowed to the step, so that every reply,
// deadline, redaction and the polite QUIT come with it.

// Sent identifies a message a server accepted, for finding it again.
type Sent struct {
	MessageID string
	QueueID   string
	// Token is the message's X-SMTP-Exporter-Probe value, which the
	// delivery prober searches the mailbox for.
	Token string
	// Accepted is the reply that took the message: the first positive one
	// after the final dot.
	Accepted probes.Reply
	// At is when it came: the run's start plus its phases up to data,
	// which run back to back, so within microseconds of the reply.
	At time.Time
}

// Send delivers one test message with m's dialog, sending whatever m says
// about send. It returns the run's result and, when the server accepted
// the message, what identifies it; nil when it did not.
func Send(ctx context.Context, target string, m probes.Module, logger log.Logger) (*probes.Result, *Sent) {
	m.SMTP.Send = true
	res := Probe(ctx, target, m, logger)
	return res, sentOf(res)
}

func sentOf(res *probes.Result) *Sent {
	if res.SMTP == nil || res.SMTP.MessageID == "" {
		return nil
	}
	at := res.Start
	for _, pr := range res.Phases {
		at = at.Add(pr.Duration)
		if pr.Phase != probes.PhaseData {
			continue
		}
		if pr.Reason != probes.ReasonOK {
			return nil
		}
		for _, rep := range pr.Replies {
			if rep.Code == 250 {
				return &Sent{MessageID: res.SMTP.MessageID, QueueID: res.SMTP.QueueID, Token: res.SMTP.ProbeToken, Accepted: rep, At: at}
			}
		}
	}
	return nil
}

// Handshake connects to target as m says (STARTTLS or implicit TLS),
// greets, shakes hands and leaves: no AUTH, no transaction. The result's
// TLS facts hold the certificate the server presented in that session.
// A module without TLS still greets, and its result has no TLS facts.
func Handshake(ctx context.Context, target string, m probes.Module, logger log.Logger) *probes.Result {
	m.SMTP.Auth = nil
	m.SMTP.MailFrom, m.SMTP.RcptTo, m.SMTP.Send = "", nil, false
	m.SMTP.ExpectCodes = nil
	return Probe(ctx, target, m, logger)
}
