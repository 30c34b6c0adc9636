package probes

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/common/config"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// Credentials must never reach the transcript, the JSON result or the debug
// log, neither in clear nor in any of the base64 forms the SASL exchange
// puts on the wire.

const (
	redactUser   = "monitor@example.net"
	redactSecret = "s3cr3t-Pa55w0rd-xyz"
)

// secretForms lists every form in which secret may travel for user: the
// secret itself, its base64, and each mechanism's initial response.
func secretForms(user, secret string) map[string]string {
	forms := map[string]string{"secret": secret}
	encodings := map[string]*base64.Encoding{
		"std": base64.StdEncoding, "raw": base64.RawStdEncoding,
		"url": base64.URLEncoding, "rawurl": base64.RawURLEncoding,
	}
	payloads := map[string]string{
		"secret":               secret,
		"PLAIN response":       "\x00" + user + "\x00" + secret,
		"XOAUTH2 response":     string(probestest.XOAuth2InitialResponse(user, secret)),
		"OAUTHBEARER response": "n,a=" + user + ",\x01auth=Bearer " + secret + "\x01\x01",
	}
	for pname, p := range payloads {
		for ename, enc := range encodings {
			forms[fmt.Sprintf("base64 (%s) of %s", ename, pname)] = enc.EncodeToString([]byte(p))
		}
	}
	return forms
}

// checkNoSecrets fails for each place a form of the secret shows up in.
func checkNoSecrets(t *testing.T, res *Result, logs string, user, secret string) {
	t.Helper()
	js, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("marshal result: %v", err)
	}
	var transcript strings.Builder
	for _, l := range res.Transcript {
		transcript.WriteString(l.String() + "\n")
	}
	places := map[string]string{
		"transcript":  transcript.String(),
		"JSON result": string(js),
		"debug log":   logs,
		"error":       fmt.Sprint(res.Err),
		"reply text":  res.ReplyText,
	}
	for where, text := range places {
		for what, form := range secretForms(user, secret) {
			if strings.Contains(text, form) {
				t.Errorf("%s holds the %s (%q)", where, what, form)
			}
		}
	}
	if t.Failed() {
		logHostileTranscript(t, res)
	}
}

// redactAuthModule probes over STARTTLS with a certificate from ca, authenticates
// with mech and stops after RCPT.
func redactAuthModule(t *testing.T, ca *probestest.CA, mech, user, secret string) Module {
	a := &AuthConfig{Mechanism: mech, Username: user}
	if mech == "XOAUTH2" || mech == "OAUTHBEARER" {
		a.Token = config.Secret(secret)
	} else {
		a.Password = config.Secret(secret)
	}
	return Module{
		Prober:  ProberSMTP,
		Timeout: 10 * time.Second,
		SMTP: SMTPModule{
			TLS:       TLSStartTLS,
			EHLO:      "probe.test",
			TLSConfig: config.TLSConfig{CAFile: ca.WriteCAFile(t), ServerName: "localhost"},
			Auth:      a,
			MailFrom:  redactUser,
			RcptTo:    []string{"sink@example.net"},
		},
	}
}

// redactAuthServer serves STARTTLS with a valid certificate and knows user with
// serverSecret as password and as token.
func redactAuthServer(t *testing.T, ca *probestest.CA, serverSecret string) *probestest.Server {
	cert := ca.Valid(t, "localhost", "127.0.0.1")
	return probestest.NewServer(t, probestest.ServerOptions{
		TLS:    &cert,
		Users:  map[string]string{redactUser: serverSecret},
		Tokens: map[string]string{redactUser: serverSecret},
	})
}

// redactDebugLogger logs at debug level in logfmt into buf.
func redactDebugLogger(buf *bytes.Buffer) log.Logger {
	return level.NewFilter(log.NewLogfmtLogger(log.NewSyncWriter(buf)), level.AllowDebug())
}

func testAuthRedaction(t *testing.T, mech string) {
	ca := probestest.NewCA(t)
	srv := redactAuthServer(t, ca, redactSecret)
	var logs bytes.Buffer
	res := Run(context.Background(), srv.Addr, redactAuthModule(t, ca, mech, redactUser, redactSecret), redactDebugLogger(&logs))
	if !res.Success {
		t.Errorf("probe failed in phase %q: %s (%v)", res.FailedPhase, res.Reason, res.Err)
		logHostileTranscript(t, res)
	}
	if got, want := srv.AuthAttempts(), []string{mech + " " + redactUser + " ok"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("server saw auth attempts %q, want %q", got, want)
	}
	if !strings.Contains(logs.String(), "AUTH "+mech) {
		t.Errorf("debug log does not show the AUTH exchange; the check below would prove nothing:\n%s", logs.String())
	}
	checkNoSecrets(t, res, logs.String(), redactUser, redactSecret)
}

