package domain

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

const spfZone = `
$ORIGIN spf.test.
good        TXT "v=spf1 ip4:192.0.2.0/24 include:_spf.good.spf.test mx -all"
good        TXT "google-site-verification=xyz"
good        MX  10 mx.good
mx.good     A   198.51.100.1
_spf.good   TXT "v=spf1 ip6:2001:db8::/32 ~all"
split       TXT "v=spf1 ip4:192.0.2.1" " -all"
none        TXT "just text"
two         TXT "v=spf1 -all"
two         TXT "v=spf1 +all"
syntax      TXT "v=spf1 ip4:192.0.2.300 -all"
plusall     TXT "v=spf1 +all"
redir       TXT "v=spf1 redirect=_spf.good.spf.test"
softfail    TXT "v=spf1 ip4:203.0.113.1 ~all"
badinclude  TXT "v=spf1 include:nowhere.spf.test -all"
voids       TXT "v=spf1 a:v1.spf.test a:v2.spf.test a:v3.spf.test ip4:192.0.2.1 -all"
macro       TXT "v=spf1 exists:%{i}.bl.spf.test ip4:192.0.2.1 -all"
`

// lookupsZone adds a record that includes a chain of records, each with
// one more lookup, to total n DNS-querying terms.
func lookupsZone(name string, n int) string {
	var b strings.Builder
	// n-1 includes in a chain, the last of them with one "a".
	for i := range n - 1 {
		next := fmt.Sprintf("i%d.%s.spf.test", i+1, name)
		owner := fmt.Sprintf("i%d.%s.spf.test.", i, name)
		if i == 0 {
			owner = name + ".spf.test."
		}
		fmt.Fprintf(&b, "%s TXT \"v=spf1 include:%s -all\"\n", owner, next)
	}
	fmt.Fprintf(&b, "i%d.%s.spf.test. TXT \"v=spf1 a -all\"\n", n-1, name)
	fmt.Fprintf(&b, "i%d.%s.spf.test. A 192.0.2.1\n", n-1, name)
	return b.String()
}

func TestCheckSPF(t *testing.T) {
	zone := spfZone + lookupsZone("ten", 10) + lookupsZone("eleven", 11)
	cases := []struct {
		domain  string
		ips     []string
		result  CheckResult
		reason  string
		lookups int
		all     string
	}{
		{"good.spf.test", []string{"192.0.2.7", "2001:db8::1", "198.51.100.1"}, ResultPass, "ok", 2, "-all"},
		{"split.spf.test", []string{"192.0.2.1"}, ResultPass, "ok", 0, "-all"},
		{"redir.spf.test", []string{"2001:db8::5"}, ResultPass, "ok", 1, "~all"},
		{"ten.spf.test", []string{"192.0.2.1"}, ResultPass, "ok", 10, "-all"},
		{"macro.spf.test", []string{"192.0.2.1"}, ResultPass, "ok", 1, "-all"},
		{"none.spf.test", nil, ResultFail, "spf_invalid", 0, ""},
		{"missing.spf.test", nil, ResultFail, "spf_invalid", 0, ""},
		{"two.spf.test", nil, ResultFail, "spf_invalid", 0, ""},
		{"syntax.spf.test", nil, ResultFail, "spf_invalid", 0, ""},
		{"badinclude.spf.test", nil, ResultFail, "spf_invalid", 1, "-all"},
		{"eleven.spf.test", nil, ResultFail, "spf_too_many_lookups", 11, "-all"},
		{"voids.spf.test", nil, ResultFail, "spf_too_many_lookups", 3, "-all"},
		{"plusall.spf.test", nil, ResultWarn, "spf_invalid", 0, "+all"},
		{"softfail.spf.test", []string{"192.0.2.9"}, ResultFail, "spf", 0, "~all"},
		{"good.spf.test", []string{"203.0.113.9"}, ResultFail, "spf", 2, "-all"},
	}
	r, _ := newTestResolver(t, zone)
	for _, tc := range cases {
		t.Run(tc.domain+strings.Join(tc.ips, ","), func(t *testing.T) {
			var ips []netip.Addr
			for _, s := range tc.ips {
				ips = append(ips, addr(t, s))
			}
			facts := CheckSPF(testContext(t), r, tc.domain, ips)
			wantCheck(t, facts.Check, tc.result, tc.reason)
			if facts.Check.Name != NameSPF {
				t.Errorf("check name %q", facts.Check.Name)
			}
			if facts.Lookups != tc.lookups || facts.All != tc.all {
				t.Errorf("lookups %d all %q, want %d %q", facts.Lookups, facts.All, tc.lookups, tc.all)
			}
			if len(facts.Evaluations) > len(tc.ips) {
				t.Errorf("%d evaluations for %d IPs", len(facts.Evaluations), len(tc.ips))
			}
		})
	}
}

