package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// scriptConn plays a server that has sent script and then nothing more: a
// read past it times out, as a late reply does, or, when gone, finds the
// connection closed, and so does every write.
type scriptConn struct {
	net.Conn
	script *strings.Reader
	gone   bool
}

func (c *scriptConn) Read(p []byte) (int, error) {
	switch {
	case c.script.Len() > 0:
		return c.script.Read(p)
	case c.gone:
		return 0, io.EOF
	}
	return 0, os.ErrDeadlineExceeded
}

func (c *scriptConn) Write(p []byte) (int, error) {
	if c.gone {
		return 0, syscall.EPIPE
	}
	return len(p), nil
}

func (c *scriptConn) SetReadDeadline(time.Time) error { return nil }

var stateNames = [...]string{greetingDue: "greetingDue", ready: "ready", inTransaction: "inTransaction",
	sendingMessage: "sendingMessage", tlsHandshake: "tlsHandshake", authExchange: "authExchange", broken: "broken"}

// handshakeWith runs the client's TLS handshake against a real server on
// a pipe; the certificate does not verify, but the handshake completes.
func handshakeWith(t *testing.T, s *session) {
	c, srv := net.Pipe()
	defer c.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer srv.Close()
		_ = tls.Server(srv, probestest.ServerTLSConfig(probestest.SelfSigned(t, "localhost"))).Handshake()
	}()
	s.setConn(c)
	if err := s.handshake(); err == nil || s.reasonOf(err) == probes.ReasonTLSHandshake {
		t.Errorf("handshake: %v, want it done and the certificate unverified", err)
	}
	c.Close()
	<-done
}

