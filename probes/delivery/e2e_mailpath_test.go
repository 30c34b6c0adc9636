package delivery

import (
	"context"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// The delivery prober against the real mail path of scripts/mailpath.sh
// (Postfix submission signing with OpenDKIM, an MX verifying SPF, DKIM and
// DMARC, Dovecot). Its keys come from the environment, as `make` exports
// DIR/env, or from the file SMTP_EXPORTER_MAILPATH_ENV names. With
// SMTP_EXPORTER_E2E=1 a missing mail path fails the test; without it the
// test is skipped.

func mailpathEnv(t *testing.T) map[string]string {
	return probestest.PathEnv(t, "SMTP_EXPORTER_MAILPATH_", "SMTP_EXPORTER_MAILPATH_SUBMISSION_ADDR", "scripts/mailpath.sh")
}

// mailpathModule sends as the signing sender to rcpt and reads the
// mailbox of user, over verified TLS on both legs.
func mailpathModule(env map[string]string, rcpt, user, passwordFile string) probes.Module {
	tlsc := config.TLSConfig{CAFile: env["SMTP_EXPORTER_MAILPATH_CA_FILE"], ServerName: env["SMTP_EXPORTER_MAILPATH_SERVER_NAME"]}
	return probes.Module{
		Prober:  probes.ProberDelivery,
		Timeout: 75 * time.Second,
		SMTP: probes.SMTPModule{
			TLS: probes.TLSStartTLS, TLSConfig: tlsc,
			Auth:     &probes.AuthConfig{Username: env["SMTP_EXPORTER_MAILPATH_SENDER"], PasswordFile: env["SMTP_EXPORTER_MAILPATH_SENDER_PASSWORD_FILE"]},
			MailFrom: env["SMTP_EXPORTER_MAILPATH_SENDER"], RcptTo: []string{rcpt},
		},
		Delivery: probes.DeliveryModule{
			IMAP: probes.IMAPModule{
				Address: env["SMTP_EXPORTER_MAILPATH_IMAPS_ADDR"], TLS: probes.TLSImplicit, TLSConfig: tlsc,
				Auth: &probes.AuthConfig{Username: user, PasswordFile: passwordFile},
			},
			PollInterval: time.Second,
			// As scripts/mailpath-check.sh: long enough for Dovecot's
			// first, slow login and a queue run.
			DeliveryTimeout: 45 * time.Second,
			AuthservID:      env["SMTP_EXPORTER_MAILPATH_AUTHSERV_ID"],
		},
	}
}

func runMailpath(t *testing.T, env map[string]string, m probes.Module) *probes.Result {
	t.Helper()
	m.SetDefaults()
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	res := Probe(context.Background(), env["SMTP_EXPORTER_MAILPATH_SUBMISSION_ADDR"], m, nil)
	if t.Failed() || !res.Success {
		for _, l := range res.Transcript {
			t.Logf("%8.3f %s %s", l.Offset.Seconds(), l.Dir, l.Text)
		}
	}
	return res
}

func TestE2E_DeliverySigned(t *testing.T) {
	env := mailpathEnv(t)
	rcpt := env["SMTP_EXPORTER_MAILPATH_RCPT"]
	m := mailpathModule(env, rcpt, rcpt, env["SMTP_EXPORTER_MAILPATH_RCPT_PASSWORD_FILE"])
	m.Delivery.RequireInbox = true
	m.Delivery.RequireAuth = []string{"spf", "dkim", "dmarc"}
	res := runMailpath(t, env, m)
	if !res.Success {
		t.Fatalf("probe failed: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
	}
	f := res.Delivery
	if f.Folder != "inbox" || f.SPF != "pass" || f.DKIM != "pass" || f.DMARC != "pass" || f.TimeToInbox <= 0 || !f.Deleted {
		t.Errorf("facts = %+v, want inbox, spf, dkim and dmarc pass, a time to inbox and the message deleted", f)
	}
}

func TestE2E_DeliveryUnsigned(t *testing.T) {
	env := mailpathEnv(t)
	rcpt := env["SMTP_EXPORTER_MAILPATH_RCPT"]
	m := mailpathModule(env, rcpt, rcpt, env["SMTP_EXPORTER_MAILPATH_RCPT_PASSWORD_FILE"])
	// The submission server signs only example.test: unsigned.test, whose
	// DMARC policy rejects, arrives with dkim and dmarc not passing.
	m.SMTP.MailFrom = env["SMTP_EXPORTER_MAILPATH_UNSIGNED_SENDER"]
	m.Delivery.RequireAuth = []string{"dkim"}
	res := runMailpath(t, env, m)
	if res.Success || res.FailedPhase != probes.PhaseWait || res.Reason != probes.ReasonDKIM {
		t.Fatalf("result = %s/%s (%v), want wait/dkim", res.FailedPhase, res.Reason, res.Err)
	}
	if f := res.Delivery; f.DKIM == "pass" || f.DMARC == "pass" {
		t.Errorf("facts = %+v, want dkim and dmarc not passing", f)
	}
}

func TestE2E_DeliveryBounce(t *testing.T) {
	env := mailpathEnv(t)
	sender := env["SMTP_EXPORTER_MAILPATH_SENDER"]
	// The MX refuses the unknown recipient after submission took it: the
	// DSN comes back to the sender's own mailbox.
	m := mailpathModule(env, env["SMTP_EXPORTER_MAILPATH_UNKNOWN_RCPT"], sender, env["SMTP_EXPORTER_MAILPATH_SENDER_PASSWORD_FILE"])
	res := runMailpath(t, env, m)
	if res.Success || res.FailedPhase != probes.PhaseBounce || res.Reason != probes.ReasonMailboxUnavailable {
		t.Fatalf("result = %s/%s (%v), want bounce/mailbox_unavailable", res.FailedPhase, res.Reason, res.Err)
	}
}

func TestE2E_DeliveryIMAPLoginRefused(t *testing.T) {
	env := mailpathEnv(t)
	rcpt := env["SMTP_EXPORTER_MAILPATH_RCPT"]
	m := mailpathModule(env, rcpt, rcpt, "")
	m.Delivery.IMAP.Auth.Password = "Not-The-Password-1"
	res := runMailpath(t, env, m)
	if res.Success || res.FailedPhase != probes.PhaseIMAPAuth || res.Reason != probes.ReasonAuthFailed {
		t.Fatalf("result = %s/%s (%v), want imap_auth/auth_failed", res.FailedPhase, res.Reason, res.Err)
	}
	if d := res.Phase(probes.PhaseData); d == nil || d.Reason != probes.ReasonOK {
		t.Errorf("data phase = %+v, want the send leg to have succeeded", d)
	}
}

// TestE2E_DeliveryIMAPDown: the real submission server takes the message,
// and the mailbox is down: the run fails in the receive leg, with the send
// leg's phases all passed.
func TestE2E_DeliveryIMAPDown(t *testing.T) {
	env := mailpathEnv(t)
	rcpt := env["SMTP_EXPORTER_MAILPATH_RCPT"]
	m := mailpathModule(env, rcpt, rcpt, env["SMTP_EXPORTER_MAILPATH_RCPT_PASSWORD_FILE"])
	// A port that was free a moment ago: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.Delivery.IMAP.Address = l.Addr().String()
	l.Close()
	res := runMailpath(t, env, m)
	if res.Success || res.FailedPhase != probes.PhaseIMAPConnect || res.Reason != probes.ReasonConnect {
		t.Fatalf("result = %s/%s (%v), want imap_connect/connect", res.FailedPhase, res.Reason, res.Err)
	}
	if d := res.Phase(probes.PhaseData); d == nil || d.Reason != probes.ReasonOK {
		t.Errorf("data phase = %+v, want the send leg to have succeeded", d)
	}
	if !strings.Contains(res.Err.Error(), m.Delivery.IMAP.Address) && !strings.Contains(res.Err.Error(), "refused") {
		t.Errorf("error %q does not say which mailbox is down or why", res.Err)
	}
}

// gtube is SpamAssassin's Generic Test for Unsolicited Bulk Email: every
// content filter, and the mail path's Sieve rule, takes it for spam.
const gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

// openMailbox logs in to user's mailbox on the mail path, to check what a
// run left there.
func openMailbox(t *testing.T, env map[string]string, user, passwordFile string) *Mailbox {
	t.Helper()
	tc, err := config.NewTLSConfig(&config.TLSConfig{CAFile: env["SMTP_EXPORTER_MAILPATH_CA_FILE"], ServerName: env["SMTP_EXPORTER_MAILPATH_SERVER_NAME"]})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := os.ReadFile(passwordFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mb, err := Dial(ctx, Config{
		Address: env["SMTP_EXPORTER_MAILPATH_IMAPS_ADDR"], TLS: probes.TLSImplicit, TLSConfig: tc,
		Mechanism: MechPLAIN, Username: user, Secret: strings.TrimRight(string(secret), "\r\n"),
	})
	if err != nil {
		t.Fatalf("logging in to %s: %v", user, err)
	}
	t.Cleanup(func() { mb.Close() })
	return mb
}

// requireGone fails when user's mailbox still holds the run's message, in
// any watched folder, or a bounce about it.
func requireGone(t *testing.T, env map[string]string, user, passwordFile string, res *probes.Result) {
	t.Helper()
	mb := openMailbox(t, env, user, passwordFile)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	found, err := mb.Find(ctx, res.SMTP.ProbeToken)
	if err != nil {
		t.Fatalf("searching %s: %v", user, err)
	}
	for _, msg := range found {
		t.Errorf("the probe message is still in %s's %s (%s)", user, msg.Folder, msg.Class)
	}
	bounces, err := mb.FindBounces(ctx, res.SMTP.ProbeToken, res.SMTP.MessageID)
	if err != nil {
		t.Fatalf("searching %s for bounces: %v", user, err)
	}
	if len(bounces) > 0 {
		t.Errorf("%d bounces about the probe message are still in %s's INBOX", len(bounces), user)
	}
}

// TestE2E_DeliveryGTUBE: a body carrying GTUBE goes through the real
// Sieve rule into Junk; with require_inbox the run fails with
// spam_folder, and the message is deleted from Junk all the same.
func TestE2E_DeliveryGTUBE(t *testing.T) {
	env := mailpathEnv(t)
	rcpt, pw := env["SMTP_EXPORTER_MAILPATH_RCPT"], env["SMTP_EXPORTER_MAILPATH_RCPT_PASSWORD_FILE"]
	m := mailpathModule(env, rcpt, rcpt, pw)
	m.SMTP.Message.Body = "This probe tests the content filter's path.\n\n" + gtube + "\n"
	m.Delivery.RequireInbox = true
	res := runMailpath(t, env, m)
	if res.Success || res.FailedPhase != probes.PhaseWait || res.Reason != probes.ReasonSpamFolder {
		t.Fatalf("result = %s/%s (%v), want wait/spam_folder", res.FailedPhase, res.Reason, res.Err)
	}
	if f := res.Delivery; !f.Found || f.Folder != string(ClassJunk) || !f.Deleted {
		t.Errorf("facts = %+v, want found in junk and deleted", f)
	}
	requireGone(t, env, rcpt, pw, res)
}

// TestE2E_DeliveryBounceIMAP: the DSN about an unknown recipient comes
// back to the sender's mailbox, which delivery.bounce_imap names while
// delivery.imap is the recipient's: the run fails in phase bounce, and
// the DSN is deleted from the sender's mailbox.
func TestE2E_DeliveryBounceIMAP(t *testing.T) {
	env := mailpathEnv(t)
	rcpt, rcptPW := env["SMTP_EXPORTER_MAILPATH_RCPT"], env["SMTP_EXPORTER_MAILPATH_RCPT_PASSWORD_FILE"]
	sender, senderPW := env["SMTP_EXPORTER_MAILPATH_SENDER"], env["SMTP_EXPORTER_MAILPATH_SENDER_PASSWORD_FILE"]
	m := mailpathModule(env, env["SMTP_EXPORTER_MAILPATH_UNKNOWN_RCPT"], rcpt, rcptPW)
	bounces := m.Delivery.IMAP
	bounces.Auth = &probes.AuthConfig{Username: sender, PasswordFile: senderPW}
	m.Delivery.BounceIMAP = &bounces
	res := runMailpath(t, env, m)
	if res.Success || res.FailedPhase != probes.PhaseBounce || res.Reason != probes.ReasonMailboxUnavailable {
		t.Fatalf("result = %s/%s (%v), want bounce/mailbox_unavailable", res.FailedPhase, res.Reason, res.Err)
	}
	if b := res.Delivery.Bounce; b == nil || b.Code != 550 || b.EnhancedCode != "5.1.1" || b.Temporary || b.Action != "failed" {
		t.Errorf("bounce facts = %+v, want a permanent 550 5.1.1, action failed", b)
	}
	transcript := ""
	for _, l := range res.Transcript {
		transcript += l.Text + "\n"
	}
	if !strings.Contains(transcript, "bounce mailbox (delivery.bounce_imap):") {
		t.Errorf("the transcript lacks the bounce mailbox's dialog:\n%s", transcript)
	}
	requireGone(t, env, sender, senderPW, res)
}

// TestE2E_DeliveryCustomMessage: a message with headers and a body of the
// module's own (a From with a display name, a list header, several lines,
// one a lone dot) is still signed by the submission server and verified by
// the MX: spf, dkim and dmarc pass.
func TestE2E_DeliveryCustomMessage(t *testing.T) {
	env := mailpathEnv(t)
	rcpt := env["SMTP_EXPORTER_MAILPATH_RCPT"]
	m := mailpathModule(env, rcpt, rcpt, env["SMTP_EXPORTER_MAILPATH_RCPT_PASSWORD_FILE"])
	m.SMTP.Message = probes.MessageConfig{
		Headers: map[string]string{
			"From":     "Mail monitor <" + env["SMTP_EXPORTER_MAILPATH_SENDER"] + ">",
			"Subject":  "Weekly delivery report",
			"List-Id":  "Monitoring <monitoring.example.test>",
			"X-Mailer": "smtp_exporter e2e",
		},
		Body: "Hello,\n\nthis week's figures follow.\n.\n..and a line that starts with dots.\n\n-- \nThe monitor\n",
	}
	m.Delivery.RequireInbox = true
	m.Delivery.RequireAuth = []string{"spf", "dkim", "dmarc"}
	res := runMailpath(t, env, m)
	if !res.Success {
		t.Fatalf("probe failed: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
	}
	if f := res.Delivery; f.DKIM != "pass" || f.DKIMDomain != env["SMTP_EXPORTER_MAILPATH_DOMAIN"] || f.DMARC != "pass" {
		t.Errorf("facts = %+v, want dkim pass for %s and dmarc pass", f, env["SMTP_EXPORTER_MAILPATH_DOMAIN"])
	}
}

var updateJSON = flag.Bool("update-json", false, "write the JSON of TestE2E_DeliveryAllFacts's probe to examples/delivery-probe.json")

// TestE2E_DeliveryAllFacts: one signed probe against the mail path shows
// every fact the delivery prober has in its JSON. With -update-json (or
// SMTP_EXPORTER_UPDATE_JSON=1) the JSON is written to
// examples/delivery-probe.json, the example README.md shows.
func TestE2E_DeliveryAllFacts(t *testing.T) {
	env := mailpathEnv(t)
	rcpt, pw := env["SMTP_EXPORTER_MAILPATH_RCPT"], env["SMTP_EXPORTER_MAILPATH_RCPT_PASSWORD_FILE"]
	m := mailpathModule(env, rcpt, rcpt, pw)
	m.Delivery.RequireInbox = true
	m.Delivery.RequireAuth = []string{"spf", "dkim", "dmarc"}
	res := runMailpath(t, env, m)
	if !res.Success {
		t.Fatalf("probe failed: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
	}
	res.Module = "mailflow"
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Success    bool   `json:"success"`
		Reason     string `json:"reason"`
		Phases     []struct{ Name, Reason string }
		MessageID  string `json:"message_id"`
		QueueID    string `json:"queue_id"`
		ProbeToken string `json:"probe_token"`
		TLS        *struct {
			Version        string            `json:"version"`
			Cipher         string            `json:"cipher"`
			ServerName     string            `json:"server_name"`
			Verified       bool              `json:"verified"`
			EarliestExpiry string            `json:"earliest_expiry"`
			Certificates   []json.RawMessage `json:"certificates"`
		} `json:"tls"`
		Delivery *struct {
			Found       bool     `json:"found"`
			TimeToInbox *float64 `json:"time_to_inbox_seconds"`
			Folder      string   `json:"folder"`
			AuthFound   bool     `json:"auth_found"`
			SPF         string   `json:"spf"`
			DKIM        string   `json:"dkim"`
			DMARC       string   `json:"dmarc"`
			DKIMDomain  string   `json:"dkim_domain"`
			Hops        int      `json:"hops"`
			HopsTotal   *float64 `json:"hops_total_seconds"`
			HopsLargest *float64 `json:"hops_largest_seconds"`
			Deleted     bool     `json:"deleted"`
		} `json:"delivery"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	if !j.Success || j.Reason != "ok" {
		t.Errorf("success %t, reason %q, want true, ok", j.Success, j.Reason)
	}
	var phases []string
	for _, p := range j.Phases {
		phases = append(phases, p.Name)
		if p.Reason != "ok" {
			t.Errorf("phase %s: reason %q, want ok", p.Name, p.Reason)
		}
	}
	if got, want := strings.Join(phases, " "), "resolve connect banner ehlo starttls auth mail rcpt data quit imap_connect imap_auth wait"; got != want {
		t.Errorf("phases = %q, want %q", got, want)
	}
	if j.MessageID == "" || j.QueueID == "" || !strings.HasPrefix(j.ProbeToken, "smtpx") || !strings.Contains(j.MessageID, j.ProbeToken) {
		t.Errorf("message_id %q, queue_id %q, probe_token %q: want all three, the token in the Message-ID", j.MessageID, j.QueueID, j.ProbeToken)
	}
	if tl := j.TLS; tl == nil || tl.Version == "" || tl.Cipher == "" || !tl.Verified || tl.ServerName != env["SMTP_EXPORTER_MAILPATH_SERVER_NAME"] ||
		tl.EarliestExpiry == "" || len(tl.Certificates) == 0 {
		t.Errorf("tls = %+v, want version, cipher, verified for the server name, expiry and certificates", tl)
	}
	d := j.Delivery
	if d == nil {
		t.Fatalf("no delivery facts in %s", b)
	}
	if !d.Found || d.TimeToInbox == nil || *d.TimeToInbox <= 0 || d.Folder != "inbox" || !d.Deleted {
		t.Errorf("delivery = %+v, want found in inbox after a time, and deleted", d)
	}
	if !d.AuthFound || d.SPF != "pass" || d.DKIM != "pass" || d.DMARC != "pass" || d.DKIMDomain != env["SMTP_EXPORTER_MAILPATH_DOMAIN"] {
		t.Errorf("delivery = %+v, want a trusted Authentication-Results with spf, dkim and dmarc pass for %s", d, env["SMTP_EXPORTER_MAILPATH_DOMAIN"])
	}
	// Submission, MX, then Dovecot's LMTP: each writes a Received: field.
	if d.Hops < 2 || d.HopsTotal == nil || *d.HopsTotal < 0 || d.HopsLargest == nil || *d.HopsLargest < 0 {
		t.Errorf("delivery = %+v, want at least 2 hops and their delays", d)
	}
	for _, f := range []string{"SMTP_EXPORTER_MAILPATH_SENDER_PASSWORD_FILE", "SMTP_EXPORTER_MAILPATH_RCPT_PASSWORD_FILE"} {
		secret, err := os.ReadFile(env[f])
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSpace(string(secret)); s != "" && strings.Contains(strings.ToLower(string(b)), strings.ToLower(s)) {
			t.Errorf("the password of %s is in the JSON", f)
		}
	}
	requireGone(t, env, rcpt, pw, res)
	if *updateJSON || os.Getenv("SMTP_EXPORTER_UPDATE_JSON") == "1" {
		pretty, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "..", "examples", "delivery-probe.json")
		if err := os.WriteFile(path, append(pretty, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
}
