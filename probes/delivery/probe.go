package delivery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/smtp"
)

// Probe sends a probe message to target (the submission server) with the
// module's smtp settings, then waits for it in the delivery.imap mailbox
// and reports where it landed and what the receiver's verifier and filter
// said of it. The send leg's failures are the SMTP dialog's; the receive
// leg's come in phases imap_connect, imap_auth and wait.
//
// The module's timeout covers both legs: the send leg gets what
// delivery_timeout leaves of it, the receive leg delivery_timeout.
//
// A message not seen within delivery_timeout is not_delivered, unless a
// bounce about it has come back to the INBOX of delivery.bounce_imap
// (default: the receive mailbox) by then: the run then fails in
// phase bounce with the bounce's reason. A bounce is looked for on every
// round of the wait, so it ends the run when it comes. A bounce_imap that
// cannot be logged in to or searched is recorded in the facts, not the
// verdict; a not_delivered error then says that bounces went unchecked.
func Probe(ctx context.Context, target string, m probes.Module, logger log.Logger) *probes.Result {
	if logger == nil {
		logger = log.NewNopLogger()
	}
	d := &m.Delivery
	ctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()

	send := m
	send.Prober = probes.ProberSMTP
	send.Delivery = probes.DeliveryModule{}
	send.SMTP.TokenPrefix = TokenPrefix(target, &m)
	if left := m.Timeout - d.DeliveryTimeout; left > 0 {
		send.Timeout = left
	}
	res, sent := smtp.Send(ctx, target, send, logger)
	if sent == nil {
		return res
	}
	// From here until the wait ends, the message is pending.
	probes.Report(ctx, probes.EventAwaiting)
	defer probes.Report(ctx, probes.EventSettled)
	facts := &probes.DeliveryFacts{}
	res.Delivery = facts
	r := receiver{res: res, facts: facts, module: &m, logger: logger}
	r.receive(ctx, sent)
	res.Duration = time.Since(res.Start)
	return res
}

// receiver is the receive leg of one run.
type receiver struct {
	res    *probes.Result
	facts  *probes.DeliveryFacts
	module *probes.Module
	logger log.Logger
	red    probes.Redactor
}

func (r *receiver) receive(ctx context.Context, sent *smtp.Sent) {
	d := &r.module.Delivery
	waitCtx, cancel := context.WithTimeout(ctx, d.DeliveryTimeout)
	defer cancel()

	cfg, err := r.mailboxConfig(&d.IMAP, "delivery.imap")
	if err != nil {
		r.fail(&probes.PhaseResult{Phase: probes.PhaseIMAPConnect}, probes.ReasonOther, err)
		return
	}
	mb, err := Dial(waitCtx, cfg)
	// bounceBox is where bounces come back: the receive mailbox unless
	// bounce_imap names another. bounceSession is bounce_imap's session,
	// a failed one too, whose transcript tells why.
	bounceBox := mb
	var bounceSession *Mailbox
	defer func() {
		mb.Close()
		r.res.Transcript = append(r.res.Transcript, r.redactLines(mb.Transcript())...)
		if bounceSession != nil {
			bounceSession.Close()
			r.res.Transcript = append(r.res.Transcript, probes.TranscriptLine{Offset: time.Since(r.res.Start), Dir: probes.DirInfo, Text: "bounce mailbox (delivery.bounce_imap):"})
			r.res.Transcript = append(r.res.Transcript, r.redactLines(bounceSession.Transcript())...)
		}
	}()
	r.res.Phases = append(r.res.Phases, mb.Phases()...)
	r.facts.IMAPTLS = r.redactTLS(mb)
	if err != nil {
		r.failFrom(mb.Phases(), err, waitCtx)
		return
	}

	prefix := TokenPrefix(r.res.Target, r.module)
	r.cleanup(waitCtx, mb, prefix)
	if d.BounceIMAP != nil {
		var ok bool
		if bounceSession, ok = r.dialBounces(waitCtx, mb); ok {
			bounceBox = bounceSession
		} else {
			bounceBox = nil
		}
	}
	if bounceBox != nil {
		r.cleanupBounces(waitCtx, bounceBox, prefix)
	}

	wait := &probes.PhaseResult{Phase: probes.PhaseWait, Reason: probes.ReasonOK}
	r.res.Phases = append(r.res.Phases, wait)
	began := time.Now()
	var bounced []BounceMessage
	found, err := mb.WaitUntil(waitCtx, sent.Token, d.PollInterval, func(ctx context.Context) bool {
		bounced = r.findBounces(ctx, bounceBox, sent)
		return len(bounced) > 0
	})
	seen := time.Now()
	wait.Duration = seen.Sub(began)
	if len(bounced) > 0 {
		r.bounced(ctx, bounceBox, bounced)
		return
	}
	if err != nil {
		reason := legReason(err)
		if reason == probes.ReasonTimeout && waitOver(waitCtx) {
			reason = probes.ReasonNotDelivered
		}
		if reason == probes.ReasonNotDelivered {
			// One may have come back since the last round.
			if bounced := r.findBounces(ctx, bounceBox, sent); len(bounced) > 0 {
				r.bounced(ctx, bounceBox, bounced)
				return
			}
			err = fmt.Errorf("message %s not seen in the mailbox within %s", sent.MessageID, d.DeliveryTimeout)
			if r.facts.BounceMailbox == bounceFailed {
				err = fmt.Errorf("%w; bounces could not be checked: %s", err, r.facts.BounceMailboxError)
			}
		}
		r.fail(wait, reason, err)
		return
	}
	msg := pick(found)
	r.readFacts(msg, seen.Sub(sent.At))
	r.deleteAll(ctx, mb, found)
	r.check(wait)
}

