package delivery

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

const testAuthservID = "mx.example.org"

// mailPath is a submission server that files every message it accepts
// into an in-memory mailbox, as the receiving side of a mail path would,
// with the verifier's Authentication-Results on top.
type mailPath struct {
	smtp *probestest.ScriptServer
	imap *probestest.IMAPServer
}

// newMailPath files messages into folder ("" delivers nothing) with
// authResults as the receiver's verdicts.
func newMailPath(t *testing.T, folder, authResults string) *mailPath {
	t.Helper()
	return newMailPathID(t, folder, testAuthservID, authResults)
}

// newMailPathID is newMailPath with the verifier naming itself authservID
// in its Authentication-Results ("" for none, as Microsoft 365 writes it).
func newMailPathID(t *testing.T, folder, authservID, authResults string) *mailPath {
	t.Helper()
	return newMailPathOpts(t, folder, authservID, authResults, mailPathIMAP())
}

// newMailPathFlagged is newMailPath whose delivery agent sets flags on
// each message it files, as a filter marking junk would.
func newMailPathFlagged(t *testing.T, folder string, flags ...string) *mailPath {
	t.Helper()
	return newMailPathOpts(t, folder, testAuthservID, allPass, mailPathIMAP(), flags...)
}

// mailPathIMAP is the mailbox newMailPath delivers to.
func mailPathIMAP() probestest.IMAPOptions {
	return probestest.IMAPOptions{
		Username: testUser, Password: testPass, SpecialUse: true, UIDPlus: true,
		Folders: map[string][]string{"Junk": {`\Junk`}},
	}
}

// newMailPathOpts is newMailPathID with the mailbox's options.
func newMailPathOpts(t *testing.T, folder, authservID, authResults string, opts probestest.IMAPOptions, flags ...string) *mailPath {
	t.Helper()
	arPrefix := authservID + "; "
	if authservID == "" {
		arPrefix = ""
	}
	p := &mailPath{imap: probestest.NewIMAPServer(t, opts)}
	d := probestest.Dialog{Deliver: func(msg string) {
		if folder == "" {
			return
		}
		now := time.Now()
		hdr := "Authentication-Results: " + arPrefix + authResults + "\r\n" +
			"Received: from submit.example.org by " + testAuthservID + " with ESMTPS; " + now.Format(time.RFC1123Z) + "\r\n"
		uid := p.imap.Deliver(t, folder, hdr+msg, now)
		if len(flags) > 0 {
			p.imap.Flag(t, folder, uid, flags...)
		}
	}}
	p.smtp = probestest.NewScriptServer(t, d.Serve)
	return p
}

func (p *mailPath) module() probes.Module {
	m := probes.Module{
		Prober:  probes.ProberDelivery,
		Timeout: 10 * time.Second,
		SMTP: probes.SMTPModule{
			TLS: probes.TLSNone, MailFrom: "sender@example.org", RcptTo: []string{testUser},
		},
		Delivery: probes.DeliveryModule{
			IMAP: probes.IMAPModule{
				Address: p.imap.Addr, TLS: probes.TLSNone, AllowInsecureAuth: true,
				Auth: &probes.AuthConfig{Mechanism: "LOGIN", Username: testUser, Password: testPass},
			},
			PollInterval:    20 * time.Millisecond,
			DeliveryTimeout: 2 * time.Second,
			AuthservID:      testAuthservID,
		},
	}
	return m
}

func runProbe(t *testing.T, p *mailPath, m probes.Module) *probes.Result {
	t.Helper()
	m.SetDefaults()
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	res := Probe(context.Background(), p.smtp.Addr, m, nil)
	if res == nil {
		t.Fatal("Probe returned nil")
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), testPass) {
		t.Errorf("the IMAP password is in the result's JSON:\n%s", b)
	}
	return res
}

// probeMessagesLeft counts the messages of folder that carry the probe
// header: the one INBOX message the server starts with is no probe's.
func probeMessagesLeft(t *testing.T, srv *probestest.IMAPServer, folder string) int {
	n := 0
	for _, m := range srv.Messages(t, folder) {
		if strings.Contains(m.Body, ProbeHeader+":") {
			n++
		}
	}
	return n
}

const allPass = "spf=pass smtp.mailfrom=example.org; dkim=pass header.d=example.org; dmarc=pass header.from=example.org"

