package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// quitSlack bounds how long Run may take past the moment it was cancelled
// plus quitGrace: scheduling on a loaded CI machine under -race, not a
// speed test. It stays below the slowest reply the rows below wait for,
// so a probe that waited for that reply instead of the grace fails.
const quitSlack = 700 * time.Millisecond

// quitModule takes a plain dialog into an open transaction.
func quitModule() probes.Module {
	return probes.Module{
		Prober:  probes.ProberSMTP,
		Timeout: 3 * time.Second,
		SMTP: probes.SMTPModule{
			TLS:      probes.TLSNone,
			EHLO:     "probe.test",
			MailFrom: "probe@probe.test",
			RcptTo:   []string{"rcpt@quit.test"},
		},
	}
}

// cancelLogger calls cancel when the probe records a transcript line that
// starts with line: a cancellation at a known point between two commands.
type cancelLogger struct {
	line   string
	cancel func()
}

func (l cancelLogger) Log(kv ...any) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if text, ok := kv[i+1].(string); ok && kv[i] == "line" && strings.HasPrefix(text, l.line) {
			l.cancel()
		}
	}
	return nil
}

// TestRun_QuitOnCancel cancels a probe in each way a probe gets cancelled
// and checks, on the server's side, that the session still ended with QUIT
// (after RSET when a transaction was open) whenever the stream allowed it,
// within quitGrace of the cancellation.
func TestRun_QuitOnCancel(t *testing.T) {
	ca := probestest.NewCA(t)
	cases := []struct {
		name string
		opts probestest.QuitOptions
		// cancelOn is the server event on which the test cancels the
		// probe's context; cancelAfterLine the transcript line after
		// which it does.
		cancelOn, cancelAfterLine string
		// ctxTimeout is the caller's deadline; moduleTimeout overrides
		// the module's.
		ctxTimeout, moduleTimeout time.Duration
		module                    func(*probes.Module)
		phase                     probes.Phase
		// wantQuit: the server saw QUIT; wantReset: RSET closed an open
		// transaction before it. noSession: the server never gets to
		// read the hang-up (it is still sleeping), so only what it
		// received is checked.
		wantQuit, wantReset, noSession bool
		// wantNotSent are verbs the server must not have received.
		wantNotSent []string
		// wantReceived are lines the transcript shows the server sent,
		// in this order.
		wantReceived []string
	}{
		{
			name:            "cancelled waiting for the banner",
			opts:            probestest.QuitOptions{Delays: map[string]time.Duration{"BANNER": 200 * time.Millisecond}},
			cancelAfterLine: "connected to", phase: probes.PhaseBanner, wantQuit: true,
			wantNotSent: []string{"EHLO"},
		},
		{
			name:            "cancelled waiting for a banner that does not come within the grace",
			opts:            probestest.QuitOptions{Delays: map[string]time.Duration{"BANNER": time.Minute}},
			cancelAfterLine: "connected to", phase: probes.PhaseBanner, noSession: true,
		},
		{
			name:     "cancelled waiting for the EHLO reply",
			opts:     probestest.QuitOptions{Delays: map[string]time.Duration{"EHLO": 200 * time.Millisecond}},
			cancelOn: "EHLO", phase: probes.PhaseEHLO, wantQuit: true,
			wantNotSent: []string{"MAIL"},
		},
		{
			name: "cancelled between the lines of a multi-line reply",
			opts: probestest.QuitOptions{
				Replies:  map[string]string{"EHLO": "250-quit.test\r\n" + probestest.Pause + "250-PIPELINING\r\n250 8BITMIME"},
				PauseFor: 300 * time.Millisecond,
			},
			// The lines of a reply are logged only once it is complete
			// (a secret split over them is probes.Redacted in each), so the
			// server's own pause triggers this cancel.
			cancelOn: "PAUSE", phase: probes.PhaseEHLO, wantQuit: true,
		},
		{
			name: "cancelled in the middle of a reply line",
			opts: probestest.QuitOptions{
				Replies:  map[string]string{"EHLO": "250-quit.test\r\n250-PIPE" + probestest.Pause + "LINING\r\n250 8BITMIME"},
				PauseFor: 300 * time.Millisecond,
			},
			// The cut line arrives with the line before it, after which
			// the probe is cancelled: the timed-out read takes the cut
			// line's start, and the grace reads it again whole.
			cancelOn: "PAUSE", phase: probes.PhaseEHLO, wantQuit: true,
			// Whether the cut line's start was read before the cancel
			// depends on scheduling; either way the line is read whole.
			wantReceived: []string{"250-quit.test", "250-PIPELINING", "250 8BITMIME"},
		},
		{
			name:       "caller's deadline while waiting for the MAIL reply",
			opts:       probestest.QuitOptions{Delays: map[string]time.Duration{"MAIL": 600 * time.Millisecond}},
			ctxTimeout: 300 * time.Millisecond, phase: probes.PhaseMail, wantQuit: true, wantReset: true,
		},
		{
			name:     "cancelled waiting for the RCPT reply, in a transaction",
			opts:     probestest.QuitOptions{Delays: map[string]time.Duration{"RCPT": 200 * time.Millisecond}},
			cancelOn: "RCPT", phase: probes.PhaseRcpt, wantQuit: true, wantReset: true,
		},
		{
			name:            "cancelled between commands",
			cancelAfterLine: "250 2.1.0 Ok", phase: probes.PhaseRcpt, wantQuit: true, wantReset: true,
			wantNotSent: []string{"RCPT"},
		},
		{
			name:          "module timeout while waiting for the MAIL reply",
			opts:          probestest.QuitOptions{Delays: map[string]time.Duration{"MAIL": 700 * time.Millisecond}},
			moduleTimeout: 400 * time.Millisecond, phase: probes.PhaseMail, wantQuit: true, wantReset: true,
		},
		{
			// The server advertises PIPELINING: RSET and QUIT go out at
			// once and the server acts on them when it gets to them, long
			// after the probe has hung up.
			name:     "cancelled waiting for a reply slower than the grace",
			opts:     probestest.QuitOptions{Delays: map[string]time.Duration{"RCPT": quitGrace + 2*quitSlack}},
			cancelOn: "RCPT", phase: probes.PhaseRcpt, wantQuit: true, wantReset: true,
		},
		{
			// After 220 the server waits for a ClientHello: no QUIT.
			name:     "cancelled waiting for the 220 to STARTTLS",
			opts:     probestest.QuitOptions{Delays: map[string]time.Duration{"STARTTLS": 200 * time.Millisecond}},
			cancelOn: "STARTTLS", phase: probes.PhaseSTARTTLS,
			module: func(m *probes.Module) {
				tm := tlsModule(t, ca, probes.TLSStartTLS)
				m.SMTP.TLS, m.SMTP.TLSConfig = tm.SMTP.TLS, tm.SMTP.TLSConfig
			},
			wantNotSent: []string{"QUIT"},
		},
		{
			// After 354 every line is message text: no QUIT.
			name:     "cancelled waiting for the 354 to DATA",
			opts:     probestest.QuitOptions{Delays: map[string]time.Duration{"DATA": 200 * time.Millisecond}},
			cancelOn: "DATA", phase: probes.PhaseData,
			module:      func(m *probes.Module) { m.SMTP.Send = true },
			wantNotSent: []string{"QUIT", "."},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var (
				mu       sync.Mutex
				cancelAt time.Time
			)
			doCancel := func() {
				mu.Lock()
				if cancelAt.IsZero() {
					cancelAt = time.Now()
				}
				mu.Unlock()
				cancel()
			}
			opts := tc.opts
			if tc.cancelOn != "" {
				opts.Event = func(e string) {
					if e == tc.cancelOn {
						doCancel()
					}
				}
			}
			if tc.module != nil && opts.TLS == nil {
				opts.TLS = probestest.ServerTLSConfig(ca.Valid(t, "localhost"))
			}
			srv := probestest.NewQuitServer(t, opts)
			m := quitModule()
			if tc.module != nil {
				tc.module(&m)
			}
			if tc.moduleTimeout > 0 {
				m.Timeout = tc.moduleTimeout
			}
			var logger log.Logger
			if tc.cancelAfterLine != "" {
				logger = cancelLogger{line: tc.cancelAfterLine, cancel: doCancel}
			}
			if tc.ctxTimeout > 0 {
				var c context.CancelFunc
				ctx, c = context.WithTimeout(ctx, tc.ctxTimeout)
				defer c()
			}
			start := time.Now()
			res := Probe(ctx, srv.Addr, m, logger)
			end := time.Now()

			mu.Lock()
			stoppedAt := cancelAt
			mu.Unlock()
			switch {
			case tc.ctxTimeout > 0:
				stoppedAt = start.Add(tc.ctxTimeout)
			case tc.moduleTimeout > 0:
				stoppedAt = start.Add(tc.moduleTimeout)
			}
			if stoppedAt.IsZero() {
				t.Fatal("the probe was never cancelled")
			}
			if limit := stoppedAt.Add(quitGrace + quitSlack); end.After(limit) {
				t.Errorf("Run returned %s after it was stopped, want at most %s (grace %s + slack)",
					end.Sub(stoppedAt), limit.Sub(stoppedAt), quitGrace)
			}
			if res.Success || res.Reason != probes.ReasonTimeout || res.FailedPhase != tc.phase {
				t.Errorf("got success=%t phase=%q reason=%q (%v), want a timeout in phase %q",
					res.Success, res.FailedPhase, res.Reason, res.Err, tc.phase)
			}
			if last := res.Transcript[len(res.Transcript)-1].Offset; res.Duration < last {
				t.Errorf("Duration %s ends before the last transcript line (%s): QUIT not counted", res.Duration, last)
			}
			if tc.wantQuit != probeSentCommand(res, "QUIT") {
				t.Errorf("probe sent QUIT: %t, want %t", !tc.wantQuit, tc.wantQuit)
			}
			if tc.wantQuit && !slices.ContainsFunc(res.Transcript, func(l probes.TranscriptLine) bool {
				return l.Dir == probes.DirInfo && strings.Contains(l.Text, "grace")
			}) {
				t.Error("the transcript does not say that QUIT was sent under the grace")
			}
			var received []string
			for _, l := range res.Transcript {
				if l.Dir == probes.DirRecv {
					received = append(received, l.Text)
				}
			}
			for i, j := 0, 0; i < len(tc.wantReceived); i++ {
				k := slices.Index(received[j:], tc.wantReceived[i])
				if k < 0 {
					t.Errorf("transcript shows the server sent %q, want %q in this order", received, tc.wantReceived)
					break
				}
				j += k + 1
			}
			if tc.noSession {
				if got := srv.Received(); len(got) > 0 {
					t.Errorf("server received %q before its greeting", got)
				}
			} else {
				sess := srv.WaitSessions(t, 1, 5*time.Second)[0]
				if sess.Quit != tc.wantQuit {
					t.Errorf("server saw QUIT: %t, want %t (commands %q)", sess.Quit, tc.wantQuit, sess.Commands)
				}
				if tc.wantQuit && (sess.Reset != tc.wantReset || sess.OpenTx) {
					t.Errorf("server saw RSET=%t, open transaction at the end=%t; want RSET=%t and no open transaction (commands %q)",
						sess.Reset, sess.OpenTx, tc.wantReset, sess.Commands)
				}
				for _, v := range tc.wantNotSent {
					if slices.Contains(sess.Commands, v) {
						t.Errorf("server received %s after the cancellation (commands %q)", v, sess.Commands)
					}
				}
			}
			if t.Failed() {
				logHostileTranscript(t, res)
			}
		})
	}
}