// TokenPrefix starts the probe tokens of target's runs under m: "smtpx",
// a short hash of the target and the module's sender, recipients and
// mailbox, and "-". The module's name is not known here; two modules
// alike in all of these send the same probe anyway. Clean-up touches
// only tokens with this prefix, so a mailbox shared with other targets,
// modules or exporters keeps their messages.
func TokenPrefix(target string, m *probes.Module) string {
	h := sha256.New()
	for _, s := range append([]string{target, m.SMTP.MailFrom, m.Delivery.IMAP.Address, imapUser(m)}, m.SMTP.RcptTo...) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "smtpx" + hex.EncodeToString(h.Sum(nil)[:4]) + "-"
}

func imapUser(m *probes.Module) string {
	if a := m.Delivery.IMAP.Auth; a != nil {
		return a.Username
	}
	return ""
}

// cleanup deletes this target's probe messages that arrived more than
// delivery_timeout ago: a run still waiting for its own has not given up
// on it yet. Of them, those that arrived more than delivery_timeout after
// they were sent are late. A failure is noted, not the run's verdict.
func (r *receiver) cleanup(ctx context.Context, mb *Mailbox, prefix string) {
	timeout := r.module.Delivery.DeliveryTimeout
	c, err := mb.Cleanup(ctx, time.Now().Add(-timeout), prefix, timeout)
	r.facts.Cleaned, r.facts.Late = c.Messages, c.Late
	if err != nil {
		_ = level.Warn(r.logger).Log("msg", "cleaning up earlier probe messages failed", "err", r.red.Redact(err.Error()))
	}
	if c.Messages > 0 || err != nil {
		mb.w.note("cleaned up %d probe messages of earlier runs, %d of them late", c.Messages, c.Late)
	}
}

// cleanupBounces deletes the bounces about this target's probe messages
// that arrived more than delivery_timeout ago, which no run waits for any
// more. A failure is noted, not the run's verdict.
func (r *receiver) cleanupBounces(ctx context.Context, mb *Mailbox, prefix string) {
	n, err := mb.CleanupBounces(ctx, time.Now().Add(-r.module.Delivery.DeliveryTimeout), prefix)
	r.facts.CleanedBounces = n
	if err != nil {
		_ = level.Warn(r.logger).Log("msg", "cleaning up old bounces failed", "err", r.red.Redact(err.Error()))
	}
	if n > 0 || err != nil {
		mb.w.note("cleaned up %d bounces about earlier runs", n)
	}
}

