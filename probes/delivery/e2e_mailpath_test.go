package delivery

import (
	"bufio"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

// The delivery prober against the real mail path of scripts/mailpath.sh
// (Postfix submission signing with OpenDKIM, an MX verifying SPF, DKIM and
// DMARC, Dovecot). Its keys come from the environment, as `make` exports
// DIR/env, or from the file SMTP_EXPORTER_MAILPATH_ENV names. With
// SMTP_EXPORTER_E2E=1 a missing mail path fails the test; without it the
// test is skipped.

func mailpathEnv(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	if path := os.Getenv("SMTP_EXPORTER_MAILPATH_ENV"); path != "" {
		f, err := os.Open(path)
		if err != nil {
			t.Fatalf("SMTP_EXPORTER_MAILPATH_ENV: %v", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
				env[k] = v
			}
		}
	}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "SMTP_EXPORTER_MAILPATH_") {
			if _, set := env[k]; !set {
				env[k] = v
			}
		}
	}
	if env["SMTP_EXPORTER_MAILPATH_SUBMISSION_ADDR"] == "" {
		if os.Getenv("SMTP_EXPORTER_E2E") == "1" {
			t.Fatal("SMTP_EXPORTER_E2E=1 but no mail path: run `scripts/mailpath.sh start DIR` and export DIR/env (or set SMTP_EXPORTER_MAILPATH_ENV=DIR/env)")
		}
		t.Skip("no mail path (scripts/mailpath.sh); set SMTP_EXPORTER_E2E=1 to require it")
	}
	return env
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
