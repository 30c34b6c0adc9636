package domain

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

const resolverZone = `
$ORIGIN example.test.
@        MX 20 mx2
@        MX 10 mx1.example.test.
mx1      A 192.0.2.10
mx1      AAAA 2001:db8::10
mx2      A 192.0.2.20
null.example.test. MX 0 .
nomx     A 192.0.2.30
txt      TXT "v=spf1 " "ip4:192.0.2.1 -all"
txt      TXT "second"
esc      TXT "a\"b\\c\010d"
_25._tcp.mx1 TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
alias    CNAME mx1
10.2.0.192.in-addr.arpa. PTR mx1.example.test.
`

func TestResolver_MX(t *testing.T) {
	r, _ := newTestResolver(t, resolverZone)
	ctx := testContext(t)

	mx, err := r.MX(ctx, "example.test")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range mx.Hosts {
		got = append(got, fmt.Sprintf("%d %s", h.Pref, h.Host))
	}
	if want := []string{"10 mx1.example.test", "20 mx2.example.test"}; !slices.Equal(got, want) || mx.Null {
		t.Errorf("MX = %q null=%v, want %q", got, mx.Null, want)
	}

	null, err := r.MX(ctx, "null.example.test")
	if err != nil || !null.Null || len(null.Hosts) != 0 {
		t.Errorf("null MX = %+v, %v; want Null", null, err)
	}

	none, err := r.MX(ctx, "nomx.example.test")
	if err != nil || none.Null || len(none.Hosts) != 0 {
		t.Errorf("no MX = %+v, %v; want an empty set", none, err)
	}

	_, err = r.MX(ctx, "missing.example.test")
	if !IsNotFound(err) {
		t.Errorf("MX of a missing name: %v, want NXDOMAIN", err)
	}
}

func TestResolver_Addresses(t *testing.T) {
	r, _ := newTestResolver(t, resolverZone)
	ctx := testContext(t)

	v4, _, err := r.A(ctx, "mx1.example.test")
	if err != nil || len(v4) != 1 || v4[0] != addr(t, "192.0.2.10") {
		t.Errorf("A = %v, %v", v4, err)
	}
	v6, _, err := r.AAAA(ctx, "mx1.example.test")
	if err != nil || len(v6) != 1 || v6[0] != addr(t, "2001:db8::10") {
		t.Errorf("AAAA = %v, %v", v6, err)
	}
	// Through a CNAME the server follows.
	alias, _, err := r.A(ctx, "alias.example.test")
	if err != nil || len(alias) != 1 || alias[0] != addr(t, "192.0.2.10") {
		t.Errorf("A via CNAME = %v, %v", alias, err)
	}
	names, _, err := r.PTR(ctx, addr(t, "192.0.2.10"))
	if err != nil || !slices.Equal(names, []string{"mx1.example.test"}) {
		t.Errorf("PTR = %q, %v", names, err)
	}
}

func TestResolver_TXTJoinsStringsAndUnescapes(t *testing.T) {
	r, _ := newTestResolver(t, resolverZone)
	ctx := testContext(t)

	txt, _, err := r.TXT(ctx, "txt.example.test")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(txt)
	if want := []string{"second", "v=spf1 ip4:192.0.2.1 -all"}; !slices.Equal(txt, want) {
		t.Errorf("TXT = %q, want %q", txt, want)
	}
	esc, _, err := r.TXT(ctx, "esc.example.test")
	if err != nil || len(esc) != 1 || esc[0] != "a\"b\\c\nd" {
		t.Errorf("escaped TXT = %q, %v; want the bytes on the wire", esc, err)
	}
}

