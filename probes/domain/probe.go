package domain

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/miekg/dns"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/smtp"
)

// mxParallel bounds the MX sessions (and the per-address and per-host
// lookups) in flight: enough that a domain with a few dead addresses
// does not spend its timeout waiting on them one by one, few enough not
// to look like a scan to the domain's servers.
const mxParallel = 4

// policyPortKey holds, in tests only, the port the MTA-STS policy is
// fetched from instead of 443 (an httptest server listens elsewhere).
type policyPortKey struct{}

// Probe checks the mail domain target with the domain module m
// (ARCHITECTURE.md §3); the package doc says what each check judges and
// how the run is decided.
func Probe(ctx context.Context, target string, m probes.Module, logger log.Logger) *probes.Result {
	// The module's slices are shared with every other run of it, and
	// SetDefaults normalises some in place.
	m.Domain.DNSBLZones = slices.Clone(m.Domain.DNSBLZones)
	m.Domain.IPProtocols = slices.Clone(m.Domain.IPProtocols)
	m.SetDefaults()
	if logger == nil {
		logger = log.NewNopLogger()
	}
	res := &probes.Result{
		Target: target, Start: time.Now(), Success: true, Reason: probes.ReasonOK,
		Domain: &probes.DomainFacts{MX: []probes.MXHostFacts{}, Checks: []probes.DomainCheck{}, Details: map[probes.Phase]any{},
			AddressLabels: m.Domain.AddressLabels},
	}
	ctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	r := &run{m: &m, d: &m.Domain, res: res, facts: res.Domain, logger: logger, withheld: map[*probes.MXAddressFacts]bool{}}
	r.run(ctx, target)
	r.withhold()
	if !res.Success && res.Reason == probes.ReasonTimeout && errors.Is(ctx.Err(), context.Canceled) && !errors.Is(res.Err, context.Canceled) {
		res.Err = fmt.Errorf("%w: %w", context.Canceled, res.Err)
	}
	res.Duration = time.Since(res.Start)
	return res
}

// run is one domain run's state.
type run struct {
	m      *probes.Module
	d      *probes.DomainModule
	res    *probes.Result
	facts  *probes.DomainFacts
	logger log.Logger

	domain   string
	resolver *Resolver
	mx       probes.Module // the MX sessions' module
	roots    *x509.CertPool
	// sessions holds each MX address's session result, parallel to the
	// addresses of facts.MX, for the TLS chains.
	sessions [][]*probes.Result
	// hostErrs holds, per MX host, the first failure of its address
	// lookups.
	hostErrs []error
	// noMX: the checks that need MX hosts do not run (null MX, or the MX
	// lookup failed); nullMX: nor TLS-RPT, pointless for a domain that
	// takes no mail.
	noMX, nullMX bool
	// stop: nothing further runs (the domain does not exist, or the
	// module cannot run at all).
	stop bool
	// withheld are the addresses the dial check refused (an ad hoc
	// caller's allow-list): neither probed nor looked up further, and
	// left out of the output, which must not tell the caller where names
	// it chose point.
	mu       sync.Mutex
	withheld map[*probes.MXAddressFacts]bool
}

func (r *run) isWithheld(a *probes.MXAddressFacts) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.withheld[a]
}

// withhold blanks the refused addresses once every check has run.
func (r *run) withhold() {
	for i := range r.facts.MX {
		for j := range r.facts.MX[i].Addresses {
			if a := &r.facts.MX[i].Addresses[j]; r.withheld[a] {
				a.Address = ""
			}
		}
	}
}

