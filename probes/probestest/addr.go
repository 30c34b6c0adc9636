package probestest

import (
	"net"
	"testing"
)

// ClosedAddr returns a loopback address with nothing listening on it: a
// target that refuses connections, or a free port for a process to bind.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("probestest: listen: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
