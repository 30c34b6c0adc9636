package domain

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

const mxHost = "mx1.example.com"

// association computes a record's data independently of the code under
// test (which delegates to miekg/dns).
func association(selector, matching uint8, cert *x509.Certificate) string {
	data := cert.Raw
	if selector == SelectorSPKI {
		data = cert.RawSubjectPublicKeyInfo
	}
	switch matching {
	case MatchSHA256:
		sum := sha256.Sum256(data)
		data = sum[:]
	case MatchSHA512:
		sum := sha512.Sum512(data)
		data = sum[:]
	}
	return hex.EncodeToString(data)
}

func record(usage, selector, matching uint8, cert *x509.Certificate) TLSARecord {
	return TLSARecord{Usage: usage, Selector: selector, MatchingType: matching, Data: association(selector, matching, cert)}
}

// facts runs the evaluation on records already looked up.
func facts(records []TLSARecord, authenticated bool, now time.Time, sessions ...PresentedChain) *DANEFacts {
	f := &DANEFacts{Host: mxHost, Reason: probes.ReasonOK}
	f.evaluate(records, authenticated, sessions, now)
	return f
}

func session(label string, chain []*x509.Certificate) PresentedChain {
	return PresentedChain{Host: mxHost, Label: label, Chain: chain}
}

// TestDANEEveryParameter matches each usage × selector × matching type,
// before and after a rotation of the leaf's key under the same CA: a
// DANE-EE record stops matching, a DANE-TA record keeps matching.
func TestDANEEveryParameter(t *testing.T) {
	ca := probestest.NewCA(t)
	now := time.Now()
	chain := chainOf(ca.Valid(t, mxHost))
	rotated := chainOf(ca.Valid(t, mxHost))
	for _, usage := range []uint8{UsageDANETA, UsageDANEEE} {
		for _, selector := range []uint8{SelectorCert, SelectorSPKI} {
			for _, matching := range []uint8{MatchFull, MatchSHA256, MatchSHA512} {
				name := fmt.Sprintf("%d %d %d", usage, selector, matching)
				t.Run(name, func(t *testing.T) {
					subject := chain[0]
					if usage == UsageDANETA {
						subject = ca.Cert
					}
					r := record(usage, selector, matching, subject)
					f := facts([]TLSARecord{r}, true, now, session("before", chain), session("after", rotated))
					if f.Usable != 1 || f.Sessions[0].Matched != 0 || f.Sessions[0].Error != "" {
						t.Fatalf("before rotation: %+v", f)
					}
					if usage == UsageDANETA {
						if f.State != DANEMatched || f.Reason != probes.ReasonOK || f.Sessions[1].Matched != 0 {
							t.Errorf("DANE-TA after rotation: %+v", f)
						}
						return
					}
					if f.State != DANEMismatch || f.Reason != ReasonDANEMismatch || f.Sessions[1].Matched != -1 {
						t.Errorf("DANE-EE after rotation: %+v", f)
					}
				})
			}
		}
	}
}

// TestDANERecordFromZoneFile: a record parsed from presentation form keeps
// the case of its hex digits; dns.TLSA.Verify compares strings and would
// miss the match.
func TestDANERecordFromZoneFile(t *testing.T) {
	ca := probestest.NewCA(t)
	chain := chainOf(ca.Valid(t, mxHost))
	data := strings.ToUpper(association(SelectorSPKI, MatchSHA256, chain[0]))
	rr, err := dns.NewRR("_25._tcp." + mxHost + ". 300 IN TLSA 3 1 1 " + data)
	if err != nil {
		t.Fatal(err)
	}
	tlsa := rr.(*dns.TLSA)
	if tlsa.Verify(chain[0]) == nil {
		t.Log("dns.TLSA.Verify now ignores case")
	}
	lookup := func(_ context.Context, name string) ([]*dns.TLSA, bool, error) {
		if name != "_25._tcp."+mxHost+"." {
			return nil, false, nil
		}
		return []*dns.TLSA{tlsa}, true, nil
	}
	f := CheckDANE(context.Background(), lookup, "MX1.example.com.", 0, []PresentedChain{session("ipv4", chain)}, time.Now())
	if f.State != DANEMatched || f.Reason != probes.ReasonOK || f.Records[0].Data != data {
		t.Errorf("facts = %+v", f)
	}
}

// TestDANEEENoChecks: DANE-EE ignores names, expiry and the issuer.
func TestDANEEENoChecks(t *testing.T) {
	leaf := chainOf(probestest.ExpiredSelfSigned(t, "some.other.name"))
	f := facts([]TLSARecord{record(UsageDANEEE, SelectorSPKI, MatchSHA256, leaf[0])}, true, time.Now(), session("", leaf))
	if f.State != DANEMatched || f.Reason != probes.ReasonOK {
		t.Errorf("facts = %+v", f)
	}
}

