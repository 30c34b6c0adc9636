package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// e2eTarget is one scheduled target and what its metrics must say.
type e2eTarget struct {
	name, address, module string
	success               bool
	phase, reason         string // of the failure
	tlsVerified           *bool  // nil: no TLS expected
}

// TestE2E_Exporter runs the built exporter against in-process SMTP servers
// (and the real Postfix when it is configured) on a short schedule, and
// reads the verdicts back from /metrics as Prometheus would.
func TestE2E_Exporter(t *testing.T) {
	pf := probestest.PostfixFromEnv(t)
	bin := exporterBinary(t)
	t.Parallel()
	dir := t.TempDir()

	ca := probestest.NewCA(t)
	caFile := ca.WriteCAFile(t)
	goodCert := ca.Valid(t)
	good := probestest.NewServer(t, probestest.ServerOptions{TLS: &goodCert})
	expiredCert := ca.Expired(t)
	expired := probestest.NewServer(t, probestest.ServerOptions{TLS: &expiredCert})
	refused := probestest.NewScriptServer(t, probestest.Dialog{Replies: map[string]string{
		"RCPT": "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown",
	}}.Serve)
	closed := closedPortAddr(t)

	yes, no := true, false
	targets := []e2eTarget{
		{name: "good", address: good.Addr, module: "starttls", success: true, tlsVerified: &yes},
		{name: "refused-rcpt", address: refused.Addr, module: "plain", phase: "rcpt", reason: "mailbox_unavailable"},
		{name: "expired-cert", address: expired.Addr, module: "starttls", phase: "starttls", reason: "cert_expired", tlsVerified: &no},
		{name: "nothing-listening", address: closed, module: "plain", phase: "connect", reason: "connect"},
	}

	var cfg strings.Builder
	fmt.Fprintf(&cfg, `modules:
  starttls:
    timeout: 1500ms
    smtp:
      tls: starttls
      ehlo: probe.example.test
      tls_config: {ca_file: %q}
      mail_from: monitor@example.test
      rcpt_to: [sink@example.test]
      send: true
  plain:
    timeout: 1500ms
    smtp:
      tls: none
      ehlo: probe.example.test
      mail_from: monitor@example.test
      rcpt_to: [nobody@example.test]
`, caFile)
	if pf != nil {
		cfg.WriteString(pf.SendModuleYAML("postfix", "1500ms"))
		targets = append(targets, e2eTarget{name: "postfix", address: pf.Addr, module: "postfix", success: true, tlsVerified: &yes})
	}

	cfg.WriteString("targets:\n")
	for _, tg := range targets {
		fmt.Fprintf(&cfg, "  - {name: %s, address: %q, module: %s, interval: 2s}\n", tg.name, tg.address, tg.module)
	}
	config := writeTestFile(t, dir, "smtp_exporter.yml", cfg.String())

	var maildir string
	if pf != nil {
		maildir = pf.Maildir
	}
	delivered := func() int {
		entries, _ := os.ReadDir(filepath.Join(maildir, "new"))
		return len(entries)
	}
	deliveredBefore := delivered()

	p := startExporter(t, bin, "--config.file="+config)
	client := newTestClient(t, nil)
	metricsURL := p.url("/metrics")

	// Every target has run once when each has a probe_success.
	var mfs metricFamilies
	eventually(t, 15*time.Second, func() (bool, string) {
		mfs = scrapeMetrics(t, client, metricsURL)
		var waiting []string
		for _, tg := range targets {
			if _, ok := mfs.value("probe_success", map[string]string{"target": tg.name}); !ok {
				waiting = append(waiting, tg.name)
			}
		}
		return len(waiting) == 0, "first results of " + strings.Join(waiting, ", ")
	})

	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			sel := func(extra ...string) map[string]string {
				l := map[string]string{"target": tg.name, "module": tg.module}
				for i := 0; i+1 < len(extra); i += 2 {
					l[extra[i]] = extra[i+1]
				}
				return l
			}
			want := map[bool]float64{true: 1, false: 0}[tg.success]
			if v, _ := mfs.value("probe_success", sel()); v != want {
				t.Errorf("probe_success = %v, want %v", v, want)
			}
			failures := mfs.find("probe_smtp_failure_info", sel())
			if tg.success {
				if len(failures) > 0 {
					t.Errorf("probe_smtp_failure_info on success: %v", labelMap(failures[0]))
				}
			} else if v, ok := mfs.value("probe_smtp_failure_info", sel("phase", tg.phase, "reason", tg.reason)); !ok || v != 1 {
				var got []map[string]string
				for _, m := range failures {
					got = append(got, labelMap(m))
				}
				t.Errorf("probe_smtp_failure_info{phase=%q,reason=%q} missing; have %v", tg.phase, tg.reason, got)
			}
			if tg.tlsVerified != nil {
				if v, ok := mfs.value("probe_smtp_tls_verified", sel()); !ok || v != want01(*tg.tlsVerified) {
					t.Errorf("probe_smtp_tls_verified = %v (present %t), want %v", v, ok, want01(*tg.tlsVerified))
				}
				versions := mfs.find("probe_tls_version_info", sel())
				if len(versions) != 1 || !strings.HasPrefix(labelMap(versions[0])["version"], "TLS 1.") {
					t.Errorf("probe_tls_version_info = %v, want one TLS 1.x series", versions)
				}
			} else if _, ok := mfs.value("probe_smtp_tls_verified", sel()); ok {
				t.Errorf("probe_smtp_tls_verified present for a target without TLS")
			}
			if runs, _ := mfs.value("probe_smtp_runs_total", sel()); runs < 1 {
				t.Errorf("probe_smtp_runs_total = %v, want at least 1", runs)
			}
			// Only the first run sends (min_send_interval), so the last
			// run may have stopped after RCPT: read the counter.
			if tg.success {
				if v, ok := mfs.value("probe_smtp_replies_total", sel("phase", "data", "code", "250", "class", "2xx")); !ok || v < 1 {
					t.Errorf("probe_smtp_replies_total{phase=data,code=250} = %v (present %t), want >= 1 (message accepted)", v, ok)
				}
			}
		})
	}

	t.Run("refused reply counted", func(t *testing.T) {
		v, ok := mfs.value("probe_smtp_replies_total", map[string]string{
			"target": "refused-rcpt", "phase": "rcpt", "class": "5xx", "code": "550",
			"enhanced_code": "5.1.1", "reason": "mailbox_unavailable",
		})
		if !ok || v < 1 {
			t.Errorf("probe_smtp_replies_total for the 550 5.1.1 = %v (present %t), want >= 1", v, ok)
		}
	})
	t.Run("expired certificate expiry", func(t *testing.T) {
		want := float64(expiredCert.Leaf.NotAfter.Unix())
		if v, ok := mfs.value("probe_ssl_earliest_cert_expiry", map[string]string{"target": "expired-cert"}); !ok || v != want {
			t.Errorf("probe_ssl_earliest_cert_expiry = %v (present %t), want %v (%s)", v, ok, want, expiredCert.Leaf.NotAfter.UTC())
		}
		if v, ok := mfs.value("probe_ssl_earliest_cert_expiry", map[string]string{"target": "good"}); !ok || v != float64(goodCert.Leaf.NotAfter.Unix()) {
			t.Errorf("good target's probe_ssl_earliest_cert_expiry = %v, want %v", v, goodCert.Leaf.NotAfter.Unix())
		}
	})
	t.Run("phase latency histogram", func(t *testing.T) {
		mf := mfs["probe_smtp_phase_latency_seconds"]
		if mf == nil || mf.GetType() != dto.MetricType_HISTOGRAM {
			t.Fatalf("probe_smtp_phase_latency_seconds missing or not a histogram: %v", mf.GetType())
		}
		// By module and phase (--metrics.phase-histograms defaults to module).
		for _, l := range []map[string]string{
			{"module": "starttls", "phase": "starttls"},
			{"module": "starttls", "phase": "data"},
			{"module": "plain", "phase": "rcpt"},
			{"module": "plain", "phase": "connect"},
		} {
			ms := mfs.find("probe_smtp_phase_latency_seconds", l)
			if len(ms) != 1 || ms[0].GetHistogram().GetSampleCount() < 1 {
				t.Errorf("no observations in probe_smtp_phase_latency_seconds%v", l)
			}
		}
	})
	t.Run("exporter metrics", func(t *testing.T) {
		if v, _ := mfs.value("smtp_exporter_targets", nil); v != float64(len(targets)) {
			t.Errorf("smtp_exporter_targets = %v, want %d", v, len(targets))
		}
		if len(mfs.find("smtp_exporter_build_info", nil)) != 1 {
			t.Errorf("smtp_exporter_build_info missing")
		}
		if v, _ := mfs.value("smtp_exporter_config_last_reload_successful", nil); v != 1 {
			t.Errorf("smtp_exporter_config_last_reload_successful = %v, want 1", v)
		}
		var names []string
		for _, m := range mfs.find("probe_success", nil) {
			names = append(names, labelMap(m)["target"])
		}
		slices.Sort(names)
		if len(names) != len(targets) {
			t.Errorf("probe_success series for %v, want one per target (%d)", names, len(targets))
		}
	})
	t.Run("message delivered", func(t *testing.T) {
		msgs := good.Messages()
		if len(msgs) == 0 {
			t.Fatalf("the good server received no message")
		}
		if msgs[0].From != "monitor@example.test" || len(msgs[0].To) != 1 || msgs[0].To[0] != "sink@example.test" {
			t.Errorf("message envelope %s → %v, want monitor@example.test → sink@example.test", msgs[0].From, msgs[0].To)
		}
	})
	if pf != nil {
		t.Run("postfix delivered", func(t *testing.T) {
			eventually(t, 10*time.Second, func() (bool, string) {
				return delivered() > deliveredBefore, "the probe's message in " + maildir + "/new"
			})
		})
	}
	t.Run("probe endpoint", func(t *testing.T) {
		// The same verdict on demand, without target labels.
		code, body := httpGet(t, client, p.url("/probe?target=expired-cert"))
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		for _, want := range []string{"probe_success 0", `probe_smtp_failure_info{phase="starttls",reason="cert_expired"} 1`, "probe_smtp_tls_verified 0"} {
			if !strings.Contains(body, want) {
				t.Errorf("/probe output lacks %s", want)
			}
		}
	})
	// The exporter logs each failure once per run at warn, with the reason.
	if logs := p.logs.String(); !strings.Contains(logs, `msg="Probe failed" target=refused-rcpt`) || !strings.Contains(logs, "reason=mailbox_unavailable") {
		t.Errorf("log lacks the refused target's failure")
	}
}

func want01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