// TestRun_LMTPShortReplies: an LMTP server that answers the message with
// fewer replies than recipients must not hold the probe for its whole
// timeout; the probe says how many replies came and still QUITs.
func TestRun_LMTPShortReplies(t *testing.T) {
	srv := probestest.NewScriptServer(t, probestest.Dialog{Replies: map[string]string{
		"LHLO": "250-script.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES",
		"DOT":  "250 2.0.0 <a@example.test> Ok",
	}}.Serve)
	m := probes.Module{Prober: probes.ProberLMTP, Timeout: 10 * time.Second, SMTP: probes.SMTPModule{
		TLS: probes.TLSNone, EHLO: "probe.test", MailFrom: "a@example.test",
		RcptTo: []string{"b@example.test", "c@example.test"}, Send: true,
	}}
	start := time.Now()
	res := Probe(context.Background(), srv.Addr, m, nil)
	elapsed := time.Since(start)
	if limit := lmtpReplyWait + quitGrace + quitSlack; elapsed > limit {
		t.Errorf("Run took %s, want at most %s (LMTP reply wait + grace + slack)", elapsed, limit)
	}
	if res.Success || res.FailedPhase != probes.PhaseData || res.Reason != probes.ReasonProtocol {
		t.Errorf("got success=%t phase=%q reason=%q, want protocol in data", res.Success, res.FailedPhase, res.Reason)
	}
	if res.Err == nil || !strings.Contains(res.Err.Error(), "LMTP server sent 1 of 2 replies after DATA") {
		t.Errorf("err = %v, want the count of replies received", res.Err)
	}
	if !slices.Contains(srv.Received(), "QUIT") {
		t.Errorf("server received %q, no QUIT", srv.Received())
	}
	if t.Failed() {
		logHostileTranscript(t, res)
	}
}

