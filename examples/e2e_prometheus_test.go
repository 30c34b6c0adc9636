package examples_test

// TestE2E_Prometheus runs the examples against the real thing: the built
// exporter probing a misbehaving server, a server with an expired
// certificate and the private Postfix of `make test-e2e`; Debian's
// Prometheus scraping it with the rules of alerts.yml; Alertmanager
// receiving the alerts and delivering them to a webhook in this test. It
// asserts through the HTTP APIs only, as an operator would see it.
//
// Every top-level name in this file starts with e2e: the package's other
// test files are written separately and share its namespace.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
	"go.yaml.in/yaml/v3"
)

const (
	// e2eBudget bounds everything after the build together: the happy
	// path takes about 15 s (Prometheus's first scrape alone comes ~5 s
	// after it starts, the shortened for: adds 5 s).
	e2eBudget = 90 * time.Second

	// e2eShortFor replaces every rule's `for:`. The real durations are
	// minutes, so that a blip does not page anyone; this test checks the
	// expressions, labels, annotations and the path to Alertmanager, not
	// the waiting (promtool tests in examples/tests/ check the durations).
	e2eShortFor = "5s"

	e2eDMARCTarget    = "dmarc-rejected"
	e2eExpiredTarget  = "expired-cert"
	e2ePostfixTarget  = "postfix"
	e2eNegativeTarget = "open-relay-check"
	// e2eOnceTarget fails its first run only: the dashboard's "Failures in
	// the time range" must still list it.
	e2eOnceTarget = "failed-once"

	// e2eFailuresPanel is the dashboard panel that must list e2eOnceTarget,
	// and e2eOldFailuresExpr the query it had, which did not (increase()
	// of a counter created at 1 by the first failure is 0).
	e2eFailuresPanel   = "Failures in the time range"
	e2eOldFailuresExpr = `sum by (target, module, phase, reason) (increase(probe_smtp_failures_total{job=~"$job", instance=~"$instance", target=~"$target", module=~"$module"}[$__range])) > 0`

	e2eDMARCReply = "550 5.7.26 Unauthenticated email from example.test is not accepted due to domain's DMARC policy"
)

// e2eExpectedAlerts are the alerts alerts.yml must raise for the broken
// targets, with labels they must carry; keep them in step with alerts.yml.
// (The expired certificate has its own alert and no SMTPProbeFailing: one
// broken server is one page.)
var e2eExpectedAlerts = []map[string]string{
	{"alertname": "SMTPProbeFailing", "target": e2eDMARCTarget, "phase": "rcpt", "reason": "dmarc", "severity": "critical"},
	{"alertname": "SMTPPermanentRejections", "target": e2eDMARCTarget, "phase": "rcpt", "code": "550", "enhanced_code": "5.7.26", "reason": "dmarc"},
	{"alertname": "SMTPCertificateExpired", "target": e2eExpiredTarget, "severity": "critical"},
}

// e2eMayBeEmpty are dashboard expressions (matched by regexp on the raw
// expression) that may legitimately return nothing in this setup. They
// must still evaluate without error.
var e2eMayBeEmpty = []struct {
	re  *regexp.Regexp
	why string
}{
	{regexp.MustCompile(`version\s*=~?\s*"[^"]*1\.[01]`), "no target here speaks TLS 1.0/1.1"},
	{regexp.MustCompile(`probe_smtp_expectation_met\s*(\{[^}]*\})?\s*==\s*0`), "the negative test here succeeds"},
	// The "Mail flow" row: see e2eAbsentMetrics.
	{regexp.MustCompile(`\bprobe_delivery_`), "no delivery target here"},
	// The "Domain posture" row: see e2eAbsentMetrics.
	{regexp.MustCompile(`\bprobe_domain_`), "no domain target here"},
}

// e2eAbsentMetrics are metrics that the rules and the dashboard use but the
// exporter here never exposes: its configuration has no delivery target,
// because a delivery probe needs the whole mail path (DNS, signing and
// verifying MTAs, IMAP), which the delivery prober's own e2e tests start.
// The rules and queries that use them must still evaluate without error.
var e2eAbsentMetrics = []string{
	"probe_delivery_time_to_inbox_seconds",
	"probe_delivery_placement_info",
	"probe_delivery_auth_result_info",
	"probe_delivery_hops",
	"probe_delivery_spam_flagged",
	"probe_delivery_bounce_mailbox_up",
	"probe_delivery_imap_ssl_earliest_cert_expiry",
	"probe_delivery_imap_ssl_last_chain_expiry_timestamp_seconds",
	"probe_delivery_imap_tls_verified",
	"probe_delivery_imap_tls_version_info",
	"probe_delivery_imap_tls_cipher_info",
	"probe_delivery_inbox_latency_seconds_bucket",
	"probe_delivery_inbox_latency_seconds_count",
	"probe_delivery_late_total",
	"probe_delivery_pending",
	"probe_delivery_lost_total",
	"probe_delivery_bounces_total",
	// Nor a domain target: the domain prober's e2e test has its own DNS
	// zone, resolver and MX hosts.
	"probe_domain_check_info",
	"probe_domain_null_mx",
	"probe_domain_mx_hosts",
	"probe_domain_mx_hosts_accepting",
	"probe_domain_mx_up",
	"probe_domain_mx_address_up",
	"probe_domain_mta_sts_mode_info",
	"probe_domain_mta_sts_policy_id_info",
	"probe_domain_mta_sts_max_age_seconds",
	"probe_domain_mx_ssl_earliest_cert_expiry",
}

