package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// peer is what a dialServer learned of one connection.
type peer struct {
	remote net.Addr
	header *proxyproto.Header // the PROXY header, behind a proxyproto listener
}

// dialServer is a small SMTP server that records who connected: the
// connection's source address and, when its listener reads PROXY headers,
// the header. It greets, answers EHLO (offering STARTTLS with tlsConfig)
// and QUIT, and says 250 to anything else.
type dialServer struct {
	addr  string
	peers chan peer
	ln    net.Listener
	tls   *tls.Config
	wg    sync.WaitGroup
}

// newDialServer listens on addr ("127.0.0.1:0", "[::1]:0"); wrap, when
// set, wraps the listener (in a proxyproto.Listener).
func newDialServer(t *testing.T, addr string, tlsConfig *tls.Config, wrap func(net.Listener) net.Listener) *dialServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return startDialServer(t, ln, tlsConfig, wrap)
}

func startDialServer(t *testing.T, ln net.Listener, tlsConfig *tls.Config, wrap func(net.Listener) net.Listener) *dialServer {
	s := &dialServer{addr: ln.Addr().String(), peers: make(chan peer, 10), ln: ln, tls: tlsConfig}
	if wrap != nil {
		s.ln = wrap(ln)
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		s.ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *dialServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			s.serve(c)
		}()
	}
}

func (s *dialServer) serve(c net.Conn) {
	p := peer{remote: c.RemoteAddr()}
	if pc, ok := c.(*proxyproto.Conn); ok {
		// Reading the remote address reads the header first.
		p.remote = pc.Raw().RemoteAddr()
		p.header = pc.ProxyHeader()
	}
	s.peers <- p
	var conn net.Conn = c
	r := bufio.NewReader(conn)
	say := func(lines ...string) bool {
		_, err := conn.Write([]byte(strings.Join(lines, "\r\n") + "\r\n"))
		return err == nil
	}
	if !say("220 dial.test ESMTP") {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch verb, _, _ := strings.Cut(strings.TrimSpace(line), " "); strings.ToUpper(verb) {
		case "EHLO":
			if _, isTLS := conn.(*tls.Conn); s.tls != nil && !isTLS {
				say("250-dial.test", "250 STARTTLS")
			} else {
				say("250 dial.test")
			}
		case "STARTTLS":
			say("220 2.0.0 go ahead")
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			conn, r = tc, bufio.NewReader(tc)
		case "QUIT":
			say("221 2.0.0 bye")
			return
		default:
			say("250 2.0.0 ok")
		}
	}
}

// next is the next connection's peer.
func (s *dialServer) next(t *testing.T) peer {
	t.Helper()
	select {
	case p := <-s.peers:
		return p
	default:
		t.Fatal("the server saw no connection")
		return peer{}
	}
}

func plainModule() probes.Module {
	return probes.Module{Timeout: 5 * time.Second, SMTP: probes.SMTPModule{TLS: probes.TLSNone, EHLO: "probe.example.test"}}
}

func hostOf(a net.Addr) string {
	host, _, _ := net.SplitHostPort(a.String())
	return host
}

func TestProbe_SourceIPAddress(t *testing.T) {
	srv := newDialServer(t, "127.0.0.1:0", nil, nil)
	m := plainModule()
	// Every 127/8 address is this host's on Linux.
	m.SourceIPAddress = "127.0.0.2"
	res := Probe(context.Background(), srv.addr, m, nil)
	requireSuccess(t, res)
	if got := hostOf(srv.next(t).remote); got != "127.0.0.2" {
		t.Errorf("the server saw a connection from %s, want 127.0.0.2", got)
	}
}

func TestProbe_SourceIPAddressNotOnThisHost(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_nonlocal_bind"); err == nil && strings.TrimSpace(string(b)) == "1" {
		t.Skip("net.ipv4.ip_nonlocal_bind=1 lets any address be bound")
	}
	srv := newDialServer(t, "127.0.0.1:0", nil, nil)
	m := plainModule()
	m.SourceIPAddress = "203.0.113.7" // TEST-NET-3, on no host
	res := Probe(context.Background(), srv.addr, m, nil)
	if res.Success || res.FailedPhase != probes.PhaseConnect || res.Reason != probes.ReasonConnect {
		t.Fatalf("probe: success %t, phase %s, reason %s (%v); want a connect failure", res.Success, res.FailedPhase, res.Reason, res.Err)
	}
	if msg := res.Err.Error(); !strings.Contains(msg, "source_ip_address 203.0.113.7 is not an address of this host") {
		t.Errorf("error %q does not say that the source address is not this host's", msg)
	}
}

func TestProbe_SourceIPAddressOtherFamily(t *testing.T) {
	m := plainModule()
	m.SourceIPAddress = "127.0.0.2"
	// Refused before any dial: nothing needs to listen there.
	res := Probe(context.Background(), "[::1]:25", m, nil)
	if res.Success || res.FailedPhase != probes.PhaseConnect || res.Reason != probes.ReasonConnect {
		t.Fatalf("probe: success %t, phase %s, reason %s (%v); want a connect failure", res.Success, res.FailedPhase, res.Reason, res.Err)
	}
	want := "source_ip_address 127.0.0.2 is an IPv4 address and cannot reach ::1, an IPv6 address"
	if msg := res.Err.Error(); msg != want {
		t.Errorf("error %q, want %q", msg, want)
	}
}

