package domain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

// Limits on what one lookup accepts from a server. A monitor asks servers
// it does not control; none of these stops a legitimate answer.
const (
	// ednsBufferSize is the UDP payload size advertised in EDNS0: the DNS
	// flag day 2020 value, which avoids IP fragmentation. Larger answers
	// come with TC and are asked again over TCP.
	ednsBufferSize = 1232
	// maxMessageSize bounds an answer over TCP. Real TXT, MX or TLSA
	// answers, even signed, stay well below it.
	maxMessageSize = 16 << 10
	// maxAnswerRecords bounds the answer section.
	maxAnswerRecords = 100
	// maxCNAMEDepth bounds a CNAME chain; a loop ends here with
	// ErrCNAMELoop.
	maxCNAMEDepth = 8
	// defaultAttempts is how often each server is tried.
	defaultAttempts = 2
	// defaultAttemptTimeout caps one try (UDP, and TCP after TC).
	defaultAttemptTimeout = 5 * time.Second
)

// The kinds of DNS failure, for errors.Is on an *Error. The prober tells
// them apart because they mean different things to an operator: a name
// that does not exist, a server that failed, no answer in time, or data
// whose DNSSEC signatures do not validate.
var (
	ErrNXDOMAIN = errors.New("NXDOMAIN")
	ErrSERVFAIL = errors.New("SERVFAIL")
	ErrTimeout  = errors.New("timeout")
	// ErrBogus: a validating resolver answered SERVFAIL, and answered the
	// same query with checking disabled (CD=1). See Resolver.
	ErrBogus = errors.New("DNSSEC validation failed (bogus)")
	// ErrRefused: REFUSED, NOTIMP, FORMERR or another RCODE.
	ErrRefused = errors.New("query refused")
	// ErrMalformed: an answer that does not parse, answers another
	// question, or is truncated even over TCP.
	ErrMalformed = errors.New("malformed answer")
	// ErrOversized: an answer past maxMessageSize or maxAnswerRecords.
	ErrOversized = errors.New("answer too large")
	// ErrCNAMELoop: a CNAME chain longer than maxCNAMEDepth, a loop or as
	// good as one.
	ErrCNAMELoop = errors.New("CNAME chain too long or looping")
	// ErrNetwork: the server could not be reached (connection refused).
	ErrNetwork = errors.New("network error")
	// ErrInvalidName: a name that is not a valid domain name was asked.
	ErrInvalidName = errors.New("invalid domain name")
)

// Error is a failed lookup: the question, the server last asked, and the
// kind (one of the Err* values above, matched by errors.Is).
type Error struct {
	Name   string
	Type   uint16
	Server string
	Kind   error
	// Err is the underlying cause, when there is one beyond the kind.
	Err error
	// Waited is, for ErrTimeout, the deadline that applied: the tries'
	// timeouts added up, or the context's deadline from the lookup's
	// start; Tries is how many tries it covers.
	Waited time.Duration
	Tries  int
}