func (r *run) run(ctx context.Context, target string) {
	domain, _, err := probes.SplitTarget(target, r.m)
	if err == nil {
		err = r.setup()
	}
	if err != nil {
		// The exporter's own configuration problem, not the domain's.
		r.record(probes.PhaseMX, time.Now(), probes.DomainCheck{Result: probes.CheckError, Reason: probes.ReasonOther, Detail: err.Error()})
		return
	}
	r.domain = strings.ToLower(domain)
	checks := map[probes.Phase]func(context.Context) probes.DomainCheck{
		probes.PhaseMX:  r.checkMX,
		probes.PhasePTR: r.checkPTR,
		probes.PhaseSPF: func(ctx context.Context) probes.DomainCheck {
			f := CheckSPF(ctx, r.resolver, r.domain, r.sendingIPs())
			return r.keep(probes.PhaseSPF, f, f.Check)
		},
		probes.PhaseDMARC: func(ctx context.Context) probes.DomainCheck {
			f := CheckDMARC(ctx, r.resolver, r.domain)
			return r.keep(probes.PhaseDMARC, f, f.Check)
		},
		probes.PhaseDKIM: func(ctx context.Context) probes.DomainCheck {
			f := CheckDKIM(ctx, r.resolver, r.domain, r.d.DKIMSelectors)
			return r.keep(probes.PhaseDKIM, f, f.Check)
		},
		probes.PhaseMTASTS: r.checkMTASTS,
		probes.PhaseTLSRPT: func(ctx context.Context) probes.DomainCheck {
			f := CheckTLSRPT(ctx, r.resolver, r.domain)
			return r.keep(probes.PhaseTLSRPT, f, f.Check)
		},
		probes.PhaseDANE:  r.checkDANE,
		probes.PhaseDNSBL: r.checkDNSBL,
	}
	needMX := map[probes.Phase]bool{probes.PhasePTR: true, probes.PhaseMTASTS: true, probes.PhaseDANE: true}
	for _, p := range r.m.Phases() {
		fn, ok := checks[p]
		if !ok || r.stop || (r.noMX && needMX[p]) || (r.nullMX && p == probes.PhaseTLSRPT) {
			continue
		}
		start := time.Now()
		c := fn(ctx)
		r.record(p, start, c)
	}
}

// setup builds the resolver, the MX sessions' module and the trust roots.
func (r *run) setup() error {
	if r.d.MX == nil {
		// A module that did not go through the loader (tests, the probe
		// command's built-ins) runs its MX sessions with its own smtp keys.
		if r.d.MXModule != "" {
			return fmt.Errorf("mx_module %q was not resolved", r.d.MXModule)
		}
		if err := r.m.ResolveMXModule(func(string) (*probes.Module, bool) { return nil, false }); err != nil {
			return err
		}
	}
	r.mx = *r.d.MX
	r.mx.SetDefaults()
	// A bad certificate must not end the session: its verification is
	// still recorded (TLS.Verified) and judged by MTA-STS and DANE.
	r.mx.SMTP.TLSConfig.InsecureSkipVerify = true
	r.mx.SMTP.TLSConfig.ServerName = ""
	f := false
	r.mx.IPProtocolFallback = &f
	// The MTA-STS policy host and the MX certificates are verified against
	// the system's roots, or the MX module's tls_config ca_file when set
	// (a private CA, in tests and closed setups).
	if r.d.MX.SMTP.TLSConfig.CAFile != "" {
		tc := r.d.MX.SMTP.TLSConfig
		cfg, err := probes.ClientTLSConfig(&tc)
		if err != nil {
			return fmt.Errorf("mx tls_config: %w", err)
		}
		r.roots = cfg.RootCAs
	}
	res, err := NewResolver(ResolverConfig{Server: r.d.DNSServer, AttemptTimeout: r.d.DNSTimeout})
	if err != nil {
		return err
	}
	r.resolver = res
	return nil
}

