package domain

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

// Reasons of the MTA-STS check. They are probes/reason.go's
// (ARCHITECTURE.md §5), named here too.
const (
	// ReasonMTASTSInvalid: the _mta-sts record or the policy is malformed,
	// or the policy cannot be fetched over verified HTTPS.
	ReasonMTASTSInvalid = probes.ReasonMTASTSInvalid
	// ReasonMTASTSMXMismatch: an MX host is covered by no mx: pattern of a
	// policy in enforce or testing mode.
	ReasonMTASTSMXMismatch = probes.ReasonMTASTSMXMismatch
	// ReasonMTASTSCert: under an enforce policy, an MX presented a
	// certificate that does not verify for its MX name.
	ReasonMTASTSCert = probes.ReasonMTASTSCert
)

// PolicyMaxBytes caps the policy body. RFC 8461 sets no limit; real
// policies are a few hundred bytes, so 64 KiB is generous while keeping a
// hostile server from streaming into memory.
const PolicyMaxBytes = 64 << 10

// MaxAgeLimit is the largest max_age RFC 8461 §3.2 allows (about a year).
const MaxAgeLimit = 31557600

// Policy modes (RFC 8461 §5).
const (
	ModeEnforce = "enforce"
	ModeTesting = "testing"
	ModeNone    = "none"
)

// TXTLookup returns the TXT records at name, one string per record with the
// record's character-strings concatenated (RFC 7208 §3.3 style). A name that
// does not exist or has no TXT records is an empty answer and a nil error;
// a *net.DNSError with IsNotFound is taken the same way, so that
// net.Resolver.LookupTXT plugs in as is. Any other error is a failed lookup;
// an error that has a Reason() probes.Reason method (a resolver telling
// SERVFAIL, timeout and DNSSEC bogus apart) keeps that reason.
type TXTLookup func(ctx context.Context, name string) ([]string, error)

