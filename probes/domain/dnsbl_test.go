package domain

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

const dnsblZone = `
2.0.0.127.bl.test.        A   127.0.0.2
2.0.0.127.bl.test.        A   127.0.0.4
2.0.0.127.bl.test.        TXT "Listed: see https://bl.test/lookup?127.0.0.2"
9.2.0.192.bl.test.        A   127.0.0.10
9.2.0.192.refuse.test.    A   127.255.255.254
9.2.0.192.wild.test.      A   192.0.2.200
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test. A 127.0.0.3
bl.test.                  A   192.0.2.1
`

func TestCheckDNSBL(t *testing.T) {
	cases := []struct {
		name   string
		addrs  []string
		zones  []string
		result CheckResult
		reason string
		listed int
	}{
		{"not listed (NXDOMAIN)", []string{"192.0.2.1"}, []string{"bl.test"}, ResultPass, "ok", 0},
		{"listed, with its explanation", []string{"127.0.0.2"}, []string{"bl.test"}, ResultFail, "blocklisted", 1},
		{"listed without TXT", []string{"192.0.2.9"}, []string{"bl.test."}, ResultFail, "blocklisted", 1},
		{"IPv6 listed", []string{"2001:db8::1"}, []string{"bl.test"}, ResultFail, "blocklisted", 1},
		{"query refused is no listing", []string{"192.0.2.9"}, []string{"refuse.test"}, ResultError, "dns", 0},
		{"answer outside 127/8 is no listing", []string{"192.0.2.9"}, []string{"wild.test"}, ResultError, "dns", 0},
		{"a listing outweighs a refusal", []string{"192.0.2.9"}, []string{"refuse.test", "bl.test"}, ResultFail, "blocklisted", 1},
		{"no zones", []string{"192.0.2.9"}, nil, ResultPass, "ok", 0},
	}
	r, _ := newTestResolver(t, dnsblZone)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var addrs []netip.Addr
			for _, s := range tc.addrs {
				addrs = append(addrs, addr(t, s))
			}
			facts := CheckDNSBL(testContext(t), r, addrs, tc.zones)
			wantCheck(t, facts.Check, tc.result, tc.reason)
			if len(facts.Answers) != len(tc.addrs)*len(tc.zones) {
				t.Fatalf("%d answers for %d addresses and %d zones", len(facts.Answers), len(tc.addrs), len(tc.zones))
			}
			listed := 0
			for _, a := range facts.Answers {
				if a.Listed {
					listed++
				}
				if a.Listed && a.Error != "" {
					t.Errorf("answer both listed and failed: %+v", a)
				}
			}
			if listed != tc.listed {
				t.Errorf("%d listed, want %d: %+v", listed, tc.listed, facts.Answers)
			}
		})
	}
}

func TestCheckDNSBL_KeepsCodesAndText(t *testing.T) {
	r, _ := newTestResolver(t, dnsblZone)
	facts := CheckDNSBL(testContext(t), r, []netip.Addr{addr(t, "127.0.0.2"), addr(t, "192.0.2.1")}, []string{"bl.test", "refuse.test"})
	a := facts.Answers[0]
	if a.Zone != "bl.test" || len(a.Codes) != 2 || !strings.Contains(a.Text, "bl.test/lookup") {
		t.Errorf("listing = %+v, want both codes and the TXT", a)
	}
	if !strings.Contains(facts.Check.Detail, "127.0.0.2 on bl.test (Listed: see") {
		t.Errorf("detail %q", facts.Check.Detail)
	}
	for _, a := range facts.Answers[1:] {
		if a.Listed {
			t.Errorf("%s listed on %s", a.Address, a.Zone)
		}
	}
}

func TestCheckDNSBL_Hostile(t *testing.T) {
	r, srv := newTestResolver(t, dnsblZone)
	srv.Behave("9.2.0.192.bl.test", probestest.DNSBehaviour{Silent: true})
	srv.Behave("9.2.0.192.refuse.test", probestest.DNSBehaviour{Oversize: 20000})
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	start := time.Now()
	facts := CheckDNSBL(ctx, r, []netip.Addr{addr(t, "192.0.2.9"), addr(t, "192.0.2.1")}, []string{"bl.test", "refuse.test"})
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("took %v with a deadline of 600ms", elapsed)
	}
	wantCheck(t, facts.Check, ResultError, "timeout")
	if !errors.Is(facts.Answers[0].err, ErrTimeout) || !errors.Is(facts.Answers[1].err, ErrOversized) {
		t.Errorf("answers = %+v", facts.Answers)
	}
	// The silent zone did not hold up the others.
	for _, a := range facts.Answers[2:] {
		if a.Error != "" || a.Listed {
			t.Errorf("answer %+v, want not listed", a)
		}
	}
}

func TestDNSBLName(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.9":        "9.2.0.192.bl.test.",
		"::ffff:192.0.2.9": "9.2.0.192.bl.test.",
		"2001:db8::1":      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test.",
	} {
		if got, err := dnsblName(netip.MustParseAddr(in), "bl.test"); err != nil || got != want {
			t.Errorf("dnsblName(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
}