// record adds check c of phase p to the facts and the phases; a fail or
// error verdict fails the run if nothing failed it before.
func (r *run) record(p probes.Phase, start time.Time, c probes.DomainCheck) {
	c.Name = p
	r.facts.Checks = append(r.facts.Checks, c)
	pr := &probes.PhaseResult{Phase: p, Duration: time.Since(start), Reason: c.Reason}
	failed := c.Result == probes.CheckFail || c.Result == probes.CheckError
	if failed {
		pr.Err = fmt.Errorf("%s: %s", p, c.Detail)
	}
	r.res.Phases = append(r.res.Phases, pr)
	if d := probes.DebugLogger(r.logger); d != nil {
		d.Log("msg", "domain check", "check", p, "result", c.Result, "reason", c.Reason, "detail", c.Detail)
	}
	if failed && r.res.Success {
		r.res.Success = false
		r.res.FailedPhase, r.res.Reason, r.res.Err = p, c.Reason, pr.Err
		r.res.Temporary = c.Reason.Temporary()
	}
}

// dnsReason maps a lookup's failure onto the taxonomy, telling the kinds
// of DNS failure apart (ARCHITECTURE.md §5); the rest (refused,
// malformed, oversized, CNAME loops, unreachable servers) is dns.
func dnsReason(err error) probes.Reason {
	switch {
	case err == nil:
		return probes.ReasonOK
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return probes.ReasonTimeout
	case errors.Is(err, ErrBogus):
		return probes.ReasonDNSSECBogus
	case errors.Is(err, ErrNXDOMAIN):
		return probes.ReasonDNSNXDomain
	case errors.Is(err, ErrSERVFAIL):
		return probes.ReasonDNSServFail
	}
	return probes.ReasonDNS
}

// reasonError carries a lookup's reason into the checks that take their
// lookups as functions (MTA-STS, DANE), which keep a Reason() method's.
type reasonError struct{ err error }

func (e reasonError) Error() string         { return e.err.Error() }
func (e reasonError) Unwrap() error         { return e.err }
func (e reasonError) Reason() probes.Reason { return dnsReason(e.err) }

func wrapLookup(err error) error { return reasonError{err} }

func fromCheck(c Check) probes.DomainCheck { return domainCheck(c.Result, c.Reason, c.Detail, c.Err) }

func passCheck(detail string) probes.DomainCheck {
	return probes.DomainCheck{Result: probes.CheckPass, Reason: probes.ReasonOK, Detail: detail}
}

// verdictRank orders verdicts from best to worst.
func verdictRank(result string) int {
	switch result {
	case probes.CheckWarn:
		return 1
	case probes.CheckError:
		return 2
	case probes.CheckFail:
		return 3
	}
	return 0
}

// domainCheck converts a verdict, giving a DNS failure its own reason.
func domainCheck(result CheckResult, reason probes.Reason, detail string, err error) probes.DomainCheck {
	if result == ResultError && err != nil {
		reason = dnsReason(err)
	}
	return probes.DomainCheck{Result: string(result), Reason: reason, Detail: detail}
}

// worst folds per-item verdicts into one: fail before error before warn
// before pass, the first of the worst giving reason and detail.
func worst(cs []probes.DomainCheck) probes.DomainCheck {
	out := passCheck("")
	for _, c := range cs {
		if verdictRank(c.Result) > verdictRank(out.Result) {
			out = c
		}
	}
	return out
}

