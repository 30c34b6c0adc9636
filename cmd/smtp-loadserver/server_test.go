package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"
)

// The bare client's dialog is the exporter's probe: banner, EHLO, STARTTLS
// with the certificate verified against the CA the server wrote, EHLO, QUIT.
func TestServe_STARTTLSDialogVerifies(t *testing.T) {
	s := &server{}
	addr, pool, _ := startServer(t, s)
	cfg := &tls.Config{RootCAs: pool, ServerName: "mx.loadrun.test"}
	for range 3 {
		if err := bareDialog(context.Background(), addr, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.completed.Load(); got != 3 {
		t.Errorf("sessions ended with QUIT = %d, want 3", got)
	}
}

// A name the certificate does not carry fails verification: the exporter's
// figures would otherwise be those of failed probes.
func TestServe_CertificateNamesTheHost(t *testing.T) {
	addr, pool, _ := startServer(t, &server{})
	cfg := &tls.Config{RootCAs: pool, ServerName: "other.loadrun.test"}
	if err := bareDialog(context.Background(), addr, cfg); err == nil {
		t.Fatal("dialog verified a certificate for another name")
	}
}

// A slow greeting sends postscreen's first line at once and holds the rest;
// stopping the server releases the waiting connection instead of leaving
// its goroutine asleep.
func TestServe_SlowBannerHeldThenReleasedOnStop(t *testing.T) {
	s := &server{bannerDelay: 24 * time.Hour}
	addr, _, cancel := startServer(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "220-mx.loadrun.test") {
		t.Fatalf("first line %q, want a 220- continuation", line)
	}
	cancel()
	if rest, err := r.ReadString('\n'); err == nil {
		t.Fatalf("read %q after stop, want the connection closed", rest)
	}
}
