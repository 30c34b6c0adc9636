package domain

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/common/config"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// goodDomainPolicy covers both MX of good.test.
const goodDomainPolicy = "version: STSv1\nmode: enforce\nmx: *.good.test\nmax_age: 86400\n"

// domainFixture is a mail domain, good.test, served by an in-process DNS
// server, one scripted SMTP server on 127.0.0.1 for both MX hosts, and an
// HTTPS server for the MTA-STS policy, every check passing unless a test
// changes a record.
type domainFixture struct {
	t      *testing.T
	ca     *probestest.CA
	leaf   *x509.Certificate
	smtp   *probestest.ScriptServer
	port   int
	https  *httptest.Server
	policy atomic.Value // string
	// fetched counts the policy requests.
	fetched atomic.Int32
	// records are the zone's lines, by a key tests use to replace them.
	records map[string]string
	order   []string
}

func newDomainFixture(t *testing.T) *domainFixture {
	t.Helper()
	return newDomainFixtureWith(t, func(ca *probestest.CA) tls.Certificate {
		return ca.Valid(t, "mx1.good.test", "mx2.good.test")
	})
}

// newDomainFixtureWith makes good.test with MX servers presenting the
// certificate mxCert issues.
func newDomainFixtureWith(t *testing.T, mxCert func(*probestest.CA) tls.Certificate) *domainFixture {
	t.Helper()
	f := &domainFixture{t: t, ca: probestest.NewCA(t)}
	cert := mxCert(f.ca)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	f.leaf = leaf
	f.smtp = probestest.NewScriptServer(t, probestest.Dialog{
		Banner: "220 mx1.good.test ESMTP probestest",
		TLS:    probestest.ServerTLSConfig(cert),
	}.Serve)
	_, port, _ := net.SplitHostPort(f.smtp.Addr)
	fmt.Sscan(port, &f.port)

	f.policy.Store(goodDomainPolicy)
	f.https = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.fetched.Add(1)
		if r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, f.policy.Load().(string))
	}))
	f.https.TLS = probestest.ServerTLSConfig(f.ca.Valid(t, "mta-sts.good.test"))
	f.https.StartTLS()
	t.Cleanup(f.https.Close)

	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	tlsa := hex.EncodeToString(spki[:])
	f.set("mx1", "mx1.good.test. A 127.0.0.1")
	f.set("mx2", "mx2.good.test. A 127.0.0.1")
	f.set("mx", "good.test. MX 10 mx1.good.test.\ngood.test. MX 20 mx2.good.test.")
	f.set("ptr", "1.0.0.127.in-addr.arpa. PTR mx1.good.test.")
	f.set("spf", `good.test. TXT "v=spf1 ip4:127.0.0.0/8 -all"`)
	f.set("dmarc", `_dmarc.good.test. TXT "v=DMARC1; p=reject; rua=mailto:dmarc@good.test"`)
	f.set("dkim", `sel._domainkey.good.test. TXT "v=DKIM1; k=rsa; p=`+rsaSPKI(t, 2048)+`"`)
	f.set("sts", `_mta-sts.good.test. TXT "v=STSv1; id=20250101"`)
	f.set("sts-host", "mta-sts.good.test. A 127.0.0.1")
	f.set("tlsrpt", `_smtp._tls.good.test. TXT "v=TLSRPTv1; rua=mailto:tls@good.test"`)
	// At port 25, where senders look, though the sessions go to f.port.
	f.set("tlsa1", "_25._tcp.mx1.good.test. TLSA 3 1 1 "+tlsa)
	f.set("tlsa2", "_25._tcp.mx2.good.test. TLSA 3 1 1 "+tlsa)
	f.set("bl", "bl.test. TXT \"a blocklist\"")
	return f
}

// set replaces the zone lines under key ("" removes them).
func (f *domainFixture) set(key, lines string) {
	if _, ok := f.records[key]; !ok {
		if f.records == nil {
			f.records = map[string]string{}
		}
		f.order = append(f.order, key)
	}
	f.records[key] = lines
}