// The states of DeliveryFacts.BounceMailbox.
const (
	bounceOK     = "ok"
	bounceFailed = "failed"
)

// dialBounces logs in to the bounce mailbox, reporting whether it can be
// searched; the session is returned also when it failed, for its
// transcript. Its phases stay out of the result, which has the receive
// mailbox's: a failure is recorded in the facts (a delivered message is
// still a success; a missing one's error says bounces went unchecked),
// logged and noted in mb's transcript, and the run goes on without
// looking for bounces.
func (r *receiver) dialBounces(ctx context.Context, mb *Mailbox) (*Mailbox, bool) {
	cfg, err := r.mailboxConfig(r.module.Delivery.BounceIMAP, "delivery.bounce_imap")
	var b *Mailbox
	if err == nil {
		cfg.Folders = nil
		if b, err = Dial(ctx, cfg); err == nil {
			r.facts.BounceMailbox = bounceOK
			return b, true
		}
	}
	msg := r.bounceMailboxFailed(err)
	_ = level.Warn(r.logger).Log("msg", "logging in to the bounce mailbox failed; not looking for bounces", "err", msg)
	mb.w.note("bounce mailbox: %s; not looking for bounces", msg)
	return b, false
}

// bounceMailboxFailed records the first failure of the bounce mailbox,
// with its phase and reason where the session knows them, and returns the
// redacted text.
func (r *receiver) bounceMailboxFailed(err error) string {
	msg := err.Error()
	var de *Error
	if errors.As(err, &de) && de.Phase != "" {
		msg = fmt.Sprintf("%s: %s: %s", de.Phase, de.Reason, msg)
	}
	msg = "delivery.bounce_imap: " + r.red.Redact(msg)
	if r.facts.BounceMailbox != bounceFailed {
		r.facts.BounceMailbox, r.facts.BounceMailboxError = bounceFailed, msg
	}
	return msg
}

// findBounces looks in INBOX for bounces about the message; a failure
// to look is noted, not the run's verdict. With no mailbox to look in
// (bounce_imap's login failed) it finds none.
func (r *receiver) findBounces(ctx context.Context, mb *Mailbox, sent *smtp.Sent) []BounceMessage {
	if mb == nil {
		return nil
	}
	found, err := mb.FindBounces(ctx, sent.Token, sent.MessageID)
	if err != nil && ctx.Err() == nil {
		msg := r.red.Redact(err.Error())
		if r.module.Delivery.BounceIMAP != nil {
			msg = r.bounceMailboxFailed(err)
		}
		_ = level.Warn(r.logger).Log("msg", "looking for bounces failed", "err", msg)
	}
	return found
}

// bounced turns the run's verdict into phase bounce with the bounce's own
// reason. Found bounces are deleted, as probe messages are.
func (r *receiver) bounced(ctx context.Context, mb *Mailbox, found []BounceMessage) {
	pr := &probes.PhaseResult{Phase: probes.PhaseBounce, Reason: probes.ReasonOK}
	r.res.Phases = append(r.res.Phases, pr)
	v := found[0].Bounce.Verdict
	text := r.red.Redact(mb.Redact(v.Text))
	r.facts.Bounce = &probes.BounceFacts{
		Reason: v.Reason, Temporary: v.Temporary, Action: string(v.Action),
		Code: v.Code, EnhancedCode: v.EnhancedCode, Text: text,
	}
	uids := make([]uint32, len(found))
	for i, b := range found {
		uids[i] = b.UID
	}
	if _, err := mb.Delete(ctx, "INBOX", uids); err != nil {
		_ = level.Warn(r.logger).Log("msg", "deleting the bounce failed", "err", r.red.Redact(err.Error()))
	}
	r.fail(pr, v.Reason, fmt.Errorf("the message bounced: %d %s %s", v.Code, v.EnhancedCode, text))
	res := r.res
	res.Temporary, res.Code, res.EnhancedCode, res.ReplyText = v.Temporary, v.Code, v.EnhancedCode, text
}

