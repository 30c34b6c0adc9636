package domain

import (
	"slices"
	"testing"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

const ptrZone = `
mx.ptr.test.        A    192.0.2.1
mx.ptr.test.        AAAA 2001:db8::1
other.ptr.test.     A    192.0.2.99
1.2.0.192.in-addr.arpa.   PTR mx.ptr.test.
2.2.0.192.in-addr.arpa.   PTR other.ptr.test.
3.2.0.192.in-addr.arpa.   PTR gone.ptr.test.
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. PTR MX.ptr.test.
`

func TestCheckPTR(t *testing.T) {
	cases := []struct {
		name   string
		addr   string
		host   string
		result CheckResult
		reason string
	}{
		{"confirmed", "192.0.2.1", "", ResultPass, "ok"},
		{"confirmed and the host's name", "192.0.2.1", "MX.ptr.test.", ResultPass, "ok"},
		{"IPv6, names compared without case", "2001:db8::1", "mx.ptr.test", ResultPass, "ok"},
		{"IPv4-mapped address", "::ffff:192.0.2.1", "mx.ptr.test", ResultPass, "ok"},
		{"another host's name", "192.0.2.1", "smtp.ptr.test", ResultFail, "ptr_mismatch"},
		{"PTR not resolving back", "192.0.2.2", "", ResultFail, "ptr_mismatch"},
		{"PTR to a name that does not exist", "192.0.2.3", "", ResultFail, "ptr_mismatch"},
		{"no PTR", "192.0.2.4", "", ResultFail, "ptr_missing"},
	}
	r, _ := newTestResolver(t, ptrZone)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			facts := CheckPTR(testContext(t), r, addr(t, tc.addr), tc.host)
			wantCheck(t, facts.Check, tc.result, tc.reason)
		})
	}
	facts := CheckPTR(testContext(t), r, addr(t, "192.0.2.1"), "mx.ptr.test")
	if !slices.Equal(facts.Names, []string{"mx.ptr.test"}) || !slices.Equal(facts.Confirmed, facts.Names) || !facts.HostMatches {
		t.Errorf("facts = %+v", facts)
	}
}

func TestCheckPTR_DNSFailures(t *testing.T) {
	r, srv := newTestResolver(t, ptrZone)
	srv.Behave("1.2.0.192.in-addr.arpa", probestest.DNSBehaviour{Rcode: 2})
	wantCheck(t, CheckPTR(testContext(t), r, addr(t, "192.0.2.1"), "").Check, ResultError, "dns")

	// A failing forward lookup is an error, not a mismatch.
	srv.Behave("1.2.0.192.in-addr.arpa", probestest.DNSBehaviour{})
	srv.Behave("mx.ptr.test", probestest.DNSBehaviour{Rcode: 2})
	wantCheck(t, CheckPTR(testContext(t), r, addr(t, "192.0.2.1"), "").Check, ResultError, "dns")
}
