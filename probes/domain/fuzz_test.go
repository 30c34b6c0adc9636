package domain

import (
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dmarc"
	"github.com/miekg/dns"
)

// Fuzzers for every parser of DNS data in this package: records come
// from servers nobody here controls.

func FuzzSPFRecord(f *testing.F) {
	for _, s := range []string{
		"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx ptr ~all",
		"v=spf1 a:mail.example.com/24//64 mx:example.com//128 -all",
		"v=spf1 include:_spf.example.com exists:%{ir}.%{l1r+-}._spf.%{d} ?all",
		"v=spf1 redirect=_spf.example.com exp=%{d}",
		"v=spf1 a:%{d1/}/24 x-mod=%% -all",
		"v=spf1 ip4:1.2.3.4/01 ip6:::1/129",
		"v=spf1 %{",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rec, err := parseSPF(s)
		if err != nil {
			return
		}
		if rec.all != "" && (len(rec.all) != 4 || !strings.HasSuffix(rec.all, "all") || !strings.ContainsRune("+-~?", rune(rec.all[0]))) {
			t.Errorf("all = %q", rec.all)
		}
		for _, term := range rec.terms {
			switch term.mechanism {
			case "all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists":
			default:
				t.Errorf("accepted mechanism %q", term.mechanism)
			}
			if (term.mechanism == "include" || term.mechanism == "exists") && term.domain == "" {
				t.Errorf("%s without a domain accepted", term.mechanism)
			}
		}
	})
}

func FuzzDMARCRecord(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=reject; sp=quarantine; pct=50; rua=mailto:a@b.test",
		"v = DMARC1 ;p=none",
		"p=none; v=DMARC1",
		"v=DMARC1; p=none; fo=0:1:d:s; rf=afrf; ri=86400",
		"v=DMARC1;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !isDMARCRecord(s) {
			return
		}
		if !strings.Contains(s, "DMARC1") {
			t.Errorf("%q taken for a DMARC record", s)
		}
		rec, err := dmarc.Parse(s)
		if err == nil && rec.Percent != nil && (*rec.Percent < 0 || *rec.Percent > 100) {
			t.Errorf("pct %d accepted", *rec.Percent)
		}
	})
}

func FuzzDKIMKey(f *testing.F) {
	for _, s := range []string{
		"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB",
		"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
		"v=DKIM1; p=",
		"k=rsa; t=y:s; h=sha1:sha256; s=email; p=AAAA",
		"v=DKIM1; p=a; p=b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, err := parseDKIMKey(s)
		if err != nil {
			return
		}
		switch {
		case info.revoked:
			t.Errorf("revoked key %q accepted", s)
		case info.keyType == "rsa" && info.bits < minRSABits:
			t.Errorf("RSA key of %d bits accepted", info.bits)
		case info.keyType != "rsa" && info.keyType != "ed25519":
			t.Errorf("key type %q accepted", info.keyType)
		}
	})
}

func FuzzTLSRPTRecord(f *testing.F) {
	for _, s := range []string{
		"v=TLSRPTv1; rua=mailto:tls@example.test, https://reports.example.test/v1;",
		"v=TLSRPTv1;rua=mailto:a@b.test; x-ext=1",
		"v=TLSRPTv1; rua=http://x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rua, err := parseTLSRPT(s)
		if err != nil {
			return
		}
		if len(rua) == 0 {
			t.Errorf("%q accepted without rua", s)
		}
		for _, u := range rua {
			l := strings.ToLower(u)
			if !strings.HasPrefix(l, "mailto:") && !strings.HasPrefix(l, "https:") {
				t.Errorf("rua %q accepted", u)
			}
		}
	})
}

// FuzzDNSAnswer feeds arbitrary answers through everything the Resolver
// does with one after unpacking: the checks, the CNAME walk and the
// conversion of every record type.
func FuzzDNSAnswer(f *testing.F) {
	seed := func(qtype uint16, rrs ...string) {
		m := new(dns.Msg)
		m.SetQuestion("example.test.", qtype)
		m.Response = true
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				f.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		packed, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(packed)
	}
	seed(dns.TypeMX, "example.test. 60 IN MX 10 mx.example.test.", "example.test. 60 IN MX 0 .")
	seed(dns.TypeA, "example.test. 60 IN CNAME a.test.", "a.test. 60 IN CNAME example.test.")
	seed(dns.TypeTXT, `example.test. 60 IN TXT "v=spf1 " "-all" "\"\\\255"`)
	seed(dns.TypeTLSA, "example.test. 60 IN TLSA 3 1 1 00112233")
	seed(dns.TypePTR, "example.test. 60 IN PTR mx.example.test.")
	f.Fuzz(func(t *testing.T, raw []byte) {
		resp := new(dns.Msg)
		if err := resp.Unpack(raw); err != nil || len(resp.Question) != 1 {
			return
		}
		q := new(dns.Msg)
		q.SetQuestion(resp.Question[0].Name, resp.Question[0].Qtype)
		q.Id = resp.Id
		_ = checkResponse(q, resp)
		for _, qtype := range []uint16{dns.TypeMX, dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypePTR, dns.TypeTLSA} {
			depth := 0
			records, _, err := followChain(resp.Answer, resp.Question[0].Name, qtype, &depth)
			if depth > maxCNAMEDepth+1 || (err == nil && depth > maxCNAMEDepth) {
				t.Fatalf("CNAME walk went %d deep (err %v)", depth, err)
			}
			mx := mxAnswer(records)
			if mx.Null && len(mx.Hosts) > 0 {
				t.Errorf("null MX with hosts %v", mx.Hosts)
			}
			_ = addrsOf(records)
			_ = ptrNames(records)
			_ = txtStrings(records)
			_ = tlsaRecords(records)
		}
	})
}

func FuzzUnescapeTXT(f *testing.F) {
	f.Add(`a\"b\\c\010\255\999\`)
	f.Fuzz(func(t *testing.T, s string) {
		if got := unescapeTXT(s); len(got) > len(s) {
			t.Errorf("unescapeTXT(%q) grew to %q", s, got)
		}
	})
}
