package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
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
func checkNoSecrets(t *testing.T, res *probes.Result, logs string, user, secret string) {
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
func redactAuthModule(t *testing.T, ca *probestest.CA, mech, user, secret string) probes.Module {
	a := &probes.AuthConfig{Mechanism: mech, Username: user}
	if mech == "XOAUTH2" || mech == "OAUTHBEARER" {
		a.Token = config.Secret(secret)
	} else {
		a.Password = config.Secret(secret)
	}
	return probes.Module{
		Prober:  probes.ProberSMTP,
		Timeout: 10 * time.Second,
		SMTP: probes.SMTPModule{
			TLS:       probes.TLSStartTLS,
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
	res := Probe(context.Background(), srv.Addr, redactAuthModule(t, ca, mech, redactUser, redactSecret), redactDebugLogger(&logs))
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
	for _, mech := range probes.AuthMechanisms {
		t.Run(mech, func(t *testing.T) {
			var logs bytes.Buffer
			res := Probe(context.Background(), srv.Addr, redactAuthModule(t, ca, mech, redactUser, redactSecret), redactDebugLogger(&logs))
			if res.Success || res.FailedPhase != probes.PhaseAuth || res.Reason != probes.ReasonAuthFailed || res.Code != 535 {
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
			res := Probe(context.Background(), srv.Addr, m, redactDebugLogger(&logs))
			if res.Success || res.FailedPhase != probes.PhaseAuth {
				t.Errorf("got success=%t phase=%q (%v), want a failure in auth", res.Success, res.FailedPhase, res.Err)
			}
			// Proof that the echo arrived: the last reply is the 535.
			if last := res.Phase(probes.PhaseAuth).LastReply(); last == nil || last.Code != 535 {
				t.Fatalf("auth phase did not end with the echoing 535: %v", replyCodes(res.Phase(probes.PhaseAuth)))
			}
			for _, rep := range res.Phase(probes.PhaseAuth).Replies {
				if rep.Code == 334 && rep.Text() != probes.Redacted {
					t.Errorf("334 stored as %q, want %q", rep.Text(), probes.Redacted)
				}
			}
			checkNoSecrets(t, res, logs.String(), redactUser, redactSecret)
		})
	}
}

// hostileSecret has the characters that escaping changes, so that a
// redaction that matches only the literal secret misses its %q and JSON
// forms.
const hostileSecret = `pa"ss\wo'rd-Secr3t!xyz`

// surface is one place a probe's output can be seen.
type surface struct{ name, text string }

// resultSurfaces lists every output of a probe. The collector builds
// /history, the debug page, the warn log line and the metrics from these
// probes.Result fields (Err, ReplyText, codes, phases, transcript), so a probes.Result
// that is clean here keeps every collector surface clean.
func resultSurfaces(t *testing.T, res *probes.Result, logs string) []surface {
	t.Helper()
	js, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("marshal result: %v", err)
	}
	out := []surface{
		{"JSON result", string(js)},
		{"Result.Err", fmt.Sprint(res.Err)},
		{"Result.ReplyText", res.ReplyText},
		{"Result.EnhancedCode", res.EnhancedCode},
		{"debug log", logs},
	}
	// A reader puts a reply split over lines back together: its lines
	// (the server's lines between two of the probe's) joined without a
	// separator must not hold a fragment either.
	var reply []string
	for i, l := range res.Transcript {
		out = append(out, surface{fmt.Sprintf("transcript line %d", i), l.String()})
		if l.Dir == probes.DirRecv {
			reply = append(reply, replyCodePrefix.ReplaceAllString(l.Text, ""))
		}
		if l.Dir != probes.DirRecv || i == len(res.Transcript)-1 {
			out = append(out, surface{fmt.Sprintf("received lines before transcript line %d joined", i), strings.Join(reply, "")})
			reply = nil
		}
	}
	for _, p := range res.Phases {
		if p.Err != nil {
			out = append(out, surface{"error of phase " + string(p.Phase), p.Err.Error()})
		}
		for i, rep := range p.Replies {
			out = append(out, surface{fmt.Sprintf("reply %d of phase %s joined", i, p.Phase), strings.Join(rep.Lines, "")})
		}
	}
	for k, v := range res.SMTP.Extensions {
		out = append(out, surface{"extension " + k, k + " " + v})
	}
	return out
}

// replyCodePrefix is the code and separator of a reply line (RFC 5321
// §4.2), which a reader skips when putting the text of a reply together.
var replyCodePrefix = regexp.MustCompile(`^[2-5][0-5][0-9]([ -]|$)`)

// assertNoSecretFragments fails for each surface that holds a fragment of
// secret of probes.MinFragment characters or more, in any form.
func assertNoSecretFragments(t testing.TB, secret string, surfaces ...surface) {
	t.Helper()
	if probes.MinFragment != probestest.MinSecretFragment {
		t.Fatalf("probestest checks fragments of %d bytes, the redactor guarantees %d", probestest.MinSecretFragment, probes.MinFragment)
	}
	forms := probestest.SecretFragmentForms(secret)
	for _, s := range surfaces {
		if what, around := probestest.FindSecretFragment(s.text, forms); what != "" {
			t.Errorf("%s holds the %s: ...%s...", s.name, what, around)
		}
	}
}

// hostileAuthModule authenticates with mech in plain text (the hostile
// servers speak no TLS) and goes on to MAIL and RCPT, so that what the
// server says right after AUTH is seen too.
func hostileAuthModule(mech, secret string) probes.Module {
	m := authScriptModule(mech, secret)
	m.SMTP.Auth.Username = redactUser
	m.SMTP.MailFrom = redactUser
	m.SMTP.RcptTo = []string{"sink@example.net"}
	return m
}

// Issue 7, secret leaks: servers that answer AUTH with the credential in
// every shape the audit found (a line that is no reply, an over-long line,
// halves on separate lines, re-encodings) and more. Whatever the server
// sends, no fragment of the secret may reach any output.
func TestRun_HostileAuthLeaks(t *testing.T) {
	for _, mech := range probestest.HostileAuthMechanisms {
		for _, leak := range probestest.AuthLeaks() {
			t.Run(mech+"/"+leak.Name, func(t *testing.T) {
				srv := probestest.NewHostileAuthServer(t, mech, leak.Answer)
				var logs bytes.Buffer
				res := Probe(context.Background(), srv.Addr, hostileAuthModule(mech, hostileSecret), redactDebugLogger(&logs))
				if learnt := srv.Learnt(); len(learnt) != 1 || learnt[0].Secret != hostileSecret {
					t.Fatalf("server learnt %q, want the secret once: the leak was never sent", learnt)
				}
				if res.Phase(probes.PhaseAuth) == nil {
					t.Fatal("no auth phase")
				}
				assertNoSecretFragments(t, hostileSecret, resultSurfaces(t, res, logs.String())...)
				if t.Failed() {
					logHostileTranscript(t, res)
				}
			})
		}
	}
}

// A server that knows the password (it has seen it in an earlier probe)
// can send it before AUTH: in the greeting, in EHLO and in a certificate-less
// dialog of a module that never authenticates on this connection.
func TestRun_SecretBeforeAuth(t *testing.T) {
	srv := probestest.NewScriptServer(t, func(c *probestest.Conn) {
		c.Send("220 hostile.test ESMTP your password is " + hostileSecret)
		if _, ok := c.Expect("EHLO"); !ok {
			return
		}
		c.Send("250-hostile.test "+strconv.Quote(hostileSecret), "250-X-"+base64.StdEncoding.EncodeToString([]byte(hostileSecret)), "250 AUTH PLAIN")
		if _, ok := c.Expect("AUTH"); !ok {
			return
		}
		c.Send("535 5.7.8 no")
	})
	var logs bytes.Buffer
	res := Probe(context.Background(), srv.Addr, hostileAuthModule("PLAIN", hostileSecret), redactDebugLogger(&logs))
	if res.Phase(probes.PhaseEHLO) == nil || res.Phase(probes.PhaseEHLO).Err != nil {
		t.Fatalf("EHLO did not succeed: %v", res.Err)
	}
	assertNoSecretFragments(t, hostileSecret, resultSurfaces(t, res, logs.String())...)
	if t.Failed() {
		logHostileTranscript(t, res)
	}
}

// The checker itself must find what it looks for, or the tests above prove
// nothing.
func TestAssertNoSecretFragments_FindsEachForm(t *testing.T) {
	frag := hostileSecret[3:12]
	for _, text := range []string{
		"x " + frag + " y",
		fmt.Sprintf("%q", "x "+frag),
		base64.StdEncoding.EncodeToString([]byte("a" + frag)),
		base64.URLEncoding.EncodeToString([]byte("ab" + frag)),
		base64.RawStdEncoding.EncodeToString([]byte(frag)),
	} {
		rec := &recordingTB{TB: t}
		assertNoSecretFragments(rec, hostileSecret, surface{"text", text})
		if !rec.failed {
			t.Errorf("no fragment found in %q", text)
		}
	}
}

// Issue 7, SASL round trips: a server that answers 334 forever made LOGIN
// resend the password thousands of times. Each mechanism has a bound on
// the challenges it takes; beyond it the client cancels with "*" and fails
// with protocol.
func TestRun_AuthChallengeBound(t *testing.T) {
	for _, mech := range probes.AuthMechanisms {
		t.Run(mech, func(t *testing.T) {
			srv := authScriptServer(t, mech, func(c *probestest.Conn, _ string) {
				for {
					c.Send("334 UGFzc3dvcmQ6")
					if _, err := c.ReadLine(); err != nil {
						return
					}
				}
			})
			var logs bytes.Buffer
			res := Probe(context.Background(), srv.Addr, authScriptModule(mech, hostileSecret), redactDebugLogger(&logs))
			if res.Success || res.FailedPhase != probes.PhaseAuth || res.Reason != probes.ReasonProtocol {
				t.Errorf("got success=%t %s/%s (%v), want auth/protocol", res.Success, res.FailedPhase, res.Reason, res.Err)
			}
			if res.Err == nil || !strings.Contains(res.Err.Error(), "AUTH challenge") {
				t.Errorf("error %q does not name the AUTH challenges", res.Err)
			}
			if n := len(res.Transcript); n > 30 {
				t.Errorf("transcript has %d lines, want a handful", n)
			}
			if n := len(srv.Received()); n > 10 {
				t.Errorf("server received %d lines, want a handful: %q", n, srv.Received()[:10])
			}
			if n := strings.Count(logs.String(), "\n"); n > 40 {
				t.Errorf("debug log has %d lines, want a handful", n)
			}
		})
	}
}

func TestRun_AuthChallengeBound_LOGINMessage(t *testing.T) {
	srv := authScriptServer(t, "LOGIN", func(c *probestest.Conn, _ string) {
		for {
			c.Send("334 UGFzc3dvcmQ6")
			if _, err := c.ReadLine(); err != nil {
				return
			}
		}
	})
	res := Probe(context.Background(), srv.Addr, authScriptModule("LOGIN", hostileSecret), nil)
	if want := "server sent more than 2 AUTH challenges for LOGIN"; res.Err == nil || !strings.Contains(res.Err.Error(), want) {
		t.Errorf("error = %v, want it to say %q", res.Err, want)
	}
	pw := base64.StdEncoding.EncodeToString([]byte(hostileSecret))
	if n := slices.Index(srv.Received(), pw); n < 0 {
		t.Errorf("the password was never sent: %q", srv.Received())
	}
	if got := countOf(srv.Received(), pw); got > 2 {
		t.Errorf("password sent %d times, want at most 2", got)
	}
}

// recordingTB notes failures instead of reporting them.
type recordingTB struct {
	testing.TB
	failed bool
}

func (r *recordingTB) Errorf(string, ...any) { r.failed = true }

func countOf(list []string, s string) int {
	n := 0
	for _, l := range list {
		if l == s {
			n++
		}
	}
	return n
}

// A reply is recorded once complete, so that a secret split over its lines
// is probes.Redacted in each, but each line keeps the offset it arrived at: a
// server that stalls mid-reply still shows where.
func TestRun_ReplyLinesKeepArrivalOffsets(t *testing.T) {
	const stall = 100 * time.Millisecond
	srv := probestest.NewScriptServer(t, func(c *probestest.Conn) {
		c.Send("220 stall.test ESMTP")
		if _, ok := c.Expect("EHLO"); !ok {
			return
		}
		c.Send("250-stall.test")
		if !c.Sleep(stall) {
			return
		}
		c.Send("250 SIZE 1000")
		if _, ok := c.Expect("QUIT"); ok {
			c.Send("221 2.0.0 Bye")
		}
	})
	res := Probe(context.Background(), srv.Addr, hostileModule(), nil)
	var first, second time.Duration
	for _, l := range res.Transcript {
		switch l.Text {
		case "250-stall.test":
			first = l.Offset
		case "250 SIZE 1000":
			second = l.Offset
		}
	}
	if first == 0 || second == 0 {
		t.Fatalf("EHLO reply lines not in the transcript")
	}
	if second-first < stall {
		t.Errorf("EHLO reply lines recorded %s apart, want at least the server's %s stall", second-first, stall)
	}
}

// Issue 7, leak 3: a secret split over the lines of one reply.
func TestRedactor_RedactLines(t *testing.T) {
	var r probes.Redactor
	r.Add(hostileSecret)
	for _, tc := range []struct{ in, want []string }{
		{
			[]string{"535-5.7.8 failed for pa\"s", "535 s\\wo'rd-Secr3t!xyz"},
			[]string{"535-5.7.8 failed for <redacted>", "535 <redacted>"},
		},
		{
			[]string{"535-pa\"s", "535-s\\wo", "535-'rd-", "535 ok"},
			[]string{"535-<redacted>", "535-<redacted>", "535-<redacted>", "535 ok"},
		},
		{
			// Shown with a space between lines, as a reply's text is.
			[]string{"535-5.7.8 xyz", "535 5.7.8 ok"},
			[]string{"535-5.7.8 xyz", "535 5.7.8 ok"},
		},
		{
			[]string{"250-mx.example.net", "250 SIZE 1000"},
			[]string{"250-mx.example.net", "250 SIZE 1000"},
		},
	} {
		got := r.RedactLines(tc.in, replyTextStart)
		if !slices.Equal(got, tc.want) {
			t.Errorf("RedactLines(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var sp probes.Redactor
	sp.Add("abc def-ghi")
	got := sp.RedactLines([]string{"250-x abc", "250 def y"}, replyTextStart)
	if want := []string{"250-x <redacted>", "250 <redacted> y"}; !slices.Equal(got, want) {
		t.Errorf("secret with a space split at it: got %q, want %q", got, want)
	}
}

// A server that learnt the password in an earlier session can put it in
// the names of the certificate it presents next; those names are facts in
// the result, and must be redacted like its replies.
func TestRun_SecretInCertificateNames(t *testing.T) {
	const secret = "Tr0ubadorSecret99"
	ca := probestest.NewCA(t)
	for _, trusted := range []bool{true, false} {
		t.Run(fmt.Sprint("trusted=", trusted), func(t *testing.T) {
			name := "x" + strings.ToLower(secret) + ".example.org"
			cert := ca.Valid(t, "localhost", name)
			if !trusted {
				cert = probestest.SelfSigned(t, name, "localhost")
			}
			s := probestest.NewScriptServer(t, probestest.Dialog{TLS: probestest.ServerTLSConfig(cert)}.Serve)
			m := hostileCertModule(t, ca, probes.TLSStartTLS)
			m.SMTP.Auth = &probes.AuthConfig{Mechanism: "PLAIN", Username: redactUser, Password: config.Secret(secret)}
			// The second run takes the certificate's facts (and a trusted
			// chain's verification) from what the first kept
			// (probes/tlscache.go): redacted all the same.
			for run := range 2 {
				var logs bytes.Buffer
				res := Probe(context.Background(), s.Addr, m, redactDebugLogger(&logs))
				if res.TLS == nil || len(res.TLS.Certificates) == 0 {
					t.Fatalf("run %d: no certificate facts: %s/%s %v", run, res.FailedPhase, res.Reason, res.Err)
				}
				if trusted != res.TLS.Verified || !trusted && res.Reason != probes.ReasonCertUntrusted {
					t.Errorf("run %d: verified %v, reason %s; want verified %v (and cert_untrusted when not)", run, res.TLS.Verified, res.Reason, trusted)
				}
				assertNoSecretFragments(t, secret, resultSurfaces(t, res, logs.String())...)
			}
		})
	}
}
