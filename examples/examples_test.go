// Package examples_test checks the Prometheus examples in this directory:
// prometheus.yml, alerts.yml and its promtool unit tests in tests/, and
// RUNBOOK.md. The promtool tests skip when promtool is not installed,
// unless SMTP_EXPORTER_E2E=1, where a missing promtool is a failure; the
// other tests need nothing but Go.
package examples_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

const (
	alertsFile     = "alerts.yml"
	prometheusFile = "prometheus.yml"
	runbookFile    = "RUNBOOK.md"
	ruleTestsGlob  = "tests/*.yml"
)

// servedMetrics lists every metric name the exporter serves
// (ARCHITECTURE.md §6 and collector/metrics.go), with the series
// Prometheus adds itself. TestServedMetrics_MatchCollector keeps it in step
// with the collector's source.
var servedMetrics = []string{
	// Per-run gauges.
	"probe_success",
	"probe_duration_seconds",
	"probe_smtp_phase_duration_seconds",
	"probe_smtp_reply_code",
	"probe_smtp_failure_info",
	"probe_smtp_starttls_offered",
	"probe_smtp_expectation_met",
	"probe_ssl_earliest_cert_expiry",
	"probe_ssl_last_chain_expiry_timestamp_seconds",
	"probe_smtp_tls_verified",
	"probe_tls_version_info",
	"probe_tls_cipher_info",
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
	// Across runs, scheduled path only.
	"probe_smtp_replies_total",
	"probe_smtp_failures_total",
	"probe_smtp_runs_total",
	"probe_smtp_phase_latency_seconds",
	"probe_delivery_inbox_latency_seconds",
	"probe_smtp_last_run_timestamp_seconds",
	"probe_delivery_late_total",
	"probe_delivery_pending",
	"probe_delivery_lost_total",
	"probe_delivery_bounces_total",
	"smtp_exporter_scheduler_lag_seconds",
	"smtp_exporter_scheduler_backoff_factor",
	"smtp_exporter_sends_skipped_total",
	"smtp_exporter_reply_labels_overflow_total",
	// The exporter itself.
	"smtp_exporter_build_info",
	"smtp_exporter_config_last_reload_successful",
	"smtp_exporter_config_last_reload_success_timestamp_seconds",
	"smtp_exporter_probes_in_flight",
	"smtp_exporter_targets",
	"smtp_exporter_target_files",
	"smtp_exporter_target_files_failing",
	"smtp_exporter_shard_info",
}

// histograms are served with _bucket, _sum and _count series.
var histograms = []string{"probe_smtp_phase_latency_seconds", "probe_delivery_inbox_latency_seconds"}

// knownLabels are the label names the alerts may group, match or join on:
// the exporter's (ARCHITECTURE.md §6), the scrape's, and le of histograms.
var knownLabels = []string{
	"target", "module", "phase", "reason", "code", "enhanced_code", "class",
	"version", "cipher", "folder", "method", "result", "check", "mx", "family",
	"address", "mode", "id", "job", "instance", "le",
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadAlerts(t *testing.T) []rule {
	t.Helper()
	var rf ruleFile
	readYAML(t, alertsFile, &rf)
	var rules []rule
	for _, g := range rf.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no rules", alertsFile)
	}
	return rules
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// promtool returns promtool's path, or skips the test without it; with
// SMTP_EXPORTER_E2E=1 a missing promtool fails instead, so that CI cannot
// pass these checks by not running them.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SMTP_EXPORTER_E2E") == "1" {
			t.Fatalf("promtool not found on PATH with SMTP_EXPORTER_E2E=1 (apt-get install prometheus): %v", err)
		}
		t.Skipf("promtool not found on PATH (apt-get install prometheus): %v", err)
	}
	return path
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out.String())
}

// TestPromtool_CheckConfig also checks the rule files that prometheus.yml
// names, relative to its directory.
func TestPromtool_CheckConfig(t *testing.T) {
	runPromtool(t, "check", "config", prometheusFile)
}

