package probes_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/common/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
	"github.com/smtp-exporter/smtp_exporter/probes/smtp"
)

// Without a limiter in the context (the probe command) the handshake runs
// on the connection itself.
func TestLimitHandshake_NoLimiter(t *testing.T) {
	c, _ := net.Pipe()
	defer c.Close()
	got, done := probes.LimitHandshake(context.Background(), c)
	defer done()
	if got != c {
		t.Errorf("LimitHandshake without a limiter wrapped the connection")
	}
	if got, _ := probes.LimitHandshake(probes.WithLimiter(context.Background(), nil), c); got != c {
		t.Errorf("LimitHandshake with a nil limiter wrapped the connection")
	}
}

// A handshake holds its permit from the moment data came until it waits
// for the server again, or ends: a second one computes only then.
func TestLimitHandshake_PermitOnlyWhileComputing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := probes.WithLimiter(context.Background(), probes.NewLimiter(1))
		a, aServer := net.Pipe()
		b, bServer := net.Pipe()
		defer func() {
			for _, c := range []net.Conn{a, aServer, b, bServer} {
				c.Close()
			}
		}()
		la, doneA := probes.LimitHandshake(ctx, a)
		lb, doneB := probes.LimitHandshake(ctx, b)
		buf := make([]byte, 1)

		// a waits for its server holding nothing: b gets data and the
		// permit.
		aRead := make(chan error, 1)
		go func() { _, err := la.Read(buf); aRead <- err }()
		go bServer.Write([]byte("x"))
		if _, err := lb.Read(make([]byte, 1)); err != nil {
			t.Fatalf("b's read while a waited for its server: %v", err)
		}
		// Now a's data comes, but b computes: a waits for the permit.
		go aServer.Write([]byte("y"))
		synctest.Wait()
		select {
		case err := <-aRead:
			t.Fatalf("a's read returned (err %v) while b held the only permit", err)
		default:
		}
		// b waits for its server again: a goes on.
		bRead := make(chan error, 1)
		go func() { _, err := lb.Read(make([]byte, 1)); bRead <- err }()
		if err := <-aRead; err != nil {
			t.Fatalf("a's read once b waited: %v", err)
		}
		// b's data comes while a computes; a's handshake ends, and with it
		// a's permit.
		go bServer.Write([]byte("z"))
		synctest.Wait()
		select {
		case err := <-bRead:
			t.Fatalf("b's read returned (err %v) while a held the only permit", err)
		default:
		}
		doneA()
		if err := <-bRead; err != nil {
			t.Fatalf("b's read once a's handshake ended: %v", err)
		}
		doneB()
		// After done the connection is the dialog's, unlimited: two reads
		// in a row, the permit free for others.
		go aServer.Write([]byte("12"))
		for range 2 {
			if _, err := la.Read(make([]byte, 1)); err != nil {
				t.Fatalf("read after done: %v", err)
			}
		}
		c, cServer := net.Pipe()
		defer c.Close()
		defer cServer.Close()
		lc, doneC := probes.LimitHandshake(ctx, c)
		defer doneC()
		go cServer.Write([]byte("w"))
		if _, err := lc.Read(make([]byte, 1)); err != nil {
			t.Fatalf("a new handshake's read after the others ended: %v", err)
		}
	})
}

// A handshake that waits for a permit gives up when its probe's context
// ends, with the context's error, so the probe reports its timeout.
func TestLimitHandshake_WaitEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := probes.NewLimiter(1)
		holder, holderServer := net.Pipe()
		defer holder.Close()
		defer holderServer.Close()
		lh, doneH := probes.LimitHandshake(probes.WithLimiter(context.Background(), l), holder)
		defer doneH()
		go holderServer.Write([]byte("x"))
		if _, err := lh.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}

		ctx, cancel := context.WithCancel(probes.WithLimiter(context.Background(), l))
		c, cServer := net.Pipe()
		defer c.Close()
		defer cServer.Close()
		lc, doneC := probes.LimitHandshake(ctx, c)
		defer doneC()
		go cServer.Write([]byte("y"))
		got := make(chan error, 1)
		go func() { _, err := lc.Read(make([]byte, 1)); got <- err }()
		synctest.Wait()
		cancel()
		if err := <-got; !errors.Is(err, context.Canceled) {
			t.Errorf("read waiting for a permit when its context ended: err = %v, want context.Canceled", err)
		}
	})
}

// A real TLS handshake runs through the limited connection, and leaves its
// permit free when it is done.
func TestLimitHandshake_TLS(t *testing.T) {
	l := probes.NewLimiter(1)
	ctx := probes.WithLimiter(t.Context(), l)
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	srv := tls.Server(server, probestest.ServerTLSConfig(probestest.SelfSigned(t, "localhost")))
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Handshake() }()
	conn, done := probes.LimitHandshake(ctx, client)
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
	err := tc.Handshake()
	done()
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-srvDone; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	// The permit is free: another handshake's read gets it at once.
	other, otherServer := net.Pipe()
	defer other.Close()
	defer otherServer.Close()
	lo, doneO := probes.LimitHandshake(ctx, other)
	defer doneO()
	go otherServer.Write([]byte("x"))
	if _, err := lo.Read(make([]byte, 1)); err != nil {
		t.Fatalf("read after the TLS handshake ended: %v", err)
	}
}

// The SMTP dialog runs its STARTTLS handshake under the context's
// limiter: with the only permit held elsewhere, it cannot complete.
func TestLimitHandshake_SMTPDialogTakesIt(t *testing.T) {
	cert := probestest.SelfSigned(t, "localhost", "127.0.0.1")
	srv := probestest.NewServer(t, probestest.ServerOptions{TLS: &cert})
	m := probes.Module{Prober: probes.ProberSMTP, Timeout: 300 * time.Millisecond,
		SMTP: probes.SMTPModule{TLS: probes.TLSStartTLS, EHLO: "probe.test", MailFrom: "probe@example.net",
			TLSConfig: config.TLSConfig{InsecureSkipVerify: true}}}
	m.SetDefaults()
	l := probes.NewLimiter(1)
	ctx := probes.WithLimiter(t.Context(), l)

	holder, holderServer := net.Pipe()
	defer holder.Close()
	defer holderServer.Close()
	lh, doneH := probes.LimitHandshake(ctx, holder)
	go holderServer.Write([]byte("x"))
	if _, err := lh.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	res := smtp.Probe(ctx, srv.Addr, m, nil)
	if res.Success || res.FailedPhase != probes.PhaseSTARTTLS || res.Reason != probes.ReasonTimeout {
		t.Errorf("probe while the only handshake permit was held: success=%v phase=%q reason=%q (%v); want a starttls timeout",
			res.Success, res.FailedPhase, res.Reason, res.Err)
	}
	doneH()
	if res := smtp.Probe(ctx, srv.Addr, m, nil); !res.Success {
		t.Errorf("probe with the permit free failed in %q: %s (%v)", res.FailedPhase, res.Reason, res.Err)
	}
	if res := smtp.Probe(context.Background(), srv.Addr, m, nil); !res.Success {
		t.Errorf("probe without a limiter failed in %q: %s (%v)", res.FailedPhase, res.Reason, res.Err)
	}
}
