package domain

import (
	"slices"
	"testing"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

const dmarcZone = `
$ORIGIN dmarc.test.
_dmarc.good     TXT "v=DMARC1; p=reject; sp=quarantine; pct=50; rua=mailto:agg@good.dmarc.test,mailto:b@x.test"
_dmarc.plain    TXT "v=DMARC1;p=none"
_dmarc.plain    TXT "unrelated=1"
_dmarc.two      TXT "v=DMARC1; p=none"
_dmarc.two      TXT "v=DMARC1; p=reject"
_dmarc.badp     TXT "v=DMARC1; p=maybe"
_dmarc.nop      TXT "v=DMARC1; rua=mailto:a@b.test"
_dmarc.order    TXT "p=reject; v=DMARC1"
_dmarc.version  TXT "v=DMARC2; p=reject"
_dmarc.pct      TXT "v=DMARC1; p=reject; pct=150"
nothing         A   192.0.2.1
`

func TestCheckDMARC(t *testing.T) {
	cases := []struct {
		domain    string
		result    CheckResult
		reason    string
		policy    string
		inherited bool
	}{
		{"good.dmarc.test", ResultPass, "ok", "reject", false},
		{"plain.dmarc.test", ResultPass, "ok", "none", false},
		// The organisational domain is dmarc.test, which has none.
		{"sub.good.dmarc.test", ResultFail, "dmarc_missing", "", false},
		{"nothing.dmarc.test", ResultFail, "dmarc_missing", "", false},
		{"missing.dmarc.test", ResultFail, "dmarc_missing", "", false},
		{"two.dmarc.test", ResultFail, "dmarc_missing", "", false},
		{"badp.dmarc.test", ResultFail, "dmarc_missing", "", false},
		{"nop.dmarc.test", ResultFail, "dmarc_missing", "", false},
		{"order.dmarc.test", ResultFail, "dmarc_missing", "", false},
		{"version.dmarc.test", ResultFail, "dmarc_missing", "", false},
		{"pct.dmarc.test", ResultFail, "dmarc_missing", "", false},
	}
	r, _ := newTestResolver(t, dmarcZone)
	for _, tc := range cases {
		t.Run(tc.domain, func(t *testing.T) {
			facts := CheckDMARC(testContext(t), r, tc.domain)
			wantCheck(t, facts.Check, tc.result, tc.reason)
			if facts.Policy != tc.policy || facts.Inherited != tc.inherited {
				t.Errorf("policy %q inherited %v, want %q %v", facts.Policy, facts.Inherited, tc.policy, tc.inherited)
			}
		})
	}
}

func TestCheckDMARC_Facts(t *testing.T) {
	r, _ := newTestResolver(t, dmarcZone)
	facts := CheckDMARC(testContext(t), r, "Good.Dmarc.Test.")
	if facts.Policy != "reject" || facts.SubdomainPolicy != "quarantine" || facts.Percent != 50 ||
		!slices.Equal(facts.RUA, []string{"mailto:agg@good.dmarc.test", "mailto:b@x.test"}) || facts.Domain != "good.dmarc.test" {
		t.Errorf("facts = %+v", facts)
	}
	plain := CheckDMARC(testContext(t), r, "plain.dmarc.test")
	if plain.Percent != 100 || len(plain.RUA) != 0 || plain.SubdomainPolicy != "" || plain.Records != 1 {
		t.Errorf("defaults = %+v, want pct 100, no rua, one record", plain)
	}
}

func TestCheckDMARC_InheritsFromOrganisationalDomain(t *testing.T) {
	r, srv := newTestResolver(t, `_dmarc.example.test. TXT "v=DMARC1; p=reject; sp=none"`)
	facts := CheckDMARC(testContext(t), r, "mail.example.test")
	wantCheck(t, facts.Check, ResultPass, "ok")
	if !facts.Inherited || facts.Domain != "example.test" || facts.SubdomainPolicy != "none" {
		t.Errorf("facts = %+v, want inherited from example.test", facts)
	}
	var asked []string
	for _, q := range srv.Queries() {
		asked = append(asked, q.Name)
	}
	if want := []string{"_dmarc.mail.example.test.", "_dmarc.example.test."}; !slices.Equal(asked, want) {
		t.Errorf("asked %q, want %q", asked, want)
	}
}

func TestCheckDMARC_DNSFailureIsNotMissing(t *testing.T) {
	r, srv := newTestResolver(t, dmarcZone)
	srv.Behave("_dmarc.good.dmarc.test", probestest.DNSBehaviour{Rcode: 2})
	facts := CheckDMARC(testContext(t), r, "good.dmarc.test")
	wantCheck(t, facts.Check, ResultError, "dns")

	srv.Behave("_dmarc.good.dmarc.test", probestest.DNSBehaviour{TruncateUDP: true})
	wantCheck(t, CheckDMARC(testContext(t), r, "good.dmarc.test").Check, ResultPass, "ok")
}

func TestIsDMARCRecord(t *testing.T) {
	for s, want := range map[string]bool{
		"v=DMARC1; p=none":   true,
		"v = DMARC1 ;p=none": true,
		"v=DMARC1":           true,
		"v=dmarc1; p=none":   false,
		"p=none; v=DMARC1":   false,
		"v=DMARC10; p=none":  false,
		"":                   false,
	} {
		if got := isDMARCRecord(s); got != want {
			t.Errorf("isDMARCRecord(%q) = %v, want %v", s, got, want)
		}
	}
}
