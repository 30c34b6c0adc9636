package domain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"blitiri.com.ar/go/spf"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

// RFC 7208 §4.6.4: at most 10 terms that cause DNS queries, and at most
// 2 of those answered with nothing ("void lookups").
const (
	spfMaxLookups     = 10
	spfMaxVoidLookups = 2
)

// SPFFacts is what the SPF check learned about a domain's record.
type SPFFacts struct {
	Check Check `json:"check"`
	// Record is the domain's v=spf1 record, when it has exactly one.
	Record string `json:"record,omitempty"`
	// Records is how many v=spf1 records the domain publishes (one is
	// right).
	Records int `json:"records"`
	// Lookups counts the terms that cause DNS queries (include, a, mx,
	// ptr, exists, redirect) through includes and redirects, as far as
	// the walk got: it stops past the limit. Terms whose domain holds a
	// macro count once and are not followed.
	Lookups int `json:"lookups"`
	// VoidLookups counts the a, mx, exists, include and redirect targets
	// (without macros) that answered with no record.
	VoidLookups int `json:"void_lookups"`
	// All is the record's catch-all, qualifier included ("-all", "~all",
	// "?all", "+all"), following redirects; empty when there is none
	// (the result then defaults to neutral).
	All string `json:"all,omitempty"`
	// Evaluations are the results for the module's sending IPs.
	Evaluations []SPFEvaluation `json:"evaluations,omitempty"`
}

// SPFEvaluation is the SPF result for one sending IP, as a receiver
// would compute it for mail from postmaster@<domain>.
type SPFEvaluation struct {
	IP     netip.Addr `json:"ip"`
	Result string     `json:"result"` // pass, fail, softfail, neutral, none, temperror, permerror
	Detail string     `json:"detail,omitempty"`
}

// CheckSPF checks domain's SPF record: exactly one, valid, within the
// lookup limits, and, for each of sendingIPs, evaluated to pass by
// blitiri.com.ar/go/spf through r.
func CheckSPF(ctx context.Context, r *Resolver, domain string, sendingIPs []netip.Addr) *SPFFacts {
	facts := &SPFFacts{}
	facts.Check = checkSPF(ctx, r, domain, sendingIPs, facts)
	return facts
}

func checkSPF(ctx context.Context, r *Resolver, domain string, sendingIPs []netip.Addr, facts *SPFFacts) Check {
	records, err := spfRecords(ctx, r, domain)
	facts.Records = len(records)
	switch {
	case err != nil && !IsNotFound(err):
		return dnsError(NameSPF, err)
	case len(records) == 0:
		return fail(NameSPF, ReasonSPFInvalid, "no v=spf1 record")
	case len(records) > 1:
		return fail(NameSPF, ReasonSPFInvalid, fmt.Sprintf("%d v=spf1 records (RFC 7208 §4.5: permerror)", len(records)))
	}
	facts.Record = records[0]
	rec, err := parseSPF(records[0])
	if err != nil {
		return fail(NameSPF, ReasonSPFInvalid, err.Error())
	}
	w := &spfWalk{r: r, facts: facts}
	if check, done := w.run(ctx, domain, rec); done {
		return check
	}
	if check, done := evaluateSPF(ctx, r, domain, sendingIPs, facts); done {
		return check
	}
	if facts.All == "+all" {
		c := fail(NameSPF, ReasonSPFInvalid, "+all authorises every host on the Internet")
		c.Result = ResultWarn
		return c
	}
	return pass(NameSPF)
}

// spfRecords returns the TXT records of domain that are SPF records
// (RFC 7208 §4.5: "v=spf1" alone or followed by a space, in any case).
func spfRecords(ctx context.Context, r *Resolver, domain string) ([]string, error) {
	txts, _, err := r.TXT(ctx, domain)
	var out []string
	for _, t := range txts {
		if len(t) >= 6 && strings.EqualFold(t[:6], "v=spf1") && (len(t) == 6 || t[6] == ' ') {
			out = append(out, t)
		}
	}
	return out, err
}

// spfWalk counts the DNS-querying terms of a record and of everything it
// includes or redirects to.
type spfWalk struct {
	r     *Resolver
	facts *SPFFacts
}

// errSPFLimit stops the walk once a limit is past: the verdict is known.
var errSPFLimit = errors.New("past the limit")