func TestPromtool_CheckRules(t *testing.T) {
	runPromtool(t, "check", "rules", alertsFile)
}

func TestPromtool_TestRules(t *testing.T) {
	files := ruleTestFiles(t)
	runPromtool(t, append([]string{"test", "rules"}, files...)...)
}

func ruleTestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(ruleTestsGlob)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no rule tests match %s", ruleTestsGlob)
	}
	return files
}

// TestAlerts_Annotations checks what a person paged needs: a severity to
// route on, a summary, a description and a runbook section.
func TestAlerts_Annotations(t *testing.T) {
	runbook, err := os.ReadFile(runbookFile)
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	for _, line := range strings.Split(string(runbook), "\n") {
		if name, ok := strings.CutPrefix(line, "### "); ok {
			headings[strings.TrimSpace(name)] = true
		}
	}
	seen := map[string]bool{}
	for _, r := range loadAlerts(t) {
		if r.Alert == "" {
			t.Errorf("rule %q: not an alert (recording rules belong elsewhere)", r.Record)
			continue
		}
		if seen[r.Alert] {
			t.Errorf("%s: defined twice", r.Alert)
		}
		seen[r.Alert] = true
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		if want := "RUNBOOK.md#" + strings.ToLower(r.Alert); !strings.HasSuffix(r.Annotations["runbook_url"], want) {
			t.Errorf("%s: runbook_url %q does not end in %q", r.Alert, r.Annotations["runbook_url"], want)
		}
		if !headings[r.Alert] {
			t.Errorf("%s: no \"### %s\" section in %s", r.Alert, r.Alert, runbookFile)
		}
	}
}

var (
	metricNameRE = regexp.MustCompile(`\b(?:probe|smtp_exporter)_[a-zA-Z0-9_]+`)
	// Label names in grouping and matching clauses: by (...), on (...).
	labelListRE = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	// Label names in selectors: {name="value", name=~"regexp"}.
	matcherRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"`)
	selectRE  = regexp.MustCompile(`\{([^{}]*)\}`)
	jobRE     = regexp.MustCompile(`\bjob\s*(=~|=)\s*"([^"]*)"`)
)

// servedName reports whether name is a series the exporter serves.
func servedName(name string) bool {
	if slices.Contains(servedMetrics, name) {
		return true
	}
	for _, h := range histograms {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if name == h+suffix {
				return true
			}
		}
	}
	return false
}

// TestAlerts_MetricNames checks that every metric an alert's expression or
// template query names is one the exporter serves, so that a renamed
// metric cannot leave an alert silently matching nothing.
func TestAlerts_MetricNames(t *testing.T) {
	for _, r := range loadAlerts(t) {
		texts := map[string]string{"expr": r.Expr}
		for k, v := range r.Annotations {
			texts["annotation "+k] = v
		}
		for where, text := range texts {
			for _, name := range metricNameRE.FindAllString(text, -1) {
				if !servedName(name) {
					t.Errorf("%s: %s uses %s, which the exporter does not serve", r.Alert, where, name)
				}
			}
		}
		if !metricNameRE.MatchString(r.Expr) && !strings.Contains(r.Expr, "up{") {
			t.Errorf("%s: expr uses no exporter metric: %s", r.Alert, r.Expr)
		}
	}
}

// TestAlerts_LabelNames checks the label names the expressions group,
// join and match on against the labels the series carry.
func TestAlerts_LabelNames(t *testing.T) {
	for _, r := range loadAlerts(t) {
		var names []string
		for _, m := range labelListRE.FindAllStringSubmatch(r.Expr, -1) {
			for _, n := range strings.Split(m[1], ",") {
				if n = strings.TrimSpace(n); n != "" {
					names = append(names, n)
				}
			}
		}
		for _, sel := range selectRE.FindAllStringSubmatch(r.Expr, -1) {
			for _, m := range matcherRE.FindAllStringSubmatch(sel[1], -1) {
				names = append(names, m[1])
			}
		}
		for _, n := range names {
			if !slices.Contains(knownLabels, n) {
				t.Errorf("%s: expr uses label %q, which no served series has", r.Alert, n)
			}
		}
	}
}