func TestResolver_TLSAAndAD(t *testing.T) {
	r, srv := newTestResolver(t, resolverZone)
	ctx := testContext(t)

	tlsa, ad, err := r.TLSA(ctx, "_25._tcp.mx1.example.test")
	if err != nil || len(tlsa) != 1 || tlsa[0].Usage != 3 || tlsa[0].Selector != 1 || tlsa[0].MatchingType != 1 {
		t.Fatalf("TLSA = %v, %v", tlsa, err)
	}
	if ad {
		t.Error("AD reported from a server that did not set it")
	}
	srv.Behave("", probestest.DNSBehaviour{AD: true})
	if _, ad, err = r.TLSA(ctx, "_25._tcp.mx1.example.test"); err != nil || !ad {
		t.Errorf("AD = %v, %v; want true from a server that set it", ad, err)
	}
	for _, q := range srv.Queries() {
		if !q.DO {
			t.Errorf("query %s without the DO bit", q.Name)
		}
	}
}

func TestResolver_TruncatedUDPFallsBackToTCP(t *testing.T) {
	r, srv := newTestResolver(t, resolverZone)
	srv.Behave("", probestest.DNSBehaviour{TruncateUDP: true})

	txt, _, err := r.TXT(testContext(t), "txt.example.test")
	if err != nil || len(txt) != 2 {
		t.Fatalf("TXT = %q, %v", txt, err)
	}
	var nets []string
	for _, q := range srv.Queries() {
		nets = append(nets, q.Net)
	}
	if !slices.Equal(nets, []string{"udp", "tcp"}) {
		t.Errorf("queries went over %v, want udp then tcp", nets)
	}
}

// TestResolver_Hostile: every hostile answer ends within the deadline
// with its own error, without a panic.
func TestResolver_Hostile(t *testing.T) {
	var chain strings.Builder
	chain.WriteString("$ORIGIN chain.test.\n")
	for i := range 9 {
		fmt.Fprintf(&chain, "c%d CNAME c%d\n", i, i+1)
	}
	chain.WriteString("c9 A 192.0.2.1\n")
	var many strings.Builder
	for i := range maxAnswerRecords + 1 {
		fmt.Fprintf(&many, "many.test. TXT \"r%d\"\n", i)
	}
	zone := resolverZone + chain.String() + many.String() + `
loop1.test. CNAME loop2.test.
loop2.test. CNAME loop1.test.
`
	cases := []struct {
		name      string
		behaviour probestest.DNSBehaviour
		qname     string
		want      error
		reason    probes.Reason
	}{
		{"silent", probestest.DNSBehaviour{Silent: true}, "txt.example.test", ErrTimeout, probes.ReasonTimeout},
		{"oversized", probestest.DNSBehaviour{Oversize: 20000}, "txt.example.test", ErrOversized, probes.ReasonDNS},
		{"too many records", probestest.DNSBehaviour{}, "many.test", ErrOversized, probes.ReasonDNS},
		{"CNAME loop in one answer", probestest.DNSBehaviour{}, "loop1.test", ErrCNAMELoop, probes.ReasonDNS},
		{"CNAME loop over queries", probestest.DNSBehaviour{NoCNAMEChase: true}, "loop1.test", ErrCNAMELoop, probes.ReasonDNS},
		{"CNAME chain of 9", probestest.DNSBehaviour{NoCNAMEChase: true}, "c0.chain.test", ErrCNAMELoop, probes.ReasonDNS},
		{"SERVFAIL", probestest.DNSBehaviour{Rcode: dns.RcodeServerFailure}, "txt.example.test", ErrSERVFAIL, probes.ReasonDNS},
		{"REFUSED", probestest.DNSBehaviour{Rcode: dns.RcodeRefused}, "txt.example.test", ErrRefused, probes.ReasonDNS},
		{"bogus", probestest.DNSBehaviour{BogusUnlessCD: true}, "txt.example.test", ErrBogus, ReasonDNSSECBogus},
		{"NXDOMAIN", probestest.DNSBehaviour{}, "nothing.example.test", ErrNXDOMAIN, probes.ReasonDNS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, srv := newTestResolver(t, zone)
			srv.Behave("", tc.behaviour)
			deadline := 600 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			_, _, err := r.TXT(ctx, tc.qname)
			if _, _, aerr := r.A(ctx, tc.qname); err == nil {
				err = aerr // the chains end in A records
			}
			if elapsed := time.Since(start); elapsed > deadline+500*time.Millisecond {
				t.Errorf("took %v with a deadline of %v", elapsed, deadline)
			}
			var derr *Error
			if !errors.Is(err, tc.want) || !errors.As(err, &derr) {
				t.Fatalf("err = %v, want %v as *Error", err, tc.want)
			}
			if got := ReasonFor(err); got != tc.reason {
				t.Errorf("reason = %s, want %s", got, tc.reason)
			}
			if n := len(srv.Queries()); n > 2*(maxCNAMEDepth+1)*defaultAttempts*2 {
				t.Errorf("%d queries: retries are not bounded", n)
			}
		})
	}
}