// run walks rec and returns the verdict when the walk decided one.
func (w *spfWalk) run(ctx context.Context, domain string, rec *spfRecord) (Check, bool) {
	w.facts.All = rec.all
	err := w.walk(ctx, domain, rec, true)
	var invalid *spfInvalidError
	switch {
	case err == nil:
		return Check{}, false
	case errors.Is(err, errSPFLimit):
		return fail(NameSPF, ReasonSPFTooManyLookups, fmt.Sprintf("%d DNS lookups and %d void lookups (limits %d and %d, RFC 7208 §4.6.4)",
			w.facts.Lookups, w.facts.VoidLookups, spfMaxLookups, spfMaxVoidLookups)), true
	case errors.As(err, &invalid):
		return fail(NameSPF, ReasonSPFInvalid, invalid.Error()), true
	}
	return dnsError(NameSPF, err), true
}

// spfInvalidError is a permerror found in an included or redirected-to
// record.
type spfInvalidError struct{ msg string }

func (e *spfInvalidError) Error() string { return e.msg }

func (w *spfWalk) walk(ctx context.Context, domain string, rec *spfRecord, top bool) error {
	for _, t := range rec.terms {
		if t.mechanism == "all" || t.mechanism == "ip4" || t.mechanism == "ip6" {
			continue
		}
		if err := w.count(); err != nil {
			return err
		}
		target := t.domain
		if target == "" {
			target = domain
		}
		if hasMacro(target) {
			continue // depends on the sender; counted, not followed
		}
		var err error
		switch t.mechanism {
		case "include":
			err = w.follow(ctx, target, "include:"+target, false)
		case "a":
			err = w.voidIfEmpty(ctx, target, w.hasAddress)
		case "exists":
			err = w.voidIfEmpty(ctx, target, w.hasA)
		case "mx":
			err = w.voidIfEmpty(ctx, target, w.hasMX)
		}
		if err != nil {
			return err
		}
	}
	if rec.redirect == "" || rec.all != "" {
		return nil // RFC 7208 §6.1: redirect is ignored when there is "all"
	}
	if err := w.count(); err != nil {
		return err
	}
	if hasMacro(rec.redirect) {
		return nil
	}
	return w.follow(ctx, rec.redirect, "redirect="+rec.redirect, top)
}

func (w *spfWalk) count() error {
	w.facts.Lookups++
	if w.facts.Lookups > spfMaxLookups {
		return errSPFLimit
	}
	return nil
}

// follow walks the record an include or redirect names; a target without
// exactly one valid record is a permerror (RFC 7208 §5.2, §6.1).
func (w *spfWalk) follow(ctx context.Context, target, term string, redirect bool) error {
	records, err := spfRecords(ctx, w.r, target)
	if err != nil && !IsNotFound(err) {
		return err
	}
	if len(records) == 0 {
		if err := w.void(); err != nil {
			return err
		}
		return &spfInvalidError{term + ": no SPF record there (permerror)"}
	}
	if len(records) > 1 {
		return &spfInvalidError{fmt.Sprintf("%s: %d SPF records there (permerror)", term, len(records))}
	}
	rec, err := parseSPF(records[0])
	if err != nil {
		return &spfInvalidError{term + ": " + err.Error()}
	}
	if redirect && w.facts.All == "" {
		// The redirected-to record decides the result, and its "all".
		w.facts.All = rec.all
	}
	return w.walk(ctx, target, rec, redirect)
}

func (w *spfWalk) void() error {
	w.facts.VoidLookups++
	if w.facts.VoidLookups > spfMaxVoidLookups {
		return errSPFLimit
	}
	return nil
}

func (w *spfWalk) voidIfEmpty(ctx context.Context, target string, has func(context.Context, string) (bool, error)) error {
	found, err := has(ctx, target)
	if err != nil {
		return err
	}
	if !found {
		return w.void()
	}
	return nil
}

// hasAddress: "a" is void only when neither family answers.
func (w *spfWalk) hasAddress(ctx context.Context, name string) (bool, error) {
	if ok, err := w.hasA(ctx, name); ok || err != nil {
		return ok, err
	}
	addrs, _, err := w.r.AAAA(ctx, name)
	return len(addrs) > 0, ignoreNotFound(err)
}

func (w *spfWalk) hasA(ctx context.Context, name string) (bool, error) {
	addrs, _, err := w.r.A(ctx, name)
	return len(addrs) > 0, ignoreNotFound(err)
}

func (w *spfWalk) hasMX(ctx context.Context, name string) (bool, error) {
	mx, err := w.r.MX(ctx, name)
	return len(mx.Hosts) > 0, ignoreNotFound(err)
}

