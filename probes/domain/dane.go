package domain

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

// ReasonDANEMismatch: the MX's TLSA records are DNSSEC-validated and
// usable, and none matches the chain its server presented, so
// DANE-validating senders do not deliver to it (RFC 7672 §2.2). It moves to
// probes/reason.go when the prober is wired.
const ReasonDANEMismatch = probes.ReasonDANEMismatch

// TLSA certificate usages, selectors and matching types (RFC 6698 §2.1,
// RFC 7218 acronyms).
const (
	UsagePKIXTA  = 0
	UsagePKIXEE  = 1
	UsageDANETA  = 2
	UsageDANEEE  = 3
	SelectorCert = 0
	SelectorSPKI = 1
	MatchFull    = 0
	MatchSHA256  = 1
	MatchSHA512  = 2
)

// DANE states of one MX host, a fixed set fit for a label.
const (
	// DANEAbsent: no TLSA records at _25._tcp.<mx>.
	DANEAbsent = "absent"
	// DANEUnauthenticated: TLSA records whose answer was not
	// DNSSEC-validated. Senders must ignore them (RFC 7672 §2.2), so the
	// host is not DANE-protected; the records are kept as facts.
	DANEUnauthenticated = "unauthenticated"
	// DANEUnusable: validated records, none of them usable for SMTP
	// (RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1), unknown parameters,
	// malformed data); senders fall back to unauthenticated TLS.
	DANEUnusable = "unusable"
	// DANENotChecked: usable records, but no session reached the point of
	// TLS to compare them with (the MX check tells why).
	DANENotChecked = "not_checked"
	// DANEMatched: every session's chain matched a usable record.
	DANEMatched = "matched"
	// DANEMismatch: some session's chain matched no usable record.
	DANEMismatch = "mismatch"
)

// TLSALookup returns the TLSA records at name and whether the answer was
// DNSSEC-validated: the AD bit of a validating resolver the exporter
// trusts, as RFC 7672 §2.1 and RFC 6698 §4.1 require. A name without
// records is an empty answer and a nil error; errors follow TXTLookup's
// rules (a Reason() method keeps e.g. dnssec_bogus).
type TLSALookup func(ctx context.Context, name string) (records []*dns.TLSA, authenticated bool, err error)

// TLSARecord is one TLSA record as plain data.
type TLSARecord struct {
	Usage        uint8 `json:"usage"`
	Selector     uint8 `json:"selector"`
	MatchingType uint8 `json:"matching_type"`
	// Data is the certificate association data in hex, as published.
	Data string `json:"data"`
}

// TLSAFromDNS converts a miekg/dns record.
func TLSAFromDNS(rr *dns.TLSA) TLSARecord {
	return TLSARecord{Usage: rr.Usage, Selector: rr.Selector, MatchingType: rr.MatchingType, Data: rr.Certificate}
}

// String is the record's presentation form, e.g. "3 1 1 ab12…".
func (r TLSARecord) String() string {
	return fmt.Sprintf("%d %d %d %s", r.Usage, r.Selector, r.MatchingType, r.Data)
}

// TLSAName is the owner name of an MX host's TLSA records (RFC 7672 §2.2).
func TLSAName(host string, port int) string {
	if port == 0 {
		port = 25
	}
	return "_" + strconv.Itoa(port) + "._tcp." + dns.Fqdn(normalizeHost(host))
}

// DANEFacts is what the DANE check learned about one MX host. Plain data:
// it can move into probes as a per-MX list of the domain facts.
type DANEFacts struct {
	Host          string       `json:"host"`
	Authenticated bool         `json:"authenticated"`
	Records       []TLSARecord `json:"records,omitempty"`
	// Usable counts the records a sender may use (RFC 7672 §3.1).
	Usable   int           `json:"usable"`
	State    string        `json:"state"`
	Sessions []DANESession `json:"sessions,omitempty"`
	Reason   probes.Reason `json:"reason"`
	Error    string        `json:"error,omitempty"`
}

// DANESession is the match of one session's chain against the records.
type DANESession struct {
	Label string `json:"label,omitempty"`
	// Matched is the index in DANEFacts.Records of the record that
	// matched, -1 for none.
	Matched int    `json:"matched"`
	Error   string `json:"error,omitempty"`
}