func TestResolver_CNAMEChainOfEightResolves(t *testing.T) {
	var chain strings.Builder
	for i := range maxCNAMEDepth {
		fmt.Fprintf(&chain, "c%d.chain.test. CNAME c%d.chain.test.\n", i, i+1)
	}
	fmt.Fprintf(&chain, "c%d.chain.test. A 192.0.2.1\n", maxCNAMEDepth)
	r, srv := newTestResolver(t, chain.String())
	srv.Behave("", probestest.DNSBehaviour{NoCNAMEChase: true})
	ips, _, err := r.A(testContext(t), "c0.chain.test")
	if err != nil || len(ips) != 1 {
		t.Fatalf("A through %d CNAMEs = %v, %v", maxCNAMEDepth, ips, err)
	}
}

func TestResolver_CancelEndsALookup(t *testing.T) {
	srv := probestest.NewDNSServer(t, resolverZone)
	srv.Behave("", probestest.DNSBehaviour{Silent: true})
	r, err := NewResolver(ResolverConfig{Server: srv.Addr, AttemptTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(100*time.Millisecond, cancel)
	defer timer.Stop()
	start := time.Now()
	_, _, err = r.TXT(ctx, "txt.example.test")
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("a cancelled lookup took %v", elapsed)
	}
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want a timeout caused by the cancellation", err)
	}
}