// forEach runs fn(0..n-1) with at most mxParallel at once and returns
// when all are done.
func forEach(n int, fn func(i int)) {
	sem := make(chan struct{}, mxParallel)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

// checkMX walks the MX hosts by preference, each family and address, and
// runs one SMTP session per address.
func (r *run) checkMX(ctx context.Context) probes.DomainCheck {
	ans, err := r.resolver.MX(ctx, r.domain)
	switch {
	case err != nil:
		r.noMX = true
		r.stop = errors.Is(err, ErrNXDOMAIN)
		return domainCheck(ResultError, probes.ReasonDNS, "MX lookup: "+err.Error(), err)
	case ans.Null:
		r.noMX, r.nullMX, r.facts.NullMX = true, true, true
		return probes.DomainCheck{Result: probes.CheckFail, Reason: probes.ReasonNullMX, Detail: "null MX (RFC 7505): the domain accepts no mail"}
	}
	hosts := ans.Hosts
	if len(hosts) == 0 {
		// RFC 5321 §5.1: without MX records the domain itself is the MX.
		r.facts.ImplicitMX = true
		hosts = []*net.MX{{Host: r.domain}}
	}
	hosts = hosts[:min(len(hosts), r.d.MaxMX)]
	r.facts.MX = make([]probes.MXHostFacts, len(hosts))
	r.hostErrs = make([]error, len(hosts))
	forEach(len(hosts), func(i int) {
		r.facts.MX[i], r.hostErrs[i] = r.lookupHost(ctx, hosts[i])
	})
	r.sessions = make([][]*probes.Result, len(hosts))
	type job struct{ host, addr int }
	var jobs []job
	for i := range r.facts.MX {
		r.sessions[i] = make([]*probes.Result, len(r.facts.MX[i].Addresses))
		for j := range r.facts.MX[i].Addresses {
			jobs = append(jobs, job{i, j})
		}
	}
	forEach(len(jobs), func(k int) {
		i, j := jobs[k].host, jobs[k].addr
		r.sessions[i][j] = r.session(ctx, r.facts.MX[i].Host, &r.facts.MX[i].Addresses[j])
	})
	return r.mxVerdict()
}

// lookupHost finds an MX host's addresses, per family, capped, and
// returns the first lookup failure too.
func (r *run) lookupHost(ctx context.Context, mx *net.MX) (probes.MXHostFacts, error) {
	h := probes.MXHostFacts{Host: strings.ToLower(mx.Host), Preference: mx.Pref, Addresses: []probes.MXAddressFacts{}}
	var errs []string
	var first error
	for _, family := range r.d.IPProtocols {
		lookup := r.resolver.A
		if family == "ip6" {
			lookup = r.resolver.AAAA
		}
		addrs, _, err := lookup(ctx, h.Host)
		if err != nil {
			errs = append(errs, err.Error())
			first = cmp.Or(first, err)
			continue
		}
		for _, a := range addrs[:min(len(addrs), r.d.MaxAddresses)] {
			h.Addresses = append(h.Addresses, probes.MXAddressFacts{Address: a.String(), Family: family})
		}
	}
	if len(h.Addresses) == 0 && len(errs) == 0 {
		errs = append(errs, "no "+strings.Join(r.d.IPProtocols, " or ")+" address")
	}
	h.Error = strings.Join(errs, "; ")
	return h, first
}

// session runs one SMTP session to one MX address, pinned to it, and
// fills in a's facts.
func (r *run) session(ctx context.Context, host string, a *probes.MXAddressFacts) *probes.Result {
	ip := netip.MustParseAddr(a.Address)
	if err := probes.CheckDial(ctx, netip.AddrPortFrom(ip, uint16(r.d.MXPort))); err != nil {
		a.Reason, a.Phase, a.Error = probes.ReasonOther, probes.PhaseConnect, "not probed: "+err.Error()
		r.mu.Lock()
		r.withheld[a] = true
		r.mu.Unlock()
		return nil
	}
	m := r.mx
	m.IPProtocol = a.Family
	sctx := probes.WithResolved(ctx, host, []net.IPAddr{{IP: ip.AsSlice()}}, nil)
	target := net.JoinHostPort(host, strconv.Itoa(r.d.MXPort))
	res := smtp.Handshake(sctx, target, m, log.With(r.logger, "mx", host, "address", a.Address))
	a.Duration, a.TLS = res.Duration, res.TLS
	if res.SMTP != nil {
		a.STARTTLSOffered = res.SMTP.STARTTLSOffered
	}
	a.Greeting = greetingName(res)
	// A server that offers no STARTTLS still takes mail: RFC 3207 makes
	// TLS optional, and MTA-STS and DANE judge its absence.
	noTLSOffered := res.FailedPhase == probes.PhaseSTARTTLS && res.Reason == probes.ReasonSTARTTLSUnavailable &&
		res.SMTP != nil && res.SMTP.HelloAnswered && !res.SMTP.STARTTLSOffered
	a.Accepts = res.Success || noTLSOffered
	a.Reason = probes.ReasonOK
	if !a.Accepts {
		a.Reason, a.Phase = res.Reason, res.FailedPhase
		if res.Err != nil {
			a.Error = res.Err.Error()
		}
	}
	return res
}

// greetingName is the host name the server gave itself: the first word
// of its banner, else of its EHLO reply; empty when neither is a name.
func greetingName(res *probes.Result) string {
	for _, p := range []probes.Phase{probes.PhaseBanner, probes.PhaseEHLO} {
		pr := res.Phase(p)
		if pr == nil || len(pr.Replies) == 0 || len(pr.Replies[0].Lines) == 0 {
			continue
		}
		word, _, _ := strings.Cut(strings.TrimSpace(pr.Replies[0].Lines[0]), " ")
		word = strings.TrimSuffix(strings.ToLower(word), ".")
		if isHostName(word) {
			return word
		}
	}
	return ""
}

// isHostName accepts a multi-label LDH host name.
func isHostName(s string) bool {
	if len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !isLDHLabel(l) {
			return false
		}
	}
	return true
}

