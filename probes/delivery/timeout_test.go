package delivery

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

const silentTimeout = 300 * time.Millisecond

// silent never answers.
func silent(net.Conn, string) {}

// checkWaited checks that a timeout says what was awaited and the
// deadline, not Go's "i/o timeout", and still unwraps to the timeout.
func checkWaited(t *testing.T, err error, want string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Reason != probes.ReasonTimeout {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if got := err.Error(); !probestest.SameWait(got, want) {
		t.Errorf("err = %q, want %q", got, want)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("err = %v no longer unwraps to the timeout", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("err = %v: a session out of time is not cancelled", err)
	}
}

// A timeout in Dial says what the session waited for and the deadline,
// in the error and the phase's.
func TestDial_TimeoutSaysWhatWasAwaited(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tls   string
		mech  string
		addr  func(t *testing.T) string
		phase probes.Phase
		want  string // %s is the address
	}{
		{"no greeting", probes.TLSNone, MechLOGIN, func(t *testing.T) string {
			return rawServer(t, func(c net.Conn, _ *bufio.Reader) { io.Copy(io.Discard, c) })
		}, PhaseIMAPConnect, "no IMAP greeting from %s within 300ms"},
		{"no TLS handshake", probes.TLSImplicit, MechLOGIN, func(t *testing.T) string {
			return rawServer(t, func(c net.Conn, _ *bufio.Reader) { io.Copy(io.Discard, c) })
		}, PhaseIMAPConnect, "TLS handshake with %s did not finish within 300ms"},
		{"no reply to STARTTLS", probes.TLSStartTLS, MechLOGIN, func(t *testing.T) string {
			return scripted(t, greetingOK, map[string]func(net.Conn, string){"STARTTLS": silent})
		}, PhaseIMAPConnect, "no reply to IMAP STARTTLS within 300ms"},
		{"no reply to CAPABILITY", probes.TLSNone, MechLOGIN, func(t *testing.T) string {
			return scripted(t, greetingOK, map[string]func(net.Conn, string){"CAPABILITY": silent})
		}, PhaseIMAPAuth, "no reply to IMAP CAPABILITY within 300ms"},
		{"no reply to LOGIN", probes.TLSNone, MechLOGIN, func(t *testing.T) string {
			return scripted(t, greetingOK, map[string]func(net.Conn, string){"LOGIN": silent})
		}, PhaseIMAPAuth, "no reply to IMAP LOGIN within 300ms"},
		{"no reply to AUTHENTICATE", probes.TLSNone, MechPLAIN, func(t *testing.T) string {
			return scripted(t, greetingOK, map[string]func(net.Conn, string){
				"CAPABILITY":   reply("* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\n%s OK done\r\n"),
				"AUTHENTICATE": silent,
			})
		}, PhaseIMAPAuth, "no reply to IMAP AUTHENTICATE within 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr(t)
			cfg := testConfig(addr)
			cfg.TLS, cfg.Mechanism = tc.tls, tc.mech
			m, err := Dial(shortCtx(t, silentTimeout), cfg)
			assertFailure(t, m, err, tc.phase, probes.ReasonTimeout)
			checkWaited(t, err, strings.ReplaceAll(tc.want, "%s", addr))
			if p := m.Phases()[len(m.Phases())-1]; p.Err == nil || p.Err.Error() != err.Error() {
				t.Errorf("the phase's error is not Dial's: %v", p.Err)
			}
			assertNoSecret(t, m, testPass, err)
		})
	}
}

// A timeout after the login names the IMAP command that got no reply.
func TestFind_TimeoutSaysWhatWasAwaited(t *testing.T) {
	for _, verb := range []string{"LIST", "EXAMINE", "UID SEARCH"} {
		t.Run(verb, func(t *testing.T) {
			replies := map[string]func(net.Conn, string){
				"LIST": reply("* LIST () \"/\" INBOX\r\n%s OK done\r\n"),
			}
			if v, _, _ := strings.Cut(verb, " "); v == "UID" {
				replies["UID"] = silent
			} else {
				replies[v] = silent
			}
			m := dial(t, testConfig(scripted(t, greetingOK, replies)))
			_, err := m.Find(shortCtx(t, silentTimeout), "tok")
			checkWaited(t, err, "no reply to IMAP "+verb+" within 300ms")
		})
	}
}

// A step that began late under the session's context had less than its
// deadline: the error says whose deadline it was and how long the step
// waited.
func TestFind_TimeoutOfALateStepSaysSo(t *testing.T) {
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		// A slow greeting: the login ends a third into the deadline.
		time.Sleep(2 * silentTimeout / 3)
		io.WriteString(c, greetingOK)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			tag, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
			if strings.HasPrefix(strings.ToUpper(rest), "LIST") {
				continue
			}
			if strings.HasPrefix(strings.ToUpper(rest), "CAPABILITY") {
				io.WriteString(c, "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
			}
			io.WriteString(c, tag+" OK done\r\n")
		}
	})
	ctx := shortCtx(t, 2*silentTimeout)
	m, err := Dial(ctx, testConfig(addr))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer m.Close()
	_, err = m.Find(ctx, "tok")
	re := regexp.MustCompile(`^no reply to IMAP LIST within (600|59[0-9])ms \(the receive leg's deadline; this step waited [0-9.]+m?s\)$`)
	if err == nil || !re.MatchString(err.Error()) {
		t.Errorf("err = %v, want it to match %s", err, re)
	}
}

