package probestest

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func dnsExchange(t *testing.T, network, addr, name string, qtype uint16, cd bool) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.CheckingDisabled = cd
	q.SetEdns0(1232, true)
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	resp, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return resp
}

const dnsTestZone = `
$ORIGIN example.test.
@              MX 10 mx
mx             A 192.0.2.1
alias          CNAME mx
_25._tcp.mx    TLSA 3 1 1 00112233
`

func TestDNSServer_Answers(t *testing.T) {
	s := NewDNSServer(t, dnsTestZone)
	cases := []struct {
		name    string
		qtype   uint16
		rcode   int
		answers int
	}{
		{"example.test", dns.TypeMX, dns.RcodeSuccess, 1},
		{"MX.example.test", dns.TypeA, dns.RcodeSuccess, 1},
		{"alias.example.test", dns.TypeA, dns.RcodeSuccess, 2}, // CNAME and A
		{"mx.example.test", dns.TypeAAAA, dns.RcodeSuccess, 0}, // NODATA
		{"_tcp.mx.example.test", dns.TypeTXT, dns.RcodeSuccess, 0},
		{"none.example.test", dns.TypeA, dns.RcodeNameError, 0},
	}
	for _, tc := range cases {
		for _, network := range []string{"udp", "tcp"} {
			resp := dnsExchange(t, network, s.Addr, tc.name, tc.qtype, false)
			if resp.Rcode != tc.rcode || len(resp.Answer) != tc.answers {
				t.Errorf("%s %s over %s: rcode %s, %d answers; want %s, %d", tc.name, dns.TypeToString[tc.qtype], network,
					dns.RcodeToString[resp.Rcode], len(resp.Answer), dns.RcodeToString[tc.rcode], tc.answers)
			}
		}
	}
	if got := len(s.Queries()); got != 2*len(cases) {
		t.Errorf("%d queries logged, want %d", got, 2*len(cases))
	}
}

func TestDNSServer_Behaviours(t *testing.T) {
	s := NewDNSServer(t, dnsTestZone)

	s.Behave("mx.example.test", DNSBehaviour{TruncateUDP: true, AD: true})
	if resp := dnsExchange(t, "udp", s.Addr, "mx.example.test", dns.TypeA, false); !resp.Truncated || len(resp.Answer) != 0 {
		t.Errorf("UDP answer not truncated: %v", resp)
	}
	if resp := dnsExchange(t, "tcp", s.Addr, "mx.example.test", dns.TypeA, false); resp.Truncated || len(resp.Answer) != 1 || !resp.AuthenticatedData {
		t.Errorf("TCP answer = %v, want the record with AD", resp)
	}
	// Other names keep the default behaviour.
	if resp := dnsExchange(t, "udp", s.Addr, "example.test", dns.TypeMX, false); resp.Truncated || resp.AuthenticatedData {
		t.Errorf("behaviour of one name leaked to another: %v", resp)
	}

	s.Behave("", DNSBehaviour{BogusUnlessCD: true})
	if resp := dnsExchange(t, "udp", s.Addr, "example.test", dns.TypeMX, false); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("CD=0: rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if resp := dnsExchange(t, "udp", s.Addr, "example.test", dns.TypeMX, true); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Errorf("CD=1: %v, want the answer", resp)
	}

	s.Behave("", DNSBehaviour{Oversize: 5000})
	if resp := dnsExchange(t, "tcp", s.Addr, "example.test", dns.TypeMX, false); resp.Len() < 5000 || resp.Truncated {
		t.Errorf("oversized answer is %d bytes, TC=%v", resp.Len(), resp.Truncated)
	}
}

// TestDNSServer_SilentTCPClosedAtCleanup: a connection left waiting on a
// silent server ends with the test (goleak checks the goroutines).
func TestDNSServer_SilentTCPClosedAtCleanup(t *testing.T) {
	s := NewDNSServer(t, dnsTestZone)
	s.Behave("", DNSBehaviour{Silent: true})
	co, err := dns.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { co.Close() })
	q := new(dns.Msg)
	q.SetQuestion("example.test.", dns.TypeMX)
	if err := co.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	_ = co.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := co.ReadMsg(); err == nil {
		t.Error("a silent server answered")
	}
}