func TestE2E_Prometheus(t *testing.T) {
	if !probestest.E2E() {
		t.Skip("SMTP_EXPORTER_E2E=1 not set: needs Prometheus, Alertmanager and a private Postfix (make test-e2e)")
	}
	began := time.Now()
	since := func() string { return time.Since(began).Round(100 * time.Millisecond).String() }

	promBin := e2eLookPath(t, "prometheus")
	amBin := e2eLookPath(t, "prometheus-alertmanager", "alertmanager")
	// With SMTP_EXPORTER_E2E=1 a missing Postfix fails the test.
	pf := probestest.PostfixFromEnv(t)
	job := e2eExporterJob(t, "prometheus.yml")
	rulesSrc, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatalf("read the alert rules: %v", err)
	}
	dashboard := e2eLoadDashboard(t, filepath.Join("grafana", "smtp_exporter.json"))

	dir := t.TempDir()
	logs := &e2eLogs{}
	t.Cleanup(func() {
		if t.Failed() {
			logs.dump(t)
		}
	})
	client := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)

	exporter := e2eExporterBinary(t, dir)
	t.Logf("%s: exporter built", since())
	deadline := time.Now().Add(e2eBudget)

	// The targets: one refusing at RCPT for DMARC, one presenting an
	// expired certificate at STARTTLS, the real Postfix sending one real
	// message, and a negative test (an open-relay check that expects the
	// refusal) so that probe_smtp_expectation_met has a series.
	dmarc := probestest.NewScriptServer(t, probestest.Dialog{Replies: map[string]string{"RCPT": e2eDMARCReply}}.Serve)
	ca := probestest.NewCA(t)
	caFile := ca.WriteCAFile(t)
	expiredCert := ca.Expired(t)
	expired := probestest.NewServer(t, probestest.ServerOptions{TLS: &expiredCert})
	// The first session is refused at RCPT; every later one is accepted.
	var onceSessions atomic.Int32
	once := probestest.NewScriptServer(t, func(c *probestest.Conn) {
		if onceSessions.Add(1) == 1 {
			probestest.Dialog{Replies: map[string]string{"RCPT": "550 5.1.1 <sink@example.test>: Recipient address rejected: User unknown"}}.Serve(c)
			return
		}
		probestest.Dialog{}.Serve(c)
	})

	exporterConfig := e2eWriteFile(t, dir, "smtp_exporter.yml", fmt.Sprintf(`modules:
  dmarc:
    timeout: 1500ms
    smtp:
      tls: none
      ehlo: probe.example.test
      mail_from: monitor@example.test
      rcpt_to: [sink@example.test]
  open_relay:
    timeout: 1500ms
    smtp:
      tls: none
      ehlo: probe.example.test
      mail_from: monitor@example.test
      rcpt_to: [someone@elsewhere.test]
      expect_codes: {rcpt: [550, 554]}
  starttls:
    timeout: 1500ms
    smtp:
      tls: starttls
      ehlo: probe.example.test
      tls_config: {ca_file: %q}
      mail_from: monitor@example.test
      rcpt_to: [sink@example.test]
%stargets:
  - {name: %s, address: %q, module: dmarc, interval: 2s}
  - {name: %s, address: %q, module: open_relay, interval: 2s}
  - {name: %s, address: %q, module: starttls, interval: 2s}
  - {name: %s, address: %q, module: postfix, interval: 2s}
  - {name: %s, address: %q, module: dmarc, interval: 2s}
`, caFile, pf.SendModuleYAML("postfix", "1500ms", "min_send_interval: 1h"),
		e2eDMARCTarget, dmarc.Addr, e2eNegativeTarget, dmarc.Addr,
		e2eExpiredTarget, expired.Addr, e2ePostfixTarget, pf.Addr, e2eOnceTarget, once.Addr))
	exp := e2eStart(t, client, logs, "exporter", "/-/ready", func(addr string) *exec.Cmd {
		return exec.Command(exporter, "--config.file="+exporterConfig, "--web.listen-address="+addr)
	})
	t.Logf("%s: exporter ready on %s", since(), exp.addr)

	// The webhook receiver: proof that Alertmanager delivers.
	hook := &e2eWebhook{}
	hookServer := httptest.NewServer(hook)
	t.Cleanup(hookServer.Close)

	amConfig := e2eWriteFile(t, dir, "alertmanager.yml", fmt.Sprintf(`route:
  receiver: test
  group_by: [alertname, target]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: %q
        send_resolved: false
`, hookServer.URL+"/alerts"))
	am := e2eStart(t, client, logs, "alertmanager", "/-/ready", func(addr string) *exec.Cmd {
		return exec.Command(amBin, "--config.file="+amConfig, "--storage.path="+filepath.Join(dir, "am-data"),
			"--web.listen-address="+addr, "--cluster.listen-address=")
	})
	t.Logf("%s: alertmanager ready on %s", since(), am.addr)

	rules, nRules := e2eShortenRules(t, rulesSrc)
	rulesFile := e2eWriteFile(t, dir, "alerts.yml", string(rules))
	promConfig := e2eWriteFile(t, dir, "prometheus.yml", fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: %q
    static_configs:
      - targets: [%q]
`, rulesFile, am.addr, job, exp.addr))
	prom := e2eStart(t, client, logs, "prometheus", "/-/ready", func(addr string) *exec.Cmd {
		return exec.Command(promBin, "--config.file="+promConfig, "--storage.tsdb.path="+filepath.Join(dir, "prom-data"),
			"--web.listen-address="+addr, "--web.enable-lifecycle",
			// Alerts that fire before the notifier knows the
			// Alertmanager would otherwise wait a minute for a resend.
			"--rules.alert.resend-delay=1s")
	})
	t.Logf("%s: prometheus ready on %s", since(), prom.addr)
	api := e2eProm{client: client, base: "http://" + prom.addr}

	// 1. Prometheus scrapes the exporter, and every target has a result.
	e2eWait(t, deadline, 30*time.Second, "Prometheus to scrape the exporter", func() (bool, string) {
		r, err := api.query(fmt.Sprintf(`up{job=%q} == 1`, job))
		if err != nil {
			return false, err.Error()
		}
		if len(r) == 0 {
			return false, fmt.Sprintf("up{job=%q} is not 1 yet", job)
		}
		r, err = api.query(fmt.Sprintf(`probe_success{job=%q}`, job))
		if err != nil {
			return false, err.Error()
		}
		if len(r) < 5 {
			return false, fmt.Sprintf("probe_success for %d of 5 targets", len(r))
		}
		return true, ""
	})
	scraped := time.Now()
	t.Logf("%s: Prometheus scrapes the exporter (job %q)", since(), job)
	t.Run("verdicts", func(t *testing.T) {
		want := map[string]string{e2eDMARCTarget: "0", e2eExpiredTarget: "0", e2ePostfixTarget: "1", e2eNegativeTarget: "1"}
		r, err := api.query(fmt.Sprintf(`probe_success{job=%q}`, job))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r {
			if s.Metric["target"] == e2eOnceTarget {
				continue // "failed once" below
			}
			if w := want[s.Metric["target"]]; s.value() != w {
				t.Errorf("probe_success{target=%q} = %s, want %s", s.Metric["target"], s.value(), w)
			}
		}
		// The first run sent a message through Postfix; min_send_interval
		// keeps the later ones at RCPT.
		r, err = api.query(fmt.Sprintf(`probe_smtp_replies_total{target=%q, phase="data", code="250"} >= 1`, e2ePostfixTarget))
		if err != nil {
			t.Fatal(err)
		}
		if len(r) != 1 {
			t.Errorf("no 250 after DATA counted for %s: the message was not sent", e2ePostfixTarget)
		}
		for target, reason := range map[string]string{e2eDMARCTarget: "dmarc", e2eExpiredTarget: "cert_expired"} {
			r, err := api.query(fmt.Sprintf(`probe_smtp_failure_info{target=%q, reason=%q} == 1`, target, reason))
			if err != nil {
				t.Fatal(err)
			}
			if len(r) != 1 {
				t.Errorf("probe_smtp_failure_info{target=%q, reason=%q}: %d series, want 1", target, reason, len(r))
			}
		}
	})

	// The target that failed once: the dashboard's failures table lists it,
	// where its old query did not.
	t.Run("failed once", func(t *testing.T) {
		e2eCheckFailedOnce(t, api, dashboard, deadline)
		if t.Failed() {
			return
		}
		t.Logf("%s: the failures table lists %s, which failed once", since(), e2eOnceTarget)
	})

	// 2. Every rule has been evaluated on the scraped data, without error.
	t.Run("rules", func(t *testing.T) {
		e2eCheckRules(t, api, deadline, scraped, nRules)
		t.Logf("%s: %d rules evaluated on the exporter's data", since(), nRules)
	})

	// 3. Every metric the rules and the dashboard name exists.
	t.Run("metric names", func(t *testing.T) {
		var names []string
		if err := api.get("/api/v1/label/__name__/values", nil, &names); err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, n := range names {
			have[n] = true
		}
		groups, err := api.rules()
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			for _, r := range g.Rules {
				for _, m := range e2eMetricNames(r.Query) {
					if !have[m] && !slices.Contains(e2eAbsentMetrics, m) {
						t.Errorf("rule %s/%s uses %s, which the exporter does not expose\n\texpr: %s", g.Name, r.Name, m, r.Query)
					}
				}
			}
		}
		for _, q := range dashboard.queries {
			for _, m := range e2eMetricNames(q.expr) {
				if !have[m] && !slices.Contains(e2eAbsentMetrics, m) {
					t.Errorf("dashboard panel %q uses %s, which the exporter does not expose\n\texpr: %s", q.panel, m, q.expr)
				}
			}
		}
	})

	// 4. Every dashboard query evaluates, and all but a few have data.
	t.Run("dashboard", func(t *testing.T) {
		e2eCheckDashboard(t, api, dashboard, deadline)
		t.Logf("%s: %d dashboard queries and %d variables checked", since(), len(dashboard.queries), len(dashboard.variables))
	})

	// 5. The broken targets' alerts are at least pending, then the
	// expected ones fire; none fires for the healthy targets.
	t.Run("alerts", func(t *testing.T) {
		var alerts []e2ePromAlert
		e2eWait(t, deadline, 30*time.Second, "alerts for the broken targets", func() (bool, string) {
			var err error
			if alerts, err = api.alerts(); err != nil {
				return false, err.Error()
			}
			var missing []string
			for _, target := range []string{e2eDMARCTarget, e2eExpiredTarget} {
				if !slices.ContainsFunc(alerts, func(a e2ePromAlert) bool { return a.Labels["target"] == target }) {
					missing = append(missing, target)
				}
			}
			return len(missing) == 0, "an alert with target " + strings.Join(missing, " and ")
		})
		t.Logf("%s: the broken targets have alerts", since())
		e2eWait(t, deadline, 30*time.Second, "the expected alerts to fire", func() (bool, string) {
			var err error
			if alerts, err = api.alerts(); err != nil {
				return false, err.Error()
			}
			missing := e2eMissingAlerts(alerts, "firing")
			return len(missing) == 0, strings.Join(missing, ", ")
		})
		t.Logf("%s: the expected alerts fire", since())
		for _, a := range alerts {
			t.Logf("alert %s %s: %v\n\tsummary: %s\n\tdescription: %s", a.Labels["alertname"], a.State, a.Labels, a.Annotations["summary"], a.Annotations["description"])
			// A firing alert for a healthy target is a false page; a
			// pending one may be a single slow probe on a busy machine.
			if healthy := a.Labels["target"] == e2ePostfixTarget || a.Labels["target"] == e2eNegativeTarget || a.Labels["target"] == e2eOnceTarget; healthy && a.State == "firing" {
				t.Errorf("alert %s fires for the healthy target %s: %v %v", a.Labels["alertname"], a.Labels["target"], a.Labels, a.Annotations)
			}
			for _, k := range []string{"summary", "description"} {
				if strings.TrimSpace(a.Annotations[k]) == "" {
					t.Errorf("alert %s for %q: no %s annotation", a.Labels["alertname"], a.Labels["target"], k)
				}
			}
			// Prometheus here is seconds old: the count must not claim
			// the rule's 30 minutes.
			if a.Labels["alertname"] == "SMTPPermanentRejections" && !strings.Contains(a.Annotations["description"], "of data Prometheus has") {
				t.Errorf("SMTPPermanentRejections claims a window Prometheus has no data for: %s", a.Annotations["description"])
			}
			for k, v := range a.Annotations {
				if strings.Contains(v, "error expanding template") || strings.Contains(v, "<no value>") || strings.Contains(v, "{{") {
					t.Errorf("alert %s for %q: annotation %s did not render: %q", a.Labels["alertname"], a.Labels["target"], k, v)
				}
			}
		}
	})

	// 6. The firing alerts reach Alertmanager and its receiver.
	t.Run("alertmanager", func(t *testing.T) {
		e2eWait(t, deadline, 30*time.Second, "the expected alerts in Alertmanager", func() (bool, string) {
			var alerts []e2ePromAlert
			if err := e2eGetJSON(client, "http://"+am.addr+"/api/v2/alerts", &alerts); err != nil {
				return false, err.Error()
			}
			missing := e2eMissingAlerts(alerts, "")
			return len(missing) == 0, strings.Join(missing, ", ")
		})
		t.Logf("%s: Alertmanager holds the expected alerts", since())
		e2eWait(t, deadline, 15*time.Second, "the webhook to receive the expected alerts", func() (bool, string) {
			var alerts []e2ePromAlert
			for _, labels := range hook.received() {
				alerts = append(alerts, e2ePromAlert{Labels: labels})
			}
			missing := e2eMissingAlerts(alerts, "")
			return len(missing) == 0, strings.Join(missing, ", ")
		})
		t.Logf("%s: the webhook received them", since())
	})

	// Errors that need more data (rates over several samples, pending
	// alerts) show by now.
	t.Run("rules at the end", func(t *testing.T) {
		e2eCheckRules(t, api, deadline, time.Now(), nRules)
	})
	t.Logf("%s: done", since())
}

// e2eCheckFailedOnce waits until Prometheus has seen e2eOnceTarget fail
// once and recover (its failure counter at 1 in two samples or more, so
// that increase() has what it needs), then evaluates the dashboard's
// failures query and the old one.
func e2eCheckFailedOnce(t *testing.T, api e2eProm, d *e2eDashboard, deadline time.Time) {
	t.Helper()
	var fixed string
	for _, q := range d.queries {
		if q.panel == e2eFailuresPanel {
			fixed = q.expr
		}
	}
	if fixed == "" {
		t.Fatalf("the dashboard has no panel %q", e2eFailuresPanel)
	}
	fixedExpanded, err := d.expand(fixed)
	if err != nil {
		t.Fatal(err)
	}
	oldExpanded, err := d.expand(e2eOldFailuresExpr)
	if err != nil {
		t.Fatal(err)
	}
	e2eWait(t, deadline, 30*time.Second, e2eOnceTarget+" to have failed once and recovered", func() (bool, string) {
		sel := fmt.Sprintf(`{target=%q}`, e2eOnceTarget)
		r, err := api.query(`count_over_time(probe_smtp_failures_total` + sel + `[5m]) >= 2 and probe_smtp_failures_total` + sel + ` == 1`)
		if err != nil {
			return false, err.Error()
		}
		if len(r) != 1 {
			return false, "two samples of its failure counter at 1"
		}
		r, err = api.query(`probe_success` + sel + ` == 1`)
		if err != nil {
			return false, err.Error()
		}
		return len(r) == 1, "probe_success 1 again"
	})
	lists := func(expr string) (bool, []e2eSample) {
		r, err := api.query(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		for _, s := range r {
			if s.Metric["target"] == e2eOnceTarget {
				return true, r
			}
		}
		return false, r
	}
	if ok, r := lists(fixedExpanded); !ok {
		t.Errorf("%q does not list %s, which failed once:\n\texpr: %s\n\tresult: %v", e2eFailuresPanel, e2eOnceTarget, fixedExpanded, r)
	} else {
		for _, s := range r {
			if s.Metric["target"] == e2eOnceTarget && (s.value() != "1" || s.Metric["reason"] != "mailbox_unavailable" || s.Metric["phase"] != "rcpt") {
				t.Errorf("%q: %s listed as %v = %s, want 1 failure in rcpt, mailbox_unavailable", e2eFailuresPanel, e2eOnceTarget, s.Metric, s.value())
			}
		}
	}
	if ok, r := lists(oldExpanded); ok {
		t.Errorf("the old query lists %s too, so this test does not tell them apart:\n\texpr: %s\n\tresult: %v", e2eOnceTarget, oldExpanded, r)
	}
}

// e2eMissingAlerts returns the expected alerts that are not among alerts
// (in the given state, unless state is "").
func e2eMissingAlerts(alerts []e2ePromAlert, state string) []string {
	var missing []string
	for _, want := range e2eExpectedAlerts {
		found := slices.ContainsFunc(alerts, func(a e2ePromAlert) bool {
			if state != "" && a.State != state {
				return false
			}
			for k, v := range want {
				if a.Labels[k] != v {
					return false
				}
			}
			return true
		})
		if !found {
			missing = append(missing, fmt.Sprintf("%v", want))
		}
	}
	return missing
}

// e2eCheckRules waits until Prometheus has evaluated every rule after
// the time after, then reports every rule whose last evaluation failed.
func e2eCheckRules(t *testing.T, api e2eProm, deadline, after time.Time, nRules int) {
	t.Helper()
	var groups []e2eRuleGroup
	e2eWait(t, deadline, 20*time.Second, "every rule's evaluation", func() (bool, string) {
		var err error
		if groups, err = api.rules(); err != nil {
			return false, err.Error()
		}
		var waiting []string
		n := 0
		for _, g := range groups {
			for _, r := range g.Rules {
				n++
				if !r.LastEvaluation.After(after) {
					waiting = append(waiting, g.Name+"/"+r.Name)
				}
			}
		}
		if n != nRules {
			return false, fmt.Sprintf("Prometheus loaded %d rules, alerts.yml has %d", n, nRules)
		}
		return len(waiting) == 0, "evaluation of " + strings.Join(waiting, ", ")
	})
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Health != "ok" || r.LastError != "" {
				t.Errorf("rule %s/%s (%s): health %q, lastError %q\n\texpr: %s", g.Name, r.Name, r.Type, r.Health, r.LastError, r.Query)
			}
		}
	}
}

// e2eLookPath finds the first of names on PATH (or in /usr/sbin, /usr/bin).
func e2eLookPath(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, d := range []string{"/usr/bin", "/usr/sbin"} {
			if p := filepath.Join(d, n); e2eIsExecutable(p) {
				return p
			}
		}
	}
	t.Fatalf("%s not found (run scripts/install-deps.sh)", strings.Join(names, " or "))
	return ""
}

func e2eIsExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// e2eExporterJob returns the job name under which the example Prometheus
// configuration scrapes the exporter's /metrics; the rules may select on it.
func e2eExporterJob(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the example Prometheus configuration: %v", err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName     string `yaml:"job_name"`
			MetricsPath string `yaml:"metrics_path"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var jobs, candidates []string
	for _, sc := range cfg.ScrapeConfigs {
		jobs = append(jobs, fmt.Sprintf("%s (%s)", sc.JobName, e2eOr(sc.MetricsPath, "/metrics")))
		if (sc.MetricsPath == "" || sc.MetricsPath == "/metrics") && strings.Contains(sc.JobName, "smtp") {
			candidates = append(candidates, sc.JobName)
		}
	}
	if len(candidates) == 0 {
		t.Fatalf("%s: no job scrapes the exporter's /metrics (jobs: %s)", path, strings.Join(jobs, ", "))
	}
	return candidates[0]
}