// TestStreamState: every transition of the stream's state, each driven by
// the dialog's own code against a scripted server, and what the session's
// end does in the state it leads to.
func TestStreamState(t *testing.T) {
	type step = func(t *testing.T, s *session, pr *probes.PhaseResult)
	// The dialog's steps, and single commands with their reply.
	var (
		nothing   step = func(*testing.T, *session, *probes.PhaseResult) {}
		banner    step = func(_ *testing.T, s *session, pr *probes.PhaseResult) { _ = s.banner(pr) }
		hello     step = func(_ *testing.T, s *session, pr *probes.PhaseResult) { _ = s.hello(pr) }
		starttls  step = func(_ *testing.T, s *session, pr *probes.PhaseResult) { _ = s.starttls(pr) }
		handshake step = func(t *testing.T, s *session, _ *probes.PhaseResult) { handshakeWith(t, s) }
		mail      step = func(_ *testing.T, s *session, pr *probes.PhaseResult) { _ = s.mail(pr) }
		data      step = func(_ *testing.T, s *session, pr *probes.PhaseResult) { _ = s.data(pr) }
	)
	exchange := func(line string) step {
		return func(_ *testing.T, s *session, pr *probes.PhaseResult) { _, _ = s.exchange(pr, line) }
	}
	// authThen sends AUTH, reads its first reply and goes on with more.
	authThen := func(more func(s *session, pr *probes.PhaseResult)) step {
		return func(_ *testing.T, s *session, pr *probes.PhaseResult) {
			_ = s.cmd("AUTH LOGIN", "")
			_, _ = s.read(pr)
			more(s, pr)
		}
	}
	cancelAuth := func(s *session, pr *probes.PhaseResult) { _ = s.cancelAuth(pr, "") }
	const (
		hangUp       = "hang up"
		quit         = "QUIT"
		resetQuit    = "RSET QUIT"
		cancelQuit   = "* QUIT"
		readThenQuit = "the replies due, then QUIT"
	)
	for _, tc := range []struct {
		name    string
		from    streamState
		pending int
		script  string // what the server sent
		gone    bool   // the server is gone after the script
		ext     []string
		lmtp    bool
		event   step
		to      streamState
		// quit is what ending the session does in the state reached:
		// its commands, and when replies are due whether they are
		// read first or the commands pipelined before them.
		quit string
	}{
		{name: "connected, the greeting not waited for", from: greetingDue, pending: 1,
			event: nothing, to: greetingDue, quit: hangUp},
		{name: "implicit TLS up, the greeting still due", from: greetingDue, pending: 1,
			event: handshake, to: greetingDue, quit: hangUp},
		{name: "greeting read", from: greetingDue, pending: 1, script: "220 mx.test ESMTP\r\n",
			event: banner, to: ready, quit: quit},
		{name: "greeting late", from: greetingDue, pending: 1,
			event: banner, to: ready, quit: readThenQuit},
		{name: "greeting cut mid-line by a timeout: its start is kept", from: greetingDue, pending: 1, script: "220-mx.test\r\n220 ES",
			event: banner, to: ready, quit: readThenQuit},
		{name: "greeting cut by a hang-up", from: greetingDue, pending: 1, script: "220-mx.test\r\n220 ES", gone: true,
			event: banner, to: broken, quit: hangUp},
		{name: "a reply that breaks the grammar", from: ready, script: "250 ok\n",
			event: exchange("NOOP"), to: broken, quit: hangUp},
		{name: "a command not written", from: ready, gone: true,
			event: exchange("NOOP"), to: broken, quit: hangUp},
		{name: "EHLO answered", from: ready, script: "250-mx.test\r\n250 PIPELINING\r\n",
			event: hello, to: ready, quit: quit},
		{name: "MAIL accepted", from: ready, script: "250 2.1.0 Ok\r\n",
			event: mail, to: inTransaction, quit: resetQuit},
		{name: "MAIL refused: sent is enough for RSET", from: ready, script: "550 5.7.1 No\r\n",
			event: mail, to: inTransaction, quit: resetQuit},
		{name: "MAIL's reply late, PIPELINING", from: ready, ext: []string{"PIPELINING"},
			event: mail, to: inTransaction, quit: "RSET QUIT pipelined, then the replies due"},
		{name: "RCPT's reply late, no PIPELINING", from: inTransaction,
			event: exchange("RCPT TO:<b@example.test>"), to: inTransaction, quit: "the replies due, then RSET QUIT"},
		{name: "354 to DATA", from: inTransaction, script: "354 Go\r\n",
			event: exchange("DATA"), to: sendingMessage, quit: hangUp},
		{name: "354 to DATA read under the grace", from: inTransaction, script: "354 Go\r\n",
			event: func(_ *testing.T, s *session, pr *probes.PhaseResult) {
				_ = s.cmd("DATA", "")
				_ = s.drain(pr, s.pending)
			}, to: sendingMessage, quit: hangUp},
		{name: "message accepted", from: inTransaction, script: "354 Go\r\n250 2.0.0 Ok: queued as ABC\r\n",
			event: data, to: ready, quit: quit},
		{name: "message refused", from: inTransaction, script: "354 Go\r\n554 5.7.1 Spam\r\n",
			event: data, to: inTransaction, quit: resetQuit},
		{name: "message's reply late, PIPELINING", from: inTransaction, script: "354 Go\r\n", ext: []string{"PIPELINING"},
			event: data, to: inTransaction, quit: "RSET QUIT pipelined, then the replies due"},
		{name: "LMTP: a reply never came", from: inTransaction, lmtp: true, script: "354 Go\r\n250 2.1.5 Ok\r\n",
			event: data, to: inTransaction, quit: resetQuit},
		{name: "LMTP: a reply cut mid-line", from: inTransaction, lmtp: true, script: "354 Go\r\n250 2.1.5 Ok\r\n250 2.",
			event: data, to: broken, quit: hangUp},
		{name: "220 to STARTTLS", from: ready, script: "220 2.0.0 Ready\r\n",
			event: exchange("STARTTLS"), to: tlsHandshake, quit: hangUp},
		{name: "STARTTLS refused", from: ready, ext: []string{"STARTTLS"}, script: "454 4.7.0 TLS not available\r\n",
			event: starttls, to: ready, quit: quit},
		{name: "data after 220 to STARTTLS", from: ready, ext: []string{"STARTTLS"}, script: "220 2.0.0 Ready\r\n250 injected\r\n",
			event: starttls, to: broken, quit: hangUp},
		{name: "TLS handshake failed", from: ready, ext: []string{"STARTTLS"}, script: "220 2.0.0 Ready\r\n",
			event: starttls, to: broken, quit: hangUp},
		{name: "TLS handshake done after STARTTLS", from: tlsHandshake,
			event: handshake, to: ready, quit: quit},
		{name: "AUTH's reply late", from: ready,
			event: func(_ *testing.T, s *session, _ *probes.PhaseResult) { _ = s.cmd("AUTH LOGIN", "") }, to: authExchange, quit: "the replies due, then * QUIT"},
		{name: "334 challenge", from: ready, script: "334 VXNlcm5hbWU6\r\n",
			event: authThen(func(*session, *probes.PhaseResult) {}), to: authExchange, quit: cancelQuit},
		{name: "a SASL response is no command", from: ready, script: "334 VXNlcm5hbWU6\r\n", ext: []string{"PIPELINING"},
			event: authThen(func(s *session, _ *probes.PhaseResult) { _ = s.cmd("MAIL", "") }), to: authExchange,
			quit: "the replies due, then * QUIT"},
		{name: "AUTH's final reply", from: ready, script: "235 2.7.0 Authentication successful\r\n",
			event: authThen(func(*session, *probes.PhaseResult) {}), to: ready, quit: quit},
		{name: "* answered", from: ready, script: "334 VXNlcm5hbWU6\r\n501 5.7.0 Authentication aborted\r\n",
			event: authThen(cancelAuth), to: ready, quit: quit},
		{name: "* ignored", from: ready, script: "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n",
			event: authThen(cancelAuth), to: broken, quit: hangUp},
		{name: "broken is final", from: broken, script: "220 2.0.0 Ready\r\n",
			event: exchange("STARTTLS"), to: broken, quit: hangUp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := probes.Module{Prober: probes.ProberSMTP, SMTP: probes.SMTPModule{
				EHLO: "probe.test", MailFrom: "a@example.test", RcptTo: []string{"b@example.test", "c@example.test"},
			}}
			if tc.lmtp {
				m.Prober = probes.ProberLMTP
			}
			s := &session{m: &m, ctx: context.Background(),
				res:      &probes.Result{Success: true, SMTP: &probes.SMTPFacts{}},
				deadline: time.Now().Add(time.Hour), ext: map[string]string{},
				state: tc.from, pending: tc.pending, rcptAccepted: 2,
				tlsConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}}
			for _, e := range tc.ext {
				s.ext[e] = ""
			}
			c := &scriptConn{script: strings.NewReader(tc.script), gone: tc.gone}
			s.setConn(c)
			s.dl = &connDeadline{conn: c}
			pr := &probes.PhaseResult{Phase: probes.PhaseEHLO}
			tc.event(t, s, pr)
			if s.state != tc.to {
				t.Errorf("state %s, want %s", stateNames[s.state], stateNames[tc.to])
			}
			cmds, pipelined := s.farewell()
			got := strings.Join(cmds, " ")
			switch {
			case cmds == nil:
				got = hangUp
			case pipelined:
				got += " pipelined, then the replies due"
			case s.pending > 0:
				got = "the replies due, then " + got
			}
			if got != tc.quit {
				t.Errorf("session ends with %q, want %q (pending %d, last command %q)", got, tc.quit, s.pending, s.pendingCmd)
			}
		})
	}
}
