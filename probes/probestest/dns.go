package probestest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNSBehaviour is how a DNSServer answers, beyond serving its records:
// the hostile and broken resolvers a prober must survive. The zero value
// answers normally.
type DNSBehaviour struct {
	// TruncateUDP answers every UDP query with TC set and no records, so
	// that only TCP gets the answer.
	TruncateUDP bool
	// Oversize pads every answer with TXT records of the queried name to
	// at least this many bytes, without setting TC, whatever the client's
	// EDNS0 buffer.
	Oversize int
	// Rcode answers with this RCODE and no records (dns.RcodeServerFailure,
	// dns.RcodeRefused...); zero serves the records.
	Rcode int
	// Silent never answers: UDP queries are dropped, TCP queries are read
	// and left unanswered.
	Silent bool
	// AD sets the AD bit on answers, as a validating resolver does for
	// data it validated.
	AD bool
	// BogusUnlessCD answers SERVFAIL unless the query has CD set, as a
	// validating resolver does for data that fails validation.
	BogusUnlessCD bool
	// NoCNAMEChase answers a CNAME alone, without following it to the
	// records of its target, so the client has to ask again.
	NoCNAMEChase bool
}

// DNSQuery is one query a DNSServer received.
type DNSQuery struct {
	Name string // lower case, fully qualified
	Type uint16
	Net  string // "udp" or "tcp"
	CD   bool   // checking disabled
	DO   bool   // EDNS0 DNSSEC OK
}

// DNSServer is an in-process DNS server on loopback serving its records
// authoritatively over UDP and TCP on the same port, for tests of DNS
// clients. It is closed by t.Cleanup.
type DNSServer struct {
	// Addr is host:port for UDP and TCP.
	Addr string

	udp net.PacketConn
	tcp net.Listener
	wg  sync.WaitGroup

	mu        sync.Mutex
	records   map[string][]dns.RR // by lower-case owner name
	behaviour map[string]DNSBehaviour
	queries   []DNSQuery
	conns     map[net.Conn]struct{}
	closed    bool
}

// dnsChaseLimit bounds how many CNAMEs the server follows in one answer,
// so that a CNAME loop in the zone ends the answer instead of the server.
const dnsChaseLimit = 16

// NewDNSServer starts a server for the records in zone, zone-file text
// whose relative names are relative to the root (use $ORIGIN) and whose
// TTL defaults to 300.
func NewDNSServer(t testing.TB, zone string) *DNSServer {
	t.Helper()
	s := &DNSServer{
		records:   make(map[string][]dns.RR),
		behaviour: make(map[string]DNSBehaviour),
		conns:     make(map[net.Conn]struct{}),
	}
	s.Add(t, zone)
	udp, tcp, err := listenUDPAndTCP()
	if err != nil {
		t.Fatalf("dns: %v", err)
	}
	s.udp, s.tcp, s.Addr = udp, tcp, udp.LocalAddr().String()
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	t.Cleanup(s.close)
	return s
}

// listenUDPAndTCP listens on one loopback port for UDP and TCP, as a
// client falls back from UDP to TCP on one address. The UDP port the
// kernel picks may be taken for TCP; another is tried then.
func listenUDPAndTCP() (net.PacketConn, net.Listener, error) {
	var err error
	for range 20 {
		var udp net.PacketConn
		udp, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp: %w", err)
		}
		tcp, terr := net.Listen("tcp", udp.LocalAddr().String())
		if terr == nil {
			return udp, tcp, nil
		}
		udp.Close()
		err = terr
	}
	return nil, nil, fmt.Errorf("listen tcp on the port of udp: %w", err)
}

// Add serves the records of zone too (same format as NewDNSServer).
func (s *DNSServer) Add(t testing.TB, zone string) {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader("$TTL 300\n"+zone), ".", "")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("dns: zone: %v", err)
	}
	s.AddRR(rrs...)
}

// AddRR serves rrs too.
func (s *DNSServer) AddRR(rrs ...dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rr := range rrs {
		name := strings.ToLower(dns.Fqdn(rr.Header().Name))
		s.records[name] = append(s.records[name], rr)
	}
}