func TestCheckSPF_EvaluationsRecorded(t *testing.T) {
	r, _ := newTestResolver(t, spfZone)
	facts := CheckSPF(testContext(t), r, "good.spf.test", []netip.Addr{addr(t, "192.0.2.7"), addr(t, "203.0.113.9")})
	if len(facts.Evaluations) != 2 || facts.Evaluations[0].Result != "pass" || facts.Evaluations[1].Result != "fail" {
		t.Errorf("evaluations = %+v, want pass then fail", facts.Evaluations)
	}
	if facts.Records != 1 || !strings.HasPrefix(facts.Record, "v=spf1 ip4:192.0.2.0/24") {
		t.Errorf("record %q (%d)", facts.Record, facts.Records)
	}
}

// TestCheckSPF_DNSFailures: a failing resolver is an error of its own
// kind, never an invalid record, and ends within the deadline.
func TestCheckSPF_DNSFailures(t *testing.T) {
	cases := []struct {
		name      string
		behaviour probestest.DNSBehaviour
		reason    probes.Reason
	}{
		{"silent", probestest.DNSBehaviour{Silent: true}, probes.ReasonTimeout},
		{"servfail", probestest.DNSBehaviour{Rcode: 2}, probes.ReasonDNS},
		{"bogus", probestest.DNSBehaviour{BogusUnlessCD: true}, ReasonDNSSECBogus},
		{"oversized", probestest.DNSBehaviour{Oversize: 20000}, probes.ReasonDNS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, srv := newTestResolver(t, spfZone)
			srv.Behave("", tc.behaviour)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			start := time.Now()
			facts := CheckSPF(ctx, r, "good.spf.test", []netip.Addr{addr(t, "192.0.2.1")})
			if elapsed := time.Since(start); elapsed > time.Second {
				t.Errorf("took %v", elapsed)
			}
			wantCheck(t, facts.Check, ResultError, string(tc.reason))
			if facts.Check.Err == nil {
				t.Error("no error kept")
			}
		})
	}
	// A include whose target fails at evaluation time is a temperror.
	r, srv := newTestResolver(t, spfZone)
	srv.Behave("_spf.good.spf.test", probestest.DNSBehaviour{Rcode: 2})
	facts := CheckSPF(testContext(t), r, "good.spf.test", []netip.Addr{addr(t, "192.0.2.1")})
	wantCheck(t, facts.Check, ResultError, "dns")
}

func TestParseSPF(t *testing.T) {
	valid := []string{
		"v=spf1",
		"V=SPF1 -ALL",
		"v=spf1  ip4:192.0.2.1  -all",
		"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx ptr ~all",
		"v=spf1 a:mail.example.com/24//64 mx:example.com//128 a/24 -all",
		"v=spf1 include:_spf.example.com exists:%{ir}.%{l1r+-}._spf.%{d} ?all",
		"v=spf1 redirect=_spf.example.com",
		"v=spf1 -all exp=explain._spf.%{d}",
		"v=spf1 a:%{d1/}/24 -all",
		"v=spf1 unknown-mod=anything%%here -all",
		"v=spf1 include:example.com. -all",
	}
	for _, s := range valid {
		if _, err := parseSPF(s); err != nil {
			t.Errorf("parseSPF(%q) = %v, want valid", s, err)
		}
	}
	invalid := []string{
		"",
		"v=spf10 -all",
		"spf1 -all",
		"v=spf1 ip4:192.0.2.300",
		"v=spf1 ip4:2001:db8::1",
		"v=spf1 ip6:192.0.2.1",
		"v=spf1 ip4:192.0.2.1/33",
		"v=spf1 ip4:192.0.2.1/01",
		"v=spf1 ip6:2001:db8::/129",
		"v=spf1 a/-1",
		"v=spf1 include",
		"v=spf1 include:",
		"v=spf1 exists",
		"v=spf1 all:example.com",
		"v=spf1 ptr/24",
		"v=spf1 bogus:example.com",
		"v=spf1 include:example",
		"v=spf1 include:example.123",
		"v=spf1 include:%{x}.example.com",
		"v=spf1 include:%{c}.example.com",
		"v=spf1 include:%{d0}.example.com",
		"v=spf1 include:%{d",
		"v=spf1 include:%x.example.com",
		"v=spf1 redirect=a.example.com redirect=b.example.com",
		"v=spf1 -all\t",
		"v=spf1 include:exa\x01mple.com",
	}
	for _, s := range invalid {
		if _, err := parseSPF(s); err == nil {
			t.Errorf("parseSPF(%q) accepted", s)
		}
	}
}