// Error says a timeout and a refused query in the operator's words ("no
// DNS answer for example.com MX from 192.0.2.53:53 within 5s"), where Go
// says "read udp ...: i/o timeout".
func (e *Error) Error() string {
	q := fmt.Sprintf("%s %s", strings.TrimSuffix(e.Name, "."), dns.TypeToString[e.Type])
	switch {
	case e.Kind == ErrTimeout && errors.Is(e.Err, context.Canceled):
		return "probe cancelled: no DNS answer for " + q + " yet"
	case e.Kind == ErrTimeout && e.Waited > 0:
		msg := "no DNS answer for " + q
		if e.Server != "" {
			msg += " from " + e.Server
		}
		msg += " within " + probes.RoundForPeople(e.Waited).String()
		if e.Tries > 1 {
			msg += fmt.Sprintf(" (%d tries)", e.Tries)
		}
		return msg
	case e.Kind == ErrNetwork && e.Server != "" && errors.Is(e.Err, syscall.ECONNREFUSED):
		return "no DNS answer for " + q + ": connection refused by " + e.Server
	}
	msg := q
	if e.Server != "" {
		msg += " at " + e.Server
	}
	msg += ": " + e.Kind.Error()
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap lets errors.Is match the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// IsNotFound reports whether err says the name or the record does not
// exist (NXDOMAIN). An empty answer (NODATA) is no error at all.
func IsNotFound(err error) bool { return errors.Is(err, ErrNXDOMAIN) }

// ResolverConfig says which resolver to ask.
type ResolverConfig struct {
	// Server is host:port of the resolver (the module's dns_server);
	// empty asks the servers of ResolvConf.
	Server string
	// ResolvConf is the resolv.conf(5) file read when Server is empty;
	// default /etc/resolv.conf.
	ResolvConf string
	// Attempts is how often each server is tried; default 2.
	Attempts int
	// AttemptTimeout caps one try; default 5s, or resolv.conf's timeout.
	AttemptTimeout time.Duration
}

// Resolver asks a recursive resolver for the records the checks judge:
// UDP first with EDNS0 and the DO bit, TCP when the answer comes back
// truncated or unparseable, a bounded number of tries within the context's
// deadline, and every answer bounded (size, records, CNAME depth).
//
// DNSSEC: the Resolver does not validate. It reports the AD bit of the
// resolver it asks, which means something only when that resolver
// validates and the path to it is trusted (loopback, or a resolver of
// one's own). Bogus data is told from an ordinary failure by a heuristic:
// a validating resolver answers SERVFAIL for data that fails validation,
// and answers the same query when checking is disabled (CD=1); so a
// SERVFAIL is asked again once with CD=1, and an answer to that (records,
// NODATA or NXDOMAIN) makes the failure ErrBogus. A server failing for
// another reason fails the CD=1 query too and stays ErrSERVFAIL.
type Resolver struct {
	servers  []string
	attempts int
	timeout  time.Duration
}

// NewResolver returns a Resolver for cfg.
func NewResolver(cfg ResolverConfig) (*Resolver, error) {
	r := &Resolver{attempts: cfg.Attempts, timeout: cfg.AttemptTimeout}
	if cfg.Server != "" {
		if _, _, err := net.SplitHostPort(cfg.Server); err != nil {
			return nil, fmt.Errorf("dns server %q: %w", cfg.Server, err)
		}
		r.servers = []string{cfg.Server}
	} else {
		path := cfg.ResolvConf
		if path == "" {
			path = "/etc/resolv.conf"
		}
		conf, err := dns.ClientConfigFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("system resolver: %w", err)
		}
		for _, s := range conf.Servers {
			r.servers = append(r.servers, net.JoinHostPort(s, conf.Port))
		}
		if len(r.servers) == 0 {
			return nil, fmt.Errorf("system resolver: no nameserver in %s", path)
		}
		if r.attempts == 0 && conf.Attempts > 0 {
			r.attempts = conf.Attempts
		}
		if r.timeout == 0 && conf.Timeout > 0 {
			r.timeout = time.Duration(conf.Timeout) * time.Second
		}
	}
	if r.attempts <= 0 {
		r.attempts = defaultAttempts
	}
	if r.timeout <= 0 {
		r.timeout = defaultAttemptTimeout
	}
	return r, nil
}

// Servers returns the host:port of the servers asked, in order.
func (r *Resolver) Servers() []string { return slices.Clone(r.servers) }

// MXAnswer is a domain's MX set.
type MXAnswer struct {
	// Hosts by preference, lowest first, without trailing dots.
	Hosts []*net.MX
	// Null: the domain publishes a null MX (RFC 7505: a single MX of
	// preference 0 and target "."), so it accepts no mail. Hosts is empty.
	Null bool
	// AD: the resolver marked the answer DNSSEC-validated.
	AD bool
}

// MX returns domain's MX hosts. A domain without MX records answers an
// empty set (RFC 5321 §5.1's implicit MX is the caller's to apply).
func (r *Resolver) MX(ctx context.Context, domain string) (MXAnswer, error) {
	ans, err := r.lookup(ctx, domain, dns.TypeMX)
	if err != nil {
		return MXAnswer{}, err
	}
	out := mxAnswer(ans.records)
	out.AD = ans.ad
	return out, nil
}