// CheckDANE looks up the TLSA records of an MX host and matches each of
// the host's sessions against them. The TLSA base domain is the MX host
// itself; it is also the reference identifier for DANE-TA name checks.
func CheckDANE(ctx context.Context, lookup TLSALookup, host string, port int, sessions []PresentedChain, now time.Time) *DANEFacts {
	f := &DANEFacts{Host: host, State: DANEAbsent, Reason: probes.ReasonOK}
	rrs, authenticated, err := lookup(ctx, TLSAName(host, port))
	if err != nil && !isNotFound(err) {
		f.Reason, f.Error = lookupReason(err), fmt.Sprintf("TLSA lookup: %v", err)
		return f
	}
	records := make([]TLSARecord, 0, len(rrs))
	for _, rr := range rrs {
		records = append(records, TLSAFromDNS(rr))
	}
	f.evaluate(records, authenticated, sessions, now)
	return f
}

// evaluate fills the facts from records already looked up.
func (f *DANEFacts) evaluate(records []TLSARecord, authenticated bool, sessions []PresentedChain, now time.Time) {
	f.Records, f.Authenticated = records, authenticated
	switch {
	case len(records) == 0:
		f.State = DANEAbsent
		return
	case !authenticated:
		f.State = DANEUnauthenticated
		return
	}
	for _, r := range records {
		if r.Usable() == nil {
			f.Usable++
		}
	}
	if f.Usable == 0 {
		f.State = DANEUnusable
		return
	}
	f.State = DANENotChecked
	for _, s := range sessions {
		i, err := MatchTLSA(records, s.Chain, []string{f.Host}, now)
		ds := DANESession{Label: s.Label, Matched: i}
		switch {
		case err == nil && f.State == DANENotChecked:
			f.State = DANEMatched
		case err != nil && f.State != DANEMismatch:
			f.State, f.Reason = DANEMismatch, ReasonDANEMismatch
			f.Error = fmt.Sprintf("MX %s: %v", f.Host, err)
		}
		if err != nil {
			ds.Error = err.Error()
		}
		f.Sessions = append(f.Sessions, ds)
	}
}

// Usable reports why a record cannot be used for SMTP, or nil
// (RFC 7672 §3.1: usages 2 and 3, selectors 0 and 1, matching types 0, 1
// and 2, data that decodes and has the digest's length).
func (r TLSARecord) Usable() error {
	switch {
	case r.Usage == UsagePKIXTA || r.Usage == UsagePKIXEE:
		return fmt.Errorf("TLSA %d %d %d: PKIX usages are unusable for SMTP (RFC 7672 §3.1.3)", r.Usage, r.Selector, r.MatchingType)
	case r.Usage != UsageDANETA && r.Usage != UsageDANEEE:
		return fmt.Errorf("TLSA %d %d %d: unknown usage", r.Usage, r.Selector, r.MatchingType)
	case r.Selector != SelectorCert && r.Selector != SelectorSPKI:
		return fmt.Errorf("TLSA %d %d %d: unknown selector", r.Usage, r.Selector, r.MatchingType)
	}
	data, err := r.data()
	if err != nil {
		return fmt.Errorf("TLSA %d %d %d: data is not hex", r.Usage, r.Selector, r.MatchingType)
	}
	want := map[uint8]int{MatchSHA256: 32, MatchSHA512: 64}
	switch n, digest := want[r.MatchingType]; {
	case r.MatchingType == MatchFull && len(data) == 0:
		return fmt.Errorf("TLSA %d %d 0: empty data", r.Usage, r.Selector)
	case r.MatchingType != MatchFull && !digest:
		return fmt.Errorf("TLSA %d %d %d: unknown matching type", r.Usage, r.Selector, r.MatchingType)
	case digest && len(data) != n:
		return fmt.Errorf("TLSA %d %d %d: digest of %d bytes, want %d", r.Usage, r.Selector, r.MatchingType, len(data), n)
	}
	return nil
}

// data decodes the association data, whatever the case of its hex digits
// and blanks left from a zone file.
func (r TLSARecord) data() ([]byte, error) {
	return hex.DecodeString(strings.Join(strings.Fields(r.Data), ""))
}

// matches reports whether the record's data is cert's (selector, matching
// type) association. miekg/dns computes it; the comparison decodes both
// sides, as dns.TLSA.Verify compares hex strings case-sensitively and a
// record parsed from a zone file keeps upper-case digits.
func (r TLSARecord) matches(cert *x509.Certificate) bool {
	want, err := r.data()
	if err != nil {
		return false
	}
	assoc, err := dns.CertificateToDANE(r.Selector, r.MatchingType, cert)
	if err != nil {
		return false
	}
	got, err := hex.DecodeString(assoc)
	return err == nil && string(got) == string(want)
}

// MatchTLSA returns the index of the first usable record that the chain
// satisfies, or -1 and why none did. dns.TLSA.Verify only compares one
// certificate with one record; the usages are implemented here:
//
//   - DANE-EE(3) matches the leaf alone: no name, expiry or chain check
//     (RFC 7672 §3.1.1);
//   - DANE-TA(2) matches a certificate of the presented chain (the leaf
//     included) that the leaf chains to, with expiry checked along that
//     chain and the leaf valid for one of names (RFC 7672 §3.1.2, §3.2.2).
//     The trust anchor must be in the chain: a bare public key ("2 1 0"
//     with the anchor left out) is not matched.
func MatchTLSA(records []TLSARecord, chain []*x509.Certificate, names []string, now time.Time) (int, error) {
	if len(chain) == 0 {
		return -1, errors.New("no certificate presented: DANE requires TLS (RFC 7672 §2.2)")
	}
	var taErr error
	for i, r := range records {
		if r.Usable() != nil {
			continue
		}
		switch r.Usage {
		case UsageDANEEE:
			if r.matches(chain[0]) {
				return i, nil
			}
		case UsageDANETA:
			err := matchTA(r, chain, names, now)
			if err == nil {
				return i, nil
			}
			if taErr == nil || errors.Is(taErr, errNoAnchor) {
				taErr = err // why an anchor failed says more than "none matched"
			}
		}
	}
	if taErr != nil && !errors.Is(taErr, errNoAnchor) {
		return -1, fmt.Errorf("no usable TLSA record matches the presented chain: %w", taErr)
	}
	return -1, errors.New("no usable TLSA record matches the presented chain")
}

var errNoAnchor = errors.New("no certificate in the chain matches")

// matchTA checks a DANE-TA record: some certificate of the chain matches
// it, the leaf chains up to that certificate, and the leaf carries one of
// names.
func matchTA(r TLSARecord, chain []*x509.Certificate, names []string, now time.Time) error {
	lastErr := errNoAnchor
	for i, ta := range chain {
		if !r.matches(ta) {
			continue
		}
		if err := chainsTo(chain, i, now); err != nil {
			lastErr = fmt.Errorf("TLSA %d %d %d matches certificate %d, but the leaf does not chain to it: %w", r.Usage, r.Selector, r.MatchingType, i, err)
			continue
		}
		if err := verifyNames(chain[0], names); err != nil {
			return fmt.Errorf("TLSA %d %d %d: %w", r.Usage, r.Selector, r.MatchingType, err)
		}
		return nil
	}
	return lastErr
}

// chainsTo verifies the leaf up to chain[ta] as the only root. Any
// extended key usage is accepted: RFC 7672 asks for none.
func chainsTo(chain []*x509.Certificate, ta int, now time.Time) error {
	roots := x509.NewCertPool()
	roots.AddCert(chain[ta])
	inter := x509.NewCertPool()
	for j, c := range chain[1:] {
		if j+1 != ta {
			inter.AddCert(c)
		}
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}

// verifyNames checks the leaf against the reference identifiers: the MX
// host, wildcards allowed in the leftmost label (RFC 7672 §3.2.3).
func verifyNames(leaf *x509.Certificate, names []string) error {
	var err error
	for _, n := range names {
		if err = leaf.VerifyHostname(normalizeHost(n)); err == nil {
			return nil
		}
	}
	if err == nil {
		return errors.New("no name to check the certificate against")
	}
	return err
}