// TestProbe_ProxyProtocol probes a server behind a PROXY protocol listener,
// which requires the header: the probe sends it first, of the version
// asked for, naming the probe's address and the server's, and STARTTLS
// works after it.
func TestProbe_ProxyProtocol(t *testing.T) {
	ca := probestest.NewCA(t)
	serverTLS := probestest.ServerTLSConfig(ca.Valid(t, "localhost"))
	for _, tt := range []struct {
		version string
		want    byte
		sent    string // the transcript's line for the header
	}{
		{probes.ProxyProtocolV1, 1, "PROXY TCP4 127.0.0.2 127.0.0.1 "},
		{probes.ProxyProtocolV2, 2, "<PROXY v2 header, 28 bytes: 127.0.0.2:"},
	} {
		t.Run(tt.version, func(t *testing.T) {
			srv := newDialServer(t, "127.0.0.1:0", serverTLS, func(l net.Listener) net.Listener {
				return &proxyproto.Listener{Listener: l, ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
					return proxyproto.REQUIRE, nil
				}}
			})
			m := tlsModule(t, ca, probes.TLSStartTLS)
			m.SourceIPAddress = "127.0.0.2"
			m.SMTP.ProxyProtocol = tt.version
			res := Probe(context.Background(), srv.addr, m, nil)
			requireSuccess(t, res)
			if res.TLS == nil || !res.TLS.Verified {
				t.Errorf("TLS after the PROXY header: %+v, want a verified handshake", res.TLS)
			}
			p := srv.next(t)
			if p.header == nil {
				t.Fatal("the server read no PROXY header")
			}
			src, dst, ok := p.header.TCPAddrs()
			if p.header.Version != tt.want || !ok || src.String() != p.remote.String() || dst.String() != srv.addr {
				t.Errorf("PROXY header v%d %v -> %v, want v%d %v -> %s", p.header.Version, p.header.SourceAddr, p.header.DestinationAddr, tt.want, p.remote, srv.addr)
			}
			var sent bool
			for _, l := range res.Transcript {
				sent = sent || l.Dir == probes.DirSend && strings.HasPrefix(l.Text, tt.sent)
			}
			if !sent {
				t.Errorf("no transcript line starts with %q: %v", tt.sent, res.Transcript)
			}
		})
	}
}

// listenDualStack listens on 127.0.0.1 and ::1 on one port, as a
// dual-stack host's name would have it.
func listenDualStack(t *testing.T) (ln4, ln6 net.Listener) {
	t.Helper()
	for range 20 {
		ln4, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln4.Addr().(*net.TCPAddr).Port
		ln6, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)))
		if err == nil {
			return ln4, ln6
		}
		ln4.Close()
		if probe, err := net.Listen("tcp6", "[::1]:0"); err != nil {
			t.Skipf("no IPv6 loopback on this machine: %v", err)
		} else {
			probe.Close()
		}
	}
	t.Fatal("no port free on both 127.0.0.1 and ::1")
	return nil, nil
}

// TestProbe_BothFamilies loads a target of an ip_protocol both module and
// probes each run it expands to against a name with an address of each
// family: one run reaches the server over IPv4, the other over IPv6.
func TestProbe_BothFamilies(t *testing.T) {
	ln4, ln6 := listenDualStack(t)
	srv4, srv6 := startDialServer(t, ln4, nil, nil), startDialServer(t, ln6, nil, nil)
	_, port, _ := net.SplitHostPort(srv4.addr)
	cfg, err := config.Parse([]byte(`modules:
  dual: {ip_protocol: both, smtp: {tls: none, ehlo: probe.example.test}}
targets:
  - {name: mx1, address: "dual.test:`+port+`", module: dual}
`), "x.yml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := probes.WithResolved(context.Background(), "dual.test",
		[]net.IPAddr{{IP: net.ParseIP("127.0.0.1")}, {IP: net.ParseIP("::1")}}, nil)
	want := map[string]struct {
		srv    *dialServer
		remote string
	}{"mx1/ip4": {srv4, "127.0.0.1"}, "mx1/ip6": {srv6, "::1"}}
	if len(cfg.Targets) != len(want) {
		t.Fatalf("targets %v, want mx1/ip4 and mx1/ip6", cfg.Targets)
	}
	for _, target := range cfg.Targets {
		w, ok := want[target.Name]
		if !ok {
			t.Fatalf("unexpected target %q", target.Name)
		}
		res := Probe(ctx, target.Address, *cfg.ModuleOf(target), nil)
		requireSuccess(t, res)
		if got := hostOf(w.srv.next(t).remote); got != w.remote {
			t.Errorf("%s: the server saw %s, want %s", target.Name, got, w.remote)
		}
		if host, _, _ := net.SplitHostPort(res.RemoteAddr); host != w.remote {
			t.Errorf("%s: probed %s, want %s", target.Name, res.RemoteAddr, w.remote)
		}
	}
	// The module itself names no one family: a probe of it refuses.
	res := Probe(ctx, "dual.test:"+port, *cfg.Modules["dual"], nil)
	if res.Success || res.FailedPhase != probes.PhaseResolve || res.Reason != probes.ReasonOther ||
		!strings.Contains(res.Err.Error(), "ip_protocol both is for scheduled targets") {
		t.Errorf("probe with ip_protocol both: success %t, phase %s, reason %s (%v); want a refusal", res.Success, res.FailedPhase, res.Reason, res.Err)
	}
}