// mxAnswer sorts MX records and recognises a null MX.
func mxAnswer(records []dns.RR) MXAnswer {
	var out MXAnswer
	for _, rr := range records {
		if mx, ok := rr.(*dns.MX); ok {
			out.Hosts = append(out.Hosts, &net.MX{Host: strings.TrimSuffix(mx.Mx, "."), Pref: mx.Preference})
		}
	}
	if len(out.Hosts) == 1 && out.Hosts[0].Host == "" && out.Hosts[0].Pref == 0 {
		return MXAnswer{Null: true}
	}
	// A "." among other MX breaks RFC 7505; it names no host to try.
	out.Hosts = slices.DeleteFunc(out.Hosts, func(mx *net.MX) bool { return mx.Host == "" })
	slices.SortStableFunc(out.Hosts, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	return out
}

// A returns host's IPv4 addresses, and whether the answer had AD.
func (r *Resolver) A(ctx context.Context, host string) ([]netip.Addr, bool, error) {
	return r.addrs(ctx, host, dns.TypeA)
}

// AAAA returns host's IPv6 addresses, and whether the answer had AD.
func (r *Resolver) AAAA(ctx context.Context, host string) ([]netip.Addr, bool, error) {
	return r.addrs(ctx, host, dns.TypeAAAA)
}

func (r *Resolver) addrs(ctx context.Context, host string, qtype uint16) ([]netip.Addr, bool, error) {
	ans, err := r.lookup(ctx, host, qtype)
	if err != nil {
		return nil, false, err
	}
	return addrsOf(ans.records), ans.ad, nil
}

func addrsOf(records []dns.RR) []netip.Addr {
	var out []netip.Addr
	for _, rr := range records {
		var ip net.IP
		switch rr := rr.(type) {
		case *dns.A:
			ip = rr.A
		case *dns.AAAA:
			ip = rr.AAAA
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// PTR returns the names addr points back to, without trailing dots.
func (r *Resolver) PTR(ctx context.Context, addr netip.Addr) ([]string, bool, error) {
	name, err := dns.ReverseAddr(addr.Unmap().String())
	if err != nil {
		return nil, false, &Error{Name: addr.String(), Type: dns.TypePTR, Kind: ErrInvalidName, Err: err}
	}
	ans, err := r.lookup(ctx, name, dns.TypePTR)
	if err != nil {
		return nil, false, err
	}
	return ptrNames(ans.records), ans.ad, nil
}

func ptrNames(records []dns.RR) []string {
	var out []string
	for _, rr := range records {
		if ptr, ok := rr.(*dns.PTR); ok {
			out = append(out, strings.TrimSuffix(ptr.Ptr, "."))
		}
	}
	return out
}

// TXT returns name's TXT records, each with its strings joined without
// separator (RFC 7208 §3.3, RFC 7489 §6.1, RFC 6376 §3.6.2.2).
func (r *Resolver) TXT(ctx context.Context, name string) ([]string, bool, error) {
	ans, err := r.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, false, err
	}
	return txtStrings(ans.records), ans.ad, nil
}

func txtStrings(records []dns.RR) []string {
	out := make([]string, 0, len(records))
	for _, rr := range records {
		txt, ok := rr.(*dns.TXT)
		if !ok {
			continue
		}
		var b strings.Builder
		for _, s := range txt.Txt {
			b.WriteString(unescapeTXT(s))
		}
		out = append(out, b.String())
	}
	return out
}

// TLSA returns name's TLSA records (name is _port._proto.host), and
// whether the resolver marked them DNSSEC-validated: DANE trusts them only
// then (RFC 7672 §2.2).
func (r *Resolver) TLSA(ctx context.Context, name string) ([]*dns.TLSA, bool, error) {
	ans, err := r.lookup(ctx, name, dns.TypeTLSA)
	if err != nil {
		return nil, false, err
	}
	return tlsaRecords(ans.records), ans.ad, nil
}

func tlsaRecords(records []dns.RR) []*dns.TLSA {
	out := make([]*dns.TLSA, 0, len(records))
	for _, rr := range records {
		if tlsa, ok := rr.(*dns.TLSA); ok {
			out = append(out, tlsa)
		}
	}
	return out
}

// unescapeTXT undoes miekg/dns's presentation escapes of a character
// string ("\\\"", "\\\\", "\\DDD"), giving back the bytes on the wire.
func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			if v := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0'); v <= 255 {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// answer is the records of the asked type at the end of a CNAME chain.
type answer struct {
	records []dns.RR
	// ad: every response along the chain had AD.
	ad bool
}

// lookup asks for name's records of qtype, following CNAMEs within the
// answers and, where an answer stops at a CNAME, with further queries,
// up to maxCNAMEDepth links in all.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) (*answer, error) {
	name = dns.Fqdn(name)
	if _, ok := dns.IsDomainName(name); !ok || name == "." {
		return nil, &Error{Name: name, Type: qtype, Kind: ErrInvalidName}
	}
	out := &answer{ad: true}
	depth := 0
	for {
		msg, err := r.ask(ctx, name, qtype)
		if err != nil {
			return nil, err
		}
		out.ad = out.ad && msg.AuthenticatedData
		records, last, err := followChain(msg.Answer, name, qtype, &depth)
		if err != nil {
			return nil, &Error{Name: name, Type: qtype, Kind: err}
		}
		if len(records) > 0 || last == name {
			out.records = records
			return out, nil
		}
		// The answer stopped at a CNAME whose target it does not hold.
		name = last
	}
}

// followChain walks answer from name along CNAMEs to the records of
// qtype; it returns them, or the last name reached when there are none.
// depth counts the links followed across the whole lookup.
func followChain(answer []dns.RR, name string, qtype uint16, depth *int) ([]dns.RR, string, error) {
	for {
		var records []dns.RR
		next := ""
		for _, rr := range answer {
			h := rr.Header()
			if !strings.EqualFold(h.Name, name) || h.Class != dns.ClassINET {
				continue
			}
			switch {
			case h.Rrtype == qtype:
				records = append(records, rr)
			case h.Rrtype == dns.TypeCNAME:
				if cname, ok := rr.(*dns.CNAME); ok {
					next = dns.Fqdn(cname.Target)
				}
			}
		}
		if len(records) > 0 || next == "" {
			return records, name, nil
		}
		*depth++
		if *depth > maxCNAMEDepth {
			return nil, name, ErrCNAMELoop
		}
		name = next
	}
}

// ask sends one question, telling bogus data from a failing server (see
// Resolver).
func (r *Resolver) ask(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	msg, err := r.query(ctx, name, qtype, false)
	if !errors.Is(err, ErrSERVFAIL) {
		return msg, err
	}
	if _, cdErr := r.query(ctx, name, qtype, true); cdErr == nil || errors.Is(cdErr, ErrNXDOMAIN) {
		bogus := &Error{Name: name, Type: qtype, Kind: ErrBogus}
		var servfail *Error
		if errors.As(err, &servfail) {
			bogus.Server = servfail.Server
		}
		return nil, bogus
	}
	return nil, err
}

// query asks each server in turn, at most r.attempts rounds, until one
// answers NOERROR or NXDOMAIN.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16, cd bool) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	q.CheckingDisabled = cd
	q.SetEdns0(ednsBufferSize, true)

	tries := r.attempts * len(r.servers)
	var last *Error
	start := time.Now()
	// The timeouts of the tries that timed out, and how many.
	var planned time.Duration
	made, timedOut := 0, 0
	for try := range tries {
		server := r.servers[try%len(r.servers)]
		if ctx.Err() != nil {
			break
		}
		timeout := r.tryTimeout(ctx, tries-try)
		resp, err := r.exchange(ctx, q, server, timeout)
		made++
		if err != nil {
			last = &Error{Name: name, Type: qtype, Server: server, Kind: kindOf(err), Err: err}
			if last.Kind == ErrTimeout {
				planned += timeout
				timedOut++
				last.Waited, last.Tries = planned, timedOut
			}
			if errors.Is(err, ErrOversized) || errors.Is(err, ErrMalformed) {
				// The server answered; asking it again gets the same.
				return nil, last
			}
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess:
			return resp, nil
		case dns.RcodeNameError:
			return resp, &Error{Name: name, Type: qtype, Server: server, Kind: ErrNXDOMAIN}
		case dns.RcodeServerFailure:
			last = &Error{Name: name, Type: qtype, Server: server, Kind: ErrSERVFAIL}
		default:
			last = &Error{Name: name, Type: qtype, Server: server, Kind: ErrRefused, Err: fmt.Errorf("RCODE %s", dns.RcodeToString[resp.Rcode])}
		}
	}
	// The clock decides whether the deadline passed, not ctx.Err() alone:
	// a try's connection deadline at the same instant can fire before the
	// context's timer has run.
	deadline, hasDeadline := ctx.Deadline()
	err := ctx.Err()
	if err == nil && hasDeadline && !time.Now().Before(deadline) {
		err = context.DeadlineExceeded
	}
	if err != nil && (last == nil || errors.Is(last, ErrTimeout) || errors.Is(last, ErrNetwork)) {
		server := ""
		if last != nil {
			server = last.Server
		}
		waited := time.Since(start)
		if hasDeadline && errors.Is(err, context.DeadlineExceeded) {
			waited = deadline.Sub(start)
		}
		return nil, &Error{Name: name, Type: qtype, Server: server, Kind: ErrTimeout, Err: err, Waited: waited, Tries: made}
	}
	return nil, last
}

// kindOf sorts a transport error.
func kindOf(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, ErrOversized):
		return ErrOversized
	case errors.Is(err, ErrMalformed):
		return ErrMalformed
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	}
	return ErrNetwork
}

