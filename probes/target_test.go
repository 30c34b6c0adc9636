package probes

import (
	"errors"
	"net/netip"
	"testing"
)

func TestSplitTarget(t *testing.T) {
	smtp, implicit, lmtp := &Module{}, &Module{SMTP: SMTPModule{TLS: TLSImplicit}}, &Module{Prober: ProberLMTP}
	domain := &Module{Prober: ProberDomain}
	for _, tc := range []struct {
		target     string
		m          *Module
		host, port string
		bad        bool
	}{
		{"mx.example.net:587", smtp, "mx.example.net", "587", false},
		{"mx.example.net", smtp, "mx.example.net", "25", false},
		{"mx.example.net", implicit, "mx.example.net", "465", false},
		{"mx.example.net", lmtp, "mx.example.net", "24", false},
		{"[2001:db8::1]:25", smtp, "2001:db8::1", "25", false},
		{"[2001:db8::1]", smtp, "2001:db8::1", "25", false},
		{"2001:db8::1", smtp, "2001:db8::1", "25", false},
		{"mx.example.net:abc", smtp, "", "", true},
		{"mx.example.net:0", smtp, "", "", true},
		{"mx.example.net:70000", smtp, "", "", true},
		{"mx.example.net:", smtp, "", "", true},
		{"smtp://mx.example.net:25", smtp, "", "", true},
		{"mx example.net", smtp, "", "", true},
		{":25", smtp, "", "", true},
		{"host:25:26", smtp, "", "", true},
		{"[2001:db8::1", smtp, "", "", true},
		{"host]", smtp, "", "", true},
		{"mail.example.com.", smtp, "mail.example.com.", "25", false},
		{"localhost", smtp, "localhost", "25", false},
		{"::1", smtp, "::1", "25", false},
		{"example.com", domain, "example.com", "", false},
		{"example.com.", domain, "example.com", "", false},
		{"example.com:25", domain, "", "", true},
		{"localhost", domain, "", "", true},
		{"192.0.2.1", domain, "", "", true},
		{"exa mple.com", domain, "", "", true},
		{"", domain, "", "", true},
	} {
		host, port, err := SplitTarget(tc.target, tc.m)
		if (err != nil) != tc.bad || host != tc.host || port != tc.port {
			t.Errorf("SplitTarget(%q) = %q, %q, %v; want %q, %q, error %t", tc.target, host, port, err, tc.host, tc.port, tc.bad)
		}
	}
}

func TestCheckDial(t *testing.T) {
	ap := netip.MustParseAddrPort("192.0.2.1:25")
	if err := CheckDial(t.Context(), ap); err != nil {
		t.Errorf("CheckDial without a check = %v, want nil", err)
	}
	refused := errors.New("refused")
	ctx := WithDialCheck(t.Context(), func(a netip.AddrPort) error {
		if a.Addr().IsLoopback() {
			return nil
		}
		return refused
	})
	if err := CheckDial(ctx, ap); err != refused {
		t.Errorf("CheckDial(%s) = %v, want the check's error", ap, err)
	}
	if err := CheckDial(ctx, netip.MustParseAddrPort("127.0.0.1:25")); err != nil {
		t.Errorf("CheckDial(loopback) = %v, want nil", err)
	}
}