// HTTPOptions controls the HTTPS fetch of the policy.
type HTTPOptions struct {
	// TLSConfig supplies the trust roots (nil: the system's). Its
	// ServerName and InsecureSkipVerify are overridden: the policy host's
	// certificate is always verified (RFC 8461 §3.3).
	TLSConfig *tls.Config
	// DialContext replaces the dialer, e.g. to resolve mta-sts.<domain>
	// through the module's DNS server or, in tests, to reach a loopback
	// server. Nil: a net.Dialer with the system resolver.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Policy is a parsed MTA-STS policy (RFC 8461 §3.2).
type Policy struct {
	Version string `json:"version"`
	Mode    string `json:"mode"`
	// MaxAge is in seconds, as published.
	MaxAge int64 `json:"max_age"`
	// MX are the patterns as published; matching ignores their case.
	MX []string `json:"mx,omitempty"`
}

// PresentedChain is what one SMTP session to an MX presented after
// STARTTLS. The domain prober passes one per session that reached the
// point of offering TLS; Chain is nil when STARTTLS was not completed.
type PresentedChain struct {
	// Host is the MX host name the session was for.
	Host string `json:"host"`
	// Label tells the sessions of one host apart (an address family, or
	// the address when the module asks); it is carried into the facts.
	Label string              `json:"label,omitempty"`
	Chain []*x509.Certificate `json:"-"`
}

// MTASTSFacts is what the MTA-STS check learned. Plain data: it can move
// into probes beside SMTPFacts as a field of the domain facts.
type MTASTSFacts struct {
	// RecordFound: exactly one TXT record at _mta-sts.<domain> starts with
	// v=STSv1. Without one the domain has no MTA-STS and the check passes
	// (Reason ok); whether that is acceptable is the module's call.
	RecordFound bool   `json:"record_found"`
	ID          string `json:"id,omitempty"`
	// ContentType is the policy response's media type as sent.
	ContentType string  `json:"content_type,omitempty"`
	Policy      *Policy `json:"policy,omitempty"`
	// MX says which MX hosts a pattern covers (not checked in mode none).
	MX []MTASTSMX `json:"mx,omitempty"`
	// Certs holds the certificate checks made in enforce mode.
	Certs  []CertCheck   `json:"certs,omitempty"`
	Reason probes.Reason `json:"reason"`
	Error  string        `json:"error,omitempty"`
}

// MTASTSMX is one MX host's coverage by the policy's mx: patterns.
type MTASTSMX struct {
	Host    string `json:"host"`
	Covered bool   `json:"covered"`
}

// CertCheck is the verification of one session's certificate for its MX
// name. Reason is ok, or the TLS reason (cert_expired, cert_hostname,
// cert_untrusted; starttls_unavailable without a chain) that says what is
// wrong.
type CertCheck struct {
	Host   string        `json:"host"`
	Label  string        `json:"label,omitempty"`
	Reason probes.Reason `json:"reason"`
	Error  string        `json:"error,omitempty"`
}

// MTASTSCheck is the input of CheckMTASTS.
type MTASTSCheck struct {
	Domain    string
	LookupTXT TXTLookup
	HTTP      HTTPOptions
	// MX are the domain's MX host names.
	MX []string
	// Sessions are the chains the MX presented, checked in enforce mode.
	Sessions []PresentedChain
	// Roots verify the MX certificates (nil: the system's).
	Roots *x509.CertPool
	Now   time.Time
}

// CheckMTASTS runs the MTA-STS check: the TXT record, the policy over
// HTTPS, MX coverage (modes enforce and testing: a testing policy that
// misses an MX is what an operator wants to hear before enforcing it), and
// in enforce mode every session's certificate. The first failure in that
// order decides Reason.
func CheckMTASTS(ctx context.Context, c MTASTSCheck) *MTASTSFacts {
	f := &MTASTSFacts{Reason: probes.ReasonOK}
	domain := normalizeHost(c.Domain)
	txts, err := c.LookupTXT(ctx, "_mta-sts."+domain)
	if err != nil && !isNotFound(err) {
		return f.fail(lookupReason(err), fmt.Errorf("_mta-sts TXT lookup: %w", err))
	}
	id, found, err := SelectSTSRecord(txts)
	f.RecordFound, f.ID = found, id
	if err != nil {
		return f.fail(ReasonMTASTSInvalid, err)
	}
	if !found {
		return f
	}
	body, ctype, err := FetchPolicy(ctx, domain, c.HTTP)
	f.ContentType = ctype
	if err != nil {
		if ctx.Err() != nil {
			return f.fail(probes.ReasonTimeout, err)
		}
		return f.fail(ReasonMTASTSInvalid, err)
	}
	p, err := ParsePolicy(body)
	if err != nil {
		return f.fail(ReasonMTASTSInvalid, err)
	}
	f.Policy = p
	if p.Mode == ModeNone {
		return f
	}
	var uncovered []string
	for _, mx := range c.MX {
		covered := p.Matches(mx)
		f.MX = append(f.MX, MTASTSMX{Host: mx, Covered: covered})
		if !covered {
			uncovered = append(uncovered, mx)
		}
	}
	if len(uncovered) > 0 {
		f.fail(ReasonMTASTSMXMismatch, fmt.Errorf("MX not covered by the policy's mx patterns: %s", strings.Join(uncovered, ", ")))
	}
	if p.Mode != ModeEnforce {
		return f
	}
	for _, s := range c.Sessions {
		cc := CheckMXCertificate(s, c.Roots, c.Now)
		f.Certs = append(f.Certs, cc)
		if cc.Reason != probes.ReasonOK && f.Reason == probes.ReasonOK {
			f.fail(ReasonMTASTSCert, fmt.Errorf("MX %s: %s", s.Host, cc.Error))
		}
	}
	return f
}

func (f *MTASTSFacts) fail(r probes.Reason, err error) *MTASTSFacts {
	f.Reason, f.Error = r, err.Error()
	return f
}

// CheckMXCertificate verifies a presented chain for its MX name against
// roots, as RFC 8461 §4.2 asks of a sender under an enforce policy.
func CheckMXCertificate(s PresentedChain, roots *x509.CertPool, now time.Time) CertCheck {
	cc := CertCheck{Host: s.Host, Label: s.Label, Reason: probes.ReasonOK}
	if len(s.Chain) == 0 {
		cc.Reason, cc.Error = probes.ReasonSTARTTLSUnavailable, "no certificate: STARTTLS was not completed"
		return cc
	}
	info := probes.TLSFacts(tls.ConnectionState{PeerCertificates: s.Chain}, roots, normalizeHost(s.Host))
	if !info.Verified {
		cc.Reason, cc.Error = probes.VerifyReason(info, now), info.VerifyError.Error()
	}
	return cc
}

// SelectSTSRecord picks the MTA-STS record out of the TXT records at
// _mta-sts.<domain> and returns its id. Records not starting with v=STSv1
// are discarded (RFC 8461 §3.1); none left means no MTA-STS (found false,
// no error), more than one is an error.
func SelectSTSRecord(txts []string) (id string, found bool, err error) {
	var sts []string
	for _, t := range txts {
		if isSTSRecord(t) {
			sts = append(sts, t)
		}
	}
	switch len(sts) {
	case 0:
		return "", false, nil
	case 1:
		id, err := ParseSTSRecord(sts[0])
		return id, true, err
	}
	return "", true, fmt.Errorf("_mta-sts: %d records start with v=STSv1, want exactly one", len(sts))
}

// isSTSRecord accepts v=STSv1 followed by ";", blanks or nothing: the RFC
// discards records not starting "v=STSv1;", but its own grammar allows
// blanks before the ";", and a bare "v=STSv1" is better reported as
// lacking an id than as no record at all.
func isSTSRecord(t string) bool {
	rest, ok := strings.CutPrefix(t, "v=STSv1")
	return ok && (rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t')
}

// ParseSTSRecord parses an MTA-STS TXT record (RFC 8461 §3.1) and returns
// its id. Extensions are checked for syntax and ignored; of duplicated
// fields the first counts (RFC 8461 §3.2).
func ParseSTSRecord(t string) (string, error) {
	fields := strings.Split(t, ";")
	if strings.TrimRight(fields[0], " \t") != "v=STSv1" {
		return "", errors.New("_mta-sts: record does not start with v=STSv1")
	}
	var id string
	for i, field := range fields[1:] {
		field = strings.Trim(field, " \t")
		if field == "" {
			if i == len(fields)-2 {
				break // a trailing ";"
			}
			return "", errors.New("_mta-sts: empty field")
		}
		name, value, ok := strings.Cut(field, "=")
		if !ok || !isExtName(name) || !isRecordValue(value) {
			return "", fmt.Errorf("_mta-sts: malformed field %s", quote(field))
		}
		if name != "id" || id != "" {
			continue
		}
		if !isSTSID(value) {
			return "", fmt.Errorf("_mta-sts: id %s is not 1 to 32 letters and digits", quote(value))
		}
		id = value
	}
	if id == "" {
		return "", errors.New("_mta-sts: no id field")
	}
	return id, nil
}

// FetchPolicy fetches https://mta-sts.<domain>/.well-known/mta-sts.txt
// with the certificate verified for that host, following no redirect
// (RFC 8461 §3.3), and returns at most PolicyMaxBytes of body with the
// response's Content-Type. The media type is checked leniently: it must be
// text/plain when present (parameters such as charset and the case of the
// type are ignored), and a response without one is accepted, as the body
// is parsed strictly anyway. The deadline comes from ctx.
func FetchPolicy(ctx context.Context, domain string, o HTTPOptions) (body []byte, contentType string, err error) {
	host := "mta-sts." + normalizeHost(domain)
	tr := policyTransport(host, o)
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	url := "https://" + host + "/.well-known/mta-sts.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", fmt.Errorf("MTA-STS policy: %w", err)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", fetchError(ctx, url, start, err)
	}
	defer func() { _ = resp.Body.Close() }()
	contentType = resp.Header.Get("Content-Type")
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, contentType, fmt.Errorf("MTA-STS policy fetch: HTTP %d redirect, which RFC 8461 §3.3 forbids following", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, contentType, fmt.Errorf("MTA-STS policy fetch: HTTP %d", resp.StatusCode)
	}
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil || mt != "text/plain" {
			return nil, contentType, fmt.Errorf("MTA-STS policy: media type %s, want text/plain", quote(contentType))
		}
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, PolicyMaxBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, contentType, fetchError(ctx, url, start, err)
		}
		return nil, contentType, fmt.Errorf("MTA-STS policy read: %w", err)
	}
	if len(body) > PolicyMaxBytes {
		return nil, contentType, fmt.Errorf("MTA-STS policy larger than %d bytes", PolicyMaxBytes)
	}
	return body, contentType, nil
}

