package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/common/config"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// Servers that misbehave on purpose. Every test asserts the verdict (phase
// and reason), that Run returns within its timeout plus a generous slack,
// and that no file descriptor outlives the probe and its server; TestMain
// checks goroutines.

const (
	hostileTimeout = 1500 * time.Millisecond
	// hostileSlack bounds how long Run may overrun its timeout. It is a
	// bound for a loaded CI machine under -race, not a speed test.
	hostileSlack = 2 * time.Second
)

// hostileModule is a plain-text probe with a short timeout: banner and EHLO
// only, unless the test adds more.
func hostileModule() probes.Module {
	return probes.Module{
		Prober:  probes.ProberSMTP,
		Timeout: hostileTimeout,
		SMTP: probes.SMTPModule{
			TLS:  probes.TLSNone,
			EHLO: "probe.test",
		},
	}
}

// withFDCheck runs body as a subtest, so that the servers it starts are shut
// down by the subtest's cleanup, and then checks that the process holds no
// more file descriptors than before.
func withFDCheck(t *testing.T, body func(t *testing.T)) {
	t.Helper()
	warmUpNetwork(t)
	before := openFDs(t)
	t.Run("probe", body)
	// Close is synchronous, but give the runtime a moment to drop a
	// descriptor another goroutine was still returning from.
	deadline := time.Now().Add(2 * time.Second)
	for {
		after := openFDs(t)
		if len(after) <= len(before) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("file descriptors leaked: %d open before the probe, %d after\nbefore: %v\nafter:  %v",
				len(before), len(after), before, after)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var warmUp sync.Once

// warmUpNetwork makes the runtime create its poller descriptors before the
// first count, so that they are not mistaken for a leak of the first test.
func warmUpNetwork(t *testing.T) {
	warmUp.Do(func() {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		c, err := net.Dial("tcp", l.Addr().String())
		if err == nil {
			c.Close()
		}
		l.Close()
	})
}

// openFDs lists this process's open descriptors with what they point to.
func openFDs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		out = append(out, e.Name()+"->"+target)
	}
	return out
}

// runHostile runs the probe, turning a panic into a test failure and checking
// that Run returned within the module's timeout plus hostileSlack.
func runHostile(t *testing.T, ctx context.Context, target string, m probes.Module) *probes.Result {
	t.Helper()
	var res *probes.Result
	start := time.Now()
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Run panicked: %v", r)
			}
		}()
		res = Probe(ctx, target, m, nil)
	}()
	elapsed := time.Since(start)
	if res == nil {
		t.Fatal("Run returned nil")
	}
	if limit := m.Timeout + hostileSlack; elapsed > limit {
		t.Errorf("Run took %s, want at most %s (timeout %s + slack)", elapsed, limit, m.Timeout)
	}
	return res
}

// wantHostileFailure checks the verdict and prints the transcript when it is wrong.
func wantHostileFailure(t *testing.T, res *probes.Result, phase probes.Phase, reason probes.Reason) {
	t.Helper()
	if res.Success || res.FailedPhase != phase || res.Reason != reason {
		t.Errorf("got success=%t phase=%q reason=%q (err: %v), want failure in phase %q with reason %q",
			res.Success, res.FailedPhase, res.Reason, res.Err, phase, reason)
		logHostileTranscript(t, res)
	}
	if pr := res.Phase(phase); pr == nil {
		t.Errorf("no result for phase %q", phase)
	} else if pr.Reason != reason {
		t.Errorf("phase %q reason = %q, want %q", phase, pr.Reason, reason)
	}
}

func logHostileTranscript(t *testing.T, res *probes.Result) {
	t.Helper()
	for _, l := range res.Transcript {
		t.Log(l.String())
	}
}

// probeSentCommand reports whether the transcript shows the probe sending a
// command starting with verb.
func probeSentCommand(res *probes.Result, verb string) bool {
	return slices.ContainsFunc(res.Transcript, func(l probes.TranscriptLine) bool {
		return l.Dir == probes.DirSend && strings.HasPrefix(strings.ToUpper(l.Text), verb)
	})
}

func TestRun_Hostile_NoBanner(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		s := probestest.NewScriptServer(t, func(c *probestest.Conn) { <-c.Done() })
		res := runHostile(t, context.Background(), s.Addr, hostileModule())
		wantHostileFailure(t, res, probes.PhaseBanner, probes.ReasonTimeout)
		if !res.Temporary {
			t.Error("a timeout should be temporary")
		}
		if errors.Is(res.Err, context.Canceled) {
			t.Errorf("err = %v: a probe that ran out of time was not cancelled", res.Err)
		}
		if res.Phase(probes.PhaseQuit) != nil || probeSentCommand(res, "QUIT") {
			t.Error("QUIT attempted on a connection that timed out")
		}
	})
}

