package domain

import (
	"errors"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

// CheckName names a check. The values are the domain prober's phases
// (ARCHITECTURE.md §4) and metric label values: a fixed set.
type CheckName string

// The checks of this package; MTA-STS, DANE and the MX walk add theirs.
const (
	NamePTR    CheckName = "ptr"
	NameSPF    CheckName = "spf"
	NameDMARC  CheckName = "dmarc"
	NameDKIM   CheckName = "dkim"
	NameTLSRPT CheckName = "tls_rpt"
	NameDNSBL  CheckName = "dnsbl"
)

// CheckResult is a check's verdict, a metric label value from a fixed
// set.
type CheckResult string

const (
	// ResultPass: the record is there and sound.
	ResultPass CheckResult = "pass"
	// ResultWarn: sound enough to work, but something an operator should
	// look at (SPF "+all").
	ResultWarn CheckResult = "warn"
	// ResultFail: the record is missing, invalid or says something wrong
	// (listed on a blocklist).
	ResultFail CheckResult = "fail"
	// ResultError: the check could not decide, because DNS failed.
	ResultError CheckResult = "error"
)

// AllCheckResults lists every verdict, for pre-declared series.
var AllCheckResults = []CheckResult{ResultPass, ResultWarn, ResultFail, ResultError}

// Reasons the checks of this package fail with (issue 10's taxonomy).
// They are probes/reason.go's, named here too for the checks' code.
//
// Merged, as one reason means one thing to an operator:
//   - no SPF record, several, or a syntax error: spf_invalid (receivers
//     treat them alike: none or permerror);
//   - no DMARC record, several, or an unparseable one: dmarc_missing
//     (receivers apply no DMARC policy in each case, RFC 7489 §6.6.3);
//   - no TLS-RPT record, several, or an invalid one: tls_rpt_missing (no
//     reports are sent, RFC 8460 §3);
//   - a DKIM key missing, unparseable, revoked or too weak:
//     dkim_key_invalid (signatures with that selector fail).
const (
	ReasonPTRMissing        = probes.ReasonPTRMissing
	ReasonPTRMismatch       = probes.ReasonPTRMismatch
	ReasonSPFInvalid        = probes.ReasonSPFInvalid
	ReasonSPFTooManyLookups = probes.ReasonSPFTooManyLookups
	ReasonDMARCMissing      = probes.ReasonDMARCMissing
	ReasonDKIMKeyInvalid    = probes.ReasonDKIMKeyInvalid
	ReasonTLSRPTMissing     = probes.ReasonTLSRPTMissing
	ReasonDNSSECBogus       = probes.ReasonDNSSECBogus
	ReasonBlocklisted       = probes.ReasonBlocklisted
)

// Check is one check's verdict: what one Result carries per check
// (Result.Domain.Checks, beside each check's typed facts), so that the
// collector maps every check to one gauge {check, result} with one
// function.
type Check struct {
	Name   CheckName     `json:"name"`
	Result CheckResult   `json:"result"`
	Reason probes.Reason `json:"reason"`
	// Detail says what was wrong, for people: DNS data and names, never a
	// secret (none is involved in DNS).
	Detail string `json:"detail,omitempty"`
	// Err is the DNS failure behind ResultError.
	Err error `json:"-"`
}

func pass(name CheckName) Check {
	return Check{Name: name, Result: ResultPass, Reason: probes.ReasonOK}
}

func fail(name CheckName, reason probes.Reason, detail string) Check {
	return Check{Name: name, Result: ResultFail, Reason: reason, Detail: detail}
}

// dnsError is the verdict of a check that DNS failed.
func dnsError(name CheckName, err error) Check {
	return Check{Name: name, Result: ResultError, Reason: ReasonFor(err), Detail: err.Error(), Err: err}
}

// ReasonFor maps a lookup's failure to a reason: timeout, dnssec_bogus,
// or dns for the rest (NXDOMAIN where a name must exist, SERVFAIL,
// refused, malformed, oversized, CNAME loops). The typed *Error keeps
// the distinction for the output.
func ReasonFor(err error) probes.Reason {
	switch {
	case err == nil:
		return probes.ReasonOK
	case errors.Is(err, ErrTimeout):
		return probes.ReasonTimeout
	case errors.Is(err, ErrBogus):
		return ReasonDNSSECBogus
	}
	return probes.ReasonDNS
}