// TestAlerts_JobNames checks that the jobs the alerts select exist in
// prometheus.yml, as its active job or one of its commented alternatives.
func TestAlerts_JobNames(t *testing.T) {
	var jobs []string
	for _, v := range prometheusVariants(t) {
		jobs = append(jobs, v.jobs...)
	}
	for _, r := range loadAlerts(t) {
		for _, m := range jobRE.FindAllStringSubmatch(r.Expr, -1) {
			op, value := m[1], m[2]
			matched := false
			for _, j := range jobs {
				if op == "=" && j == value {
					matched = true
				}
				if op == "=~" && regexp.MustCompile("^(?:"+value+")$").MatchString(j) {
					matched = true
				}
			}
			if !matched {
				t.Errorf("%s: job%s%q matches no job in %s (%v)", r.Alert, op, value, prometheusFile, jobs)
			}
		}
	}
}

// promVariant is prometheus.yml as shipped ("active") or with one of its
// commented "--- alternative: NAME" blocks uncommented in place.
type promVariant struct {
	name string
	text string
	jobs []string // job_name of every scrape config
	// exporterAddrs counts, per scrape config, the places that name the
	// exporter's address (a static target of a /metrics job, or the
	// __address__ replacement of a /probe job).
	exporterAddrs map[string]int
}