func TestDANETAChecks(t *testing.T) {
	ca := probestest.NewCA(t)
	other := probestest.NewCA(t)
	now := time.Now()
	taRecord := record(UsageDANETA, SelectorSPKI, MatchSHA256, ca.Cert)
	tests := []struct {
		name    string
		chain   []*x509.Certificate
		names   []string
		wantErr string // empty: a match
	}{
		{"good", chainOf(ca.Valid(t, mxHost)), []string{mxHost}, ""},
		{"wildcard", chainOf(ca.Valid(t, "*.example.com")), []string{mxHost}, ""},
		{"second reference name", chainOf(ca.Valid(t, "example.com")), []string{mxHost, "example.com"}, ""},
		{"wrong name", chainOf(ca.Valid(t, "mail.example.net")), []string{mxHost}, "valid for mail.example.net, not mx1.example.com"},
		{"expired leaf", chainOf(ca.Expired(t, mxHost)), []string{mxHost}, "expired"},
		{"anchor not sent", chainOf(ca.Valid(t, mxHost))[:1], []string{mxHost}, "no usable TLSA record matches"},
		{"other CA", chainOf(other.Valid(t, mxHost)), []string{mxHost}, "no usable TLSA record matches"},
		{"anchor sent but leaf from elsewhere", append(chainOf(other.Valid(t, mxHost))[:1], ca.Cert), []string{mxHost}, "does not chain"},
		{"no certificate", nil, []string{mxHost}, "requires TLS"},
	}
	for _, tt := range tests {
		i, err := MatchTLSA([]TLSARecord{taRecord}, tt.chain, tt.names, now)
		if tt.wantErr == "" {
			if err != nil || i != 0 {
				t.Errorf("%s: MatchTLSA = %d, %v; want a match", tt.name, i, err)
			}
			continue
		}
		if err == nil || i != -1 || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: MatchTLSA = %d, %v; want an error with %q", tt.name, i, err, tt.wantErr)
		}
	}
}

// TestDANETAIntermediate: the anchor may be an intermediate of the chain,
// and a leaf matched by a DANE-TA record is its own anchor.
func TestDANETAIntermediate(t *testing.T) {
	root := probestest.NewCA(t)
	inter := intermediate(t, root)
	chain := chainOf(inter.Valid(t, mxHost))
	if len(chain) != 2 || chain[1].Subject.CommonName != "probestest intermediate" {
		t.Fatalf("chain: %v", chain)
	}
	now := time.Now()
	for _, r := range []TLSARecord{
		record(UsageDANETA, SelectorCert, MatchSHA512, chain[1]),
		record(UsageDANETA, SelectorSPKI, MatchFull, chain[0]),
	} {
		if i, err := MatchTLSA([]TLSARecord{r}, chain, []string{mxHost}, now); err != nil || i != 0 {
			t.Errorf("%s: MatchTLSA = %d, %v", r, i, err)
		}
	}
	// The root is not in the chain the server sends.
	if i, err := MatchTLSA([]TLSARecord{record(UsageDANETA, SelectorCert, MatchSHA256, root.Cert)}, chain, []string{mxHost}, now); err == nil {
		t.Errorf("root not sent: MatchTLSA = %d, want no match", i)
	}
}

// intermediate makes a CA signed by root, for chains of three.
func intermediate(t *testing.T, root *probestest.CA) *probestest.CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "probestest intermediate"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(1, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.Cert, key.Public(), root.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &probestest.CA{Cert: cert, Key: key}
}