// A cancelled session says what it was waiting for and stays cancelled.
func TestDial_CancelledSaysWhatWasAwaited(t *testing.T) {
	loginRead := make(chan struct{})
	addr := scripted(t, greetingOK, map[string]func(net.Conn, string){
		"LOGIN": func(net.Conn, string) { close(loginRead) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-loginRead:
			cancel()
		case <-ctx.Done():
		}
	}()
	m, err := Dial(ctx, testConfig(addr))
	assertFailure(t, m, err, PhaseIMAPAuth, probes.ReasonTimeout)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want it cancelled", err)
	}
	if got, want := err.Error(), "probe cancelled: no reply to IMAP LOGIN yet"; got != want {
		t.Errorf("err = %q, want %q", got, want)
	}
}

// A refused connection names the address that refused it.
func TestDial_ConnectionRefusedSaysBy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m, err := Dial(shortCtx(t, 5*time.Second), testConfig(addr))
	assertFailure(t, m, err, PhaseIMAPConnect, probes.ReasonConnect)
	if got, want := err.Error(), "connection refused by "+addr; got != want {
		t.Errorf("err = %q, want %q", got, want)
	}
}

// A connection that does not come within the deadline names the address.
func TestWrap_ConnectTimeout(t *testing.T) {
	start := time.Now().Add(-10 * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(10*time.Second))
	defer cancel()
	m := &Mailbox{cfg: Config{Address: "imap.example.com:993"}, w: &wire{}}
	m.op = opTime{ctx: ctx, start: start, deadline: start.Add(10 * time.Second)}
	m.dial, m.stepStart = m.op, start
	m.awaiting = "no TCP connection to " + m.cfg.Address
	err := m.wrap(PhaseIMAPConnect, &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded})
	checkWaited(t, err, "no TCP connection to imap.example.com:993 within 10s")
}

// The run's verdict says what the receive leg waited for and the deadline
// that applied (delivery_timeout), and so does a bounce mailbox's failure
// in the facts; neither names the password.
func TestProbe_IMAPTimeoutSaysWhatWasAwaited(t *testing.T) {
	t.Run("receive mailbox never greets", func(t *testing.T) {
		p := newMailPath(t, "INBOX", allPass)
		m := p.module()
		addr := rawServer(t, func(c net.Conn, _ *bufio.Reader) { io.Copy(io.Discard, c) })
		m.Delivery.IMAP.Address = addr
		m.Delivery.DeliveryTimeout = silentTimeout
		res := runProbe(t, p, m)
		if res.Success || res.FailedPhase != probes.PhaseIMAPConnect || res.Reason != probes.ReasonTimeout {
			t.Fatalf("result = %v %s/%s (%v), want an imap_connect timeout", res.Success, res.FailedPhase, res.Reason, res.Err)
		}
		if got, want := res.Err.Error(), "no IMAP greeting from "+addr+" within 300ms"; !probestest.SameWait(got, want) {
			t.Errorf("err = %q, want %q", got, want)
		}
		if pr := res.Phase(probes.PhaseIMAPConnect); pr == nil || pr.Err == nil || pr.Err.Error() != res.Err.Error() {
			t.Errorf("the phase's error is not the verdict's: %+v", pr)
		}
	})
	t.Run("bounce mailbox never answers LOGIN", func(t *testing.T) {
		p := newMailPath(t, "", allPass)
		m := p.module()
		// Time for the receive mailbox's login and clean-up on a loaded
		// machine: the bounce mailbox's login then waits out the rest.
		m.Delivery.DeliveryTimeout = time.Second
		m.Delivery.BounceIMAP = &probes.IMAPModule{
			Address: scripted(t, greetingOK, map[string]func(net.Conn, string){"LOGIN": silent}),
			TLS:     probes.TLSNone, AllowInsecureAuth: true,
			Auth: &probes.AuthConfig{Mechanism: "LOGIN", Username: testUser, Password: "Bounce-Pass-42"},
		}
		res := runProbe(t, p, m)
		if res.Success || res.Reason != probes.ReasonNotDelivered {
			t.Fatalf("result = %v %s/%s (%v), want not_delivered", res.Success, res.FailedPhase, res.Reason, res.Err)
		}
		const want = "delivery.bounce_imap: imap_auth: timeout: no reply to IMAP LOGIN within "
		if f := res.Delivery; f == nil || !strings.HasPrefix(f.BounceMailboxError, want) || strings.Contains(f.BounceMailboxError, "i/o timeout") {
			t.Errorf("bounce mailbox error = %q, want it to start with %q", f.BounceMailboxError, want)
		}
		if what, around := probestest.FindSecretFragment(res.Err.Error()+transcriptOf(res), probestest.SecretFragmentForms("Bounce-Pass-42")); what != "" {
			t.Errorf("the bounce mailbox's password is in the output: %s ...%s...", what, around)
		}
	})
}
