package domain

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// testTimeout bounds every lookup of a test: hostile servers must not
// hold a test longer.
const testTimeout = 2 * time.Second

// newTestResolver starts a DNS server for zone and returns a Resolver
// asking it.
func newTestResolver(t *testing.T, zone string) (*Resolver, *probestest.DNSServer) {
	t.Helper()
	srv := probestest.NewDNSServer(t, zone)
	r, err := NewResolver(ResolverConfig{Server: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	return r, srv
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func addr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// wantCheck fails the test unless c has the verdict and reason given.
func wantCheck(t *testing.T, c Check, result CheckResult, reason string) {
	t.Helper()
	if c.Result != result || string(c.Reason) != reason {
		t.Fatalf("check %s = %s/%s (%s), want %s/%s", c.Name, c.Result, c.Reason, c.Detail, result, reason)
	}
}