// tryTimeout is a try's timeout: its share of what is left of the
// context's deadline, so that a silent server leaves time for the next.
func (r *Resolver) tryTimeout(ctx context.Context, triesLeft int) time.Duration {
	timeout := r.timeout
	if deadline, ok := ctx.Deadline(); ok {
		if share := time.Until(deadline) / time.Duration(triesLeft); share < timeout {
			timeout = share
		}
	}
	return timeout
}

// exchange is one try at server within timeout: UDP, then TCP when the
// UDP answer is truncated or does not parse (an answer larger than the
// buffer we advertised arrives cut).
func (r *Resolver) exchange(ctx context.Context, q *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	resp, err := exchangeOver(ctx, "udp", q, server)
	if err == nil && !resp.Truncated {
		return resp, nil
	}
	if err != nil && !errors.Is(err, ErrMalformed) {
		return nil, err
	}
	resp, err = exchangeOver(ctx, "tcp", q, server)
	if err != nil {
		return nil, err
	}
	if resp.Truncated {
		return nil, fmt.Errorf("%w: truncated over TCP", ErrMalformed)
	}
	return resp, nil
}

// exchangeOver sends q to server over network and reads its answer,
// within ctx: its deadline bounds the connection, and its cancellation
// ends a read in progress.
func exchangeOver(ctx context.Context, network string, q *dns.Msg, server string) (*dns.Msg, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	co := &dns.Conn{Conn: conn, UDPSize: ednsBufferSize}
	if err := co.WriteMsg(q); err != nil {
		return nil, err
	}
	for {
		raw, err := co.ReadMsgHeader(nil)
		if err != nil {
			return nil, err
		}
		if len(raw) > maxMessageSize {
			return nil, fmt.Errorf("%w: %d bytes", ErrOversized, len(raw))
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(raw); err != nil {
			if network == "udp" && len(raw) >= 2 && int(raw[0])<<8|int(raw[1]) != int(q.Id) {
				continue // not ours: a late answer to an earlier try
			}
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if resp.Id != q.Id && network == "udp" {
			continue
		}
		if err := checkResponse(q, resp); err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// checkResponse rejects an answer to another question or one too large.
func checkResponse(q, resp *dns.Msg) error {
	if resp.Id != q.Id || !resp.Response {
		return fmt.Errorf("%w: not a response to the query", ErrMalformed)
	}
	// A truncated answer may leave out the question; anything else must
	// repeat it.
	if len(resp.Question) != 1 && !resp.Truncated {
		return fmt.Errorf("%w: %d questions", ErrMalformed, len(resp.Question))
	}
	if len(resp.Question) == 1 {
		got, want := resp.Question[0], q.Question[0]
		if !strings.EqualFold(got.Name, want.Name) || got.Qtype != want.Qtype {
			return fmt.Errorf("%w: answer to another question", ErrMalformed)
		}
	}
	if len(resp.Answer) > maxAnswerRecords {
		return fmt.Errorf("%w: %d records", ErrOversized, len(resp.Answer))
	}
	return nil
}