func ignoreNotFound(err error) error {
	if IsNotFound(err) {
		return nil
	}
	return err
}

// evaluateSPF evaluates the record for each sending IP; any result but
// pass decides the check.
func evaluateSPF(ctx context.Context, r *Resolver, domain string, sendingIPs []netip.Addr, facts *SPFFacts) (Check, bool) {
	var verdict *Check
	for _, ip := range sendingIPs {
		result, err := spf.CheckHostWithSender(net.IP(ip.AsSlice()), domain, "postmaster@"+domain,
			spf.WithContext(ctx), spf.WithResolver(spfResolver{r}))
		ev := SPFEvaluation{IP: ip, Result: string(result)}
		if result != spf.Pass && err != nil {
			ev.Detail = err.Error()
		}
		facts.Evaluations = append(facts.Evaluations, ev)
		if result == spf.Pass || verdict != nil {
			continue
		}
		c := spfEvaluationCheck(ip, result, err)
		verdict = &c
	}
	if verdict == nil {
		return Check{}, false
	}
	return *verdict, true
}

func spfEvaluationCheck(ip netip.Addr, result spf.Result, err error) Check {
	detail := fmt.Sprintf("%s: %s", ip, result)
	if err != nil {
		detail += " (" + err.Error() + ")"
	}
	switch {
	case errors.Is(err, spf.ErrLookupLimitReached), errors.Is(err, spf.ErrVoidLookupLimitReached):
		return fail(NameSPF, ReasonSPFTooManyLookups, detail)
	case result == spf.PermError:
		return fail(NameSPF, ReasonSPFInvalid, detail)
	case result == spf.TempError:
		c := fail(NameSPF, probes.ReasonDNS, detail)
		c.Result, c.Err = ResultError, err
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsTimeout {
			c.Reason = probes.ReasonTimeout
		}
		return c
	}
	// fail, softfail, neutral, none: receivers do not take the sending
	// IP as authorised.
	return fail(NameSPF, probes.ReasonSPF, detail)
}

// spfResolver lets go/spf ask through our Resolver. The library tells
// errors apart by *net.DNSError's flags (IsNotFound: no record, void;
// else temperror), so our errors are translated to those.
type spfResolver struct{ r *Resolver }

func (s spfResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txt, _, err := s.r.TXT(ctx, name)
	return txt, netDNSError(name, err, len(txt))
}

func (s spfResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mx, err := s.r.MX(ctx, name)
	return mx.Hosts, netDNSError(name, err, len(mx.Hosts))
}

func (s spfResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	v4, _, err4 := s.r.A(ctx, host)
	v6, _, err6 := s.r.AAAA(ctx, host)
	var out []net.IPAddr
	for _, a := range append(v4, v6...) {
		out = append(out, net.IPAddr{IP: net.IP(a.AsSlice())})
	}
	err := err4
	if err == nil || IsNotFound(err) {
		err = err6
	}
	if len(out) > 0 {
		err = nil
	}
	return out, netDNSError(host, err, len(out))
}

func (s spfResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip, perr := netip.ParseAddr(addr)
	if perr != nil {
		return nil, &net.DNSError{Err: perr.Error(), Name: addr}
	}
	names, _, err := s.r.PTR(ctx, ip)
	for i, n := range names {
		names[i] = n + "."
	}
	return names, netDNSError(addr, err, len(names))
}

// netDNSError translates a lookup's outcome to what net.Resolver would
// return: NXDOMAIN and empty answers are "not found", the rest temporary.
func netDNSError(name string, err error, n int) error {
	switch {
	case err == nil && n > 0:
		return nil
	case err == nil, IsNotFound(err):
		return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return &net.DNSError{Err: err.Error(), Name: name, IsTimeout: errors.Is(err, ErrTimeout), IsTemporary: true}
}

// spfRecord is a parsed SPF record: its mechanisms in order and the
// modifiers that matter here.
type spfRecord struct {
	terms    []spfTerm
	all      string // the qualified "all", e.g. "-all"; "" when absent
	redirect string
}

type spfTerm struct {
	qualifier byte   // '+', '-', '~' or '?'
	mechanism string // lower case: all, include, a, mx, ptr, ip4, ip6, exists
	domain    string // the domain-spec, when given
}

// parseSPF checks an SPF record against RFC 7208 §4.6.1 and §12's ABNF
// (mechanisms, modifiers, macros, CIDR lengths) and returns its terms.
func parseSPF(record string) (*spfRecord, error) {
	if len(record) < 6 || !strings.EqualFold(record[:6], "v=spf1") || (len(record) > 6 && record[6] != ' ') {
		return nil, errors.New(`the record does not start with "v=spf1 "`)
	}
	rec := &spfRecord{}
	seen := map[string]bool{}
	for _, term := range strings.Split(record[6:], " ") {
		if term == "" {
			continue
		}
		if name, value, ok := spfModifier(term); ok {
			if err := parseSPFModifier(rec, seen, name, value); err != nil {
				return nil, fmt.Errorf("%q: %w", term, err)
			}
			continue
		}
		t, err := parseSPFMechanism(term)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", term, err)
		}
		if t.mechanism == "all" && rec.all == "" {
			rec.all = string(t.qualifier) + "all"
		}
		rec.terms = append(rec.terms, t)
	}
	return rec, nil
}