// fetchError says why a fetch of url that began at start failed without
// Go's "Get ...: context deadline exceeded" wording: what it waited for
// and the deadline that applied, or who refused the connection. It
// unwraps to err.
func fetchError(ctx context.Context, url string, start time.Time, err error) error {
	what := "MTA-STS policy fetch from " + url
	var ne net.Error
	if ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() {
		limit := time.Since(start)
		if deadline, ok := ctx.Deadline(); ok {
			limit = deadline.Sub(start)
		}
		return probes.WaitedFor(ctx, probes.Wait{What: what + " did not finish", Limit: probes.RoundForPeople(limit)}, err)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" && op.Addr != nil && errors.Is(op, syscall.ECONNREFUSED) {
		return probes.Reworded(what+": "+probes.ConnectError(op.Addr.String(), op), err)
	}
	return fmt.Errorf("MTA-STS policy fetch: %w", err)
}

// policyTransport makes a transport for one fetch: no keep-alive (nothing
// is left open between runs), no proxy from the environment, no HTTP
// caching (RFC 8461 §3.3; net/http has none).
func policyTransport(host string, o HTTPOptions) *http.Transport {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLSConfig != nil {
		cfg = o.TLSConfig.Clone()
	}
	cfg.ServerName = host
	cfg.InsecureSkipVerify = false
	dial := o.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return &http.Transport{
		TLSClientConfig:        cfg,
		DialContext:            dial,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 16 << 10,
	}
}