func TestResolver_InvalidName(t *testing.T) {
	r, srv := newTestResolver(t, resolverZone)
	for _, name := range []string{"", ".", "a..b", strings.Repeat("a", 64) + ".test"} {
		if _, _, err := r.TXT(testContext(t), name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("TXT(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	if n := len(srv.Queries()); n != 0 {
		t.Errorf("%d queries sent for invalid names", n)
	}
}

func TestNewResolver_ResolvConf(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver 192.0.2.53\nnameserver 2001:db8::53\noptions timeout:1 attempts:3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := NewResolver(ResolverConfig{ResolvConf: conf})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"192.0.2.53:53", "[2001:db8::53]:53"}; !slices.Equal(r.Servers(), want) {
		t.Errorf("servers = %q, want %q", r.Servers(), want)
	}
	if r.attempts != 3 || r.timeout != time.Second {
		t.Errorf("attempts %d timeout %v, want resolv.conf's 3 and 1s", r.attempts, r.timeout)
	}

	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, []byte("search example.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{empty, filepath.Join(dir, "missing.conf")} {
		if _, err := NewResolver(ResolverConfig{ResolvConf: path}); err == nil {
			t.Errorf("NewResolver(%s) succeeded", path)
		}
	}
	if _, err := NewResolver(ResolverConfig{Server: "127.0.0.1"}); err == nil {
		t.Error("a dns_server without a port was accepted")
	}
}

func TestUnescapeTXT(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:        "plain",
		`a\"b`:         `a"b`,
		`a\\b`:         `a\b`,
		`\010\255\999`: "\n\xff999",
		`trailing\`:    `trailing\`,
	} {
		if got := unescapeTXT(in); got != want {
			t.Errorf("unescapeTXT(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestChecks_HostileDNS: whatever the DNS answers, every check ends
// within the deadline with an error verdict of the right reason, never a
// pass, a failure of the record or a panic.
func TestChecks_HostileDNS(t *testing.T) {
	names := []string{
		"hostile.test", "_dmarc.hostile.test", "sel._domainkey.hostile.test",
		"_smtp._tls.hostile.test", "1.2.0.192.in-addr.arpa", "1.2.0.192.bl.test",
	}
	var loops strings.Builder
	for _, n := range names {
		fmt.Fprintf(&loops, "%s. CNAME loop-a.test.\n", n)
	}
	loops.WriteString("loop-a.test. CNAME loop-b.test.\nloop-b.test. CNAME loop-a.test.\n")

	checks := map[string]func(ctx context.Context, r *Resolver) Check{
		"spf":   func(ctx context.Context, r *Resolver) Check { return CheckSPF(ctx, r, "hostile.test", nil).Check },
		"dmarc": func(ctx context.Context, r *Resolver) Check { return CheckDMARC(ctx, r, "hostile.test").Check },
		"dkim": func(ctx context.Context, r *Resolver) Check {
			return CheckDKIM(ctx, r, "hostile.test", []string{"sel"}).Check
		},
		"tls_rpt": func(ctx context.Context, r *Resolver) Check { return CheckTLSRPT(ctx, r, "hostile.test").Check },
		"ptr": func(ctx context.Context, r *Resolver) Check {
			return CheckPTR(ctx, r, netip.MustParseAddr("192.0.2.1"), "").Check
		},
		"dnsbl": func(ctx context.Context, r *Resolver) Check {
			return CheckDNSBL(ctx, r, []netip.Addr{netip.MustParseAddr("192.0.2.1")}, []string{"bl.test"}).Check
		},
	}
	behaviours := []struct {
		name      string
		zone      string
		behaviour probestest.DNSBehaviour
		reason    probes.Reason
	}{
		{"silent", "", probestest.DNSBehaviour{Silent: true}, probes.ReasonTimeout},
		{"oversized", "", probestest.DNSBehaviour{Oversize: 20000}, probes.ReasonDNS},
		{"truncated, then oversized over TCP", "", probestest.DNSBehaviour{Oversize: 20000, TruncateUDP: true}, probes.ReasonDNS},
		{"CNAME loop", loops.String(), probestest.DNSBehaviour{NoCNAMEChase: true}, probes.ReasonDNS},
		{"bogus", "", probestest.DNSBehaviour{BogusUnlessCD: true}, ReasonDNSSECBogus},
	}
	for _, b := range behaviours {
		for name, check := range checks {
			t.Run(b.name+"/"+name, func(t *testing.T) {
				r, srv := newTestResolver(t, b.zone)
				srv.Behave("", b.behaviour)
				deadline := 400 * time.Millisecond
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				start := time.Now()
				c := check(ctx, r)
				if elapsed := time.Since(start); elapsed > deadline+300*time.Millisecond {
					t.Errorf("took %v with a deadline of %v", elapsed, deadline)
				}
				wantCheck(t, c, ResultError, string(b.reason))
				if c.Err == nil || c.Detail == "" {
					t.Errorf("error verdict without its error: %+v", c)
				}
			})
		}
	}
}

func TestResolver_ServerDown(t *testing.T) {
	r, err := NewResolver(ResolverConfig{Server: probestest.ClosedAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err = r.TXT(testContext(t), "example.test")
	if !errors.Is(err, ErrNetwork) && !errors.Is(err, ErrTimeout) {
		t.Errorf("err = %v, want a network error", err)
	}
	if ReasonFor(err) == probes.ReasonOK {
		t.Error("no reason for a failed lookup")
	}
	if elapsed := time.Since(start); elapsed > testTimeout+500*time.Millisecond {
		t.Errorf("took %v", elapsed)
	}
}