func TestRun_Hostile_TrickleBanner(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		s := probestest.NewScriptServer(t, func(c *probestest.Conn) {
			for _, b := range []byte("220 slow.test ESMTP one byte a second\r\n") {
				c.SendRaw([]byte{b})
				if !c.Sleep(time.Second) {
					return
				}
			}
		})
		res := runHostile(t, context.Background(), s.Addr, hostileModule())
		wantHostileFailure(t, res, probes.PhaseBanner, probes.ReasonTimeout)
	})
}

func TestRun_Hostile_EndlessMultilineReply(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		s := probestest.NewScriptServer(t, func(c *probestest.Conn) {
			chunk := bytes.Repeat([]byte("220-endless.test still greeting you\r\n"), 64)
			for {
				select {
				case <-c.Done():
					return
				default:
				}
				if _, err := c.NetConn().Write(chunk); err != nil {
					return
				}
			}
		})
		res := runHostile(t, context.Background(), s.Addr, hostileModule())
		wantHostileFailure(t, res, probes.PhaseBanner, probes.ReasonProtocol)
		if n := len(res.Transcript); n > maxReplyLines+10 {
			t.Errorf("transcript holds %d lines: the reply was not cut off at %d", n, maxReplyLines)
		}
	})
}

func TestRun_Hostile_HugeReplyLine(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		s := probestest.NewScriptServer(t, func(c *probestest.Conn) {
			line := append([]byte("220 "), bytes.Repeat([]byte("x"), 1<<20)...)
			c.SendRaw(append(line, "\r\n"...))
			_, _ = io.Copy(io.Discard, c.NetConn())
		})
		res := runHostile(t, context.Background(), s.Addr, hostileModule())
		wantHostileFailure(t, res, probes.PhaseBanner, probes.ReasonProtocol)
		for _, l := range res.Transcript {
			if len(l.Text) > maxReplyLineBytes {
				t.Errorf("transcript line of %d bytes: the huge line was kept", len(l.Text))
			}
		}
	})
}

func TestRun_Hostile_BareLF(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		s := probestest.NewScriptServer(t, func(c *probestest.Conn) {
			c.SendRaw([]byte("220 hi\n"))
			_, _ = c.ReadLine()
		})
		res := runHostile(t, context.Background(), s.Addr, hostileModule())
		wantHostileFailure(t, res, probes.PhaseBanner, probes.ReasonProtocol)
	})
}

func TestRun_Hostile_DroppedMidReply(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		s := probestest.NewScriptServer(t, func(c *probestest.Conn) {
			c.Send("220-partial")
		})
		res := runHostile(t, context.Background(), s.Addr, hostileModule())
		wantHostileFailure(t, res, probes.PhaseBanner, probes.ReasonConnectionLost)
		if !res.Temporary {
			t.Error("a lost connection should be temporary")
		}
	})
}

func TestRun_Hostile_GarbageBanner(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		s := probestest.NewScriptServer(t, func(c *probestest.Conn) {
			c.Send("HELLO THERE")
			_, _ = c.ReadLine()
		})
		res := runHostile(t, context.Background(), s.Addr, hostileModule())
		wantHostileFailure(t, res, probes.PhaseBanner, probes.ReasonProtocol)
		if res.Temporary {
			t.Error("a protocol error should be permanent")
		}
	})
}

// hostileSTARTTLSThen greets, offers STARTTLS, answers it with 220 and hands the
// connection to after, which plays the broken TLS server.
func hostileSTARTTLSThen(after func(c *probestest.Conn)) func(c *probestest.Conn) {
	return func(c *probestest.Conn) {
		c.Send("220 tls.test ESMTP")
		if _, ok := c.Expect("EHLO"); !ok {
			return
		}
		c.Send("250-tls.test", "250 STARTTLS")
		if _, ok := c.Expect("STARTTLS"); !ok {
			return
		}
		c.Send("220 2.0.0 Ready to start TLS")
		after(c)
	}
}

func hostileSTARTTLSModule() probes.Module {
	m := hostileModule()
	m.SMTP.TLS = probes.TLSStartTLS
	return m
}