func e2eOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// e2eExporterBinary builds the exporter into dir, or returns
// SMTP_EXPORTER_BINARY (to test a release build).
func e2eExporterBinary(t *testing.T, dir string) string {
	t.Helper()
	if p := os.Getenv("SMTP_EXPORTER_BINARY"); p != "" {
		return p
	}
	bin := filepath.Join(dir, "smtp_exporter")
	// The test runs in examples/.
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/smtp_exporter")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the exporter: %v\n%s", err, out)
	}
	return bin
}

func e2eWriteFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// e2eShortenRules returns alerts.yml with every rule's `for:` set to
// e2eShortFor and every group's evaluation `interval:` removed (so the
// global 1 s applies), and the number of rules.
func e2eShortenRules(t *testing.T, src []byte) ([]byte, int) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	if len(doc.Content) != 1 {
		t.Fatalf("alerts.yml: not one YAML document")
	}
	groups := e2eMapValue(doc.Content[0], "groups")
	if groups == nil || groups.Kind != yaml.SequenceNode {
		t.Fatalf("alerts.yml: no groups list")
	}
	n := 0
	for _, g := range groups.Content {
		e2eMapDelete(g, "interval")
		rules := e2eMapValue(g, "rules")
		if rules == nil {
			continue
		}
		for _, r := range rules.Content {
			n++
			if v := e2eMapValue(r, "for"); v != nil {
				v.Value = e2eShortFor
			}
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out, n
}

func e2eMapValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func e2eMapDelete(m *yaml.Node, key string) {
	if m.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// e2eLogs collects the log files of the processes the test started.
type e2eLogs struct {
	mu    sync.Mutex
	files []string
}

func (l *e2eLogs) add(path string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.files = append(l.files, path)
}

// dump prints the end of every log: called on failure, before the
// temporary directory goes.
func (l *e2eLogs) dump(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.files {
		t.Logf("---- end of %s ----\n%s", filepath.Base(f), e2eTail(f, 30))
	}
}

func e2eTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// e2eProcess is a started program in its own process group, its output
// in a log file.
type e2eProcess struct {
	name string
	addr string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func (p *e2eProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process group to end, then kills it.
func (p *e2eProcess) stop() {
	pgid := p.cmd.Process.Pid
	if !p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	}
	// Anything the program left behind in its group goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
}

// e2eStart runs the command that command makes for a free loopback
// address and waits until readyPath answers 200. A port taken between
// picking and binding it is retried with another.
func e2eStart(t *testing.T, client *http.Client, logs *e2eLogs, name, readyPath string, command func(addr string) *exec.Cmd) *e2eProcess {
	t.Helper()
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		p := &e2eProcess{name: name, addr: probestest.ClosedAddr(t), done: make(chan struct{})}
		p.log = filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, attempt))
		f, err := os.Create(p.log)
		if err != nil {
			t.Fatal(err)
		}
		logs.add(p.log)
		p.cmd = command(p.addr)
		p.cmd.Stdout, p.cmd.Stderr = f, f
		// Its own process group, so that stop reaches anything it
		// starts; killed with the test binary should that die without
		// running cleanups (a -timeout panic).
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		err = p.cmd.Start()
		f.Close()
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		go func() {
			p.err = p.cmd.Wait()
			close(p.done)
		}()
		t.Cleanup(p.stop)

		ready := time.Now().Add(30 * time.Second)
		for {
			if p.exited() {
				break
			}
			if resp, err := client.Get("http://" + p.addr + readyPath); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return p
				}
			}
			if time.Now().After(ready) {
				t.Fatalf("%s not ready on %s within 30s:\n%s", name, p.addr, e2eTail(p.log, 30))
			}
			time.Sleep(50 * time.Millisecond)
		}
		tail := e2eTail(p.log, 30)
		if attempt < 3 && strings.Contains(tail, "address already in use") {
			t.Logf("%s: %s was taken meanwhile, trying another port", name, p.addr)
			continue
		}
		t.Fatalf("%s exited during startup (%v):\n%s", name, p.err, tail)
	}
}