// mxVerdict: pass when every address of every host accepts; fail
// (mx_unreachable) when none does; warn (mx_unreachable) in between, as
// mail still flows through the others (RFC 5321 §5.1 has senders try
// every MX).
func (r *run) mxVerdict() probes.DomainCheck {
	var accepting, total, refused int
	var broken []string
	var lookupErr error
	for i, h := range r.facts.MX {
		if h.Error != "" {
			broken = append(broken, fmt.Sprintf("%s: %s", h.Host, h.Error))
		}
		lookupErr = cmp.Or(lookupErr, r.hostErrs[i])
		for j, a := range h.Addresses {
			total++
			switch {
			case a.Accepts:
				accepting++
			case r.sessions[i][j] == nil: // the dial check refused it
				refused++
				broken = append(broken, fmt.Sprintf("%s (an address): %s", h.Host, a.Error))
			default:
				broken = append(broken, fmt.Sprintf("%s %s: %s at %s: %s", h.Host, a.Address, a.Reason, a.Phase, a.Error))
			}
		}
	}
	detail := strings.Join(broken, "; ")
	if r.facts.ImplicitMX {
		detail = strings.TrimSuffix("no MX records: the domain's own addresses are its MX (RFC 5321 §5.1); "+detail, "; ")
	}
	switch {
	case total == 0 && lookupErr != nil:
		// No address to try, because DNS failed: undecided.
		return domainCheck(ResultError, probes.ReasonDNS, detail, lookupErr)
	case total > 0 && refused == total:
		return probes.DomainCheck{Result: probes.CheckError, Reason: probes.ReasonOther, Detail: detail}
	case accepting == 0:
		return probes.DomainCheck{Result: probes.CheckFail, Reason: probes.ReasonMXUnreachable, Detail: detail}
	case len(broken) > 0:
		return probes.DomainCheck{Result: probes.CheckWarn, Reason: probes.ReasonMXUnreachable, Detail: detail}
	}
	return passCheck(detail)
}

