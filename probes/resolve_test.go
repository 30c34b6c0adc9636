package probes

import (
	"context"
	"errors"
	"net"
	"testing"
)

// TestLookupIPAddr_Pinned checks that a pinned lookup is used as it is,
// error included, and that a context pinned for one name never resolves
// another through DNS.
func TestLookupIPAddr_Pinned(t *testing.T) {
	addrs := []net.IPAddr{{IP: net.ParseIP("192.0.2.1")}}
	ctx := WithResolved(context.Background(), "mail.example.test", addrs, nil)
	got, err := LookupIPAddr(ctx, "mail.example.test")
	if err != nil || len(got) != 1 || !got[0].IP.Equal(addrs[0].IP) {
		t.Errorf("LookupIPAddr = %v, %v; want the pinned %v", got, err, addrs)
	}
	if got, err := LookupIPAddr(ctx, "localhost"); err == nil {
		t.Errorf("LookupIPAddr of another name = %v, want an error", got)
	}
	notFound := &net.DNSError{Err: "no such host", Name: "gone.example.test", IsNotFound: true}
	ctx = WithResolved(context.Background(), "gone.example.test", nil, notFound)
	if _, err := LookupIPAddr(ctx, "gone.example.test"); !errors.Is(err, notFound) {
		t.Errorf("LookupIPAddr error = %v, want the pinned %v", err, notFound)
	}
}