// ParsePolicy parses a policy body (RFC 8461 §3.2). Lines end in LF or
// CRLF; blank lines are skipped. version, mode and max_age are required,
// and mx patterns unless the mode is none (a policy being withdrawn,
// RFC 8461 §8.3, need not list any). Unknown fields are checked for syntax
// and ignored; of a duplicated field other than mx the first counts.
func ParsePolicy(body []byte) (*Policy, error) {
	p := &Policy{}
	seen := map[string]bool{}
	for i, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.Trim(line, " \t") == "" {
			continue
		}
		key, value, err := policyField(line)
		if err != nil {
			return nil, fmt.Errorf("MTA-STS policy line %d: %w", i+1, err)
		}
		if key != "mx" && seen[key] {
			continue
		}
		seen[key] = true
		if err := p.set(key, value); err != nil {
			return nil, fmt.Errorf("MTA-STS policy line %d: %w", i+1, err)
		}
	}
	for _, k := range []string{"version", "mode", "max_age"} {
		if !seen[k] {
			return nil, fmt.Errorf("MTA-STS policy: no %s field", k)
		}
	}
	if p.Mode != ModeNone && len(p.MX) == 0 {
		return nil, fmt.Errorf("MTA-STS policy: mode %s without mx patterns", p.Mode)
	}
	return p, nil
}

// policyField splits "key: value", the value trimmed of blanks.
func policyField(line string) (key, value string, err error) {
	key, value, ok := strings.Cut(line, ":")
	if !ok {
		return "", "", fmt.Errorf("no colon in %s", quote(line))
	}
	if !isExtName(key) {
		return "", "", fmt.Errorf("malformed field name %s", quote(key))
	}
	value = strings.Trim(value, " \t")
	if !isPolicyValue(value) {
		return "", "", fmt.Errorf("malformed %s value %s", key, quote(value))
	}
	return key, value, nil
}

func (p *Policy) set(key, value string) error {
	switch key {
	case "version":
		if value != "STSv1" {
			return fmt.Errorf("version %s, want STSv1", quote(value))
		}
		p.Version = value
	case "mode":
		if value != ModeEnforce && value != ModeTesting && value != ModeNone {
			return fmt.Errorf("mode %s, want enforce, testing or none", quote(value))
		}
		p.Mode = value
	case "max_age":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || len(value) > 10 || !allDigits(value) || n > MaxAgeLimit {
			return fmt.Errorf("max_age %s is not a number of seconds up to %d", quote(value), MaxAgeLimit)
		}
		p.MaxAge = n
	case "mx":
		if !ValidMXPattern(value) {
			return fmt.Errorf("mx pattern %s is not a host name, optionally behind \"*.\"", quote(value))
		}
		p.MX = append(p.MX, value)
	}
	return nil
}

// ValidMXPattern reports whether s is a host name (RFC 5321 Domain) with an
// optional leading "*." (RFC 8461 §3.2).
func ValidMXPattern(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !isLDHLabel(label) {
			return false
		}
	}
	return true
}

// Matches reports whether an MX host is covered by one of the policy's
// patterns (RFC 8461 §4.1): case-insensitively, a trailing dot ignored,
// and "*." standing for exactly one leftmost label.
func (p *Policy) Matches(mx string) bool {
	for _, pattern := range p.MX {
		if MatchMXPattern(pattern, mx) {
			return true
		}
	}
	return false
}

// MatchMXPattern matches one MX host against one mx: pattern.
func MatchMXPattern(pattern, mx string) bool {
	pattern, mx = normalizeHost(pattern), normalizeHost(mx)
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		label, rest, ok := strings.Cut(mx, ".")
		return ok && label != "" && rest == suffix
	}
	return mx != "" && mx == pattern
}

func normalizeHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// isNotFound tells a name without records from a failed lookup, for
// lookups that report the former as an error.
func isNotFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// lookupReason maps a failed lookup onto the taxonomy: the resolver's own
// reason when it has one, timeout, else dns.
func lookupReason(err error) probes.Reason {
	var r interface{ Reason() probes.Reason }
	if errors.As(err, &r) {
		return r.Reason()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return probes.ReasonTimeout
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsTimeout {
		return probes.ReasonTimeout
	}
	return probes.ReasonDNS
}

// isExtName: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."), the
// field names of both the record and the policy.
func isExtName(s string) bool {
	if s == "" || len(s) > 32 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// isRecordValue: 1*(%x21-3A / %x3C / %x3E-7E), no blank, ";" or "=".
func isRecordValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ';' || c == '=' {
			return false
		}
	}
	return true
}

// isPolicyValue: visible characters (UTF-8 allowed) with inner spaces, no
// controls; the caller has trimmed the ends.
func isPolicyValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

func isSTSID(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

func isLDHLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		if c := l[i]; !isAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// quote shows server-supplied text in an error, bounded.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}