func TestProbe_Delivered(t *testing.T) {
	p := newMailPath(t, "INBOX", allPass)
	res := runProbe(t, p, p.module())
	if !res.Success {
		t.Fatalf("probe failed: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
	}
	f := res.Delivery
	if f == nil || !f.Found {
		t.Fatalf("Delivery = %+v, want the message found", f)
	}
	if f.Folder != "inbox" || f.SPF != "pass" || f.DKIM != "pass" || f.DMARC != "pass" || f.DKIMDomain != "example.org" || !f.AuthFound {
		t.Errorf("facts = %+v, want inbox with spf, dkim and dmarc pass signed by example.org", f)
	}
	if f.TimeToInbox <= 0 || f.TimeToInbox > res.Duration {
		t.Errorf("TimeToInbox = %s, want within (0, %s]", f.TimeToInbox, res.Duration)
	}
	if f.Hops != 1 {
		t.Errorf("Hops = %d, want 1", f.Hops)
	}
	if !f.Deleted || probeMessagesLeft(t, p.imap, "INBOX") != 0 {
		t.Errorf("Deleted = %v with %d probe messages left in INBOX, want it deleted", f.Deleted, probeMessagesLeft(t, p.imap, "INBOX"))
	}
	var names []probes.Phase
	for _, pr := range res.Phases {
		names = append(names, pr.Phase)
	}
	m := p.module()
	m.SetDefaults()
	if got, want := joinPhaseNames(names), joinPhaseNames(m.Phases()); got != want {
		t.Errorf("phases = %s, want the module's %s", got, want)
	}
	b, _ := json.Marshal(res)
	var out struct {
		ProbeToken string `json:"probe_token"`
		Delivery   struct {
			Folder      string  `json:"folder"`
			TimeToInbox float64 `json:"time_to_inbox_seconds"`
			DKIM        string  `json:"dkim"`
		} `json:"delivery"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.ProbeToken == "" || out.Delivery.Folder != "inbox" || out.Delivery.TimeToInbox <= 0 || out.Delivery.DKIM != "pass" {
		t.Errorf("JSON = %+v, want the token and the delivery facts", out)
	}
	var sawIMAP bool
	for _, l := range res.Transcript {
		if strings.Contains(l.Text, "LOGIN") {
			sawIMAP = true
		}
	}
	if !sawIMAP {
		t.Error("the mailbox's transcript is not in the result's")
	}
}

func joinPhaseNames(ps []probes.Phase) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}

func TestProbe_JunkWithRequireInbox(t *testing.T) {
	p := newMailPath(t, "Junk", allPass)
	m := p.module()
	m.Delivery.RequireInbox = true
	res := runProbe(t, p, m)
	if res.Success || res.Reason != probes.ReasonSpamFolder || res.FailedPhase != probes.PhaseWait || res.Temporary {
		t.Fatalf("result = %v %s/%s temporary %v (%v), want a permanent spam_folder failure in wait", res.Success, res.FailedPhase, res.Reason, res.Temporary, res.Err)
	}
	if res.Delivery.Folder != "junk" {
		t.Errorf("Folder = %q, want junk", res.Delivery.Folder)
	}
	if n := probeMessagesLeft(t, p.imap, "Junk"); n != 0 {
		t.Errorf("%d probe messages left in Junk, want them deleted", n)
	}
}

func TestProbe_JunkWithoutRequireInbox(t *testing.T) {
	p := newMailPath(t, "Junk", allPass)
	res := runProbe(t, p, p.module())
	if !res.Success || res.Delivery.Folder != "junk" {
		t.Fatalf("result = %v (%s/%s), folder %q, want success with folder junk", res.Success, res.FailedPhase, res.Reason, res.Delivery.Folder)
	}
}

func TestProbe_NotDelivered(t *testing.T) {
	p := newMailPath(t, "", allPass)
	m := p.module()
	m.Delivery.DeliveryTimeout = time.Second
	start := time.Now()
	res := runProbe(t, p, m)
	took := time.Since(start)
	if res.Success || res.Reason != probes.ReasonNotDelivered || res.FailedPhase != probes.PhaseWait || !res.Temporary {
		t.Fatalf("result = %v %s/%s temporary %v (%v), want a temporary not_delivered failure in wait", res.Success, res.FailedPhase, res.Reason, res.Temporary, res.Err)
	}
	if took > 3*time.Second {
		t.Errorf("probe took %s with a 1s delivery_timeout", took)
	}
	if res.Phase(probes.PhaseData).Reason != probes.ReasonOK {
		t.Errorf("data phase = %s, want the send leg to have succeeded", res.Phase(probes.PhaseData).Reason)
	}
}

func TestProbe_IMAPWrongPassword(t *testing.T) {
	p := newMailPath(t, "INBOX", allPass)
	m := p.module()
	m.Delivery.IMAP.Auth.Password = "Wrong-Battery-7?"
	res := runProbe(t, p, m)
	if res.Success || res.FailedPhase != probes.PhaseIMAPAuth || res.Reason != probes.ReasonAuthFailed {
		t.Fatalf("result = %v %s/%s (%v), want imap_auth/auth_failed", res.Success, res.FailedPhase, res.Reason, res.Err)
	}
	if d := res.Phase(probes.PhaseData); d == nil || d.Reason != probes.ReasonOK {
		t.Errorf("data phase = %+v, want the send leg to have succeeded", d)
	}
	b, _ := json.Marshal(res)
	if strings.Contains(string(b), "Wrong-Battery-7?") {
		t.Errorf("the wrong password is in the JSON:\n%s", b)
	}
}

func TestProbe_RequireAuth(t *testing.T) {
	p := newMailPath(t, "INBOX", "spf=pass smtp.mailfrom=example.org; dkim=fail header.d=example.org; dmarc=fail header.from=example.org")
	m := p.module()
	m.Delivery.RequireAuth = []string{"spf", "dkim", "dmarc"}
	res := runProbe(t, p, m)
	if res.Success || res.Reason != probes.ReasonDKIM || res.FailedPhase != probes.PhaseWait {
		t.Fatalf("result = %v %s/%s (%v), want wait/dkim", res.Success, res.FailedPhase, res.Reason, res.Err)
	}
	if res.Delivery.DKIM != "fail" || res.Delivery.DMARC != "fail" {
		t.Errorf("facts = %+v, want dkim and dmarc fail", res.Delivery)
	}
	if n := probeMessagesLeft(t, p.imap, "INBOX"); n != 0 {
		t.Errorf("%d probe messages left, want the failed one deleted too", n)
	}
}

func TestProbe_SendRefused(t *testing.T) {
	d := probestest.Dialog{Replies: map[string]string{"RCPT": "550 5.1.1 User unknown"}}
	srv := probestest.NewScriptServer(t, d.Serve)
	p := &mailPath{smtp: srv, imap: probestest.NewIMAPServer(t, probestest.IMAPOptions{Username: testUser, Password: testPass})}
	res := runProbe(t, p, p.module())
	if res.Success || res.FailedPhase != probes.PhaseRcpt || res.Reason != probes.ReasonMailboxUnavailable {
		t.Fatalf("result = %s/%s, want the send leg's rcpt/mailbox_unavailable", res.FailedPhase, res.Reason)
	}
	if res.Delivery != nil || res.Phase(probes.PhaseIMAPConnect) != nil {
		t.Error("the receive leg ran after the send leg failed")
	}
}

// TestProbe_Bounced has the mail path answer the probe message with
// Postfix's DSN about it instead of delivering it.
func TestProbe_Bounced(t *testing.T) {
	p := bouncingMailPath(t)
	m := p.module()
	// The bounce ends the wait when it is seen; the timeout only has to
	// outlast the login and clean-up under -race on a loaded machine (at
	// 500 ms, CI once ran out before the first round).
	m.Timeout = 30 * time.Second
	m.Delivery.DeliveryTimeout = 10 * time.Second
	checkBounced(t, p, runProbe(t, p, m))
}

// TestProbe_BounceEndsWaitEarly: a bounce ends the wait when it comes,
// not when delivery_timeout has passed.
func TestProbe_BounceEndsWaitEarly(t *testing.T) {
	p := bouncingMailPath(t)
	m := p.module()
	m.Timeout = 30 * time.Second
	m.Delivery.DeliveryTimeout = 20 * time.Second
	res := runProbe(t, p, m)
	checkBounced(t, p, res)
	if res.Duration >= m.Delivery.DeliveryTimeout/2 {
		t.Errorf("the run took %s, want it ended by the bounce well before delivery_timeout %s", res.Duration, m.Delivery.DeliveryTimeout)
	}
}

// bouncingMailPath answers the probe message with Postfix's DSN about it
// instead of delivering it.
func bouncingMailPath(t *testing.T) *mailPath {
	t.Helper()
	sample := string(crlf(readSample(t, "postfix-user-unknown.eml")))
	if !strings.Contains(sample, sampleToken) {
		t.Fatal("the sample does not return the probe token")
	}
	p := &mailPath{imap: probestest.NewIMAPServer(t, probestest.IMAPOptions{
		Username: testUser, Password: testPass, UIDPlus: true,
	})}
	d := probestest.Dialog{Deliver: func(msg string) {
		_, rest, _ := strings.Cut(msg, ProbeHeader+": ")
		token, _, _ := strings.Cut(rest, "\r\n")
		p.imap.Deliver(t, "INBOX", strings.ReplaceAll(sample, sampleToken, token), time.Now())
	}}
	p.smtp = probestest.NewScriptServer(t, d.Serve)
	return p
}

func checkBounced(t *testing.T, p *mailPath, res *probes.Result) {
	t.Helper()
	if res.Success || res.FailedPhase != probes.PhaseBounce || res.Reason != probes.ReasonMailboxUnavailable || res.Temporary {
		t.Fatalf("result = %v %s/%s temporary %v (%v), want a permanent bounce/mailbox_unavailable", res.Success, res.FailedPhase, res.Reason, res.Temporary, res.Err)
	}
	b := res.Delivery.Bounce
	if b == nil || b.Code != 550 || b.EnhancedCode != "5.1.1" || b.Action != "failed" || !strings.Contains(b.Text, "User unknown") {
		t.Errorf("bounce facts = %+v, want Postfix's 550 5.1.1 User unknown, failed", b)
	}
	if res.Code != 550 || res.EnhancedCode != "5.1.1" {
		t.Errorf("result code = %d %s, want the bounce's", res.Code, res.EnhancedCode)
	}
	for _, msg := range p.imap.Messages(t, "INBOX") {
		if strings.Contains(msg.Body, "User unknown") {
			t.Error("the bounce is still in INBOX, want it deleted")
		}
	}
}

// TestProbe_CleansUpLeftovers has the mailbox hold what earlier runs and
// other probers left: only this target's own probe messages older than
// delivery_timeout go, and they count as cleaned; late only the one that
// arrived more than delivery_timeout after it was sent. Old bounces about
// this target's probes go too, counted apart; another prefix's stay.
func TestProbe_CleansUpLeftovers(t *testing.T) {
	p := newMailPath(t, "INBOX", allPass)
	m := p.module()
	m.SetDefaults()
	prefix := TokenPrefix(p.smtp.Addr, &m)
	old := time.Now().Add(-time.Hour)
	// Sent an hour before it arrived: its run (delivery_timeout 2s) had
	// long given up. The one in Junk arrived in time: its run was
	// interrupted, or could not delete it.
	p.imap.Deliver(t, "INBOX", probeMessageSent(prefix+"0123456789abcdef01234567", old.Add(-time.Hour)), old)
	p.imap.Deliver(t, "Junk", probeMessageSent(prefix+"1123456789abcdef01234567", old.Add(-time.Second)), old)
	sample := string(crlf(readSample(t, "postfix-user-unknown.eml")))
	p.imap.Deliver(t, "INBOX", strings.ReplaceAll(sample, sampleToken, prefix+"6123456789abcdef01234567"), old)
	foreignBounce := "smtpx00000000-7123456789abcdef01234567"
	p.imap.Deliver(t, "INBOX", strings.ReplaceAll(sample, sampleToken, foreignBounce), old)
	recent := prefix + "2123456789abcdef01234567"
	p.imap.Deliver(t, "INBOX", probeMessage(recent), time.Now())
	foreign := "smtpx00000000-3123456789abcdef01234567"
	p.imap.Deliver(t, "INBOX", probeMessage(foreign), old)
	unprefixed := "4123456789abcdef01234567"
	p.imap.Deliver(t, "INBOX", probeMessage(unprefixed), old)
	p.imap.Deliver(t, "INBOX", "From: a@example.org\r\nSubject: "+prefix+"\r\n\r\nhello\r\n", old)
	// Flagged by an earlier run on a server without UIDPLUS: dealt with,
	// so not late again.
	flagged := p.imap.Deliver(t, "INBOX", probeMessage(prefix+"5123456789abcdef01234567"), old)
	p.imap.Flag(t, "INBOX", flagged, imap.DeletedFlag)

	res := runProbe(t, p, m)
	if !res.Success {
		t.Fatalf("probe failed: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
	}
	if f := res.Delivery; f.Cleaned != 2 || f.Late != 1 || f.CleanedBounces != 1 {
		t.Errorf("Cleaned = %d, Late = %d, CleanedBounces = %d, want 2, 1 and 1", f.Cleaned, f.Late, f.CleanedBounces)
	}
	var inbox []string
	for _, msg := range p.imap.Messages(t, "INBOX") {
		inbox = append(inbox, msg.Body)
	}
	all := strings.Join(inbox, "\n")
	if strings.Contains(all, prefix+"6123456789abcdef01234567") {
		t.Error("the old bounce about this target's probe is still in INBOX")
	}
	for _, keep := range []string{recent, foreign, unprefixed, "hello", foreignBounce} {
		if !strings.Contains(all, keep) {
			t.Errorf("%q was deleted, want it kept", keep)
		}
	}
	if n := probeMessagesLeft(t, p.imap, "Junk"); n != 0 {
		t.Errorf("%d probe messages left in Junk, want the old one cleaned", n)
	}
	if !strings.Contains(transcriptOf(res), "cleaned up 2") {
		t.Errorf("the transcript does not note the clean-up:\n%s", transcriptOf(res))
	}
}

func transcriptOf(res *probes.Result) string {
	var b strings.Builder
	for _, l := range res.Transcript {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

// TestTokenPrefix: the prefix tells targets and modules apart, and a
// token built on it passes a search.
func TestTokenPrefix(t *testing.T) {
	a := probes.Module{SMTP: probes.SMTPModule{MailFrom: "a@example.org", RcptTo: []string{"p@example.org"}}}
	b := a
	b.SMTP.MailFrom = "b@example.org"
	pa, pb, pc := TokenPrefix("mx1:587", &a), TokenPrefix("mx1:587", &b), TokenPrefix("mx2:587", &a)
	if pa == pb || pa == pc || pa != TokenPrefix("mx1:587", &a) {
		t.Errorf("prefixes %q %q %q, want distinct and stable", pa, pb, pc)
	}
	if err := checkToken(pa); err != nil {
		t.Error(err)
	}
}

// TestProbe_BounceIMAP has the bounce come back to the sender's own
// mailbox, on another server: it ends the wait and is deleted there.
func TestProbe_BounceIMAP(t *testing.T) {
	const bounceUser, bouncePass = "sender@example.org", "bounce-secret-pw"
	sample := string(crlf(readSample(t, "postfix-user-unknown.eml")))
	bounces := probestest.NewIMAPServer(t, probestest.IMAPOptions{Username: bounceUser, Password: bouncePass, UIDPlus: true})
	p := &mailPath{imap: probestest.NewIMAPServer(t, probestest.IMAPOptions{
		Username: testUser, Password: testPass, UIDPlus: true,
	})}
	d := probestest.Dialog{Deliver: func(msg string) {
		_, rest, _ := strings.Cut(msg, ProbeHeader+": ")
		token, _, _ := strings.Cut(rest, "\r\n")
		bounces.Deliver(t, "INBOX", strings.ReplaceAll(sample, sampleToken, token), time.Now())
	}}
	p.smtp = probestest.NewScriptServer(t, d.Serve)
	m := p.module()
	m.Timeout = 30 * time.Second
	m.Delivery.DeliveryTimeout = 20 * time.Second
	m.Delivery.BounceIMAP = &probes.IMAPModule{
		Address: bounces.Addr, TLS: probes.TLSNone, AllowInsecureAuth: true,
		Auth: &probes.AuthConfig{Mechanism: "LOGIN", Username: bounceUser, Password: bouncePass},
	}
	res := runProbe(t, p, m)
	if res.Success || res.FailedPhase != probes.PhaseBounce || res.Reason != probes.ReasonMailboxUnavailable {
		t.Fatalf("result = %v %s/%s (%v), want bounce/mailbox_unavailable", res.Success, res.FailedPhase, res.Reason, res.Err)
	}
	if res.Duration >= m.Delivery.DeliveryTimeout/2 {
		t.Errorf("the run took %s, want it ended by the bounce", res.Duration)
	}
	for _, msg := range bounces.Messages(t, "INBOX") {
		if strings.Contains(msg.Body, "User unknown") {
			t.Error("the bounce is still in the bounce mailbox, want it deleted")
		}
	}
	if res.Delivery.BounceMailbox != "ok" || res.Delivery.BounceMailboxError != "" {
		t.Errorf("bounce mailbox = %q (%q), want ok", res.Delivery.BounceMailbox, res.Delivery.BounceMailboxError)
	}
	tr := transcriptOf(res)
	if !strings.Contains(tr, "bounce mailbox") {
		t.Errorf("the transcript lacks the bounce mailbox's session:\n%s", tr)
	}
	b, _ := json.Marshal(res)
	if strings.Contains(tr, bouncePass) || strings.Contains(string(b), bouncePass) {
		t.Error("the bounce mailbox's password is in the output")
	}
}

// Issue 7's rule for the receive leg: a mailbox knows its own password and
// may put it in what the probe reads back. Header facts that reach the
// result (the DKIM domain) are redacted like every reply.
func TestProbe_EchoedPasswordInHeaderFacts(t *testing.T) {
	p := newMailPath(t, "INBOX", "spf=pass smtp.mailfrom=example.org; dkim=pass header.d=x"+testPass+".example.org; dmarc=pass header.from=example.org")
	res := runProbe(t, p, p.module())
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	forms := probestest.SecretFragmentForms(testPass)
	for name, text := range map[string]string{"JSON": string(b), "transcript": transcriptOf(res)} {
		if what, around := probestest.FindSecretFragment(text, forms); what != "" {
			t.Errorf("%s holds the %s: ...%s...", name, what, around)
		}
	}
	if res.Delivery == nil || res.Delivery.DKIM != "pass" || res.Delivery.DKIMDomain == "" {
		t.Fatalf("no DKIM signing domain read: the test proves nothing: %+v", res.Delivery)
	}
}

// TestProbe_AuthTrust: without authserv_id or authres_without_id no
// Authentication-Results header is trusted and the verdicts are unknown
// (empty), not "none"; authres_without_id trusts Microsoft 365's id-less
// header.
func TestProbe_AuthTrust(t *testing.T) {
	t.Run("nothing trusted", func(t *testing.T) {
		p := newMailPath(t, "INBOX", allPass)
		m := p.module()
		m.Delivery.AuthservID = ""
		res := runProbe(t, p, m)
		if !res.Success {
			t.Fatalf("probe failed: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
		}
		if f := res.Delivery; f.AuthFound || f.SPF != "" || f.DKIM != "" || f.DMARC != "" || f.DKIMDomain != "" {
			t.Errorf("facts = %+v, want no trusted header and unknown verdicts", f)
		}
	})
	t.Run("authres_without_id", func(t *testing.T) {
		p := newMailPathID(t, "INBOX", "", "spf=pass (sender IP is 192.0.2.10) smtp.mailfrom=example.org; dkim=pass (signature was verified) header.d=example.org;dmarc=pass action=none header.from=example.org;compauth=pass reason=100")
		m := p.module()
		m.Delivery.AuthservID, m.Delivery.AuthresWithoutID = "", true
		m.Delivery.RequireAuth = []string{"spf", "dkim", "dmarc"}
		res := runProbe(t, p, m)
		if !res.Success {
			t.Fatalf("probe failed: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
		}
		if f := res.Delivery; !f.AuthFound || f.SPF != "pass" || f.DKIM != "pass" || f.DMARC != "pass" {
			t.Errorf("facts = %+v, want Microsoft 365's id-less verdicts, all pass", f)
		}
	})
}

// TestProbe_BounceMailboxLoginFails: a bounce mailbox that refuses the
// login does not fail a run whose message arrived (the bounce check only
// matters for a missing one), but the run records it; when the message is
// missing, the not_delivered error says bounces could not be checked and
// why. The wrong password stays out of every output.
func TestProbe_BounceMailboxLoginFails(t *testing.T) {
	const bounceUser, wrongPass = "sender@example.org", "Qz7-Xw9-Kp4-Vy2"
	bounces := probestest.NewIMAPServer(t, probestest.IMAPOptions{Username: bounceUser, Password: "right-one", UIDPlus: true})
	bounceIMAP := &probes.IMAPModule{
		Address: bounces.Addr, TLS: probes.TLSNone, AllowInsecureAuth: true,
		Auth: &probes.AuthConfig{Mechanism: "LOGIN", Username: bounceUser, Password: wrongPass},
	}
	check := func(t *testing.T, res *probes.Result) {
		t.Helper()
		f := res.Delivery
		if f == nil || f.BounceMailbox != "failed" || !strings.Contains(f.BounceMailboxError, "auth_failed") {
			t.Errorf("delivery facts = %+v, want bounce_mailbox failed with the login's reason", f)
		}
		b, _ := json.Marshal(res)
		if what, around := probestest.FindSecretFragment(string(b)+transcriptOf(res), probestest.SecretFragmentForms(wrongPass)); what != "" {
			t.Errorf("the bounce mailbox's password is in the output: %s ...%s...", what, around)
		}
	}
	t.Run("delivered", func(t *testing.T) {
		p := newMailPath(t, "INBOX", allPass)
		m := p.module()
		m.Delivery.BounceIMAP = bounceIMAP
		res := runProbe(t, p, m)
		if !res.Success {
			t.Fatalf("probe failed: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
		}
		check(t, res)
	})
	t.Run("not delivered", func(t *testing.T) {
		p := newMailPath(t, "", allPass)
		m := p.module()
		m.Delivery.DeliveryTimeout = 1500 * time.Millisecond
		m.Delivery.BounceIMAP = bounceIMAP
		res := runProbe(t, p, m)
		if res.Success || res.Reason != probes.ReasonNotDelivered {
			t.Fatalf("result = %v %s/%s (%v), want not_delivered", res.Success, res.FailedPhase, res.Reason, res.Err)
		}
		if msg := res.Err.Error(); !strings.Contains(msg, "bounces could not be checked") || !strings.Contains(msg, "auth_failed") {
			t.Errorf("error = %q, want it to say bounces could not be checked, and why", msg)
		}
		check(t, res)
	})
}

// TestProbe_SweepsOldBouncesInBounceIMAP: old bounces are swept in the
// bounce mailbox when bounce_imap names one, and only this target's.
func TestProbe_SweepsOldBouncesInBounceIMAP(t *testing.T) {
	const bounceUser, bouncePass = "sender@example.org", "bounce-secret-pw"
	bounces := probestest.NewIMAPServer(t, probestest.IMAPOptions{Username: bounceUser, Password: bouncePass, UIDPlus: true})
	p := newMailPath(t, "INBOX", allPass)
	m := p.module()
	m.Delivery.BounceIMAP = &probes.IMAPModule{
		Address: bounces.Addr, TLS: probes.TLSNone, AllowInsecureAuth: true,
		Auth: &probes.AuthConfig{Mechanism: "LOGIN", Username: bounceUser, Password: bouncePass},
	}
	mm := m
	mm.SetDefaults()
	prefix := TokenPrefix(p.smtp.Addr, &mm)
	sample := string(crlf(readSample(t, "postfix-user-unknown.eml")))
	old := time.Now().Add(-time.Hour)
	ours, theirs := prefix+"0123456789abcdef01234567", "smtpx00000000-1123456789abcdef01234567"
	bounces.Deliver(t, "INBOX", strings.ReplaceAll(sample, sampleToken, ours), old)
	bounces.Deliver(t, "INBOX", strings.ReplaceAll(sample, sampleToken, theirs), old)
	res := runProbe(t, p, m)
	if !res.Success {
		t.Fatalf("probe failed: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
	}
	if res.Delivery.CleanedBounces != 1 {
		t.Errorf("CleanedBounces = %d, want 1", res.Delivery.CleanedBounces)
	}
	var left []string
	for _, msg := range bounces.Messages(t, "INBOX") {
		left = append(left, msg.Body)
	}
	all := strings.Join(left, "\n")
	if strings.Contains(all, ours) || !strings.Contains(all, theirs) {
		t.Errorf("bounce mailbox after the run holds ours %v, theirs %v; want only theirs", strings.Contains(all, ours), strings.Contains(all, theirs))
	}
}

// TestProbe_IMAPTLSFacts: the receive mailbox's TLS facts are in the
// result (JSON imap_tls), also when its certificate fails, and the names a
// certificate carries are redacted like every server datum: a server that
// saw the password in an earlier session could mint one with it.
func TestProbe_IMAPTLSFacts(t *testing.T) {
	ca := probestest.NewCA(t)
	for _, tc := range []struct {
		name    string
		trusted bool
	}{{"verified", true}, {"untrusted", false}} {
		t.Run(tc.name, func(t *testing.T) {
			cert := ca.Valid(t, "127.0.0.1", "localhost", "x"+strings.ToLower(testPass)+".example.org")
			opts := mailPathIMAP()
			opts.TLS, opts.Cert = probes.TLSImplicit, &cert
			p := newMailPathOpts(t, "INBOX", testAuthservID, allPass, opts)
			m := p.module()
			m.Delivery.IMAP.TLS, m.Delivery.IMAP.AllowInsecureAuth = probes.TLSImplicit, false
			if tc.trusted {
				m.Delivery.IMAP.TLSConfig.CAFile = ca.WriteCAFile(t)
			}
			res := runProbe(t, p, m)
			f := res.Delivery
			if f == nil || f.IMAPTLS == nil {
				t.Fatalf("no IMAP TLS facts: %+v (%s/%s %v)", f, res.FailedPhase, res.Reason, res.Err)
			}
			if f.IMAPTLS.Verified != tc.trusted || f.IMAPTLS.Version == "" || f.IMAPTLS.EarliestExpiry.IsZero() || len(f.IMAPTLS.Certificates) == 0 {
				t.Errorf("IMAP TLS facts = %+v, want verified %v with a version and an expiry", f.IMAPTLS, tc.trusted)
			}
			if !tc.trusted && (res.FailedPhase != probes.PhaseIMAPConnect || res.Reason != probes.ReasonCertUntrusted) {
				t.Errorf("result = %s/%s, want imap_connect/cert_untrusted", res.FailedPhase, res.Reason)
			}
			b, _ := json.Marshal(res)
			if !strings.Contains(string(b), `"imap_tls":{`) {
				t.Errorf("JSON has no imap_tls object:\n%s", b)
			}
			if what, around := probestest.FindSecretFragment(string(b), probestest.SecretFragmentForms(testPass)); what != "" {
				t.Errorf("JSON holds the %s: ...%s...", what, around)
			}
		})
	}
}

// TestProbe_Flags: the found message's flags are a fact, kept to the
// system flags and the junk keywords that tell a filter's or a user's
// verdict; any other keyword (server data, which could hold anything) is
// left out.
func TestProbe_Flags(t *testing.T) {
	p := newMailPathFlagged(t, "Junk", "$Junk", `\Flagged`, "x"+strings.ToLower(testPass), "$label1")
	res := runProbe(t, p, p.module())
	if !res.Success {
		t.Fatalf("probe failed: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
	}
	if got := strings.Join(res.Delivery.Flags, " "); got != `\Flagged $Junk` {
		t.Errorf("Flags = %q, want \\Flagged $Junk", got)
	}
	b, _ := json.Marshal(res)
	if !strings.Contains(string(b), `"flags":["\\Flagged","$Junk"]`) {
		t.Errorf("JSON lacks the flags:\n%s", b)
	}
}

// TestProbe_ReportsPending: the message is pending from the reply that
// accepted it until the wait ends; a message never accepted never is.
func TestProbe_ReportsPending(t *testing.T) {
	run := func(p *mailPath) []string {
		var events []string
		ctx := probes.WithProgress(context.Background(), func(e string) { events = append(events, e) })
		m := p.module()
		m.SetDefaults()
		Probe(ctx, p.smtp.Addr, m, nil)
		return events
	}
	if got := run(newMailPath(t, "INBOX", allPass)); !slices.Equal(got, []string{probes.EventAwaiting, probes.EventSettled}) {
		t.Errorf("delivered: events %v, want awaiting then settled", got)
	}
	refused := probestest.NewScriptServer(t, probestest.Dialog{Replies: map[string]string{"RCPT": "550 5.1.1 User unknown"}}.Serve)
	p := &mailPath{smtp: refused, imap: probestest.NewIMAPServer(t, probestest.IMAPOptions{Username: testUser, Password: testPass})}
	if got := run(p); len(got) != 0 {
		t.Errorf("refused at RCPT: events %v, want none", got)
	}
}