func TestRun_Hostile_STARTTLSGarbage(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		s := probestest.NewScriptServer(t, hostileSTARTTLSThen(func(c *probestest.Conn) {
			// Wait for the ClientHello so the garbage cannot arrive with
			// the 220 (that would be a STARTTLS injection, a different
			// failure), answer with plain text, and drain until the probe
			// hangs up so no reset destroys the garbage in flight.
			buf := make([]byte, 512)
			if _, err := c.NetConn().Read(buf); err != nil {
				return
			}
			c.SendRaw([]byte("this is not TLS, this is a plain text line\r\n"))
			_, _ = io.Copy(io.Discard, c.NetConn())
		}))
		res := runHostile(t, context.Background(), s.Addr, hostileSTARTTLSModule())
		wantHostileFailure(t, res, probes.PhaseSTARTTLS, probes.ReasonTLSHandshake)
		if res.Phase(probes.PhaseQuit) != nil {
			t.Error("QUIT attempted after a failed TLS handshake")
		}
	})
}

func TestRun_Hostile_STARTTLSHangup(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		s := probestest.NewScriptServer(t, hostileSTARTTLSThen(func(c *probestest.Conn) {
			buf := make([]byte, 512)
			_, _ = c.NetConn().Read(buf)
		}))
		res := runHostile(t, context.Background(), s.Addr, hostileSTARTTLSModule())
		wantHostileFailure(t, res, probes.PhaseSTARTTLS, probes.ReasonConnectionLost)
	})
}

// hostileCertModule trusts ca and expects the server to be "localhost".
func hostileCertModule(t *testing.T, ca *probestest.CA, mode string) probes.Module {
	m := hostileModule()
	m.SMTP.TLS = mode
	m.SMTP.TLSConfig = config.TLSConfig{CAFile: ca.WriteCAFile(t), ServerName: "localhost"}
	return m
}

// wantCertFacts checks that a failed verification still recorded the
// certificate the server presented.
func wantCertFacts(t *testing.T, res *probes.Result, cert tls.Certificate) {
	t.Helper()
	if res.TLS == nil {
		t.Fatal("Result.TLS is nil: the certificate facts were not recorded")
	}
	if res.TLS.Verified {
		t.Error("TLS.Verified = true for a certificate that failed verification")
	}
	if res.TLS.VerifyError == nil {
		t.Error("TLS.VerifyError is nil")
	}
	if len(res.TLS.Certificates) == 0 {
		t.Fatal("no certificates recorded")
	}
	if got, want := res.TLS.Certificates[0].NotAfter, cert.Leaf.NotAfter; !got.Equal(want) {
		t.Errorf("leaf NotAfter = %s, want %s", got, want)
	}
	if res.TLS.EarliestExpiry.IsZero() {
		t.Error("EarliestExpiry not set")
	}
}

func TestRun_Hostile_STARTTLSCertificates(t *testing.T) {
	ca := probestest.NewCA(t)
	for _, tc := range []struct {
		name   string
		cert   func(t *testing.T) tls.Certificate
		reason probes.Reason
	}{
		{"Expired", func(t *testing.T) tls.Certificate { return ca.Expired(t, "localhost") }, probes.ReasonCertExpired},
		{"SelfSigned", func(t *testing.T) tls.Certificate { return probestest.SelfSigned(t, "localhost") }, probes.ReasonCertUntrusted},
		{"WrongHost", func(t *testing.T) tls.Certificate { return ca.Valid(t, "mail.other.test") }, probes.ReasonCertHostname},
		{"ExpiredSelfSigned", func(t *testing.T) tls.Certificate { return probestest.ExpiredSelfSigned(t, "localhost") }, probes.ReasonCertExpired},
		// An expired certificate the server sends along but the chain
		// does not need must not mask what is wrong with the leaf.
		{"WrongHostExpiredExtra", func(t *testing.T) tls.Certificate {
			cert := ca.Valid(t, "mail.other.test")
			cert.Certificate = append(slices.Clip(cert.Certificate), ca.Expired(t, "old.other.test").Certificate[0])
			return cert
		}, probes.ReasonCertHostname},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withFDCheck(t, func(t *testing.T) {
				cert := tc.cert(t)
				s := probestest.NewScriptServer(t, probestest.Dialog{TLS: probestest.ServerTLSConfig(cert)}.Serve)
				res := runHostile(t, context.Background(), s.Addr, hostileCertModule(t, ca, probes.TLSStartTLS))
				wantHostileFailure(t, res, probes.PhaseSTARTTLS, tc.reason)
				if res.Temporary {
					t.Errorf("%s should be permanent", tc.reason)
				}
				wantCertFacts(t, res, cert)
			})
		})
	}
}