// mailboxConfig builds the Dial config from the module, reading the
// secret now so that a rotated one is picked up without a reload.
func (r *receiver) mailboxConfig(im *probes.IMAPModule, field string) (Config, error) {
	cfg := Config{
		Address: im.Address, SourceIPAddress: r.module.SourceIPAddress, TLS: im.TLS, AllowInsecureAuth: im.AllowInsecureAuth,
		Folders: r.module.Delivery.Folders, Start: r.res.Start, Logger: r.logger,
	}
	if im.TLS != probes.TLSNone {
		tc, err := probes.ClientTLSConfig(&im.TLSConfig)
		if err != nil {
			return cfg, fmt.Errorf("%s.tls_config: %w", field, err)
		}
		cfg.TLSConfig = tc
	}
	if a := im.Auth; a != nil {
		secret, err := a.Secret()
		if err != nil {
			return cfg, fmt.Errorf("%s.auth: reading the credential: %w", field, err)
		}
		cfg.Mechanism, cfg.Username, cfg.Secret = a.Mechanism, a.Username, secret
		r.red.Add(secret)
	}
	if a := r.module.SMTP.Auth; a != nil {
		if secret, err := a.Secret(); err == nil {
			r.red.Add(secret)
		}
	}
	return cfg, nil
}

// pick is the message that counts when several copies were found (one
// per recipient, or a copy filed twice): one in INBOX first.
func pick(found []Message) Message {
	for _, msg := range found {
		if msg.Class == ClassInbox {
			return msg
		}
	}
	return found[0]
}

func (r *receiver) readFacts(msg Message, timeToInbox time.Duration) {
	f := r.facts
	f.Found = true
	f.TimeToInbox = max(timeToInbox, 0)
	f.Folder = string(msg.Class)
	f.Flags = knownFlags(msg.Flags)
	h, _ := ReadHeader(bytes.NewReader(msg.Header))
	auth := ParseAuthResults(h, AuthTrust{ID: r.module.Delivery.AuthservID, WithoutID: r.module.Delivery.AuthresWithoutID})
	f.AuthFound = auth.Found
	f.SPF, f.DKIM, f.DMARC = string(auth.SPF), string(auth.DKIM), string(auth.DMARC)
	// A header value the mailbox wrote, like every reply, may carry a
	// secret (lower-cased, as a domain): it is redacted like one.
	f.DKIMDomain = r.red.Redact(auth.DKIMDomain)
	spam := ParseSpam(h)
	f.SpamSource, f.SpamFlagged, f.SpamScored, f.SpamScore = spam.Source, spam.Flagged, spam.Scored, spam.Score
	hops := ParseHops(h, msg.InternalDate)
	f.Hops, f.HopsTotal, f.HopsLargest = hops.Hops, hops.Total, hops.Largest
}

// reportedFlags are the flags a found message's facts may show, in the
// order shown: the system flags (RFC 3501 §2.3.2), then the keywords by
// which filters and clients mark junk: $Junk and $NotJunk (RFC 5788's
// registry, RFC 9051 §2.3.2), Junk, NotJunk and NonJunk (Thunderbird's
// and older clients'), and $Phishing.
var reportedFlags = []string{
	imap.SeenFlag, imap.AnsweredFlag, imap.FlaggedFlag, imap.DeletedFlag, imap.DraftFlag, imap.RecentFlag,
	"$Junk", "$NotJunk", "Junk", "NotJunk", "NonJunk", "$Phishing",
}

// knownFlags keeps the flags in reportedFlags, in its spelling and order:
// no other server datum, which could hold anything, reaches the facts.
func knownFlags(flags []string) []string {
	var out []string
	for _, known := range reportedFlags {
		if slices.ContainsFunc(flags, func(f string) bool { return strings.EqualFold(f, known) }) {
			out = append(out, known)
		}
	}
	return out
}