// dnsServer starts the DNS server with the zone as it stands, answering
// with AD set as a validating resolver does.
func (f *domainFixture) dnsServer() *probestest.DNSServer {
	var b strings.Builder
	for _, k := range f.order {
		if l := f.records[k]; l != "" {
			b.WriteString(l + "\n")
		}
	}
	srv := probestest.NewDNSServer(f.t, b.String())
	srv.Behave("", probestest.DNSBehaviour{AD: true})
	return srv
}

// module is a domain module asking srv, with every check on.
func (f *domainFixture) module(srv *probestest.DNSServer) probes.Module {
	f.t.Helper()
	m := probes.Module{
		Prober:  probes.ProberDomain,
		Timeout: 5 * time.Second,
		SMTP:    probes.SMTPModule{TLSConfig: config.TLSConfig{CAFile: f.ca.WriteCAFile(f.t)}},
		Domain: probes.DomainModule{
			MXPort: f.port, DNSServer: srv.Addr, DNSTimeout: time.Second,
			SendingIPs: []string{"127.0.0.1"}, DKIMSelectors: []string{"sel"},
			DNSBLZones: []string{"bl.test"},
		},
	}
	m.SetDefaults()
	if err := m.Validate(); err != nil {
		f.t.Fatal(err)
	}
	if err := m.ResolveMXModule(func(string) (*probes.Module, bool) { return nil, false }); err != nil {
		f.t.Fatal(err)
	}
	return m
}

// probe runs the prober on good.test, the MTA-STS fetch pointed at the
// HTTPS server's port.
func (f *domainFixture) probe(ctx context.Context, m probes.Module) *probes.Result {
	f.t.Helper()
	_, port, _ := net.SplitHostPort(f.https.Listener.Addr().String())
	var p int
	fmt.Sscan(port, &p)
	ctx = context.WithValue(ctx, policyPortKey{}, p)
	res := Probe(ctx, "good.test", m, nil)
	if res == nil {
		f.t.Fatal("Probe returned nil")
	}
	return res
}

func (f *domainFixture) run() *probes.Result {
	f.t.Helper()
	srv := f.dnsServer()
	return f.probe(context.Background(), f.module(srv))
}

// wantVerdict fails unless check name ran with result and reason.
func wantVerdict(t *testing.T, res *probes.Result, name probes.Phase, result string, reason probes.Reason) {
	t.Helper()
	c := res.Domain.Check(name)
	if c == nil {
		t.Fatalf("check %s did not run; checks: %+v", name, res.Domain.Checks)
	}
	if c.Result != result || c.Reason != reason {
		t.Fatalf("check %s = %s/%s (%s), want %s/%s", name, c.Result, c.Reason, c.Detail, result, reason)
	}
}

// wantFailed fails unless the run failed at phase for reason.
func wantFailed(t *testing.T, res *probes.Result, phase probes.Phase, reason probes.Reason) {
	t.Helper()
	if res.Success || res.FailedPhase != phase || res.Reason != reason {
		t.Fatalf("result = success %t, %s/%s (%v), want failure %s/%s", res.Success, res.FailedPhase, res.Reason, res.Err, phase, reason)
	}
}

