package delivery

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

// byeServer accepts one connection, sends it to the returned channel's
// reader as the address it came from, and says BYE.
func byeServer(t *testing.T) (string, <-chan net.Addr) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan net.Addr, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		seen <- c.RemoteAddr()
		_, _ = c.Write([]byte("* BYE not today\r\n"))
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String(), seen
}

func TestDial_SourceIPAddress(t *testing.T) {
	addr, seen := byeServer(t)
	cfg := testConfig(addr)
	cfg.SourceIPAddress = "127.0.0.2"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, _ := Dial(ctx, cfg) // the server says BYE: only the source matters
	m.Close()
	select {
	case a := <-seen:
		if host, _, _ := net.SplitHostPort(a.String()); host != "127.0.0.2" {
			t.Errorf("the server saw a connection from %s, want 127.0.0.2", host)
		}
	default:
		t.Fatal("the server saw no connection")
	}
}

func TestDial_SourceIPAddressNotOnThisHost(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_nonlocal_bind"); err == nil && strings.TrimSpace(string(b)) == "1" {
		t.Skip("net.ipv4.ip_nonlocal_bind=1 lets any address be bound")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(ln.Addr().String())
	cfg.SourceIPAddress = "203.0.113.7" // TEST-NET-3, on no host
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := Dial(ctx, cfg)
	m.Close()
	var e *Error
	if !errors.As(err, &e) || e.Phase != PhaseIMAPConnect || e.Reason != probes.ReasonConnect ||
		!strings.Contains(err.Error(), "source_ip_address 203.0.113.7 is not an address of this host") {
		t.Errorf("Dial error %v, want a connect failure in imap_connect naming the source address", err)
	}
}