// prometheusVariants reads prometheus.yml's active configuration and each
// commented alternative. In an alternative block, the lines after its
// first bare "#" line are configuration, commented out with "# ".
func prometheusVariants(t *testing.T) []promVariant {
	t.Helper()
	b, err := os.ReadFile(prometheusFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	variants := []promVariant{{name: "active", text: string(b)}}
	for i := 0; i < len(lines); i++ {
		name, ok := strings.CutPrefix(strings.TrimSpace(lines[i]), "# --- alternative: ")
		if !ok {
			continue
		}
		out := slices.Clone(lines)
		inConfig := false
		for j := i + 1; j < len(lines); j++ {
			l := strings.TrimSpace(lines[j])
			if l == "# --- end ---" {
				break
			}
			indent := lines[j][:len(lines[j])-len(strings.TrimLeft(lines[j], " "))]
			switch {
			case l == "#":
				inConfig = true
			case inConfig:
				body, ok := strings.CutPrefix(l, "# ")
				if !ok {
					t.Fatalf("%s:%d: alternative %q: %q is not commented configuration", prometheusFile, j+1, name, lines[j])
				}
				out[j] = indent + body
			}
		}
		variants = append(variants, promVariant{name: strings.TrimSuffix(name, " ---"), text: strings.Join(out, "\n")})
	}
	for i := range variants {
		v := &variants[i]
		var cfg struct {
			ScrapeConfigs []struct {
				JobName       string `yaml:"job_name"`
				MetricsPath   string `yaml:"metrics_path"`
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
				RelabelConfigs []struct {
					TargetLabel string `yaml:"target_label"`
					Replacement string `yaml:"replacement"`
				} `yaml:"relabel_configs"`
			} `yaml:"scrape_configs"`
		}
		if err := yaml.Unmarshal([]byte(v.text), &cfg); err != nil {
			t.Fatalf("%s, %s: %v", prometheusFile, v.name, err)
		}
		v.exporterAddrs = map[string]int{}
		for _, sc := range cfg.ScrapeConfigs {
			v.jobs = append(v.jobs, sc.JobName)
			if sc.MetricsPath == "" || sc.MetricsPath == "/metrics" {
				for _, st := range sc.StaticConfigs {
					v.exporterAddrs[sc.JobName] += len(st.Targets)
				}
			}
			for _, rc := range sc.RelabelConfigs {
				if rc.TargetLabel == "__address__" && rc.Replacement != "" {
					v.exporterAddrs[sc.JobName]++
				}
			}
		}
	}
	return variants
}

// TestPrometheusConfig_OneSetup checks that prometheus.yml, copied as it
// is, collects each target once (a /probe job beside the /metrics job
// pages twice for one broken target) and names the exporter's address in
// one place; and that each commented alternative names it once too.
func TestPrometheusConfig_OneSetup(t *testing.T) {
	variants := prometheusVariants(t)
	if len(variants) < 3 {
		t.Errorf("%s: %d alternatives, want the /probe by name and ad hoc ones commented out", prometheusFile, len(variants)-1)
	}
	active := variants[0]
	if len(active.jobs) != 1 {
		t.Errorf("%s: active jobs %v, want one (the others commented out as alternatives)", prometheusFile, active.jobs)
	}
	for _, v := range variants {
		for job, n := range v.exporterAddrs {
			if n != 1 {
				t.Errorf("%s, %s: job %s names the exporter's address in %d places, want 1", prometheusFile, v.name, job, n)
			}
		}
	}
	if n := strings.Count(stripComments(active.text), ":9799"); n != 1 {
		t.Errorf("%s: the exporter's port appears %d times outside comments, want 1", prometheusFile, n)
	}
}

// TestPromtool_CheckConfigAlternatives checks each commented alternative
// of prometheus.yml as if it were uncommented.
func TestPromtool_CheckConfigAlternatives(t *testing.T) {
	dir := t.TempDir()
	abs, err := filepath.Abs(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range prometheusVariants(t)[1:] {
		path := filepath.Join(dir, strings.NewReplacer(" ", "_", "/", "").Replace(v.name)+".yml")
		text := strings.Replace(v.text, "  - alerts.yml\n", "  - "+abs+"\n", 1)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		runPromtool(t, "check", "config", path)
	}
}

func stripComments(text string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

type ruleTests struct {
	RuleFiles          []string `yaml:"rule_files"`
	EvaluationInterval string   `yaml:"evaluation_interval"`
	Tests              []struct {
		Name          string `yaml:"name"`
		Interval      string `yaml:"interval"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestRuleTests_Cover checks that every alert has a unit test in which it
// fires, with its annotations spelled out, and one in which it stays
// silent; and that the tests sample every minute (longer intervals go
// stale after 5 minutes and quietly break for: clauses).
func TestRuleTests_Cover(t *testing.T) {
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, file := range ruleTestFiles(t) {
		var rt ruleTests
		readYAML(t, file, &rt)
		if !slices.Contains(rt.RuleFiles, "../"+alertsFile) {
			t.Errorf("%s: rule_files %v does not load ../%s", file, rt.RuleFiles, alertsFile)
		}
		if rt.EvaluationInterval != "1m" {
			t.Errorf("%s: evaluation_interval %q, want 1m", file, rt.EvaluationInterval)
		}
		for _, tc := range rt.Tests {
			if tc.Interval != "1m" {
				t.Errorf("%s: test %q: interval %q, want 1m", file, tc.Name, tc.Interval)
			}
			for _, at := range tc.AlertRuleTest {
				if len(at.ExpAlerts) == 0 {
					silent[at.Alertname] = true
					continue
				}
				fires[at.Alertname] = true
				for _, ea := range at.ExpAlerts {
					for _, a := range []string{"summary", "description", "runbook_url"} {
						if ea.ExpAnnotations[a] == "" {
							t.Errorf("%s: test %q: %s at %s: expected alert without its %s", file, tc.Name, at.Alertname, at.EvalTime, a)
						}
					}
				}
			}
		}
	}
	var missing []string
	for _, r := range loadAlerts(t) {
		if !fires[r.Alert] {
			missing = append(missing, r.Alert+" (firing)")
		}
		if !silent[r.Alert] {
			missing = append(missing, r.Alert+" (silent, exp_alerts: [])")
		}
		delete(fires, r.Alert)
		delete(silent, r.Alert)
	}
	if len(missing) > 0 {
		t.Errorf("alerts without a unit test in %s: %s", ruleTestsGlob, strings.Join(missing, ", "))
	}
	for name := range fires {
		t.Errorf("unit tests expect alert %s, which %s does not define", name, alertsFile)
	}
	for name := range silent {
		t.Errorf("unit tests check alert %s, which %s does not define", name, alertsFile)
	}
}

var metricLiteralRE = regexp.MustCompile(`"((?:probe|smtp_exporter)_[a-z0-9_]+)"`)

// TestServedMetrics_MatchCollector keeps servedMetrics in step with the
// metric names in the collector's source, read as text: a metric added,
// renamed or removed there must be reflected here (and in the alerts).
// smtp_exporter_build_info comes from client_golang's version collector.
func TestServedMetrics_MatchCollector(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "collector", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{"smtp_exporter_build_info": true}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricLiteralRE.FindAllStringSubmatch(string(b), -1) {
			found[m[1]] = true
		}
	}
	if len(found) == 1 {
		t.Fatalf("no metric names found in %d files of ../collector", len(files))
	}
	var notListed, notFound []string
	for name := range found {
		if !slices.Contains(servedMetrics, name) {
			notListed = append(notListed, name)
		}
	}
	for _, name := range servedMetrics {
		if !found[name] {
			notFound = append(notFound, name)
		}
	}
	sort.Strings(notListed)
	sort.Strings(notFound)
	if len(notListed) > 0 {
		t.Errorf("../collector serves metrics missing from servedMetrics: %v", notListed)
	}
	if len(notFound) > 0 {
		t.Errorf("servedMetrics lists metrics not found in ../collector: %v", notFound)
	}
}

// deliveryExamples are the delivery configurations README.md's "Monitoring
// mail flow" shows, with the modules each must define.
var deliveryExamples = map[string][]string{
	"delivery.yml":      {"gmail", "selfhosted"},
	"delivery-m365.yml": {"m365"},
}

// TestDeliveryExamples_Load loads each delivery example through the real
// loader, as --config.check does. The credential files it names must be
// readable at load, so the test copies the example into a temporary
// directory and creates every *_file it names there, relative to the copy
// as the loader resolves them.
func TestDeliveryExamples_Load(t *testing.T) {
	for file, modules := range deliveryExamples {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var doc yaml.Node
			if err := yaml.Unmarshal(b, &doc); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			dir := t.TempDir()
			files := fileSettings(&doc)
			if len(files) == 0 {
				t.Fatalf("%s names no credential files; the example should show password_file or token_file", file)
			}
			for _, name := range files {
				if filepath.IsAbs(name) {
					t.Errorf("%s: %s is absolute; examples name files relative to the configuration", file, name)
					continue
				}
				path := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte("not-a-real-secret\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			copied := filepath.Join(dir, file)
			if err := os.WriteFile(copied, b, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.LoadFile(copied)
			if err != nil {
				t.Fatalf("loading %s: %v", file, err)
			}
			for _, name := range modules {
				m, ok := cfg.Modules[name]
				if !ok {
					t.Errorf("%s: no module %q", file, name)
					continue
				}
				if m.Prober != probes.ProberDelivery {
					t.Errorf("%s: module %q has prober %q, want %q", file, name, m.Prober, probes.ProberDelivery)
				}
				if len(m.Delivery.RequireAuth) == 0 {
					t.Errorf("%s: module %q requires no authentication results; the examples show require_auth", file, name)
				}
			}
			used := map[string]bool{}
			for _, tg := range cfg.Targets {
				used[tg.Module] = true
			}
			for _, name := range modules {
				if !used[name] {
					t.Errorf("%s: no target uses module %q", file, name)
				}
			}
		})
	}
}

// fileSettings returns the values of every key ending in _file in a YAML
// document, in document order.
func fileSettings(n *yaml.Node) []string {
	var out []string
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if strings.HasSuffix(k.Value, "_file") && v.Kind == yaml.ScalarNode {
				out = append(out, v.Value)
			}
		}
	}
	for _, c := range n.Content {
		out = append(out, fileSettings(c)...)
	}
	return out
}

// TestDomainExample_Load loads the configuration README.md's "Monitoring
// a mail domain" shows through the real loader: a domain module whose MX
// sessions use the named smtp module, and a target that is a domain.
func TestDomainExample_Load(t *testing.T) {
	cfg, err := config.LoadFile("domain.yml")
	if err != nil {
		t.Fatalf("loading domain.yml: %v", err)
	}
	m, ok := cfg.Modules["posture"]
	if !ok || m.Prober != probes.ProberDomain {
		t.Fatalf("domain.yml: no domain module posture: %+v", m)
	}
	d := &m.Domain
	if d.MX == nil || d.MX.SMTP.TLS != probes.TLSStartTLS || d.DNSServer == "" || len(d.SendingIPs) == 0 ||
		len(d.DKIMSelectors) == 0 || len(d.DNSBLZones) == 0 {
		t.Errorf("domain.yml: posture does not show every setting the README describes: %+v", d)
	}
	if len(cfg.Targets) != 1 || cfg.Targets[0].Address != "example.com" || cfg.Targets[0].Module != "posture" {
		t.Errorf("domain.yml: targets = %+v, want example.com with posture", cfg.Targets)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("domain.yml")
	if err != nil {
		t.Fatal(err)
	}
	// The README shows the file's modules and targets as they are.
	body := string(example[bytes.Index(example, []byte("modules:")):])
	if !strings.Contains(string(readme), body) {
		t.Error("README.md's \"Monitoring a mail domain\" does not show examples/domain.yml's modules and targets as they are")
	}
}

// TestREADME_Alertmanager checks the README's "Monitoring with
// Prometheus": it starts the Alertmanager that prometheus.yml sends to, on
// loopback where prometheus.yml expects it, with a configuration amtool
// accepts.
func TestREADME_Alertmanager(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Monitoring with Prometheus\n")
	if !ok {
		t.Fatal("README.md has no \"Monitoring with Prometheus\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, want := range []string{"--web.listen-address=127.0.0.1:9093", "prometheus-alertmanager --config.file=", "prometheus --config.file=examples/prometheus.yml"} {
		if !strings.Contains(section, want) {
			t.Errorf("the section does not show %q", want)
		}
	}
	var cfg struct {
		Alerting struct {
			Alertmanagers []struct {
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"alertmanagers"`
		} `yaml:"alerting"`
	}
	readYAML(t, prometheusFile, &cfg)
	if am := cfg.Alerting.Alertmanagers; len(am) != 1 || len(am[0].StaticConfigs) != 1 || !slices.Equal(am[0].StaticConfigs[0].Targets, []string{"localhost:9093"}) {
		t.Errorf("%s: alertmanagers %+v, want the README's one on localhost:9093", prometheusFile, am)
	}
	_, amConfig, ok := strings.Cut(section, "<<'YAML'\n")
	if !ok {
		t.Fatal("the section writes no Alertmanager configuration (<<'YAML')")
	}
	amConfig, _, _ = strings.Cut(amConfig, "\nYAML\n")
	path := filepath.Join(t.TempDir(), "alertmanager.yml")
	if err := os.WriteFile(path, []byte(amConfig+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		if os.Getenv("SMTP_EXPORTER_E2E") == "1" {
			t.Fatalf("amtool not found on PATH with SMTP_EXPORTER_E2E=1 (apt-get install prometheus-alertmanager): %v", err)
		}
		t.Skipf("amtool not found on PATH (apt-get install prometheus-alertmanager): %v", err)
	}
	if out, err := exec.Command(amtool, "check-config", path).CombinedOutput(); err != nil {
		t.Errorf("amtool check-config of the README's Alertmanager configuration: %v\n%s", err, out)
	}
}