func TestDANEUnusable(t *testing.T) {
	ca := probestest.NewCA(t)
	chain := chainOf(ca.Valid(t, mxHost))
	leaf := chain[0]
	now := time.Now()
	good := record(UsageDANEEE, SelectorSPKI, MatchSHA256, leaf)
	short := good
	short.Data = good.Data[:62]
	badHex := good
	badHex.Data = "zz" + good.Data[2:]
	unusable := []TLSARecord{
		record(UsagePKIXTA, SelectorCert, MatchSHA256, ca.Cert),
		record(UsagePKIXEE, SelectorSPKI, MatchSHA256, leaf),
		record(4, SelectorSPKI, MatchSHA256, leaf),
		{Usage: UsageDANEEE, Selector: 2, MatchingType: MatchSHA256, Data: good.Data},
		{Usage: UsageDANEEE, Selector: SelectorSPKI, MatchingType: 3, Data: good.Data},
		{Usage: UsageDANEEE, Selector: SelectorSPKI, MatchingType: MatchFull, Data: ""},
		short,
		badHex,
	}
	for _, r := range unusable {
		if r.Usable() == nil {
			t.Errorf("%s: usable, want unusable", r)
		}
		if i, err := MatchTLSA([]TLSARecord{r}, chain, []string{mxHost}, now); err == nil {
			t.Errorf("%s: MatchTLSA = %d, want no match", r, i)
		}
	}

	// Unusable records that would match the chain make no mismatch: the
	// host simply has no usable DANE (RFC 7672 §3.1.3).
	f := facts(unusable, true, now, session("ipv4", chain))
	if f.State != DANEUnusable || f.Reason != probes.ReasonOK || f.Usable != 0 || len(f.Records) != len(unusable) {
		t.Errorf("only unusable: %+v", f)
	}

	// With a usable record beside them only that one counts.
	rotated := chainOf(ca.Valid(t, mxHost))
	f = facts(append(unusable, good), true, now, session("ipv4", chain), session("ipv6", rotated))
	if f.Usable != 1 || f.State != DANEMismatch || f.Reason != ReasonDANEMismatch {
		t.Fatalf("mixed: %+v", f)
	}
	if f.Sessions[0].Matched != len(unusable) || f.Sessions[1].Matched != -1 || !strings.Contains(f.Error, mxHost) {
		t.Errorf("mixed sessions: %+v, error %q", f.Sessions, f.Error)
	}
}

func TestDANEUnauthenticated(t *testing.T) {
	ca := probestest.NewCA(t)
	chain := chainOf(ca.Valid(t, mxHost))
	other := chainOf(ca.Valid(t, mxHost))
	r := record(UsageDANEEE, SelectorSPKI, MatchSHA256, chain[0])
	// A mismatching record without DNSSEC is no DANE, so no failure.
	f := facts([]TLSARecord{r}, false, time.Now(), session("", other))
	if f.State != DANEUnauthenticated || f.Reason != probes.ReasonOK || f.Usable != 0 || len(f.Sessions) != 0 || len(f.Records) != 1 {
		t.Errorf("facts = %+v", f)
	}
}

func TestCheckDANELookup(t *testing.T) {
	ca := probestest.NewCA(t)
	chain := chainOf(ca.Valid(t, mxHost))
	var asked string
	tests := []struct {
		name       string
		lookup     TLSALookup
		wantState  string
		wantReason probes.Reason
	}{
		{"no records", func(_ context.Context, name string) ([]*dns.TLSA, bool, error) {
			asked = name
			return nil, true, nil
		}, DANEAbsent, probes.ReasonOK},
		{"NXDOMAIN as error", func(context.Context, string) ([]*dns.TLSA, bool, error) {
			return nil, false, &net.DNSError{Err: "no such host", IsNotFound: true}
		}, DANEAbsent, probes.ReasonOK},
		{"bogus", func(context.Context, string) ([]*dns.TLSA, bool, error) {
			return nil, false, reasonErr{"dnssec_bogus"}
		}, DANEAbsent, "dnssec_bogus"},
		{"SERVFAIL", func(context.Context, string) ([]*dns.TLSA, bool, error) {
			return nil, false, fmt.Errorf("SERVFAIL")
		}, DANEAbsent, probes.ReasonDNS},
		{"mismatch", func(context.Context, string) ([]*dns.TLSA, bool, error) {
			return []*dns.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Certificate: strings.Repeat("00", 32)}}, true, nil
		}, DANEMismatch, ReasonDANEMismatch},
	}
	for _, tt := range tests {
		f := CheckDANE(context.Background(), tt.lookup, mxHost, 2525, []PresentedChain{session("", chain)}, time.Now())
		if f.State != tt.wantState || f.Reason != tt.wantReason {
			t.Errorf("%s: facts = %+v", tt.name, f)
		}
		if (f.Reason == probes.ReasonOK) != (f.Error == "") {
			t.Errorf("%s: Reason %q with Error %q", tt.name, f.Reason, f.Error)
		}
	}
	if asked != "_2525._tcp.mx1.example.com." {
		t.Errorf("looked up %q", asked)
	}
	if got := TLSAName("MX.Example.com.", 0); got != "_25._tcp.mx.example.com." {
		t.Errorf("TLSAName = %q", got)
	}
}

// TestDANENoSession: usable records but no session to compare them with
// (every address of the MX unreachable) is not a match.
func TestDANENoSession(t *testing.T) {
	ca := probestest.NewCA(t)
	leaf := chainOf(ca.Valid(t, mxHost))[0]
	f := facts([]TLSARecord{record(UsageDANEEE, SelectorSPKI, MatchSHA256, leaf)}, true, time.Now())
	if f.State != DANENotChecked || f.Reason != probes.ReasonOK || f.Usable != 1 {
		t.Errorf("facts = %+v", f)
	}
}