// checkPTR checks every MX address's reverse DNS against the name its
// server gave itself (the MX host's name when it gave none).
func (r *run) checkPTR(ctx context.Context) probes.DomainCheck {
	type item struct{ host, addr int }
	var items []item
	for i, h := range r.facts.MX {
		for j := range h.Addresses {
			if !r.isWithheld(&h.Addresses[j]) {
				items = append(items, item{i, j})
			}
		}
	}
	all := make([]*PTRFacts, len(items))
	forEach(len(items), func(k int) {
		h := &r.facts.MX[items[k].host]
		a := &h.Addresses[items[k].addr]
		name := a.Greeting
		if name == "" {
			name = h.Host
		}
		all[k] = CheckPTR(ctx, r.resolver, netip.MustParseAddr(a.Address), name)
	})
	cs := make([]probes.DomainCheck, len(all))
	for k, f := range all {
		cs[k] = fromCheck(f.Check)
		a := &r.facts.MX[items[k].host].Addresses[items[k].addr]
		a.PTR, a.PTRReason = cs[k].Result, cs[k].Reason
	}
	r.facts.Details[probes.PhasePTR] = all
	return worst(cs)
}

// keep records a check's typed facts as its details and returns its
// verdict.
func (r *run) keep(p probes.Phase, facts any, c Check) probes.DomainCheck {
	r.facts.Details[p] = facts
	return fromCheck(c)
}

