package domain

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// txtRR is a TXT record for owner with value split into 255-byte
// strings, as zone tools publish long keys.
func txtRR(owner, value string) dns.RR {
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(owner), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}}
	for len(value) > 255 {
		rr.Txt = append(rr.Txt, value[:255])
		value = value[255:]
	}
	rr.Txt = append(rr.Txt, value)
	return rr
}

func b64(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

func rsaSPKI(t *testing.T, bits int) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return b64(der)
}

// weakRSA is a 512-bit RSA public key: crypto/rsa no longer generates
// one, so the modulus is made up (any odd number of that length parses).
func weakRSA(t *testing.T) string {
	t.Helper()
	n := new(big.Int).Lsh(big.NewInt(1), 511)
	n.Add(n, big.NewInt(12345))
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	return b64(der)
}

func TestCheckDKIM(t *testing.T) {
	rsa2048 := rsaSPKI(t, 2048)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1Key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	records := map[string]string{
		"rsa":      "v=DKIM1; k=rsa; p=" + rsa2048,
		"bare":     "p=" + rsa2048,
		"spaced":   "v=DKIM1; h=sha256; t=y; p=" + rsa2048[:100] + " " + rsa2048[100:],
		"ed":       "v=DKIM1; k=ed25519; p=" + b64(edPub),
		"pkcs1":    "k=rsa; p=" + b64(x509.MarshalPKCS1PublicKey(&pkcs1Key.PublicKey)),
		"weak":     "v=DKIM1; p=" + weakRSA(t),
		"revoked":  "v=DKIM1; k=rsa; p=",
		"nop":      "v=DKIM1; k=rsa",
		"garbage":  "v=DKIM1; p=!!!notbase64",
		"notakey":  "v=DKIM1; p=" + b64([]byte("hello world")),
		"ec":       "v=DKIM1; p=" + b64(ecDER),
		"edshort":  "v=DKIM1; k=ed25519; p=" + b64(edPub[:16]),
		"unknownk": "v=DKIM1; k=dsa; p=" + rsa2048,
		"vlast":    "p=" + rsa2048 + "; v=DKIM1",
		"sha1":     "v=DKIM1; h=sha1; p=" + rsa2048,
		"service":  "v=DKIM1; s=tlsrpt; p=" + rsa2048,
		"dup":      "v=DKIM1; p=" + rsa2048 + "; p=" + rsa2048,
	}
	r, srv := newTestResolver(t, "")
	for sel, rec := range records {
		srv.AddRR(txtRR(sel+"._domainkey.dkim.test", rec))
	}
	valid := map[string]int{"rsa": 2048, "bare": 2048, "spaced": 2048, "ed": 256, "pkcs1": 1024}
	for sel := range records {
		t.Run(sel, func(t *testing.T) {
			facts := CheckDKIM(testContext(t), r, "dkim.test", []string{sel})
			if len(facts.Keys) != 1 {
				t.Fatalf("%d keys", len(facts.Keys))
			}
			key := facts.Keys[0]
			if bits, ok := valid[sel]; ok {
				wantCheck(t, facts.Check, ResultPass, "ok")
				wantCheck(t, key.Check, ResultPass, "ok")
				if key.Bits != bits {
					t.Errorf("bits = %d, want %d", key.Bits, bits)
				}
				return
			}
			wantCheck(t, facts.Check, ResultFail, "dkim_key_invalid")
			wantCheck(t, key.Check, ResultFail, "dkim_key_invalid")
			if !strings.Contains(facts.Check.Detail, sel+": ") {
				t.Errorf("detail %q does not name the selector", facts.Check.Detail)
			}
		})
	}

	t.Run("facts", func(t *testing.T) {
		facts := CheckDKIM(testContext(t), r, "dkim.test", []string{"spaced", "revoked", "missing"})
		got := facts.Keys
		if !got[0].Testing || got[0].KeyType != "rsa" || !got[1].Revoked {
			t.Errorf("keys = %+v", got)
		}
		if got[2].Check.Result != ResultFail || got[2].Check.Detail != "no key record" {
			t.Errorf("missing selector: %+v", got[2].Check)
		}
		wantCheck(t, facts.Check, ResultFail, "dkim_key_invalid")

		weak := CheckDKIM(testContext(t), r, "dkim.test", []string{"weak"}).Keys[0]
		if weak.Bits != 512 || !strings.Contains(weak.Check.Detail, "512 bits") {
			t.Errorf("weak key: %+v, want refused for its 512 bits", weak)
		}
	})
}

func TestCheckDKIM_DNSFailure(t *testing.T) {
	r, srv := newTestResolver(t, "")
	srv.AddRR(txtRR("good._domainkey.dkim.test", "p="+rsaSPKI(t, 1024)))
	srv.Behave("slow._domainkey.dkim.test", probestest.DNSBehaviour{Rcode: dns.RcodeServerFailure})
	facts := CheckDKIM(testContext(t), r, "dkim.test", []string{"good", "slow"})
	wantCheck(t, facts.Check, ResultError, "dns")
	wantCheck(t, facts.Keys[0].Check, ResultPass, "ok")
	if facts.Check.Err == nil {
		t.Error("no error kept")
	}
}

func TestParseTagList(t *testing.T) {
	tags, err := parseTagList(" v = DKIM1 ;k=rsa;\tp=AB CD ;")
	if err != nil || strings.Join(tags.names, ",") != "v,k,p" || tags.values["p"] != "AB CD" {
		t.Errorf("parseTagList = %+v, %v", tags, err)
	}
	for _, bad := range []string{"", " ; ", "p", "1p=x", "p=a\x00b", "p=a;p=b", "=x"} {
		if _, err := parseTagList(bad); err == nil {
			t.Errorf("parseTagList(%q) accepted", bad)
		}
	}
}
