package domain

import (
	"slices"
	"testing"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

const tlsrptZone = `
$ORIGIN tlsrpt.test.
_smtp._tls.good    TXT "v=TLSRPTv1; rua=mailto:tls@good.tlsrpt.test, https://reports.good.tlsrpt.test/v1;"
_smtp._tls.good    TXT "something else"
_smtp._tls.two     TXT "v=TLSRPTv1; rua=mailto:a@two.tlsrpt.test"
_smtp._tls.two     TXT "v=TLSRPTv1; rua=mailto:b@two.tlsrpt.test"
_smtp._tls.norua   TXT "v=TLSRPTv1; ext=1"
_smtp._tls.http    TXT "v=TLSRPTv1; rua=http://reports.tlsrpt.test/"
_smtp._tls.version TXT "v=TLSRPTv2; rua=mailto:a@b.test"
_smtp._tls.nospace TXT "v=TLSRPTv1 ; rua=mailto:a@b.test"
`

func TestCheckTLSRPT(t *testing.T) {
	cases := []struct {
		domain string
		result CheckResult
		reason string
	}{
		{"good.tlsrpt.test", ResultPass, "ok"},
		{"missing.tlsrpt.test", ResultFail, "tls_rpt_missing"},
		{"two.tlsrpt.test", ResultFail, "tls_rpt_missing"},
		{"norua.tlsrpt.test", ResultFail, "tls_rpt_missing"},
		{"http.tlsrpt.test", ResultFail, "tls_rpt_missing"},
		{"version.tlsrpt.test", ResultFail, "tls_rpt_missing"},
		{"nospace.tlsrpt.test", ResultFail, "tls_rpt_missing"},
	}
	r, _ := newTestResolver(t, tlsrptZone)
	for _, tc := range cases {
		t.Run(tc.domain, func(t *testing.T) {
			wantCheck(t, CheckTLSRPT(testContext(t), r, tc.domain).Check, tc.result, tc.reason)
		})
	}
	facts := CheckTLSRPT(testContext(t), r, "good.tlsrpt.test")
	if want := []string{"mailto:tls@good.tlsrpt.test", "https://reports.good.tlsrpt.test/v1"}; !slices.Equal(facts.RUA, want) || facts.Records != 1 {
		t.Errorf("facts = %+v, want rua %q", facts, want)
	}
}

func TestCheckTLSRPT_DNSFailure(t *testing.T) {
	r, srv := newTestResolver(t, tlsrptZone)
	srv.Behave("", probestest.DNSBehaviour{BogusUnlessCD: true})
	wantCheck(t, CheckTLSRPT(testContext(t), r, "good.tlsrpt.test").Check, ResultError, "dnssec_bogus")
}

func TestParseTLSRPT(t *testing.T) {
	valid := []string{
		"v=TLSRPTv1;rua=mailto:a@b.test",
		"v=TLSRPTv1; rua=mailto:a@b.test ;",
		"v=TLSRPTv1; rua=https://r.test/x , mailto:a@b.test; x-ext=value",
		"v=TLSRPTv1; 0ext.v_1-x=abc; rua=mailto:a@b.test",
	}
	for _, s := range valid {
		if _, err := parseTLSRPT(s); err != nil {
			t.Errorf("parseTLSRPT(%q) = %v", s, err)
		}
	}
	invalid := []string{
		"",
		"v=TLSRPTv1",
		"v=TLSRPTv1;",
		"v=TLSRPTv1; rua=",
		"v=TLSRPTv1; rua=mailto:",
		"v=TLSRPTv1; rua=mailto:nobody",
		"v=TLSRPTv1; rua=https:///path",
		"v=TLSRPTv1; rua=ftp://r.test/",
		"v=TLSRPTv1; rua=mailto:a@b.test; rua=mailto:c@d.test",
		"v=TLSRPTv1;; rua=mailto:a@b.test",
		"v=TLSRPTv1; rua=mailto:a@b.test; ext",
		"v=TLSRPTv1; rua=mailto:a@b.test; ext=",
		"v=TLSRPTv1; rua=mailto:a@b.test; _ext=1",
		"v=TLSRPTv1; rua=mailto:a@b.test; ext=a=b",
		"rua=mailto:a@b.test; v=TLSRPTv1",
	}
	for _, s := range invalid {
		if _, err := parseTLSRPT(s); err == nil {
			t.Errorf("parseTLSRPT(%q) accepted", s)
		}
	}
}