// sendingIPs are the module's sending_ips (validated at load).
func (r *run) sendingIPs() []netip.Addr {
	var out []netip.Addr
	for _, s := range r.d.SendingIPs {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// presented are the chains of the sessions that would take mail (nil
// chains for those that offered no STARTTLS), by MX host index; the
// sessions that failed are the mx check's.
func (r *run) presented(i int) []PresentedChain {
	var out []PresentedChain
	h := r.facts.MX[i]
	for j, a := range h.Addresses {
		if !a.Accepts {
			continue
		}
		pc := PresentedChain{Host: h.Host, Label: a.Family}
		if r.d.AddressLabels {
			pc.Label = a.Address
		}
		if res := r.sessions[i][j]; res != nil && res.TLS != nil {
			pc.Chain = res.TLS.Peer
		}
		out = append(out, pc)
	}
	return out
}

// checkMTASTS fetches and judges the MTA-STS policy against the MX hosts
// and, in enforce mode, their certificates. A policy in testing mode that
// misses an MX is a warn: senders report but still deliver.
func (r *run) checkMTASTS(ctx context.Context) probes.DomainCheck {
	c := MTASTSCheck{
		Domain: r.domain,
		LookupTXT: func(ctx context.Context, name string) ([]string, error) {
			txts, _, err := r.resolver.TXT(ctx, name)
			if IsNotFound(err) {
				return nil, nil
			}
			if err != nil {
				return nil, wrapLookup(err)
			}
			return txts, nil
		},
		HTTP:  HTTPOptions{TLSConfig: &tls.Config{RootCAs: r.roots, MinVersion: tls.VersionTLS12}, DialContext: r.dialPolicy},
		Roots: r.roots,
		Now:   time.Now(),
	}
	for i, h := range r.facts.MX {
		c.MX = append(c.MX, h.Host)
		c.Sessions = append(c.Sessions, r.presented(i)...)
	}
	f := CheckMTASTS(ctx, c)
	r.facts.Details[probes.PhaseMTASTS] = f
	if f.Policy != nil {
		r.facts.MTASTSMode = f.Policy.Mode
		r.facts.MTASTSMaxAge = time.Duration(f.Policy.MaxAge) * time.Second
	}
	r.facts.MTASTSPolicyID = f.ID
	switch f.Reason {
	case probes.ReasonOK:
		if !f.RecordFound {
			return passCheck("no _mta-sts record: the domain does not publish MTA-STS")
		}
		return passCheck("")
	case ReasonMTASTSInvalid, ReasonMTASTSCert:
		return probes.DomainCheck{Result: probes.CheckFail, Reason: f.Reason, Detail: f.Error}
	case ReasonMTASTSMXMismatch:
		result := probes.CheckFail
		if f.Policy != nil && f.Policy.Mode == ModeTesting {
			result = probes.CheckWarn
		}
		return probes.DomainCheck{Result: result, Reason: f.Reason, Detail: f.Error}
	}
	return probes.DomainCheck{Result: probes.CheckError, Reason: f.Reason, Detail: f.Error}
}

// dialPolicy connects to the policy host (mta-sts.<domain>), resolved
// through the module's resolver, every address passing the dial check.
func (r *run) dialPolicy(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if p, ok := ctx.Value(policyPortKey{}).(int); ok {
		port = strconv.Itoa(p)
	}
	portNum, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", port, err)
	}
	var errs []error
	for _, family := range r.d.IPProtocols {
		lookup := r.resolver.A
		if family == "ip6" {
			lookup = r.resolver.AAAA
		}
		addrs, _, err := lookup(ctx, host)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, a := range addrs[:min(len(addrs), r.d.MaxAddresses)] {
			ap := netip.AddrPortFrom(a, uint16(portNum))
			if err := probes.CheckDial(ctx, ap); err != nil {
				errs = append(errs, fmt.Errorf("an address of the policy host not dialled: %w", err))
				continue
			}
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, ap.String())
			if err == nil {
				return conn, nil
			}
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s has no address", host))
	}
	return nil, errors.Join(errs...)
}

// checkDANE matches each MX host's sessions against its TLSA records.
// Records without DNSSEC validation, or none usable for SMTP, are a warn:
// senders ignore them, so the host has no DANE though it looks as if it
// had.
func (r *run) checkDANE(ctx context.Context) probes.DomainCheck {
	lookup := func(ctx context.Context, name string) ([]*dns.TLSA, bool, error) {
		recs, ad, err := r.resolver.TLSA(ctx, name)
		if IsNotFound(err) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, wrapLookup(err)
		}
		return recs, ad, nil
	}
	all := make([]*DANEFacts, len(r.facts.MX))
	forEach(len(all), func(i int) {
		// The TLSA name is the one senders ask, at port 25 (RFC 7672
		// §2.2), whatever port mx_port points the sessions at.
		all[i] = CheckDANE(ctx, lookup, r.facts.MX[i].Host, 25, r.presented(i), time.Now())
	})
	cs := make([]probes.DomainCheck, len(all))
	for i, f := range all {
		r.facts.MX[i].DANE = f.State
		switch {
		case f.Reason == ReasonDANEMismatch:
			cs[i] = probes.DomainCheck{Result: probes.CheckFail, Reason: f.Reason, Detail: f.Error}
		case f.Reason != probes.ReasonOK:
			cs[i] = probes.DomainCheck{Result: probes.CheckError, Reason: f.Reason, Detail: f.Error}
		case f.State == DANEUnauthenticated:
			cs[i] = probes.DomainCheck{Result: probes.CheckWarn, Reason: probes.ReasonOK, Detail: "MX " + f.Host + ": TLSA records not DNSSEC-validated (no AD bit): senders ignore them"}
		case f.State == DANEUnusable:
			cs[i] = probes.DomainCheck{Result: probes.CheckWarn, Reason: probes.ReasonOK, Detail: "MX " + f.Host + ": no TLSA record usable for SMTP"}
		default:
			cs[i] = passCheck("")
		}
	}
	r.facts.Details[probes.PhaseDANE] = all
	return worst(cs)
}

// checkDNSBL looks the MX addresses and the sending IPs up in the zones.
func (r *run) checkDNSBL(ctx context.Context) probes.DomainCheck {
	seen := map[netip.Addr]bool{}
	var addrs []netip.Addr
	add := func(a netip.Addr) {
		if a = a.Unmap(); !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	for _, h := range r.facts.MX {
		for j := range h.Addresses {
			if a := &h.Addresses[j]; !r.isWithheld(a) {
				add(netip.MustParseAddr(a.Address))
			}
		}
	}
	for _, a := range r.sendingIPs() {
		add(a)
	}
	if len(addrs) == 0 {
		return passCheck("no address to look up")
	}
	f := CheckDNSBL(ctx, r.resolver, addrs, r.d.DNSBLZones)
	return r.keep(probes.PhaseDNSBL, f, f.Check)
}