func TestProbeGoodDomain(t *testing.T) {
	f := newDomainFixture(t)
	res := f.run()
	if !res.Success || res.Reason != probes.ReasonOK {
		t.Fatalf("result = %s/%s: %v; checks %+v", res.FailedPhase, res.Reason, res.Err, res.Domain.Checks)
	}
	want := []probes.Phase{probes.PhaseMX, probes.PhasePTR, probes.PhaseSPF, probes.PhaseDMARC, probes.PhaseDKIM,
		probes.PhaseMTASTS, probes.PhaseTLSRPT, probes.PhaseDANE, probes.PhaseDNSBL}
	if len(res.Phases) != len(want) || len(res.Domain.Checks) != len(want) {
		t.Fatalf("phases %d, checks %d, want %d", len(res.Phases), len(res.Domain.Checks), len(want))
	}
	for i, p := range want {
		if res.Phases[i].Phase != p || res.Phases[i].Reason != probes.ReasonOK || res.Phases[i].Duration <= 0 {
			t.Errorf("phase %d = %+v, want %s ok with a duration", i, res.Phases[i], p)
		}
		if c := res.Domain.Checks[i]; c.Name != p || c.Result != probes.CheckPass {
			t.Errorf("check %d = %+v, want %s pass", i, c, p)
		}
		if _, ok := res.Domain.Details[p]; !ok && p != probes.PhaseMX {
			t.Errorf("no details for %s", p)
		}
	}
	d := res.Domain
	if len(d.MX) != 2 || d.MX[0].Host != "mx1.good.test" || d.MX[1].Host != "mx2.good.test" {
		t.Fatalf("MX = %+v", d.MX)
	}
	for _, h := range d.MX {
		if len(h.Addresses) != 1 || h.DANE != DANEMatched {
			t.Fatalf("MX %s = %+v", h.Host, h)
		}
		a := h.Addresses[0]
		if !a.Accepts || a.Family != "ip4" || a.Greeting != "mx1.good.test" || !a.STARTTLSOffered ||
			a.TLS == nil || len(a.TLS.Peer) == 0 || a.PTR != probes.CheckPass {
			t.Fatalf("MX %s address = %+v", h.Host, a)
		}
	}
	if d.MTASTSMode != ModeEnforce || d.MTASTSPolicyID != "20250101" || d.MTASTSMaxAge != 24*time.Hour {
		t.Fatalf("MTA-STS facts = %q %q %s", d.MTASTSMode, d.MTASTSPolicyID, d.MTASTSMaxAge)
	}

	out, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"domain":{`, `"checks":[{"name":"mx","result":"pass"`, `"mx":[{"host":"mx1.good.test"`, `"mta_sts_policy_id":"20250101"`} {
		if !strings.Contains(string(out), s) {
			t.Errorf("JSON lacks %s: %s", s, out)
		}
	}
}

func TestProbeNullMX(t *testing.T) {
	f := newDomainFixture(t)
	f.set("mx", "good.test. MX 0 .")
	res := f.run()
	wantFailed(t, res, probes.PhaseMX, probes.ReasonNullMX)
	wantVerdict(t, res, probes.PhaseMX, probes.CheckFail, probes.ReasonNullMX)
	if !res.Domain.NullMX || len(res.Domain.MX) != 0 || f.smtp.Connections() != 0 {
		t.Fatalf("null MX facts %+v, %d connections", res.Domain, f.smtp.Connections())
	}
	// What guards the name still runs; what needs an MX does not.
	wantVerdict(t, res, probes.PhaseSPF, probes.CheckPass, probes.ReasonOK)
	wantVerdict(t, res, probes.PhaseDMARC, probes.CheckPass, probes.ReasonOK)
	for _, p := range []probes.Phase{probes.PhasePTR, probes.PhaseMTASTS, probes.PhaseTLSRPT, probes.PhaseDANE} {
		if res.Domain.Check(p) != nil || res.Phase(p) != nil {
			t.Errorf("%s ran for a null MX", p)
		}
	}
}

func TestProbeDeadSecondary(t *testing.T) {
	f := newDomainFixture(t)
	f.set("mx2", "mx2.good.test. A 127.0.0.2") // nobody listens there
	f.set("ptr2", "2.0.0.127.in-addr.arpa. PTR mx2.good.test.")
	res := f.run()
	if !res.Success {
		t.Fatalf("a dead secondary failed the run: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
	}
	wantVerdict(t, res, probes.PhaseMX, probes.CheckWarn, probes.ReasonMXUnreachable)
	if pr := res.Phase(probes.PhaseMX); pr.Reason != probes.ReasonMXUnreachable || pr.Err != nil {
		t.Fatalf("mx phase = %+v", pr)
	}
	a := res.Domain.MX[1].Addresses[0]
	if a.Accepts || a.Reason != probes.ReasonConnect || a.Phase != probes.PhaseConnect || a.Address != "127.0.0.2" {
		t.Fatalf("dead secondary = %+v", a)
	}
	if !res.Domain.MX[0].Addresses[0].Accepts {
		t.Fatal("primary does not accept")
	}
}

func TestProbeAllMXDead(t *testing.T) {
	f := newDomainFixture(t)
	f.set("mx1", "mx1.good.test. A 127.0.0.2")
	f.set("mx2", "mx2.good.test. A 127.0.0.3")
	res := f.run()
	wantFailed(t, res, probes.PhaseMX, probes.ReasonMXUnreachable)
	if !res.Temporary {
		t.Error("an unreachable MX is not temporary")
	}
	// DANE has nothing to compare with; the mx check tells why.
	wantVerdict(t, res, probes.PhaseDANE, probes.CheckPass, probes.ReasonOK)
}

func TestProbeImplicitMX(t *testing.T) {
	f := newDomainFixture(t)
	f.set("mx", "good.test. A 127.0.0.1")
	f.set("tlsa1", "")
	f.set("tlsa2", "")
	f.policy.Store("version: STSv1\nmode: enforce\nmx: good.test\nmax_age: 86400\n")
	res := f.run()
	d := res.Domain
	if !d.ImplicitMX || len(d.MX) != 1 || d.MX[0].Host != "good.test" || !d.MX[0].Addresses[0].Accepts {
		t.Fatalf("implicit MX facts = %+v", d.MX)
	}
	c := d.Check(probes.PhaseMX)
	if c.Result != probes.CheckPass || !strings.Contains(c.Detail, "RFC 5321") {
		t.Fatalf("mx check = %+v", c)
	}
}

func TestProbePTRMissing(t *testing.T) {
	f := newDomainFixture(t)
	f.set("ptr", "")
	res := f.run()
	wantFailed(t, res, probes.PhasePTR, probes.ReasonPTRMissing)
	if a := res.Domain.MX[0].Addresses[0]; a.PTR != probes.CheckFail || a.PTRReason != probes.ReasonPTRMissing {
		t.Fatalf("address PTR = %s/%s", a.PTR, a.PTRReason)
	}
	if all, ok := res.Domain.Details[probes.PhasePTR].([]*PTRFacts); !ok || len(all) != 2 {
		t.Fatalf("ptr details = %#v", res.Domain.Details[probes.PhasePTR])
	}
}

func TestProbePTRNamesAnotherHost(t *testing.T) {
	f := newDomainFixture(t)
	f.set("ptr", "1.0.0.127.in-addr.arpa. PTR mx2.good.test.")
	res := f.run()
	wantFailed(t, res, probes.PhasePTR, probes.ReasonPTRMismatch)
}

func TestProbeSPFTooManyLookups(t *testing.T) {
	f := newDomainFixture(t)
	var b strings.Builder
	for i := range 10 {
		fmt.Fprintf(&b, "i%d.spf.good.test. TXT \"v=spf1 include:i%d.spf.good.test -all\"\n", i, i+1)
	}
	b.WriteString("i10.spf.good.test. TXT \"v=spf1 ip4:127.0.0.0/8 -all\"")
	f.set("spf", `good.test. TXT "v=spf1 include:i0.spf.good.test -all"`+"\n"+b.String())
	res := f.run()
	wantFailed(t, res, probes.PhaseSPF, ReasonSPFTooManyLookups)
}

func TestProbeDMARCMissing(t *testing.T) {
	f := newDomainFixture(t)
	f.set("dmarc", "")
	res := f.run()
	wantFailed(t, res, probes.PhaseDMARC, ReasonDMARCMissing)
	if res.Temporary {
		t.Error("a missing record is not temporary")
	}
}

func TestProbeDKIMRevoked(t *testing.T) {
	f := newDomainFixture(t)
	f.set("dkim", `sel._domainkey.good.test. TXT "v=DKIM1; k=rsa; p="`)
	res := f.run()
	wantFailed(t, res, probes.PhaseDKIM, ReasonDKIMKeyInvalid)
}

func TestProbeMTASTSMXMismatch(t *testing.T) {
	f := newDomainFixture(t)
	f.policy.Store("version: STSv1\nmode: enforce\nmx: mx1.good.test\nmax_age: 86400\n")
	res := f.run()
	wantFailed(t, res, probes.PhaseMTASTS, ReasonMTASTSMXMismatch)
	if f.fetched.Load() != 1 {
		t.Fatalf("policy fetched %d times", f.fetched.Load())
	}
}

func TestProbeMTASTSTestingMismatchWarns(t *testing.T) {
	f := newDomainFixture(t)
	f.policy.Store("version: STSv1\nmode: testing\nmx: mx1.good.test\nmax_age: 86400\n")
	res := f.run()
	if !res.Success {
		t.Fatalf("a testing policy failed the run: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
	}
	wantVerdict(t, res, probes.PhaseMTASTS, probes.CheckWarn, ReasonMTASTSMXMismatch)
}

func TestProbeMTASTSCertExpired(t *testing.T) {
	// An expired MX certificate does not stop the session (its
	// verification is recorded); MTA-STS in enforce mode fails it, and
	// DANE-EE, which ignores expiry, still matches.
	f := newDomainFixtureWith(t, func(ca *probestest.CA) tls.Certificate {
		return ca.Expired(t, "mx1.good.test", "mx2.good.test")
	})
	res := f.run()
	a := res.Domain.MX[0].Addresses[0]
	if !a.Accepts || a.TLS == nil || a.TLS.Verified {
		t.Fatalf("session with an expired certificate = %+v", a)
	}
	wantFailed(t, res, probes.PhaseMTASTS, ReasonMTASTSCert)
	wantVerdict(t, res, probes.PhaseDANE, probes.CheckPass, probes.ReasonOK)
}

func TestProbeMTASTSPolicyUntrusted(t *testing.T) {
	// Roots without the test CA: the policy host is not trusted.
	f := newDomainFixture(t)
	m := f.module(f.dnsServer())
	m.Domain.MX.SMTP.TLSConfig.CAFile = probestest.NewCA(t).WriteCAFile(t)
	res := f.probe(context.Background(), m)
	if !res.Domain.MX[0].Addresses[0].Accepts {
		t.Fatalf("an untrusted certificate stopped the session: %+v", res.Domain.MX[0].Addresses[0])
	}
	wantFailed(t, res, probes.PhaseMTASTS, ReasonMTASTSInvalid)
}

func TestProbeTLSRPTMissing(t *testing.T) {
	f := newDomainFixture(t)
	f.set("tlsrpt", "")
	res := f.run()
	wantFailed(t, res, probes.PhaseTLSRPT, ReasonTLSRPTMissing)
}

func TestProbeDANEMismatch(t *testing.T) {
	f := newDomainFixture(t)
	other := sha256.Sum256([]byte("another key"))
	f.set("tlsa2", fmt.Sprintf("_25._tcp.mx2.good.test. TLSA 3 1 1 %x", other))
	res := f.run()
	wantFailed(t, res, probes.PhaseDANE, ReasonDANEMismatch)
	if res.Domain.MX[0].DANE != DANEMatched || res.Domain.MX[1].DANE != DANEMismatch {
		t.Fatalf("DANE states %s, %s", res.Domain.MX[0].DANE, res.Domain.MX[1].DANE)
	}
}

func TestProbeDANEUnauthenticatedWarns(t *testing.T) {
	f := newDomainFixture(t)
	srv := f.dnsServer()
	srv.Behave("", probestest.DNSBehaviour{}) // no AD bit
	res := f.probe(context.Background(), f.module(srv))
	if !res.Success {
		t.Fatalf("run failed: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
	}
	wantVerdict(t, res, probes.PhaseDANE, probes.CheckWarn, probes.ReasonOK)
}

func TestProbeBlocklisted(t *testing.T) {
	f := newDomainFixture(t)
	f.set("bl", "1.0.0.127.bl.test. A 127.0.0.2\n1.0.0.127.bl.test. TXT \"listed for testing\"")
	res := f.run()
	wantFailed(t, res, probes.PhaseDNSBL, ReasonBlocklisted)
	if c := res.Domain.Check(probes.PhaseDNSBL); !strings.Contains(c.Detail, "listed for testing") {
		t.Fatalf("dnsbl detail = %q", c.Detail)
	}
}

func TestProbeDialCheckRefuses(t *testing.T) {
	f := newDomainFixture(t)
	srv := f.dnsServer()
	var asked atomic.Int32
	ctx := probes.WithDialCheck(context.Background(), func(ap netip.AddrPort) error {
		asked.Add(1)
		return errors.New("not on the allow-list")
	})
	res := f.probe(ctx, f.module(srv))
	if f.smtp.Connections() != 0 || f.fetched.Load() != 0 {
		t.Fatalf("connected anyway: %d SMTP, %d HTTPS", f.smtp.Connections(), f.fetched.Load())
	}
	if asked.Load() < 3 {
		t.Fatalf("dial check asked %d times, want each MX address and the policy host", asked.Load())
	}
	wantFailed(t, res, probes.PhaseMX, probes.ReasonOther)
	a := res.Domain.MX[0].Addresses[0]
	if a.Accepts || !strings.Contains(a.Error, "not on the allow-list") {
		t.Fatalf("refused address = %+v", a)
	}
	// The caller chose the domain; where its names point is not theirs
	// to learn from a refusal: the address is withheld, and no PTR or
	// blocklist lookup is made for it.
	if a.Address != "" {
		t.Errorf("refused address shown: %q", a.Address)
	}
	if ptr, ok := res.Domain.Details[probes.PhasePTR].([]*PTRFacts); ok && len(ptr) > 0 {
		t.Errorf("PTR looked up for refused addresses: %+v", ptr)
	}
	// The fixture's hosts are all on 127.0.0.1; the sending IP, the
	// module's own, is the only address the output may name.
	b, _ := json.Marshal(res)
	if n := strings.Count(string(b), "127.0.0.1"); n != 2 {
		t.Errorf("the JSON names 127.0.0.1 %d times, want only the sending IP's SPF and blocklist entries:\n%s", n, b)
	}
	wantVerdict(t, res, probes.PhaseMTASTS, probes.CheckFail, ReasonMTASTSInvalid)
	if c := res.Domain.Check(probes.PhaseMTASTS); !strings.Contains(c.Detail, "not on the allow-list") {
		t.Fatalf("mta_sts detail = %q", c.Detail)
	}
}

func TestProbeNXDOMAIN(t *testing.T) {
	f := newDomainFixture(t)
	srv := f.dnsServer()
	res := Probe(context.Background(), "missing.test", f.module(srv), nil)
	wantFailed(t, res, probes.PhaseMX, probes.ReasonDNSNXDomain)
	if len(res.Phases) != 1 {
		t.Fatalf("ran %d phases for a domain that does not exist", len(res.Phases))
	}
}

func TestProbeDNSSECBogus(t *testing.T) {
	f := newDomainFixture(t)
	srv := f.dnsServer()
	srv.Behave("good.test.", probestest.DNSBehaviour{BogusUnlessCD: true})
	res := f.probe(context.Background(), f.module(srv))
	wantFailed(t, res, probes.PhaseMX, probes.ReasonDNSSECBogus)
}

func TestProbeServFail(t *testing.T) {
	f := newDomainFixture(t)
	srv := f.dnsServer()
	srv.Behave("_dmarc.good.test.", probestest.DNSBehaviour{Rcode: dns.RcodeServerFailure})
	res := f.probe(context.Background(), f.module(srv))
	wantFailed(t, res, probes.PhaseDMARC, probes.ReasonDNSServFail)
	wantVerdict(t, res, probes.PhaseDMARC, probes.CheckError, probes.ReasonDNSServFail)
	if !res.Temporary {
		t.Error("SERVFAIL is temporary")
	}
}

func TestProbeConfigProblem(t *testing.T) {
	m := probes.Module{Prober: probes.ProberDomain, Domain: probes.DomainModule{MXModule: "unresolved"}}
	res := Probe(context.Background(), "good.test", m, nil)
	wantFailed(t, res, probes.PhaseMX, probes.ReasonOther)
	res = Probe(context.Background(), "not a domain", probes.Module{Prober: probes.ProberDomain}, nil)
	wantFailed(t, res, probes.PhaseMX, probes.ReasonOther)
}

// TestProbeHostileDNS: whatever the resolver does, the run ends within
// its timeout with a reason, without a panic or a leaked goroutine
// (TestMain).
func TestProbeHostileDNS(t *testing.T) {
	cases := []struct {
		name   string
		owner  string
		b      probestest.DNSBehaviour
		phase  probes.Phase
		reason probes.Reason
	}{
		{"silent", "", probestest.DNSBehaviour{Silent: true}, probes.PhaseMX, probes.ReasonTimeout},
		{"oversized", "good.test.", probestest.DNSBehaviour{Oversize: 40000, AD: true}, probes.PhaseMX, probes.ReasonDNS},
		{"cname loop", "", probestest.DNSBehaviour{AD: true}, probes.PhaseDMARC, probes.ReasonDNS},
		{"refused", "_smtp._tls.good.test.", probestest.DNSBehaviour{Rcode: dns.RcodeRefused}, probes.PhaseTLSRPT, probes.ReasonDNS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newDomainFixture(t)
			if tc.name == "cname loop" {
				f.set("dmarc", "_dmarc.good.test. CNAME loop.good.test.\nloop.good.test. CNAME _dmarc.good.test.")
			}
			srv := f.dnsServer()
			srv.Behave(tc.owner, tc.b)
			m := f.module(srv)
			m.Timeout, m.Domain.DNSTimeout = 2*time.Second, 500*time.Millisecond
			start := time.Now()
			res := f.probe(context.Background(), m)
			if took := time.Since(start); took > m.Timeout+time.Second {
				t.Fatalf("took %s, timeout %s", took, m.Timeout)
			}
			wantFailed(t, res, tc.phase, tc.reason)
		})
	}
}

// TestProbeTruncatedUDP: answers that come only over TCP are answers.
func TestProbeTruncatedUDP(t *testing.T) {
	f := newDomainFixture(t)
	srv := f.dnsServer()
	srv.Behave("", probestest.DNSBehaviour{TruncateUDP: true, AD: true})
	res := f.probe(context.Background(), f.module(srv))
	if !res.Success {
		t.Fatalf("run failed: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
	}
}

// TestProbeCancelled: a run whose context is cancelled ends at once.
func TestProbeCancelled(t *testing.T) {
	f := newDomainFixture(t)
	srv := f.dnsServer()
	srv.Behave("", probestest.DNSBehaviour{Silent: true})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := f.probe(ctx, f.module(srv))
	if res.Success || !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("cancelled run = %t, %v", res.Success, res.Err)
	}
}

// TestProbeTLSConfigUntouched: the run works on a copy of the module.
func TestProbeTLSConfigUntouched(t *testing.T) {
	f := newDomainFixture(t)
	m := f.module(f.dnsServer())
	f.probe(context.Background(), m)
	if m.Domain.MX.SMTP.TLSConfig.InsecureSkipVerify {
		t.Fatal("the run changed the module's MX tls_config")
	}
}

// TestProbeMXAddressLookupFails: when no MX host's address can be looked
// up, the mx check is undecided, for the DNS reason, not "unreachable".
func TestProbeMXAddressLookupFails(t *testing.T) {
	f := newDomainFixture(t)
	srv := f.dnsServer()
	for _, h := range []string{"mx1.good.test.", "mx2.good.test."} {
		srv.Behave(h, probestest.DNSBehaviour{Rcode: dns.RcodeServerFailure})
	}
	res := f.probe(context.Background(), f.module(srv))
	wantFailed(t, res, probes.PhaseMX, probes.ReasonDNSServFail)
	wantVerdict(t, res, probes.PhaseMX, probes.CheckError, probes.ReasonDNSServFail)
	if res.Domain.MX[0].Error == "" {
		t.Fatalf("host facts = %+v", res.Domain.MX[0])
	}
}

// TestProbeMXLookupFailsTLSRPTStillRuns: an MX lookup that fails stops
// only the checks that need the MX hosts.
func TestProbeMXLookupFailsTLSRPTStillRuns(t *testing.T) {
	f := newDomainFixture(t)
	srv := f.dnsServer()
	srv.Behave("good.test.", probestest.DNSBehaviour{Rcode: dns.RcodeRefused})
	res := f.probe(context.Background(), f.module(srv))
	wantFailed(t, res, probes.PhaseMX, probes.ReasonDNS)
	wantVerdict(t, res, probes.PhaseTLSRPT, probes.CheckPass, probes.ReasonOK)
	for _, p := range []probes.Phase{probes.PhasePTR, probes.PhaseMTASTS, probes.PhaseDANE} {
		if res.Domain.Check(p) != nil {
			t.Errorf("%s ran without MX hosts", p)
		}
	}
}

// TestProbeCaps: max_mx and max_addresses bound what is walked, whatever
// the DNS says.
func TestProbeCaps(t *testing.T) {
	f := newDomainFixture(t)
	f.set("mx", "good.test. MX 10 mx1.good.test.\ngood.test. MX 20 mx2.good.test.\ngood.test. MX 30 mx3.good.test.")
	f.set("mx1", "mx1.good.test. A 127.0.0.1\nmx1.good.test. A 127.0.0.5\nmx1.good.test. A 127.0.0.6")
	f.set("mx3", "mx3.good.test. A 127.0.0.1")
	m := f.module(f.dnsServer())
	m.Domain.MaxMX, m.Domain.MaxAddresses = 2, 1
	res := f.probe(context.Background(), m)
	if len(res.Domain.MX) != 2 || res.Domain.MX[1].Host != "mx2.good.test" {
		t.Fatalf("MX walked = %+v", res.Domain.MX)
	}
	if n := len(res.Domain.MX[0].Addresses); n != 1 {
		t.Fatalf("mx1 has %d addresses probed, want 1", n)
	}
	if f.smtp.Connections() != 2 {
		t.Fatalf("%d sessions, want 2", f.smtp.Connections())
	}
}

// TestProbeBrokenIPv6: an MX whose IPv6 address does not answer while
// IPv4 does shows as its own failed session, and a warn.
func TestProbeBrokenIPv6(t *testing.T) {
	f := newDomainFixture(t)
	f.set("mx1", "mx1.good.test. A 127.0.0.1\nmx1.good.test. AAAA ::1") // the server listens on 127.0.0.1 only
	f.set("ptr6", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa. PTR mx1.good.test.")
	res := f.run()
	if !res.Success {
		t.Fatalf("run failed: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
	}
	wantVerdict(t, res, probes.PhaseMX, probes.CheckWarn, probes.ReasonMXUnreachable)
	addrs := res.Domain.MX[0].Addresses
	if len(addrs) != 2 || addrs[1].Family != "ip6" || addrs[1].Accepts || addrs[1].Phase != probes.PhaseConnect || !addrs[0].Accepts {
		t.Fatalf("mx1 addresses = %+v", addrs)
	}
}

// TestProbeAddressLabels: the module's address_labels reaches the facts,
// which the collector reads instead of the module (ARCHITECTURE.md §3).
func TestProbeAddressLabels(t *testing.T) {
	f := newDomainFixture(t)
	srv := f.dnsServer()
	for _, on := range []bool{false, true} {
		m := f.module(srv)
		m.Domain.AddressLabels = on
		if res := f.probe(context.Background(), m); res.Domain.AddressLabels != on {
			t.Errorf("address_labels %v: facts say %v", on, res.Domain.AddressLabels)
		}
	}
}
