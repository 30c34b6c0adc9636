package domain

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// The domain prober against the real components of scripts/domainpath.sh
// (NSD serving a DNSSEC-signed posture.test, Unbound validating it,
// Postfix MX hosts with TLSA-checked certificates, an HTTPS server for the
// MTA-STS policies). Its keys come from the environment, as `make`
// exports DIR/env, or from the file SMTP_EXPORTER_DOMAINPATH_ENV names.
// With SMTP_EXPORTER_E2E=1 a missing domain path fails the test; without
// it the test is skipped.

func domainpathEnv(t *testing.T) map[string]string {
	return probestest.PathEnv(t, "SMTP_EXPORTER_DOMAINPATH_", "SMTP_EXPORTER_DOMAINPATH_DNS_SERVER", "scripts/domainpath.sh")
}

// domainpathModule checks a posture.test domain through the validating
// resolver, trusting the path's CA for the MX certificates and the
// MTA-STS policy host (the MX module's tls_config ca_file).
func domainpathModule(t *testing.T, env map[string]string) probes.Module {
	t.Helper()
	port, err := strconv.Atoi(env["SMTP_EXPORTER_DOMAINPATH_MX_PORT"])
	if err != nil {
		t.Fatalf("SMTP_EXPORTER_DOMAINPATH_MX_PORT: %v", err)
	}
	m := probes.Module{
		Prober:  probes.ProberDomain,
		Timeout: 30 * time.Second,
		SMTP: probes.SMTPModule{
			EHLO:      "probe.posture.test",
			TLSConfig: config.TLSConfig{CAFile: env["SMTP_EXPORTER_DOMAINPATH_CA_FILE"]},
		},
		Domain: probes.DomainModule{
			MXPort:        port,
			DNSServer:     env["SMTP_EXPORTER_DOMAINPATH_DNS_SERVER"],
			DNSTimeout:    3 * time.Second,
			SendingIPs:    []string{env["SMTP_EXPORTER_DOMAINPATH_SENDING_IP"]},
			DKIMSelectors: []string{env["SMTP_EXPORTER_DOMAINPATH_DKIM_SELECTOR"]},
		},
	}
	if env["SMTP_EXPORTER_DOMAINPATH_MX1_ADDR6"] == "" {
		m.Domain.IPProtocols = []string{"ip4"}
	}
	m.SetDefaults()
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if err := m.ResolveMXModule(func(string) (*probes.Module, bool) { return nil, false }); err != nil {
		t.Fatal(err)
	}
	return m
}

func domainpathProbe(t *testing.T, env map[string]string, key string, change ...func(*probes.Module)) *probes.Result {
	t.Helper()
	domain := env["SMTP_EXPORTER_DOMAINPATH_"+key+"_DOMAIN"]
	if domain == "" {
		t.Fatalf("DIR/env has no SMTP_EXPORTER_DOMAINPATH_%s_DOMAIN", key)
	}
	m := domainpathModule(t, env)
	for _, c := range change {
		c(&m)
	}
	res := Probe(context.Background(), domain, m, nil)
	out, _ := json.MarshalIndent(res, "", "  ")
	t.Logf("%s: %s", domain, out)
	return res
}

func TestE2E_DomainGood(t *testing.T) {
	env := domainpathEnv(t)
	res := domainpathProbe(t, env, "GOOD")
	if !res.Success {
		t.Fatalf("probe failed: %s/%s: %v", res.FailedPhase, res.Reason, res.Err)
	}
	d := res.Domain
	for _, c := range d.Checks {
		if c.Result != probes.CheckPass {
			t.Errorf("check %s = %s/%s (%s), want pass", c.Name, c.Result, c.Reason, c.Detail)
		}
	}
	if len(d.Checks) != 8 { // every check but dnsbl, which has no zone
		t.Errorf("%d checks ran, want 8", len(d.Checks))
	}
	if len(d.MX) != 2 || d.MX[0].Host != env["SMTP_EXPORTER_DOMAINPATH_MX1_HOST"] || d.MX[1].Host != env["SMTP_EXPORTER_DOMAINPATH_MX2_HOST"] {
		t.Fatalf("MX = %+v", d.MX)
	}
	for _, h := range d.MX {
		if h.DANE != DANEMatched {
			t.Errorf("MX %s DANE %s, want matched", h.Host, h.DANE)
		}
		for _, a := range h.Addresses {
			if !a.Accepts || a.TLS == nil || !a.TLS.Verified || a.Greeting != h.Host {
				t.Errorf("MX %s %s = %+v", h.Host, a.Address, a)
			}
		}
	}
	if d.MTASTSMode != ModeEnforce || d.MTASTSPolicyID == "" {
		t.Errorf("MTA-STS mode %q id %q", d.MTASTSMode, d.MTASTSPolicyID)
	}
}

func TestE2E_DomainRotatedDANE(t *testing.T) {
	env := domainpathEnv(t)
	res := domainpathProbe(t, env, "ROTATED")
	wantFailed(t, res, probes.PhaseDANE, ReasonDANEMismatch)
	wantVerdict(t, res, probes.PhaseMX, probes.CheckPass, probes.ReasonOK)
}

func TestE2E_DomainDeadMX(t *testing.T) {
	env := domainpathEnv(t)
	res := domainpathProbe(t, env, "DEADMX")
	wantVerdict(t, res, probes.PhaseMX, probes.CheckWarn, probes.ReasonMXUnreachable)
	dead := env["SMTP_EXPORTER_DOMAINPATH_DEAD_MX_HOST"]
	var found bool
	for _, h := range res.Domain.MX {
		for _, a := range h.Addresses {
			if h.Host == dead {
				found = true
				if a.Accepts || a.Reason != probes.ReasonConnect {
					t.Errorf("dead MX %s = %+v", a.Address, a)
				}
			} else if !a.Accepts {
				t.Errorf("MX %s %s does not accept: %s", h.Host, a.Address, a.Error)
			}
		}
	}
	if !found {
		t.Fatalf("no session to %s: %+v", dead, res.Domain.MX)
	}
}

func TestE2E_DomainBadSTS(t *testing.T) {
	env := domainpathEnv(t)
	res := domainpathProbe(t, env, "BADSTS")
	wantFailed(t, res, probes.PhaseMTASTS, ReasonMTASTSMXMismatch)
}

func TestE2E_DomainSPFLimit(t *testing.T) {
	env := domainpathEnv(t)
	res := domainpathProbe(t, env, "SPFLIMIT")
	wantFailed(t, res, probes.PhaseSPF, ReasonSPFTooManyLookups)
}

func TestE2E_DomainNullMX(t *testing.T) {
	env := domainpathEnv(t)
	// The domain sends no mail either (SPF -all): no sending IP to pass.
	res := domainpathProbe(t, env, "NULLMX", func(m *probes.Module) { m.Domain.SendingIPs = nil })
	wantFailed(t, res, probes.PhaseMX, probes.ReasonNullMX)
	wantVerdict(t, res, probes.PhaseSPF, probes.CheckPass, probes.ReasonOK)
	wantVerdict(t, res, probes.PhaseDMARC, probes.CheckPass, probes.ReasonOK)
	if res.Domain.Check(probes.PhaseMTASTS) != nil || res.Domain.Check(probes.PhaseDANE) != nil {
		t.Errorf("checks that need an MX ran: %+v", res.Domain.Checks)
	}
}

func TestE2E_DomainBogus(t *testing.T) {
	env := domainpathEnv(t)
	res := domainpathProbe(t, env, "BOGUS")
	wantFailed(t, res, probes.PhaseMX, probes.ReasonDNSSECBogus)
}