func TestRun_Hostile_ImplicitTLSExpired(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		ca := probestest.NewCA(t)
		cert := ca.Expired(t, "localhost")
		cfg := probestest.ServerTLSConfig(cert)
		s := probestest.NewScriptServer(t, func(c *probestest.Conn) {
			if c.StartTLS(cfg) != nil {
				return
			}
			probestest.Dialog{}.Serve(c)
		})
		res := runHostile(t, context.Background(), s.Addr, hostileCertModule(t, ca, probes.TLSImplicit))
		wantHostileFailure(t, res, probes.PhaseTLS, probes.ReasonCertExpired)
		wantCertFacts(t, res, cert)
		// The greeting was never read: a QUIT now would take the banner
		// for its reply.
		if probeSentCommand(res, "QUIT") {
			t.Error("QUIT sent before the server's greeting was read")
		}
	})
}

func TestRun_Hostile_StallAfterData(t *testing.T) {
	var s *probestest.ScriptServer
	withFDCheck(t, func(t *testing.T) {
		s = probestest.NewScriptServer(t, func(c *probestest.Conn) {
			c.Send("220 stall.test ESMTP")
			for {
				line, err := c.ReadLine()
				if err != nil {
					return
				}
				verb, _, _ := strings.Cut(strings.ToUpper(line), " ")
				switch verb {
				case "EHLO":
					c.Send("250-stall.test", "250 8BITMIME")
				case "DATA":
					c.Send("354 End data with <CR><LF>.<CR><LF>")
					for line != "." {
						if line, err = c.ReadLine(); err != nil {
							return
						}
					}
					// Message accepted, verdict never given. Keep
					// reading so that a QUIT would be recorded.
				default:
					c.Send("250 2.0.0 Ok")
				}
			}
		})
		m := hostileModule()
		m.SMTP.MailFrom = "probe@example.net"
		m.SMTP.RcptTo = []string{"sink@example.net"}
		m.SMTP.Send = true
		res := runHostile(t, context.Background(), s.Addr, m)
		wantHostileFailure(t, res, probes.PhaseData, probes.ReasonTimeout)
		if res.Phase(probes.PhaseQuit) != nil || probeSentCommand(res, "QUIT") || probeSentCommand(res, "RSET") {
			t.Error("RSET or QUIT attempted on a stream that timed out mid-reply")
			logHostileTranscript(t, res)
		}
	})
	// The server is closed now, so it has read all the probe sent.
	got := s.Received()
	if slices.Contains(got, "QUIT") || slices.Contains(got, "RSET") {
		t.Errorf("server received %q: no command may follow a timeout", got)
	}
}

func TestRun_Hostile_CloseAfterBanner(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		s := probestest.NewScriptServer(t, func(c *probestest.Conn) {
			c.Send("220 bye.test ESMTP")
		})
		res := runHostile(t, context.Background(), s.Addr, hostileModule())
		wantHostileFailure(t, res, probes.PhaseEHLO, probes.ReasonConnectionLost)
	})
}

func TestRun_Hostile_Banner421(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		s := probestest.NewScriptServer(t, probestest.Dialog{
			Banner: "421 4.3.2 busy.test Service not available, closing transmission channel",
		}.Serve)
		res := runHostile(t, context.Background(), s.Addr, hostileModule())
		wantHostileFailure(t, res, probes.PhaseBanner, probes.ReasonServiceUnavailable)
		if !res.Temporary || res.Code != 421 || res.EnhancedCode != "4.3.2" {
			t.Errorf("temporary=%t code=%d enhanced=%q, want true 421 4.3.2", res.Temporary, res.Code, res.EnhancedCode)
		}
	})
}

func TestRun_Hostile_Banner554(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		s := probestest.NewScriptServer(t, probestest.Dialog{
			Banner: "554 5.7.1 No SMTP service here",
		}.Serve)
		res := runHostile(t, context.Background(), s.Addr, hostileModule())
		if res.Success || res.FailedPhase != probes.PhaseBanner {
			t.Errorf("got success=%t phase=%q, want failure in banner", res.Success, res.FailedPhase)
		}
		if res.Temporary || res.Code != 554 {
			t.Errorf("temporary=%t code=%d, want false 554", res.Temporary, res.Code)
		}
		// RFC 5321 §3.1: after a 554 greeting the client SHOULD send QUIT.
		if res.Phase(probes.PhaseQuit) == nil {
			t.Error("no QUIT after a 554 greeting")
		}
	})
}

func TestRun_Hostile_ConnectionRefused(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		res := runHostile(t, context.Background(), probestest.ClosedAddr(t), hostileModule())
		wantHostileFailure(t, res, probes.PhaseConnect, probes.ReasonConnect)
	})
}