// e2eWait polls cond every 250 ms until it holds, for at most max and
// never past deadline; cond says what it still waits for.
func e2eWait(t *testing.T, deadline time.Time, max time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	start := time.Now()
	end := start.Add(max)
	if deadline.Before(end) {
		end = deadline
	}
	for {
		ok, waiting := cond()
		if ok {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("after %s still waiting for %s: %s", time.Since(start).Round(time.Second), what, waiting)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// e2eWebhook records the alerts Alertmanager posts to it.
type e2eWebhook struct {
	mu     sync.Mutex
	alerts []map[string]string // labels
}

func (h *e2eWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range msg.Alerts {
		h.alerts = append(h.alerts, a.Labels)
	}
}

func (h *e2eWebhook) received() []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.alerts)
}

// e2eGetJSON decodes a JSON answer of any status into v.
func e2eGetJSON(client *http.Client, u string, v any) error {
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: status %d: %v: %.300s", u, resp.StatusCode, err, b)
	}
	return nil
}

// e2eProm talks to Prometheus's HTTP API.
type e2eProm struct {
	client *http.Client
	base   string
}

// get calls a Prometheus API endpoint and decodes its data into v.
func (p e2eProm) get(path string, params url.Values, v any) error {
	u := p.base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	var r struct {
		Status   string          `json:"status"`
		Error    string          `json:"error"`
		Warnings []string        `json:"warnings"`
		Data     json.RawMessage `json:"data"`
	}
	if err := e2eGetJSON(p.client, u, &r); err != nil {
		return err
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: status %q: %s", path, r.Status, r.Error)
	}
	if len(r.Warnings) > 0 {
		return fmt.Errorf("%s: warnings: %s", path, strings.Join(r.Warnings, "; "))
	}
	return json.Unmarshal(r.Data, v)
}