// Behave sets how the server answers queries for name; an empty name sets
// the default for names without their own.
func (s *DNSServer) Behave(name string, b DNSBehaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != "" {
		name = strings.ToLower(dns.Fqdn(name))
	}
	s.behaviour[name] = b
}

// Queries returns the queries received so far, in order.
func (s *DNSServer) Queries() []DNSQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]DNSQuery(nil), s.queries...)
}

func (s *DNSServer) close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.udp.Close()
	s.tcp.Close()
	s.wg.Wait()
}

func (s *DNSServer) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		resp := s.respond(buf[:n], "udp")
		if resp != nil {
			_, _ = s.udp.WriteTo(resp, from)
		}
	}
}

func (s *DNSServer) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

func (s *DNSServer) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	co := &dns.Conn{Conn: c}
	for {
		req, err := co.ReadMsgHeader(nil)
		if err != nil {
			return
		}
		resp := s.respond(req, "tcp")
		if resp == nil {
			continue
		}
		if _, err := co.Write(resp); err != nil {
			return
		}
	}
}

// respond returns the packed answer to the packed query req, or nil for
// none.
func (s *DNSServer) respond(req []byte, network string) []byte {
	q := new(dns.Msg)
	if err := q.Unpack(req); err != nil || len(q.Question) != 1 {
		return nil
	}
	question := q.Question[0]
	name := strings.ToLower(question.Name)
	do := false
	if opt := q.IsEdns0(); opt != nil {
		do = opt.Do()
	}

	s.mu.Lock()
	s.queries = append(s.queries, DNSQuery{Name: name, Type: question.Qtype, Net: network, CD: q.CheckingDisabled, DO: do})
	b, ok := s.behaviour[name]
	if !ok {
		b = s.behaviour[""]
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	m.RecursionAvailable = true
	switch {
	case b.Silent:
		s.mu.Unlock()
		return nil
	case b.Rcode != 0:
		m.Rcode = b.Rcode
	case b.BogusUnlessCD && !q.CheckingDisabled:
		m.Rcode = dns.RcodeServerFailure
	case network == "udp" && b.TruncateUDP:
		m.Truncated = true
	default:
		m.Rcode, m.Answer = s.lookup(name, question.Qtype, b.NoCNAMEChase)
		m.AuthenticatedData = b.AD
	}
	s.mu.Unlock()

	if b.Oversize > 0 {
		pad(m, question.Name, b.Oversize)
	}
	if opt := q.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	out, err := m.Pack()
	if err != nil {
		return nil
	}
	return out
}

// lookup answers a query from the records; the caller holds s.mu.
func (s *DNSServer) lookup(name string, qtype uint16, noChase bool) (int, []dns.RR) {
	var answer []dns.RR
	for range dnsChaseLimit {
		var cname *dns.CNAME
		found := false
		for _, rr := range s.records[name] {
			switch {
			case rr.Header().Rrtype == qtype:
				answer = append(answer, dns.Copy(rr))
				found = true
			case rr.Header().Rrtype == dns.TypeCNAME:
				cname = rr.(*dns.CNAME)
			}
		}
		if found || cname == nil {
			break
		}
		answer = append(answer, dns.Copy(cname))
		if noChase {
			break
		}
		name = strings.ToLower(cname.Target)
	}
	if len(answer) == 0 && !s.exists(name) {
		return dns.RcodeNameError, nil
	}
	return dns.RcodeSuccess, answer
}

// exists reports whether name owns records or is an ancestor of a name
// that does (an empty non-terminal, which is NODATA, not NXDOMAIN).
func (s *DNSServer) exists(name string) bool {
	if len(s.records[name]) > 0 {
		return true
	}
	for owner := range s.records {
		if strings.HasSuffix(owner, "."+name) {
			return true
		}
	}
	return false
}

// pad appends TXT records of 255-byte strings for name until m packs to at
// least size bytes.
func pad(m *dns.Msg, name string, size int) {
	filler := strings.Repeat("x", 255)
	for m.Len() < size {
		m.Answer = append(m.Answer, &dns.TXT{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
			Txt: []string{filler, filler, filler, filler},
		})
	}
}