func TestRun_Hostile_Unresolvable(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		res := runHostile(t, context.Background(), "nonexistent.invalid:25", hostileModule())
		wantHostileFailure(t, res, probes.PhaseResolve, probes.ReasonDNS)
		if res.Phase(probes.PhaseConnect) != nil {
			t.Error("connect attempted without an address")
		}
	})
}

func TestRun_Hostile_ContextCancelledMidBanner(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		s := probestest.NewScriptServer(t, func(c *probestest.Conn) { <-c.Done() })
		m := hostileModule()
		m.Timeout = 10 * time.Second
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(200 * time.Millisecond)
			cancel()
		}()
		start := time.Now()
		res := runHostile(t, ctx, s.Addr, m)
		elapsed := time.Since(start)
		<-done
		wantHostileFailure(t, res, probes.PhaseBanner, probes.ReasonTimeout)
		// The reason is timeout, as the taxonomy has no other; the error
		// tells callers that the probe was cancelled, not slow.
		if !errors.Is(res.Err, context.Canceled) {
			t.Errorf("err = %v, want it to wrap context.Canceled", res.Err)
		}
		if elapsed > 200*time.Millisecond+hostileSlack {
			t.Errorf("Run took %s after a cancel at 200ms", elapsed)
		}
	})
}

func TestRun_Hostile_RcptRejectedStillQuits(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		s := probestest.NewScriptServer(t, probestest.Dialog{
			Replies: map[string]string{"RCPT": "550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown"},
		}.Serve)
		m := hostileModule()
		m.SMTP.MailFrom = "probe@example.net"
		m.SMTP.RcptTo = []string{"nobody@example.net"}
		res := runHostile(t, context.Background(), s.Addr, m)
		wantHostileFailure(t, res, probes.PhaseRcpt, probes.ReasonMailboxUnavailable)
		if res.Code != 550 || res.EnhancedCode != "5.1.1" || res.Temporary {
			t.Errorf("code=%d enhanced=%q temporary=%t, want 550 5.1.1 false", res.Code, res.EnhancedCode, res.Temporary)
		}
		q := res.Phase(probes.PhaseQuit)
		if q == nil {
			t.Fatal("no quit phase after a negative reply")
		}
		if q.Err != nil || len(q.Replies) != 2 {
			t.Errorf("quit phase: err=%v, %d replies, want RSET and QUIT answered", q.Err, len(q.Replies))
		}
		got := s.Received()
		if !slices.Contains(got, "RSET") || !slices.Contains(got, "QUIT") {
			t.Errorf("server received %q, want RSET then QUIT", got)
		}
		if i, j := slices.Index(got, "RSET"), slices.Index(got, "QUIT"); i > j {
			t.Errorf("RSET after QUIT: %q", got)
		}
	})
}

// A cancel that lands between two commands must stick: the next command
// must not re-arm the connection's deadline and wait out the module
// timeout. The logger sees each transcript line as it is recorded, so it
// cancels right after the EHLO reply is read and before MAIL is sent.
func TestRun_Hostile_ContextCancelledBetweenCommands(t *testing.T) {
	withFDCheck(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := probestest.NewScriptServer(t, func(c *probestest.Conn) {
			c.Send("220 mx.example.test ESMTP")
			if _, ok := c.Expect("EHLO"); !ok {
				return
			}
			c.Send("250 mx.example.test")
			// Whatever comes next is never answered.
			c.ReadLine()
			<-c.Done()
		})
		m := hostileModule()
		m.Timeout = 10 * time.Second
		m.SMTP.MailFrom = "probe@example.net"
		logger := log.LoggerFunc(func(kv ...any) error {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == "line" && kv[i+1] == "250 mx.example.test" {
					cancel()
					// Let the cancellation's callback run before the
					// probe sends its next command.
					time.Sleep(50 * time.Millisecond)
				}
			}
			return nil
		})
		start := time.Now()
		res := Probe(ctx, s.Addr, m, logger)
		if elapsed := time.Since(start); elapsed > hostileSlack {
			t.Errorf("Run took %s after a cancel between commands (module timeout 10s)", elapsed)
		}
		if res.Success || res.FailedPhase != probes.PhaseMail || res.Reason != probes.ReasonTimeout {
			t.Errorf("got success=%t %s/%s, want mail/timeout", res.Success, res.FailedPhase, res.Reason)
		}
		if !errors.Is(res.Err, context.Canceled) {
			t.Errorf("err = %v, want it to wrap context.Canceled", res.Err)
		}
	})
}