type e2eSample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"` // instant queries only
}

func (s e2eSample) value() string {
	if len(s.Value) == 2 {
		v, _ := s.Value[1].(string)
		return v
	}
	return ""
}

// query runs an instant query; a scalar or string result counts as one
// sample.
func (p e2eProm) query(expr string) ([]e2eSample, error) {
	return p.run("/api/v1/query", url.Values{"query": {expr}})
}

// queryRange runs expr over the last 30 s, as a graph panel would.
func (p e2eProm) queryRange(expr string) ([]e2eSample, error) {
	now := time.Now()
	return p.run("/api/v1/query_range", url.Values{
		"query": {expr},
		"start": {fmt.Sprint(now.Add(-30 * time.Second).Unix())},
		"end":   {fmt.Sprint(now.Unix())},
		"step":  {"1"},
	})
}

func (p e2eProm) run(path string, params url.Values) ([]e2eSample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get(path, params, &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector", "matrix":
		var r []e2eSample
		err := json.Unmarshal(data.Result, &r)
		return r, err
	case "scalar", "string":
		var v []any
		err := json.Unmarshal(data.Result, &v)
		return []e2eSample{{Value: v}}, err
	}
	return nil, fmt.Errorf("unknown result type %q", data.ResultType)
}

type e2eRuleGroup struct {
	Name  string `json:"name"`
	File  string `json:"file"`
	Rules []struct {
		Name           string    `json:"name"`
		Query          string    `json:"query"`
		Type           string    `json:"type"`
		Health         string    `json:"health"`
		LastError      string    `json:"lastError"`
		LastEvaluation time.Time `json:"lastEvaluation"`
	} `json:"rules"`
}

