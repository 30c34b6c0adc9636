package smtp

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

const silentTimeout = 300 * time.Millisecond

// silentAfter greets (unless greet is false), then answers every command
// up to the one starting with verb, and never that one (STARTTLS it
// answers, then never handshakes).
func silentAfter(greet bool, verb string) func(c *probestest.Conn) {
	return func(c *probestest.Conn) {
		if greet {
			c.Send("220 silent.test ESMTP")
		}
		for {
			line, err := c.ReadLine()
			if err != nil {
				return
			}
			if strings.HasPrefix(strings.ToUpper(line), verb) {
				if verb == "STARTTLS" {
					c.Send("220 2.0.0 go ahead")
				}
				<-c.Done()
				return
			}
			if strings.HasPrefix(strings.ToUpper(line), "EHLO") {
				c.Send("250-silent.test", "250-STARTTLS", "250 PIPELINING")
			} else {
				c.Send("250 2.0.0 Ok")
			}
		}
	}
}

// A timeout says what the probe waited for and the deadline that applied,
// in the verdict's error and the phase's, not Go's "read tcp ...: i/o
// timeout"; the reason stays timeout.
func TestProbe_TimeoutSaysWhatWasAwaited(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tls   string
		greet bool
		verb  string
		phase probes.Phase
		want  string
	}{
		{"banner", probes.TLSNone, false, "", probes.PhaseBanner, "no banner within 300ms"},
		{"ehlo", probes.TLSNone, true, "EHLO", probes.PhaseEHLO, "no reply to EHLO within 300ms"},
		{"rcpt", probes.TLSNone, true, "RCPT", probes.PhaseRcpt, "no reply to RCPT within 300ms"},
		{"starttls handshake", probes.TLSStartTLS, true, "STARTTLS", probes.PhaseSTARTTLS, "TLS handshake did not finish within 300ms"},
		{"implicit tls", probes.TLSImplicit, false, "", probes.PhaseTLS, "TLS handshake did not finish within 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var handler func(*probestest.Conn)
			if tc.verb == "" {
				handler = func(c *probestest.Conn) { <-c.Done() }
			} else {
				handler = silentAfter(tc.greet, tc.verb)
			}
			s := probestest.NewScriptServer(t, handler)
			m := plainModule()
			m.Timeout = silentTimeout
			m.SMTP.TLS = tc.tls
			m.SMTP.TLSConfig.InsecureSkipVerify = true
			m.SMTP.MailFrom, m.SMTP.RcptTo = "a@example.test", []string{"b@example.test"}
			res := Probe(context.Background(), s.Addr, m, nil)
			if res.Success || res.FailedPhase != tc.phase || res.Reason != probes.ReasonTimeout {
				t.Fatalf("got success=%t phase=%s reason=%s err=%v, want a timeout in %s", res.Success, res.FailedPhase, res.Reason, res.Err, tc.phase)
			}
			if got := res.Err.Error(); !strings.HasPrefix(got, tc.want) || strings.Contains(got, "i/o timeout") {
				t.Errorf("err = %q, want it to start with %q", got, tc.want)
			}
			if p := res.Phase(tc.phase); p == nil || p.Err == nil || p.Err.Error() != res.Err.Error() {
				t.Errorf("the phase's error is not the verdict's: %v", p)
			}
			var ne net.Error
			if !errors.As(res.Err, &ne) || !ne.Timeout() {
				t.Errorf("err = %v no longer unwraps to the timeout", res.Err)
			}
			if errors.Is(res.Err, context.Canceled) {
				t.Errorf("err = %v: a probe out of time is not cancelled", res.Err)
			}
		})
	}
}

// A phase that began late had less than the whole timeout: the error says
// the deadline was the probe's.
func TestProbe_TimeoutOfALatePhaseSaysSo(t *testing.T) {
	s := probestest.NewScriptServer(t, func(c *probestest.Conn) {
		c.Send("220 slow.test ESMTP")
		if _, err := c.ReadLine(); err != nil {
			return
		}
		if !c.Sleep(2 * silentTimeout / 3) {
			return
		}
		c.Send("250 slow.test")
		<-c.Done()
	})
	m := plainModule()
	m.Timeout = silentTimeout
	m.SMTP.MailFrom, m.SMTP.RcptTo = "a@example.test", []string{"b@example.test"}
	res := Probe(context.Background(), s.Addr, m, nil)
	if res.FailedPhase != probes.PhaseMail || res.Reason != probes.ReasonTimeout {
		t.Fatalf("phase %s reason %s (%v), want a timeout in mail", res.FailedPhase, res.Reason, res.Err)
	}
	if got := res.Err.Error(); !strings.HasPrefix(got, "no reply to MAIL within 300ms (the probe's timeout; this phase waited ") {
		t.Errorf("err = %q", got)
	}
}

// A cancelled probe says what it was waiting for and stays cancelled.
func TestProbe_CancelledSaysWhatWasAwaited(t *testing.T) {
	ehloRead := make(chan struct{})
	s := probestest.NewScriptServer(t, func(c *probestest.Conn) {
		c.Send("220 slow.test ESMTP")
		if _, err := c.ReadLine(); err == nil {
			close(ehloRead)
		}
		<-c.Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-ehloRead:
			cancel()
		case <-ctx.Done():
		}
	}()
	res := Probe(ctx, s.Addr, plainModule(), nil)
	if res.Reason != probes.ReasonTimeout || !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("reason %s err %v, want a cancelled timeout", res.Reason, res.Err)
	}
	if got := res.Err.Error(); got != "probe cancelled: no reply to EHLO yet" {
		t.Errorf("err = %q", got)
	}
}

// A refused connection names the address that refused it, without Go's
// "dial tcp ...: connect:".
func TestProbe_ConnectionRefusedSaysBy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	res := Probe(context.Background(), addr, plainModule(), nil)
	if res.Reason != probes.ReasonConnect {
		t.Fatalf("reason %s (%v), want connect", res.Reason, res.Err)
	}
	if got, want := res.Err.Error(), "connection refused by "+addr; got != want {
		t.Errorf("err = %q, want %q", got, want)
	}
}

// A connection that does not come within the deadline names the address.
func TestDescribeTimeout_Connect(t *testing.T) {
	start := time.Now()
	s := &session{m: &probes.Module{Timeout: 5 * time.Second}, res: &probes.Result{Start: start},
		deadline: start.Add(5 * time.Second), connectAddr: "192.0.2.1:25", phaseStart: start.Add(-5 * time.Second), ctx: context.Background()}
	err := s.describeTimeout(probes.PhaseConnect, context.DeadlineExceeded)
	if got, want := err.Error(), "no TCP connection to 192.0.2.1:25 within 5s"; got != want {
		t.Errorf("err = %q, want %q", got, want)
	}
	if s.reasonOf(err) != probes.ReasonTimeout {
		t.Errorf("reason %s, want timeout", s.reasonOf(err))
	}
}
