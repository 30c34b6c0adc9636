package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves a goroutine behind: the server
// must let go of every connection when it stops.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer runs a server on loopback port 0 until the test ends and
// returns its address, the server and a pool trusting its CA.
func startServer(t *testing.T, s *server) (string, *x509.CertPool, context.CancelFunc) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	leaf, caPEM, err := newCertificates("mx.loadrun.test", net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA PEM does not parse")
	}
	s.hostname = "mx.loadrun.test"
	s.tls = &tls.Config{Certificates: []tls.Certificate{leaf}}
	if s.idle == 0 {
		s.idle = time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve(ctx, l)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return l.Addr().String(), pool, cancel
}