func TestRun_AuthRedaction_PLAIN(t *testing.T)       { testAuthRedaction(t, "PLAIN") }
func TestRun_AuthRedaction_LOGIN(t *testing.T)       { testAuthRedaction(t, "LOGIN") }
func TestRun_AuthRedaction_CRAMMD5(t *testing.T)     { testAuthRedaction(t, "CRAM-MD5") }
func TestRun_AuthRedaction_XOAUTH2(t *testing.T)     { testAuthRedaction(t, "XOAUTH2") }
func TestRun_AuthRedaction_OAUTHBEARER(t *testing.T) { testAuthRedaction(t, "OAUTHBEARER") }

// TestRun_AuthRedaction_WrongPassword sends a credential the server does not
// know: the failure must be reported as auth_failed with the server's 535,
// and the rejected credential must stay as hidden as an accepted one.
func TestRun_AuthRedaction_WrongPassword(t *testing.T) {
	ca := probestest.NewCA(t)
	srv := redactAuthServer(t, ca, "the-right-one-not-this")
	for _, mech := range authMechanisms {
		t.Run(mech, func(t *testing.T) {
			var logs bytes.Buffer
			res := Run(context.Background(), srv.Addr, redactAuthModule(t, ca, mech, redactUser, redactSecret), redactDebugLogger(&logs))
			if res.Success || res.FailedPhase != PhaseAuth || res.Reason != ReasonAuthFailed || res.Code != 535 {
				t.Errorf("got success=%t phase=%q reason=%q code=%d (%v), want auth failure auth_failed 535",
					res.Success, res.FailedPhase, res.Reason, res.Code, res.Err)
				logHostileTranscript(t, res)
			}
			if res.Temporary {
				t.Error("rejected credentials should be a permanent failure")
			}
			checkNoSecrets(t, res, logs.String(), redactUser, redactSecret)
		})
	}
}

// A server may echo what it was sent: PLAIN's response in its 535, LOGIN's
// password in a 334. Neither may reach the stored replies, hence the JSON
// result, the reply text or the error, any more than the transcript.
func TestRun_AuthRedaction_ServerEcho(t *testing.T) {
	for _, tc := range []struct {
		mech string
		auth func(c *probestest.Conn, arg string)
	}{
		{"PLAIN", func(c *probestest.Conn, arg string) {
			_, ir, _ := strings.Cut(arg, " ")
			c.Send("535 5.7.8 Authentication failed for " + ir)
		}},
		{"LOGIN", func(c *probestest.Conn, _ string) {
			c.Send("334 VXNlcm5hbWU6")
			if _, err := c.ReadLine(); err != nil {
				return
			}
			c.Send("334 UGFzc3dvcmQ6")
			pass, err := c.ReadLine()
			if err != nil {
				return
			}
			c.Send("334 " + pass)
			if _, err := c.ReadLine(); err != nil {
				return
			}
			c.Send("535 5.7.8 Authentication failed for " + pass)
		}},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			srv := authScriptServer(t, tc.mech, tc.auth)
			m := authScriptModule(tc.mech, redactSecret)
			m.SMTP.Auth.Username = redactUser
			var logs bytes.Buffer
			res := Run(context.Background(), srv.Addr, m, redactDebugLogger(&logs))
			if res.Success || res.FailedPhase != PhaseAuth {
				t.Errorf("got success=%t phase=%q (%v), want a failure in auth", res.Success, res.FailedPhase, res.Err)
			}
			// Proof that the echo arrived: the last reply is the 535.
			if last := res.Phase(PhaseAuth).LastReply(); last == nil || last.Code != 535 {
				t.Fatalf("auth phase did not end with the echoing 535: %v", replyCodes(res.Phase(PhaseAuth)))
			}
			for _, rep := range res.Phase(PhaseAuth).Replies {
				if rep.Code == 334 && rep.Text() != redacted {
					t.Errorf("334 stored as %q, want %q", rep.Text(), redacted)
				}
			}
			checkNoSecrets(t, res, logs.String(), redactUser, redactSecret)
		})
	}
}

func TestRedact_ShortSecretOnlyAsWord(t *testing.T) {
	s := &session{secrets: []string{"a", "s3cr3t-Pa55w0rd-xyz"}}
	for in, want := range map[string]string{
		"250 2.0.0 Roger, accepting mail from <monitor@example.net>": "250 2.0.0 Roger, accepting mail from <monitor@example.net>",
		"535 5.7.8 Authentication failed for a":                      "535 5.7.8 Authentication failed for <redacted>",
		"pass=a; user=b":                                             "pass=<redacted>; user=b",
		"x s3cr3t-Pa55w0rd-xyzs3cr3t-Pa55w0rd-xyz y":                 "x <redacted><redacted> y",
	} {
		if got := s.redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