// spfModifier splits a term name=value when it is a modifier: the name
// is ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ), followed by "=".
func spfModifier(term string) (name, value string, ok bool) {
	i := strings.IndexByte(term, '=')
	if i <= 0 || !isAlpha(term[0]) {
		return "", "", false
	}
	for j := 1; j < i; j++ {
		c := term[j]
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' && c != '.' {
			return "", "", false
		}
	}
	return strings.ToLower(term[:i]), term[i+1:], true
}

func parseSPFModifier(rec *spfRecord, seen map[string]bool, name, value string) error {
	switch name {
	case "redirect", "exp":
		if seen[name] {
			return errors.New("modifier given twice (RFC 7208 §6)")
		}
		seen[name] = true
		if err := checkDomainSpec(value); err != nil {
			return err
		}
		if name == "redirect" {
			rec.redirect = value
		}
		return nil
	}
	// Unknown modifiers are ignored, but must still be macro-strings.
	return checkMacroString(value, false)
}

func parseSPFMechanism(term string) (spfTerm, error) {
	t := spfTerm{qualifier: '+'}
	if strings.IndexByte("+-~?", term[0]) >= 0 {
		t.qualifier, term = term[0], term[1:]
	}
	name, arg := term, ""
	hasArg := false
	if i := strings.IndexAny(term, ":/"); i >= 0 {
		name, arg, hasArg = term[:i], term[i:], true
	}
	t.mechanism = strings.ToLower(name)
	switch t.mechanism {
	case "all":
		if hasArg {
			return t, errors.New("all takes no argument")
		}
	case "include", "exists":
		if !strings.HasPrefix(arg, ":") {
			return t, fmt.Errorf("%s needs a domain", t.mechanism)
		}
		t.domain = arg[1:]
		return t, checkDomainSpec(t.domain)
	case "ptr":
		if hasArg {
			if !strings.HasPrefix(arg, ":") {
				return t, errors.New("ptr takes no CIDR length")
			}
			t.domain = arg[1:]
			return t, checkDomainSpec(t.domain)
		}
	case "a", "mx":
		return t, parseSPFHostArg(&t, arg)
	case "ip4", "ip6":
		return t, checkSPFNetwork(t.mechanism, arg)
	default:
		return t, errors.New("unknown mechanism")
	}
	return t, nil
}

// parseSPFHostArg parses a/mx's [":" domain-spec] [dual-cidr-length].
func parseSPFHostArg(t *spfTerm, arg string) error {
	cidr := arg
	if strings.HasPrefix(arg, ":") {
		spec := arg[1:]
		cidr = ""
		// The CIDR length starts at the first "/" outside a macro (a
		// domain-spec has "/" only as a macro delimiter).
		if i := slashOutsideMacro(spec); i >= 0 {
			spec, cidr = spec[:i], spec[i:]
		}
		t.domain = spec
		if err := checkDomainSpec(spec); err != nil {
			return err
		}
	}
	if cidr == "" {
		return nil
	}
	v4, v6, dual := strings.Cut(cidr, "//")
	if strings.HasPrefix(cidr, "//") {
		v4, v6, dual = "", cidr[2:], true
	}
	if v4 != "" {
		if err := checkCIDRLength(strings.TrimPrefix(v4, "/"), 32, strings.HasPrefix(v4, "/")); err != nil {
			return err
		}
	}
	if dual {
		return checkCIDRLength(v6, 128, true)
	}
	return nil
}

