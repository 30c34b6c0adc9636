package domain

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// maxPTRNames bounds the PTR names forward-resolved for one address; an
// address has one in practice, and receivers look at few.
const maxPTRNames = 10

// PTRFacts is what the PTR check learned about one address.
type PTRFacts struct {
	Check   Check      `json:"check"`
	Address netip.Addr `json:"address"`
	// Names are the address's PTR names; Confirmed those of them whose
	// A or AAAA records hold the address again (forward-confirmed
	// reverse DNS).
	Names     []string `json:"names,omitempty"`
	Confirmed []string `json:"confirmed,omitempty"`
	// Host is the name the server gives itself (banner or EHLO), when
	// known; HostMatches says a confirmed name is that host.
	Host        string `json:"host,omitempty"`
	HostMatches bool   `json:"host_matches"`
}

// CheckPTR checks addr's reverse DNS: a PTR exists (else ptr_missing),
// one of its names resolves back to addr, and, when host is given, that
// name is host (else ptr_mismatch). Receivers reject on each.
func CheckPTR(ctx context.Context, r *Resolver, addr netip.Addr, host string) *PTRFacts {
	facts := &PTRFacts{Address: addr.Unmap(), Host: strings.TrimSuffix(host, ".")}
	facts.Check = checkPTR(ctx, r, facts)
	return facts
}

func checkPTR(ctx context.Context, r *Resolver, facts *PTRFacts) Check {
	names, _, err := r.PTR(ctx, facts.Address)
	if err != nil && !IsNotFound(err) {
		return dnsError(NamePTR, err)
	}
	if len(names) == 0 {
		return fail(NamePTR, ReasonPTRMissing, "no PTR record for "+facts.Address.String())
	}
	facts.Names = names
	var forwardErr error
	for _, name := range names[:min(len(names), maxPTRNames)] {
		ok, err := resolvesTo(ctx, r, name, facts.Address)
		if err != nil && forwardErr == nil {
			forwardErr = err
		}
		if ok {
			facts.Confirmed = append(facts.Confirmed, name)
		}
	}
	if len(facts.Confirmed) == 0 {
		if forwardErr != nil {
			return dnsError(NamePTR, forwardErr)
		}
		return fail(NamePTR, ReasonPTRMismatch, fmt.Sprintf("PTR %s does not resolve back to %s", strings.Join(names, ", "), facts.Address))
	}
	if facts.Host == "" {
		return pass(NamePTR)
	}
	facts.HostMatches = slices.ContainsFunc(facts.Confirmed, func(n string) bool { return strings.EqualFold(n, facts.Host) })
	if !facts.HostMatches {
		return fail(NamePTR, ReasonPTRMismatch, fmt.Sprintf("PTR %s, but the server calls itself %s", strings.Join(facts.Confirmed, ", "), facts.Host))
	}
	return pass(NamePTR)
}

// resolvesTo reports whether name's addresses of addr's family hold addr.
// A name that does not exist simply does not.
func resolvesTo(ctx context.Context, r *Resolver, name string, addr netip.Addr) (bool, error) {
	lookup := r.A
	if addr.Is6() {
		lookup = r.AAAA
	}
	addrs, _, err := lookup(ctx, name)
	if err != nil {
		return false, ignoreNotFound(err)
	}
	return slices.Contains(addrs, addr), nil
}
