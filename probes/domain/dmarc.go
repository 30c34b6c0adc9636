package domain

import (
	"context"
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"
)

// DMARCFacts is what the DMARC check learned about a domain's policy.
type DMARCFacts struct {
	Check Check `json:"check"`
	// Domain is where the record was found: the domain itself, or its
	// organisational domain when Inherited.
	Domain string `json:"domain,omitempty"`
	// Inherited: the domain has no record of its own, and its
	// organisational domain's applies (RFC 7489 §6.6.3), through sp.
	Inherited bool   `json:"inherited"`
	Record    string `json:"record,omitempty"`
	// Records is how many DMARC records were found there (one is right).
	Records int `json:"records"`
	// Policy (p), SubdomainPolicy (sp, empty when absent) and Percent
	// (pct, 100 when absent) of a valid record.
	Policy          string `json:"policy,omitempty"`
	SubdomainPolicy string `json:"subdomain_policy,omitempty"`
	Percent         int    `json:"percent"`
	// RUA are the aggregate report addresses; reports are requested when
	// there is one.
	RUA []string `json:"rua,omitempty"`
}

// CheckDMARC checks the DMARC record of domain: at _dmarc.<domain>, or
// else at _dmarc.<organisational domain>, exactly one, parsed by
// go-msgauth's dmarc package.
//
// The organisational domain is the public suffix plus one label
// (golang.org/x/net/publicsuffix, the list compiled into the binary):
// RFC 7489 §3.2's definition, without the tree walk of DMARCbis, which
// gives the same answer for the domains mail is sent from.
func CheckDMARC(ctx context.Context, r *Resolver, domain string) *DMARCFacts {
	facts := &DMARCFacts{}
	facts.Check = checkDMARC(ctx, r, strings.TrimSuffix(strings.ToLower(domain), "."), facts)
	return facts
}

func checkDMARC(ctx context.Context, r *Resolver, domain string, facts *DMARCFacts) Check {
	records, err := dmarcRecords(ctx, r, domain)
	facts.Domain = domain
	if err == nil && len(records) == 0 {
		if org, oerr := publicsuffix.EffectiveTLDPlusOne(domain); oerr == nil && org != domain {
			records, err = dmarcRecords(ctx, r, org)
			if len(records) > 0 {
				facts.Domain, facts.Inherited = org, true
			}
		}
	}
	facts.Records = len(records)
	switch {
	case err != nil:
		return dnsError(NameDMARC, err)
	case len(records) == 0:
		return fail(NameDMARC, ReasonDMARCMissing, "no DMARC record at _dmarc."+domain)
	case len(records) > 1:
		return fail(NameDMARC, ReasonDMARCMissing, fmt.Sprintf("%d DMARC records at _dmarc.%s: receivers apply none (RFC 7489 §6.6.3)", len(records), facts.Domain))
	}
	facts.Record = records[0]
	rec, err := dmarc.Parse(records[0])
	if err != nil {
		return fail(NameDMARC, ReasonDMARCMissing, "invalid DMARC record: "+err.Error())
	}
	facts.Policy = string(rec.Policy)
	facts.SubdomainPolicy = string(rec.SubdomainPolicy)
	facts.Percent = 100
	if rec.Percent != nil {
		facts.Percent = *rec.Percent
	}
	facts.RUA = rec.ReportURIAggregate
	return pass(NameDMARC)
}

// dmarcRecords returns the DMARC records at _dmarc.<domain>: the TXT
// records whose first tag is v=DMARC1 (RFC 7489 §6.6.3, step 3). A name
// that does not exist has none.
func dmarcRecords(ctx context.Context, r *Resolver, domain string) ([]string, error) {
	txts, _, err := r.TXT(ctx, "_dmarc."+domain)
	if err != nil {
		return nil, ignoreNotFound(err)
	}
	var out []string
	for _, t := range txts {
		if isDMARCRecord(t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// isDMARCRecord: dmarc-version = "v" *WSP "=" *WSP "DMARC1", the first
// tag, ended by ";" or the end of the record.
func isDMARCRecord(txt string) bool {
	first, _, _ := strings.Cut(txt, ";")
	name, value, ok := strings.Cut(first, "=")
	return ok && strings.TrimRight(name, " \t") == "v" && strings.Trim(value, " \t") == "DMARC1"
}