func slashOutsideMacro(s string) int {
	inMacro := false
	for i := 0; i < len(s); i++ {
		switch {
		case inMacro:
			inMacro = s[i] != '}'
		case s[i] == '%' && i+1 < len(s) && s[i+1] == '{':
			inMacro = true
		case s[i] == '/':
			return i
		}
	}
	return -1
}

// checkCIDRLength: ip4-cidr-length = "/" ("0" / %x31-39 0*1DIGIT), at
// most max.
func checkCIDRLength(s string, max int, slash bool) error {
	n, err := strconv.Atoi(s)
	if !slash || err != nil || n > max || !allDigits(s) || (len(s) > 1 && s[0] == '0') {
		return fmt.Errorf("invalid CIDR length %q (0-%d)", s, max)
	}
	return nil
}

func checkSPFNetwork(mechanism, arg string) error {
	if !strings.HasPrefix(arg, ":") {
		return fmt.Errorf("%s needs an address", mechanism)
	}
	addr, length, hasLength := strings.Cut(arg[1:], "/")
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Zone() != "" {
		return fmt.Errorf("invalid address %q", addr)
	}
	max := 32
	if mechanism == "ip6" {
		max = 128
	}
	if (mechanism == "ip4") != ip.Is4() {
		return fmt.Errorf("%s with address %q of the other family", mechanism, addr)
	}
	if hasLength {
		return checkCIDRLength(length, max, true)
	}
	return nil
}

// checkDomainSpec checks a domain-spec: a macro-string that, unless it
// ends in a macro, ends in a top label (RFC 7208 §7.1's domain-end).
func checkDomainSpec(spec string) error {
	if spec == "" {
		return errors.New("empty domain")
	}
	if err := checkMacroString(spec, false); err != nil {
		return err
	}
	if strings.HasSuffix(spec, "}") {
		return nil
	}
	labels := strings.Split(strings.TrimSuffix(spec, "."), ".")
	top := labels[len(labels)-1]
	if len(labels) < 2 || !isTopLabel(top) {
		return fmt.Errorf("domain %q does not end in a top-level label", spec)
	}
	return nil
}

// isTopLabel: toplabel = ( *alphanum ALPHA *alphanum ) /
// ( 1*alphanum "-" *( alphanum / "-" ) alphanum ).
func isTopLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	letter := false
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case isAlpha(c):
			letter = true
		case isDigit(c):
		case c == '-':
			letter = true // the second form: a hyphen inside
		default:
			return false
		}
	}
	return letter
}

// checkMacroString checks RFC 7208 §7.1's macro-string: literal
// characters %x21-24 / %x26-7E and macros %{letter digits [r] delims},
// %%, %_ and %-. The letters c, r and t belong to exp only.
func checkMacroString(s string, exp bool) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e {
			return fmt.Errorf("invalid character %q", c)
		}
		if c != '%' {
			continue
		}
		if i+1 >= len(s) {
			return errors.New("% at the end")
		}
		switch s[i+1] {
		case '%', '_', '-':
			i++
			continue
		case '{':
		default:
			return fmt.Errorf("invalid macro %q", s[i:i+2])
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return errors.New("unterminated macro")
		}
		if err := checkMacro(s[i+2:i+end], exp); err != nil {
			return err
		}
		i += end
	}
	return nil
}

// checkMacro checks the inside of %{...}: macro-letter *DIGIT ["r"]
// *delimiter.
func checkMacro(m string, exp bool) error {
	if m == "" {
		return errors.New("empty macro")
	}
	letter := m[0] | 0x20
	switch {
	case strings.IndexByte("slodiphv", letter) >= 0:
	case strings.IndexByte("crt", letter) >= 0 && exp:
	default:
		return fmt.Errorf("invalid macro letter %q", m[0])
	}
	rest := m[1:]
	for rest != "" && isDigit(rest[0]) {
		rest = rest[1:]
	}
	if digits := m[1 : len(m)-len(rest)]; digits != "" {
		if n, err := strconv.Atoi(digits); err != nil || n == 0 || n > 128 {
			return fmt.Errorf("invalid macro transformer %q", digits)
		}
	}
	if rest != "" && (rest[0]|0x20) == 'r' {
		rest = rest[1:]
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(".-+,/_=", rest[i]) < 0 {
			return fmt.Errorf("invalid macro delimiter %q", rest[i])
		}
	}
	return nil
}

func hasMacro(s string) bool { return strings.Contains(s, "%{") }

func isAlpha(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }
