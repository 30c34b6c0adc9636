package domain

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// TLSRPTFacts is what the TLS-RPT check learned.
type TLSRPTFacts struct {
	Check Check `json:"check"`
	// Record is the domain's TLS-RPT record, and Records how many were
	// found (one is right).
	Record  string `json:"record,omitempty"`
	Records int    `json:"records"`
	// RUA are where reports go, from a valid record.
	RUA []string `json:"rua,omitempty"`
}

// CheckTLSRPT checks the TLS-RPT record at _smtp._tls.<domain> (RFC
// 8460 §3): exactly one record starting "v=TLSRPTv1;", with rua= naming
// mailto: or https: URIs. Anything else means no reports are sent, so
// every failure is tls_rpt_missing.
func CheckTLSRPT(ctx context.Context, r *Resolver, domain string) *TLSRPTFacts {
	facts := &TLSRPTFacts{}
	facts.Check = checkTLSRPT(ctx, r, domain, facts)
	return facts
}

func checkTLSRPT(ctx context.Context, r *Resolver, domain string, facts *TLSRPTFacts) Check {
	txts, _, err := r.TXT(ctx, "_smtp._tls."+domain)
	if err != nil && !IsNotFound(err) {
		return dnsError(NameTLSRPT, err)
	}
	var records []string
	for _, t := range txts {
		// RFC 8460 §3: records not beginning "v=TLSRPTv1;" are discarded.
		if strings.HasPrefix(t, "v=TLSRPTv1;") || t == "v=TLSRPTv1" {
			records = append(records, t)
		}
	}
	facts.Records = len(records)
	switch len(records) {
	case 0:
		return fail(NameTLSRPT, ReasonTLSRPTMissing, "no v=TLSRPTv1 record at _smtp._tls."+domain)
	case 1:
	default:
		return fail(NameTLSRPT, ReasonTLSRPTMissing, fmt.Sprintf("%d TLS-RPT records: senders use none (RFC 8460 §3)", len(records)))
	}
	facts.Record = records[0]
	rua, err := parseTLSRPT(records[0])
	if err != nil {
		return fail(NameTLSRPT, ReasonTLSRPTMissing, "invalid TLS-RPT record: "+err.Error())
	}
	facts.RUA = rua
	return pass(NameTLSRPT)
}

// parseTLSRPT checks a TLS-RPT record against RFC 8460 §3's ABNF and
// returns its rua URIs.
func parseTLSRPT(record string) ([]string, error) {
	fields := strings.Split(record, ";")
	if strings.TrimRight(fields[0], " \t") != "v=TLSRPTv1" {
		return nil, errors.New(`the record does not start with "v=TLSRPTv1"`)
	}
	var rua []string
	seenRUA := false
	for i, field := range fields[1:] {
		field = strings.Trim(field, " \t")
		if field == "" {
			if i == len(fields)-2 {
				break // a trailing delimiter
			}
			return nil, errors.New("empty field")
		}
		name, value, ok := strings.Cut(field, "=")
		if !ok || !isTLSRPTExtName(name) {
			return nil, fmt.Errorf("malformed field %q", field)
		}
		if name != "rua" {
			if err := checkTLSRPTExtValue(value); err != nil {
				return nil, fmt.Errorf("field %s: %w", name, err)
			}
			continue
		}
		if seenRUA {
			return nil, errors.New("rua given twice")
		}
		seenRUA = true
		for _, u := range strings.Split(value, ",") {
			u = strings.Trim(u, " \t")
			if err := checkTLSRPTURI(u); err != nil {
				return nil, err
			}
			rua = append(rua, u)
		}
	}
	if !seenRUA {
		return nil, errors.New("no rua= field")
	}
	return rua, nil
}

// checkTLSRPTURI: a mailto: address or an https: URL (RFC 8460 §3).
func checkTLSRPTURI(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("rua %q: %v", s, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "mailto":
		local, domain, ok := strings.Cut(u.Opaque, "@")
		if !ok || local == "" || domain == "" {
			return fmt.Errorf("rua %q: not a mail address", s)
		}
	case "https":
		if u.Host == "" {
			return fmt.Errorf("rua %q: no host", s)
		}
	default:
		return fmt.Errorf("rua %q: the scheme is neither mailto nor https", s)
	}
	return nil
}

// isTLSRPTExtName: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".").
func isTLSRPTExtName(s string) bool {
	if s == "" || len(s) > 32 || (!isAlpha(s[0]) && !isDigit(s[0])) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// checkTLSRPTExtValue: 1*(%x21-3A / %x3C / %x3E-7E).
func checkTLSRPTExtValue(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '=' {
			return fmt.Errorf("invalid character %q", c)
		}
	}
	return nil
}