// TestRun_QuitOnCancelDuringAuth: a reply pending in the SASL exchange may
// be a 334, which would take QUIT for a credential. The probe reads it
// first, cancels the exchange with "*", then QUITs.
func TestRun_QuitOnCancelDuringAuth(t *testing.T) {
	srv := probestest.NewScriptServer(t, func(c *probestest.Conn) {
		c.Send("220 auth.test ESMTP")
		for {
			line, err := c.ReadLine()
			if err != nil {
				return
			}
			switch verb, _, _ := strings.Cut(strings.ToUpper(line), " "); verb {
			case "EHLO":
				c.Send("250-auth.test", "250-PIPELINING", "250 AUTH LOGIN")
			case "AUTH":
				if !c.Sleep(200 * time.Millisecond) {
					return
				}
				c.Send("334 VXNlcm5hbWU6")
			case "*":
				c.Send("501 5.7.0 Authentication aborted")
			case "QUIT":
				c.Send("221 2.0.0 Bye")
				return
			default:
				c.Send("502 5.5.2 Error: command not recognized")
			}
		}
	})
	m := quitModule()
	m.SMTP.AllowInsecureAuth = true
	m.SMTP.Auth = &probes.AuthConfig{Mechanism: "LOGIN", Username: "probe", Password: "s3cr3t-Pa55w0rd"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	res := Probe(ctx, srv.Addr, m, cancelLogger{line: "AUTH LOGIN", cancel: cancel})
	if elapsed := time.Since(start); elapsed > quitGrace+quitSlack {
		t.Errorf("Run took %s, want at most %s", elapsed, quitGrace+quitSlack)
	}
	if res.Success || res.FailedPhase != probes.PhaseAuth || res.Reason != probes.ReasonTimeout {
		t.Errorf("got success=%t phase=%q reason=%q, want a timeout in auth", res.Success, res.FailedPhase, res.Reason)
	}
	got := srv.Received()
	if want := []string{"EHLO probe.test", "AUTH LOGIN", "*", "QUIT"}; !slices.Equal(got, want) {
		t.Errorf("server received %q, want %q", got, want)
	}
	if t.Failed() {
		logHostileTranscript(t, res)
	}
}

// deadlineConn records the deadlines set on it.
type deadlineConn struct {
	net.Conn
	read, write time.Time
}

func (c *deadlineConn) SetDeadline(t time.Time) error      { c.read, c.write = t, t; return nil }
func (c *deadlineConn) SetReadDeadline(t time.Time) error  { c.read = t; return nil }
func (c *deadlineConn) SetWriteDeadline(t time.Time) error { c.write = t; return nil }

// TestConnDeadline_Order: a cancellation that fires after the grace has
// begun (its AfterFunc already running when stop() was called) must not
// move the deadline back to the past, and a shorter wait for one read must
// not undo a cancellation.
func TestConnDeadline_Order(t *testing.T) {
	c := &deadlineConn{}
	d := &connDeadline{conn: c}
	d.grace()
	end := c.read
	if end.Before(time.Now()) || !c.write.Equal(end) {
		t.Fatalf("grace set read %s, write %s: want both in the future", c.read, c.write)
	}
	d.cancel()
	if !c.read.Equal(end) || !c.write.Equal(end) {
		t.Errorf("a late cancellation moved the deadlines to read %s, write %s; want the grace's end %s", c.read, c.write, end)
	}

	c = &deadlineConn{}
	d = &connDeadline{conn: c}
	d.cancel()
	if c.read.After(time.Now()) {
		t.Fatalf("cancel left the read deadline at %s, in the future", c.read)
	}
	d.setRead(time.Now().Add(time.Hour))
	if c.read.After(time.Now()) {
		t.Errorf("setRead after a cancellation moved the read deadline to %s", c.read)
	}
	d.grace()
	if !c.read.Equal(d.graceEnd) || d.graceEnd.After(time.Now().Add(quitGrace)) {
		t.Errorf("grace after a cancellation: read deadline %s, grace end %s; want the grace counted from the cancellation", c.read, d.graceEnd)
	}
}

// TestRun_QuitOnCancelMidAuth: a probe cancelled after a 334 challenge,
// before its response went out, leaves a server that takes the next line
// for a SASL response, QUIT included. The probe cancels the exchange with
// "*" first, then QUITs.
func TestRun_QuitOnCancelMidAuth(t *testing.T) {
	srv := probestest.NewAuthScriptServer(t, "LOGIN", func(c *probestest.Conn, _ string) {
		c.Send("334 VXNlcm5hbWU6")
		if resp, err := c.ReadLine(); err == nil && resp == "*" {
			c.Send("501 5.7.0 Authentication aborted")
		} else if err == nil {
			c.Send("535 5.7.8 Error: authentication failed")
		}
	})
	m := quitModule()
	m.SMTP.AllowInsecureAuth = true
	m.SMTP.Auth = &probes.AuthConfig{Mechanism: "LOGIN", Username: "probe", Password: "s3cr3t-Pa55w0rd"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := Probe(ctx, srv.Addr, m, cancelLogger{line: "334", cancel: cancel})
	if res.Success || res.FailedPhase != probes.PhaseAuth || res.Reason != probes.ReasonTimeout {
		t.Errorf("got success=%t phase=%q reason=%q, want a timeout in auth", res.Success, res.FailedPhase, res.Reason)
	}
	got := srv.Received()
	if want := []string{"EHLO probe.test", "AUTH LOGIN", "*", "QUIT"}; !slices.Equal(got, want) {
		t.Errorf("server received %q, want %q", got, want)
	}
	if t.Failed() {
		logHostileTranscript(t, res)
	}
}