// deleteAll removes every copy found, in Junk too, so that probe messages
// never pile up; a failure is noted, not the run's verdict.
func (r *receiver) deleteAll(ctx context.Context, mb *Mailbox, found []Message) {
	byFolder := map[string][]uint32{}
	var order []string
	for _, msg := range found {
		if _, ok := byFolder[msg.Folder]; !ok {
			order = append(order, msg.Folder)
		}
		byFolder[msg.Folder] = append(byFolder[msg.Folder], msg.UID)
	}
	deleted := true
	for _, folder := range order {
		ok, err := mb.Delete(ctx, folder, byFolder[folder])
		if err != nil {
			deleted = false
			_ = level.Warn(r.logger).Log("msg", "deleting the probe message failed", "folder", r.red.Redact(mb.Redact(folder)), "err", r.red.Redact(err.Error()))
			continue
		}
		deleted = deleted && ok
	}
	r.facts.Deleted = deleted
}

// check applies require_inbox and require_auth to the facts.
func (r *receiver) check(wait *probes.PhaseResult) {
	d, f := &r.module.Delivery, r.facts
	if d.RequireInbox && f.Folder != string(ClassInbox) {
		r.fail(wait, probes.ReasonSpamFolder, fmt.Errorf("message landed in a %s folder, not the inbox", f.Folder))
		return
	}
	results := map[string]string{"spf": f.SPF, "dkim": f.DKIM, "dmarc": f.DMARC}
	for _, method := range d.RequireAuth {
		if got := results[method]; got != string(AuthPass) {
			r.fail(wait, probes.Reason(method), fmt.Errorf("%s result is %s, want pass", method, got))
			return
		}
	}
}

// failFrom takes the failure of the phase that Dial recorded last.
func (r *receiver) failFrom(phases []*probes.PhaseResult, err error, waitCtx context.Context) {
	var pr *probes.PhaseResult
	if n := len(phases); n > 0 {
		pr = phases[n-1]
	} else {
		pr = &probes.PhaseResult{Phase: probes.PhaseIMAPConnect}
		r.res.Phases = append(r.res.Phases, pr)
	}
	r.fail(pr, legReason(err), err)
}

// fail makes the run's verdict the receive leg's failure in phase pr.
func (r *receiver) fail(pr *probes.PhaseResult, reason probes.Reason, err error) {
	if reason == "" || reason == probes.ReasonOK {
		reason = probes.ReasonOther
	}
	err = errors.New(r.red.Redact(err.Error()))
	pr.Reason, pr.Err = reason, err
	res := r.res
	res.Success = false
	res.FailedPhase, res.Reason, res.Temporary, res.Err = pr.Phase, reason, reason.Temporary(), err
	res.Code, res.EnhancedCode, res.ReplyText = 0, "", ""
}

// waitOver reports whether the wait's own deadline has passed. The clock
// decides, not ctx.Err(): a connection deadline set to the same instant
// can fire before the context's timer has run, and that timeout is the
// wait's end all the same.
func waitOver(ctx context.Context) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// legReason is the reason a receive-leg error carries.
func legReason(err error) probes.Reason {
	var de *Error
	if errors.As(err, &de) {
		return de.Reason
	}
	return probes.ReasonOther
}

// redactTLS is mb's TLS facts with every certificate name redacted, by
// the mailbox's redactor and the run's.
func (r *receiver) redactTLS(mb *Mailbox) *probes.TLSInfo {
	return mb.TLS().Redacted(func(s string) string { return r.red.Redact(mb.Redact(s)) })
}

// redactLines keeps the send leg's secret out of the mailbox's transcript,
// which redacted its own.
func (r *receiver) redactLines(lines []probes.TranscriptLine) []probes.TranscriptLine {
	for i := range lines {
		lines[i].Text = r.red.Redact(lines[i].Text)
	}
	return lines
}
