package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// postfixEnv returns the real Postfix, skipping the test when none is
// configured (make test-e2e configures it; with SMTP_EXPORTER_E2E=1 it
// must be there).
func postfixEnv(t *testing.T) *probestest.Postfix {
	t.Helper()
	pf := probestest.PostfixFromEnv(t)
	if pf == nil {
		t.Skip("no real Postfix configured; make test-e2e runs this test")
	}
	return pf
}

func postfixModule(env *probestest.Postfix, mode string) probes.Module {
	return probes.Module{
		Timeout: 20 * time.Second,
		SMTP: probes.SMTPModule{
			TLS:       mode,
			EHLO:      "probe.example.test",
			TLSConfig: config.TLSConfig{CAFile: env.CAFile, ServerName: env.ServerName},
		},
	}
}

func withAuth(m probes.Module, env *probestest.Postfix, passwordFile string) probes.Module {
	m.SMTP.Auth = &probes.AuthConfig{Username: env.User, PasswordFile: passwordFile}
	m.SMTP.MailFrom = env.User
	m.SMTP.RcptTo = []string{"sink@" + env.Domain}
	return m
}

func maildirHas(t *testing.T, dir, needle string) bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "new", "*"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), needle) {
			return true
		}
	}
	return false
}

func TestE2E_Postfix(t *testing.T) {
	env := postfixEnv(t)
	wrongPassword := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrongPassword, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	t.Run("STARTTLSAuthSend", func(t *testing.T) {
		m := withAuth(postfixModule(env, probes.TLSStartTLS), env, env.PasswordFile)
		m.SMTP.Send = true
		r := Probe(ctx, env.Addr, m, nil)
		requireSuccess(t, r)
		if got := strings.Join(phaseNames(r), " "); got != "resolve connect banner ehlo starttls auth mail rcpt data quit" {
			t.Errorf("phases = %q", got)
		}
		if !r.SMTP.STARTTLSOffered || r.TLS == nil || !r.TLS.Verified {
			t.Fatalf("STARTTLS offered=%t, TLS=%+v", r.SMTP.STARTTLSOffered, r.TLS)
		}
		if r.SMTP.Extensions["AUTH"] == "" {
			t.Errorf("Postfix offers AUTH only after TLS; the TLS EHLO's extensions lack it: %v", r.SMTP.Extensions)
		}
		if r.SMTP.QueueID == "" {
			t.Errorf("no queue id from %q", r.Phase(probes.PhaseData).LastReply().Text())
		}
		id := strings.Trim(strings.SplitN(r.SMTP.MessageID, "@", 2)[0], "<")
		deadline := time.Now().Add(15 * time.Second)
		for !maildirHas(t, env.Maildir, id) {
			if time.Now().After(deadline) {
				t.Fatalf("message %s not delivered to %s", r.SMTP.MessageID, env.Maildir)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("ImplicitTLS", func(t *testing.T) {
		m := withAuth(postfixModule(env, probes.TLSImplicit), env, env.PasswordFile)
		r := Probe(ctx, env.SMTPSAddr, m, nil)
		requireSuccess(t, r)
		if r.Phase(probes.PhaseTLS) == nil || r.TLS == nil || !r.TLS.Verified {
			t.Fatalf("implicit TLS not recorded: %+v", r.TLS)
		}
	})

	for _, tc := range []struct {
		name      string
		addr      string
		module    func() probes.Module
		phase     probes.Phase
		reason    probes.Reason
		code      int
		enhanced  string
		temporary bool
	}{
		{"WrongPassword", env.Addr, func() probes.Module { return withAuth(postfixModule(env, probes.TLSStartTLS), env, wrongPassword) },
			probes.PhaseAuth, probes.ReasonAuthFailed, 535, "5.7.8", false},
		{"RelayDenied", env.Addr, func() probes.Module {
			m := postfixModule(env, probes.TLSStartTLS)
			m.SMTP.MailFrom, m.SMTP.RcptTo = "probe@example.org", []string{"someone@gmail.com"}
			return m
		}, probes.PhaseRcpt, probes.ReasonRelayDenied, 554, "5.7.1", false},
		{"UnknownUser", env.Addr, func() probes.Module {
			m := postfixModule(env, probes.TLSStartTLS)
			m.SMTP.MailFrom, m.SMTP.RcptTo = "probe@example.org", []string{"reject@" + env.Domain}
			return m
		}, probes.PhaseRcpt, probes.ReasonMailboxUnavailable, 550, "5.1.1", false},
		{"SubmissionNeedsTLS", env.SubmissionAddr, func() probes.Module {
			m := postfixModule(env, probes.TLSNone)
			m.SMTP.MailFrom, m.SMTP.RcptTo = env.User, []string{"sink@" + env.Domain}
			return m
		}, probes.PhaseMail, probes.ReasonTLSRequired, 530, "5.7.0", false},
		{"SubmissionNeedsAuth", env.SubmissionAddr, func() probes.Module {
			m := postfixModule(env, probes.TLSStartTLS)
			m.SMTP.MailFrom, m.SMTP.RcptTo = env.User, []string{"sink@" + env.Domain}
			return m
		}, probes.PhaseMail, probes.ReasonAuthRequired, 530, "5.7.0", false},
		{"ExpiredCertificate", env.ExpiredAddr, func() probes.Module { return postfixModule(env, probes.TLSStartTLS) },
			probes.PhaseSTARTTLS, probes.ReasonCertExpired, 0, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Probe(ctx, tc.addr, tc.module(), nil)
			if r.Success || r.FailedPhase != tc.phase || r.Reason != tc.reason || r.Temporary != tc.temporary {
				for _, l := range r.Transcript {
					t.Log(l)
				}
				t.Fatalf("got success=%t %s/%s temporary=%t, want %s/%s temporary=%t", r.Success, r.FailedPhase, r.Reason, r.Temporary, tc.phase, tc.reason, tc.temporary)
			}
			if r.Code != tc.code || r.EnhancedCode != tc.enhanced {
				t.Errorf("code %d %q, want %d %q (%s)", r.Code, r.EnhancedCode, tc.code, tc.enhanced, r.ReplyText)
			}
			if tc.reason == probes.ReasonCertExpired && (r.TLS == nil || r.TLS.EarliestExpiry.After(time.Now())) {
				t.Errorf("expired certificate's facts not recorded: %+v", r.TLS)
			}
			if r.Phase(probes.PhaseQuit) == nil {
				t.Error("no QUIT after the failure")
			}
		})
	}
}