func (p e2eProm) rules() ([]e2eRuleGroup, error) {
	var data struct {
		Groups []e2eRuleGroup `json:"groups"`
	}
	err := p.get("/api/v1/rules", nil, &data)
	return data.Groups, err
}

type e2ePromAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

func (p e2eProm) alerts() ([]e2ePromAlert, error) {
	var data struct {
		Alerts []e2ePromAlert `json:"alerts"`
	}
	err := p.get("/api/v1/alerts", nil, &data)
	return data.Alerts, err
}

// e2eMetricNames returns the exporter's metric names in a PromQL
// expression. Names with a colon (recording rules) are left out.
func e2eMetricNames(expr string) []string {
	var out []string
	for _, id := range e2eIdentRE.FindAllString(expr, -1) {
		if strings.Contains(id, ":") {
			continue
		}
		if strings.HasPrefix(id, "probe_") || strings.HasPrefix(id, "smtp_exporter_") {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// e2eIdentRE matches PromQL identifiers (and words in quoted strings,
// which in these expressions never look like the exporter's metric names).
var e2eIdentRE = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)

// The dashboard.

type e2eDashboard struct {
	queries   []e2eDashboardQuery
	variables []e2eDashboardQuery // label_values()/query_result() of query variables
	values    map[string]string   // variable name → what it expands to
}

type e2eDashboardQuery struct {
	panel string // panel title, or "variable NAME"
	expr  string // as written
}

func e2eLoadDashboard(t *testing.T, path string) *e2eDashboard {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the dashboard: %v", err)
	}
	var dash struct {
		Panels     []e2ePanel `json:"panels"`
		Rows       []e2ePanel `json:"rows"` // the pre-5.0 layout
		Templating struct {
			List []struct {
				Name     string          `json:"name"`
				Type     string          `json:"type"`
				Query    json.RawMessage `json:"query"`
				AllValue string          `json:"allValue"`
				Current  struct {
					Value json.RawMessage `json:"value"`
				} `json:"current"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	d := &e2eDashboard{values: map[string]string{
		// Grafana's built-ins, for a 1 s scrape interval and a
		// dashboard opened on the last few minutes.
		"__rate_interval": "1m",
		"__interval":      "15s",
		"__interval_ms":   "15000",
		"__range":         "5m",
		"__range_s":       "300",
		"__range_ms":      "300000",
	}}
	for _, v := range dash.Templating.List {
		var query string
		if json.Unmarshal(v.Query, &query) != nil {
			// Newer Grafana writes {"query": "...", "refId": ...}.
			var q struct {
				Query string `json:"query"`
			}
			_ = json.Unmarshal(v.Query, &q)
			query = q.Query
		}
		var current string
		_ = json.Unmarshal(v.Current.Value, &current)
		switch v.Type {
		case "query":
			// Used as label=~"$v": "All" (or every value) is a regexp
			// matching everything.
			d.values[v.Name] = e2eOr(v.AllValue, ".*")
			if query != "" {
				d.variables = append(d.variables, e2eDashboardQuery{panel: "variable " + v.Name, expr: query})
			}
		case "custom", "interval":
			if current == "" || current == "$__all" {
				current, _, _ = strings.Cut(query, ",")
				if v.AllValue != "" {
					current = v.AllValue
				}
			}
			d.values[v.Name] = strings.TrimSpace(current)
		case "constant", "textbox":
			d.values[v.Name] = e2eOr(current, query)
		case "datasource":
			d.values[v.Name] = "prometheus"
		}
	}
	var walk func([]e2ePanel)
	walk = func(ps []e2ePanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) != "" {
					d.queries = append(d.queries, e2eDashboardQuery{panel: p.Title, expr: tg.Expr})
				}
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	walk(dash.Rows)
	if len(d.queries) == 0 {
		t.Fatalf("%s: no panel queries found", path)
	}
	return d
}

type e2ePanel struct {
	Title   string     `json:"title"`
	Panels  []e2ePanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

var e2eVarRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}|\[\[([A-Za-z_][A-Za-z0-9_]*)(?::[^\]]*)?\]\]|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expand replaces Grafana variables ($v, ${v}, ${v:fmt}, [[v]]).
func (d *e2eDashboard) expand(expr string) (string, error) {
	var unknown []string
	out := e2eVarRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := e2eVarRE.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		if v, ok := d.values[name]; ok {
			return v
		}
		unknown = append(unknown, m)
		return m
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("unknown variables %s", strings.Join(unknown, ", "))
	}
	return out, nil
}

var e2eLabelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(?:(.*?)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// e2eCheckDashboard evaluates every panel query as an instant and a range
// query, and every query variable, until none fails and only allow-listed
// ones are empty, or the time is up.
func e2eCheckDashboard(t *testing.T, api e2eProm, d *e2eDashboard, deadline time.Time) {
	type verdict struct {
		q          e2eDashboardQuery
		expanded   string
		err        error
		empty, may bool
		why        string
	}
	check := func() []verdict {
		var out []verdict
		for _, q := range d.queries {
			v := verdict{q: q}
			v.expanded, v.err = d.expand(q.expr)
			if v.err == nil {
				var r []e2eSample
				if r, v.err = api.query(v.expanded); v.err == nil {
					v.empty = len(r) == 0
					if _, err := api.queryRange(v.expanded); err != nil {
						v.err = fmt.Errorf("as a range query: %w", err)
					}
				}
			}
			for _, a := range e2eMayBeEmpty {
				if a.re.MatchString(q.expr) {
					v.may, v.why = true, a.why
				}
			}
			out = append(out, v)
		}
		for _, q := range d.variables {
			v := verdict{q: q}
			v.expanded, v.err = d.expand(q.expr)
			if v.err == nil {
				v.empty, v.err = e2eVariableEmpty(api, v.expanded)
			}
			out = append(out, v)
		}
		return out
	}
	var last []verdict
	e2eWaitSoft(deadline, 40*time.Second, func() bool {
		last = check()
		for _, v := range last {
			if v.err != nil || (v.empty && !v.may) {
				return false
			}
		}
		return true
	})
	var errs, empties []string
	for _, v := range last {
		switch {
		case v.err != nil:
			errs = append(errs, fmt.Sprintf("%s: %v\n\texpr: %s", v.q.panel, v.err, e2eOr(v.expanded, v.q.expr)))
		case v.empty && v.may:
			t.Logf("dashboard %q: empty, as allowed (%s): %s", v.q.panel, v.why, v.expanded)
		case v.empty:
			empties = append(empties, fmt.Sprintf("%s\n\texpr: %s", v.q.panel, v.expanded))
		}
	}
	sort.Strings(errs)
	if len(errs) > 0 {
		t.Errorf("%d dashboard queries failed:\n%s", len(errs), strings.Join(errs, "\n"))
	}
	if len(empties) > 0 {
		t.Errorf("%d dashboard queries returned nothing (allow-list them in e2eMayBeEmpty if that is right):\n%s", len(empties), strings.Join(empties, "\n"))
	}
}

// e2eVariableEmpty runs a query variable's query as Grafana's Prometheus
// data source would: label_values() through the label values API,
// query_result() and anything else as an instant query.
func e2eVariableEmpty(api e2eProm, query string) (bool, error) {
	if m := e2eLabelValuesRE.FindStringSubmatch(query); m != nil {
		params := url.Values{}
		if m[1] != "" {
			params.Set("match[]", m[1])
		}
		var values []string
		err := api.get("/api/v1/label/"+m[2]+"/values", params, &values)
		return len(values) == 0, err
	}
	expr := query
	if inner, ok := strings.CutPrefix(strings.TrimSpace(query), "query_result("); ok {
		expr = strings.TrimSuffix(strings.TrimSpace(inner), ")")
	}
	r, err := api.query(expr)
	return len(r) == 0, err
}

// e2eWaitSoft polls cond like e2eWait but leaves the verdict to the
// caller.
func e2eWaitSoft(deadline time.Time, max time.Duration, cond func() bool) {
	end := time.Now().Add(max)
	if deadline.Before(end) {
		end = deadline
	}
	for !cond() && time.Now().Before(end) {
		time.Sleep(time.Second)
	}
}
