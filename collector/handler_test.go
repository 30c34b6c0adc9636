package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/smtp-exporter/smtp_exporter/probes"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
	"github.com/smtp-exporter/smtp_exporter/probes/smtp"
)

// Helpers in this file are prefixed with "ht" (handler test): other test
// files of the package are written separately and must not collide.

// htSecret is the password the masking tests look for everywhere.
const htSecret = "hunter2-secret"

// htWriteConfig writes a configuration file into a temp dir and returns its
// path.
func htWriteConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "smtp_exporter.yml")
	htRewrite(t, path, content)
	return path
}

func htRewrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// htFixture is the wiring of cmd/smtp_exporter/serve.go, minus HTTP.
type htFixture struct {
	sc      *SafeConfig
	sched   *Scheduler
	history *History
	reload  func() error
}

// htNewFixture loads the config at path and starts a scheduler running
// probe, for scheduled and /probe runs alike. Targets in these tests use an
// hour's interval, so the schedule (first run at a hash of the name into
// the hour) stays out of the way of the on-demand runs under test.
func htNewFixture(t *testing.T, path string, probe ProbeFunc) *htFixture {
	t.Helper()
	return htNewFixtureWith(t, path, probe, 4, 10)
}

// htNewFixtureWith is htNewFixture with a concurrency limit and a history
// size.
func htNewFixtureWith(t *testing.T, path string, probe ProbeFunc, concurrency, historyLimit int) *htFixture {
	t.Helper()
	sc := NewSafeConfig(path)
	cfg, err := sc.Reload()
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	history := NewHistory(historyLimit)
	sched := NewScheduler(probe, concurrency, NewStore(), history, log.NewNopLogger())
	sched.Apply(cfg)
	t.Cleanup(func() { sched.Shutdown(5 * time.Second) })
	f := &htFixture{sc: sc, sched: sched, history: history}
	f.reload = func() error {
		cfg, err := sc.Reload()
		if err != nil {
			return err
		}
		sched.Apply(cfg)
		return nil
	}
	return f
}

// handler is the /probe handler; with allowAdhoc, every address and port
// may be probed ad hoc, and every host name resolves to 192.0.2.1 (the
// allow-list has tests of its own).
func (f *htFixture) handler(allowAdhoc bool) *ProbeHandler {
	h := &ProbeHandler{
		Config: f.sc, Scheduler: f.sched, AllowAdhoc: allowAdhoc, TimeoutOffset: 500 * time.Millisecond,
		Logger: log.NewNopLogger(),
	}
	if allowAdhoc {
		h.AdhocAllow = AdhocAllowList{{Network: netip.MustParsePrefix("0.0.0.0/0")}, {Network: netip.MustParsePrefix("::/0")}}
		h.Resolver = &htResolver{addrs: map[string][]string{"*": {"192.0.2.1"}}}
	}
	return h
}

// htAllowList parses --probe.adhoc-allow values.
func htAllowList(t *testing.T, values ...string) AdhocAllowList {
	t.Helper()
	var l AdhocAllowList
	for _, v := range values {
		if err := l.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	return l
}

// htResolver answers from a table ("*" for any other name) and counts its
// lookups, so that a test can tell whether a name was resolved again.
type htResolver struct {
	mu      sync.Mutex
	addrs   map[string][]string
	lookups int
}

func (r *htResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	ips, ok := r.addrs[host]
	if !ok {
		ips, ok = r.addrs["*"]
	}
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []net.IPAddr
	for _, ip := range ips {
		out = append(out, net.IPAddr{IP: net.ParseIP(ip)})
	}
	return out, nil
}

func (r *htResolver) Lookups() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups
}

// htCall is one call of a fake probe.
type htCall struct {
	target  string
	timeout time.Duration
	module  probes.Module
}

// htRecorder is a fake ProbeFunc that records its calls and succeeds.
type htRecorder struct {
	mu    sync.Mutex
	calls []htCall
}

func (r *htRecorder) probe(_ context.Context, target string, m probes.Module, _ log.Logger) *probes.Result {
	r.mu.Lock()
	r.calls = append(r.calls, htCall{target: target, timeout: m.Timeout, module: m})
	n := len(r.calls)
	r.mu.Unlock()
	return &probes.Result{
		Start: time.Now(), Duration: time.Millisecond, Success: true,
		Phases: []*probes.PhaseResult{
			{Phase: probes.PhaseConnect, Duration: time.Millisecond},
			{Phase: probes.PhaseBanner, Duration: time.Millisecond, Replies: []probes.Reply{{Code: 220, Lines: []string{"fake.test ESMTP"}}}},
		},
		Transcript: []probes.TranscriptLine{{Dir: "S", Text: fmt.Sprintf("220 fake.test ESMTP run %d for %s", n, target)}},
	}
}

func (r *htRecorder) Calls() []htCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]htCall(nil), r.calls...)
}

func htGet(h http.Handler, url string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// htParse parses a text exposition into metric families.
func htParse(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, body)
	}
	return mfs
}

// htLabels returns a metric's labels as a map.
func htLabels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// htValue finds the gauge in family name whose labels include want, and
// reports whether there is one.
func htValue(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		got := htLabels(m)
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}

func htMustValue(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	v, ok := htValue(mfs, name, want)
	if !ok {
		t.Fatalf("no %s%v in the output", name, want)
	}
	return v
}

// htGauge reads a collector's single value through a registry, the way
// /metrics would.
func htGauge(t *testing.T, name string, cs ...prometheus.Collector) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(cs...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no single %s among the collectors", name)
	return 0
}

// htPlainConfig is a one-target configuration for a plain SMTP server.
func htPlainConfig(addr string) string {
	return fmt.Sprintf(`modules:
  mx:
    timeout: 5s
    smtp:
      tls: none
      ehlo: probe.example.test
      mail_from: monitor@example.test
      rcpt_to: [sink@example.test]
targets:
  - name: mx1
    address: %s
    module: mx
    interval: 1h
`, addr)
}

func TestProbeHandler_ConfiguredTarget(t *testing.T) {
	srv := probestest.NewScriptServer(t, probestest.Dialog{}.Serve)
	f := htNewFixture(t, htWriteConfig(t, htPlainConfig(srv.Addr)), smtp.Probe)
	h := f.handler(false)

	rec := htGet(h, "/probe?target=mx1")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	mfs := htParse(t, rec.Body.String())
	if v := htMustValue(t, mfs, "probe_success", nil); v != 1 {
		t.Errorf("probe_success = %v, want 1\n%s", v, rec.Body)
	}
	for _, name := range []string{"probe_duration_seconds", "probe_smtp_phase_duration_seconds", "probe_smtp_reply_code", "probe_smtp_starttls_offered"} {
		if mfs[name] == nil {
			t.Errorf("%s missing from /probe output", name)
		}
	}
	if v := htMustValue(t, mfs, "probe_smtp_reply_code", map[string]string{"phase": "rcpt"}); v != 250 {
		t.Errorf("probe_smtp_reply_code{phase=rcpt} = %v, want 250", v)
	}
	if _, ok := mfs["probe_smtp_failure_info"]; ok {
		t.Errorf("probe_smtp_failure_info present on success")
	}
	// One probe's answer: no target/module labels, and none of the
	// across-runs series, which belong to the schedule.
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := htLabels(m)
			if _, ok := l["target"]; ok {
				t.Errorf("%s has a target label: %v", name, l)
			}
			if _, ok := l["module"]; ok {
				t.Errorf("%s has a module label: %v", name, l)
			}
		}
		if strings.HasSuffix(name, "_total") || name == "probe_smtp_phase_latency_seconds" {
			t.Errorf("across-runs series %s on /probe", name)
		}
	}
	if got := srv.Received(); !htContainsPrefix(got, "RCPT TO:<sink@example.test>") {
		t.Errorf("server did not see the probe's RCPT; received %q", got)
	}
}

func htContainsPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func TestProbeHandler_ConfiguredTargetFailure(t *testing.T) {
	srv := probestest.NewScriptServer(t, probestest.Dialog{Replies: map[string]string{
		"RCPT": "550 5.1.1 <sink@example.test>: Recipient address rejected: User unknown",
	}}.Serve)
	f := htNewFixture(t, htWriteConfig(t, htPlainConfig(srv.Addr)), smtp.Probe)

	rec := htGet(f.handler(false), "/probe?target=mx1")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	mfs := htParse(t, rec.Body.String())
	if v := htMustValue(t, mfs, "probe_success", nil); v != 0 {
		t.Errorf("probe_success = %v, want 0", v)
	}
	if v := htMustValue(t, mfs, "probe_smtp_failure_info", map[string]string{"phase": "rcpt", "reason": "mailbox_unavailable"}); v != 1 {
		t.Errorf("probe_smtp_failure_info = %v, want 1", v)
	}
	if v := htMustValue(t, mfs, "probe_smtp_reply_code", map[string]string{"phase": "rcpt"}); v != 550 {
		t.Errorf("probe_smtp_reply_code{phase=rcpt} = %v, want 550", v)
	}
}

func TestProbeHandler_BadRequests(t *testing.T) {
	rec := &htRecorder{}
	f := htNewFixture(t, htWriteConfig(t, htPlainConfig("127.0.0.1:1")), rec.probe)
	for _, tc := range []struct {
		name       string
		allowAdhoc bool
		url        string
		header     []string
		wantCode   int
		wantBody   []string
	}{
		{name: "missing target", url: "/probe", wantCode: 400, wantBody: []string{"target parameter is missing"}},
		{name: "empty target", url: "/probe?target=", wantCode: 400, wantBody: []string{"target parameter is missing"}},
		{name: "unknown target", url: "/probe?target=nope", wantCode: 400,
			wantBody: []string{`unknown target "nope"`, "configured target", "module=", "--probe.allow-adhoc"}},
		{name: "unknown module", allowAdhoc: true, url: "/probe?target=127.0.0.1:25&module=nope", wantCode: 400, wantBody: []string{`unknown module "nope"`}},
		{name: "header not a number", url: "/probe?target=mx1", header: []string{"X-Prometheus-Scrape-Timeout-Seconds", "soon"}, wantCode: 400,
			wantBody: []string{"invalid X-Prometheus-Scrape-Timeout-Seconds"}},
		{name: "header zero", url: "/probe?target=mx1", header: []string{"X-Prometheus-Scrape-Timeout-Seconds", "0"}, wantCode: 400},
		{name: "header negative", url: "/probe?target=mx1", header: []string{"X-Prometheus-Scrape-Timeout-Seconds", "-3"}, wantCode: 400},
		{name: "header NaN", url: "/probe?target=mx1", header: []string{"X-Prometheus-Scrape-Timeout-Seconds", "NaN"}, wantCode: 400,
			wantBody: []string{`invalid X-Prometheus-Scrape-Timeout-Seconds "NaN"`, "at least 0.001"}},
		{name: "header +Inf", url: "/probe?target=mx1", header: []string{"X-Prometheus-Scrape-Timeout-Seconds", "+Inf"}, wantCode: 400},
		{name: "header Inf", url: "/probe?target=mx1", header: []string{"X-Prometheus-Scrape-Timeout-Seconds", "Inf"}, wantCode: 400},
		{name: "header -Inf", url: "/probe?target=mx1", header: []string{"X-Prometheus-Scrape-Timeout-Seconds", "-Inf"}, wantCode: 400},
		{name: "header negative zero", url: "/probe?target=mx1", header: []string{"X-Prometheus-Scrape-Timeout-Seconds", "-0"}, wantCode: 400},
		{name: "header huge negative", url: "/probe?target=mx1", header: []string{"X-Prometheus-Scrape-Timeout-Seconds", "-1e308"}, wantCode: 400},
		{name: "header below a millisecond", url: "/probe?target=mx1", header: []string{"X-Prometheus-Scrape-Timeout-Seconds", "1e-300"}, wantCode: 400},
		{name: "header ad hoc", allowAdhoc: true, url: "/probe?target=127.0.0.1:25&module=mx", header: []string{"X-Prometheus-Scrape-Timeout-Seconds", "x"}, wantCode: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := htGet(f.handler(tc.allowAdhoc), tc.url, tc.header...)
			if resp.Code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", resp.Code, tc.wantCode, resp.Body)
			}
			for _, w := range tc.wantBody {
				if !strings.Contains(resp.Body.String(), w) {
					t.Errorf("body %q does not contain %q", resp.Body, w)
				}
			}
		})
	}
	if n := len(rec.Calls()); n != 0 {
		t.Errorf("a rejected request ran %d probes", n)
	}
}

func TestProbeHandler_AdhocForbidden(t *testing.T) {
	rec := &htRecorder{}
	f := htNewFixture(t, htWriteConfig(t, htPlainConfig("127.0.0.1:1")), rec.probe)
	h := f.handler(false)
	for _, url := range []string{
		"/probe?module=mx&target=127.0.0.1:25",
		"/probe?module=mx&target=mail.example.net:25",
		// A configured name with a module is still ad hoc.
		"/probe?module=mx&target=mx1",
		"/probe?module=nope&target=127.0.0.1:25",
	} {
		rec := htGet(h, url)
		if rec.Code != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403: %s", url, rec.Code, rec.Body)
		}
		if !strings.Contains(rec.Body.String(), "--probe.allow-adhoc") {
			t.Errorf("%s: body %q does not say how to allow ad hoc probes", url, rec.Body)
		}
	}
	if calls := rec.Calls(); len(calls) != 0 {
		t.Errorf("forbidden requests called the probe: %+v", calls)
	}
	if n := len(f.history.List()); n != 0 {
		t.Errorf("history has %d entries after forbidden requests", n)
	}
}

func TestProbeHandler_AdhocAllowed(t *testing.T) {
	t.Run("fake", func(t *testing.T) {
		adhoc := &htRecorder{}
		f := htNewFixture(t, htWriteConfig(t, htPlainConfig("127.0.0.1:1")), adhoc.probe)
		rec := htGet(f.handler(true), "/probe?module=mx&target=mail.example.net:2525")
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if v := htMustValue(t, htParse(t, rec.Body.String()), "probe_success", nil); v != 1 {
			t.Errorf("probe_success = %v, want 1", v)
		}
		calls := adhoc.Calls()
		if len(calls) != 1 || calls[0].target != "mail.example.net:2525" {
			t.Fatalf("probe calls = %+v, want one for mail.example.net:2525", calls)
		}
		if got := calls[0].module.SMTP.MailFrom; got != "monitor@example.test" {
			t.Errorf("probe ran with mail_from %q, want the module's", got)
		}
		hist := f.history.List()
		if len(hist) != 1 || hist[0].Source != "probe" || hist[0].Result.Module != "mx" || hist[0].Result.Target != "mail.example.net:2525" {
			t.Errorf("history = %+v, want the ad hoc run", hist)
		}
	})
	t.Run("real", func(t *testing.T) {
		srv := probestest.NewScriptServer(t, probestest.Dialog{}.Serve)
		f := htNewFixture(t, htWriteConfig(t, htPlainConfig("127.0.0.1:1")), smtp.Probe)
		rec := htGet(f.handler(true), "/probe?module=mx&target="+srv.Addr)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		mfs := htParse(t, rec.Body.String())
		if v := htMustValue(t, mfs, "probe_success", nil); v != 1 {
			t.Errorf("probe_success = %v, want 1\n%s", v, rec.Body)
		}
		if !htContainsPrefix(srv.Received(), "EHLO probe.example.test") {
			t.Errorf("server saw %q, want the module's EHLO", srv.Received())
		}
	})
}

func TestProbeHandler_ScrapeTimeout(t *testing.T) {
	cfg := `modules:
  slow:
    timeout: 10s
    smtp: {tls: none}
  quick:
    timeout: 1s
    smtp: {tls: none}
targets:
  - {name: slow-target, address: "127.0.0.1:1", module: slow, interval: 1h}
  - {name: quick-target, address: "127.0.0.1:1", module: quick, interval: 1h}
  - {name: override-target, address: "127.0.0.1:1", module: slow, interval: 1h, timeout: 2s}
`
	for _, tc := range []struct {
		name, query, header string
		want                time.Duration
	}{
		{"configured, header less offset", "target=slow-target", "3", 2500 * time.Millisecond},
		{"configured, fractional header", "target=slow-target", "4.25", 3750 * time.Millisecond},
		{"configured, module timeout smaller", "target=quick-target", "3", time.Second},
		{"configured, target timeout smaller", "target=override-target", "3", 2 * time.Second},
		{"configured, no header", "target=slow-target", "", 10 * time.Second},
		{"configured, header below offset", "target=slow-target", "0.4", 200 * time.Millisecond},
		{"configured, huge header", "target=slow-target", "1e308", 10 * time.Second},
		{"configured, header beyond a duration", "target=slow-target", "9.3e9", 10 * time.Second},
		{"configured, header just within a duration", "target=slow-target", "9.2e9", 10 * time.Second},
		{"configured, header of a millisecond", "target=slow-target", "0.001", 500 * time.Microsecond},
		{"ad hoc, header less offset", "module=slow&target=127.0.0.1:25", "3", 2500 * time.Millisecond},
		{"ad hoc, module timeout smaller", "module=quick&target=127.0.0.1:25", "3", time.Second},
		{"ad hoc, no header", "module=slow&target=127.0.0.1:25", "", 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &htRecorder{}
			f := htNewFixture(t, htWriteConfig(t, cfg), rec.probe)
			var header []string
			if tc.header != "" {
				header = []string{"X-Prometheus-Scrape-Timeout-Seconds", tc.header}
			}
			resp := htGet(f.handler(true), "/probe?"+tc.query, header...)
			if resp.Code != http.StatusOK {
				t.Fatalf("status %d: %s", resp.Code, resp.Body)
			}
			calls := rec.Calls()
			if len(calls) != 1 {
				t.Fatalf("probe called %d times, want 1", len(calls))
			}
			if calls[0].timeout != tc.want {
				t.Errorf("probe timeout = %s, want %s", calls[0].timeout, tc.want)
			}
		})
	}
}

// htAuthConfig is a STARTTLS module that authenticates with htSecret, with
// the server name pinned so that ad hoc probes may use it too.
func htAuthConfig(addr, caFile string) string {
	return fmt.Sprintf(`modules:
  submission:
    timeout: 5s
    smtp:
      tls: starttls
      ehlo: probe.example.test
      tls_config: {ca_file: %q, server_name: localhost}
      auth: {mechanism: PLAIN, username: monitor@example.test, password: %q}
      mail_from: monitor@example.test
      rcpt_to: [sink@example.test]
targets:
  - {name: submission, address: %q, module: submission, interval: 1h}
`, caFile, htSecret, addr)
}

// htLeaks lists the encodings of htSecret that must never be shown: the
// password itself and the base64 an AUTH PLAIN or LOGIN exchange carries.
func htLeaks() []string {
	return []string{
		htSecret,
		base64.StdEncoding.EncodeToString([]byte(htSecret)),
		base64.StdEncoding.EncodeToString([]byte("\x00monitor@example.test\x00" + htSecret)),
	}
}

func TestProbeHandler_Debug(t *testing.T) {
	ca := probestest.NewCA(t)
	cert := ca.Valid(t)
	srv := probestest.NewServer(t, probestest.ServerOptions{TLS: &cert, Users: map[string]string{"monitor@example.test": htSecret}})
	path := htWriteConfig(t, htAuthConfig(srv.Addr, ca.WriteCAFile(t)))
	f := htNewFixture(t, path, smtp.Probe)

	for _, url := range []string{"/probe?target=submission&debug=true", "/probe?module=submission&target=" + srv.Addr + "&debug=true"} {
		t.Run(url, func(t *testing.T) {
			rec := htGet(f.handler(true), url)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q, want text/plain", ct)
			}
			body := rec.Body.String()
			for _, want := range []string{
				"Logs for the probe:",
				"Transcript:",
				"C: AUTH PLAIN <redacted>",
				"Result:",
				`"success": true`,
				`"starttls_offered": true`,
				"Metrics that would have been returned:",
				"probe_success 1",
				"probe_smtp_tls_verified 1",
				`probe_smtp_reply_code{phase="auth"} 235`,
				"Module configuration:",
				"username: monitor@example.test",
				"password: <secret>",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("debug output lacks %q", want)
				}
			}
			for _, leak := range htLeaks() {
				if strings.Contains(body, leak) {
					t.Errorf("debug output contains the secret as %q", leak)
				}
			}
			// Configured and ad hoc probes alike log into the page.
			if !strings.Contains(body, `msg=SMTP dir=C line="EHLO probe.example.test"`) {
				t.Errorf("debug output lacks the probe's log lines")
			}
			if t.Failed() {
				t.Logf("debug output:\n%s", body)
			}
		})
	}
	// The server did check the real password: masking is not a probe that
	// never authenticated.
	for _, a := range srv.AuthAttempts() {
		if a != "PLAIN monitor@example.test ok" {
			t.Errorf("auth attempt %q, want PLAIN monitor@example.test ok", a)
		}
	}
	if len(srv.AuthAttempts()) < 2 {
		t.Errorf("auth attempts %q, want one per probe", srv.AuthAttempts())
	}
}

func TestConfigHandler_MasksSecrets(t *testing.T) {
	ca := probestest.NewCA(t)
	cert := ca.Valid(t, "client.example.test")
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}))
	keyBody := strings.Split(keyPEM, "\n")[1] // the first line of base64

	indent := func(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n          ") }
	path := htWriteConfig(t, fmt.Sprintf(`modules:
  submission:
    smtp:
      tls: implicit
      tls_config:
        cert: |
          %s
        key: |
          %s
      auth:
        username: monitor@example.test
        password: %s
targets:
  - {name: submission, address: "127.0.0.1:1", module: submission, interval: 1h}
`, indent(certPEM), indent(keyPEM), htSecret))
	f := htNewFixture(t, path, (&htRecorder{}).probe)

	rec := htGet(ConfigHandler(f.sc), "/config")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, want := range []string{"password: <secret>", "key: <secret>", "username: monitor@example.test", "name: submission", "address: 127.0.0.1:1"} {
		if !strings.Contains(body, want) {
			t.Errorf("config output lacks %q", want)
		}
	}
	for _, leak := range append(htLeaks(), keyBody, "PRIVATE KEY") {
		if strings.Contains(body, leak) {
			t.Errorf("config output contains secret material %q", leak)
		}
	}
	if t.Failed() {
		t.Logf("config output:\n%s", body)
	}
}

func TestReloadHandler(t *testing.T) {
	const oldCfg = `modules:
  mx:
    smtp: {tls: none}
targets:
  - {name: old-target, address: "127.0.0.1:1", module: mx, interval: 1h}
`
	const newCfg = `modules:
  mx:
    smtp: {tls: none}
targets:
  - {name: new-target, address: "127.0.0.1:2", module: mx, interval: 1h}
`
	// An unknown key on line 3, which the message must name.
	const badCfg = `modules:
  mx:
    smtpp: {tls: none}
targets:
  - {name: new-target, address: "127.0.0.1:2", module: mx, interval: 1h}
`
	rec := &htRecorder{}
	path := htWriteConfig(t, oldCfg)
	f := htNewFixture(t, path, rec.probe)
	h := ReloadHandler(f.reload, log.NewNopLogger())
	probe := f.handler(false)
	reloadOK := func() float64 { return htGauge(t, "smtp_exporter_config_last_reload_successful", f.sc.Collectors()...) }
	post := func() *httptest.ResponseRecorder {
		resp := httptest.NewRecorder()
		h.ServeHTTP(resp, httptest.NewRequest(http.MethodPost, "/-/reload", nil))
		return resp
	}
	if v := reloadOK(); v != 1 {
		t.Fatalf("reload gauge after the first load = %v, want 1", v)
	}

	t.Run("GET", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			resp := httptest.NewRecorder()
			h.ServeHTTP(resp, httptest.NewRequest(method, "/-/reload", nil))
			if resp.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s: status %d, want 405", method, resp.Code)
			}
			if got := resp.Header().Get("Allow"); got != http.MethodPost {
				t.Errorf("%s: Allow %q, want POST", method, got)
			}
		}
		if cfg := f.sc.Get(); cfg.Targets[0].Name != "old-target" {
			t.Errorf("a GET changed the config")
		}
	})

	t.Run("bad file", func(t *testing.T) {
		before := f.sc.Get()
		htRewrite(t, path, badCfg)
		resp := post()
		if resp.Code != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500: %s", resp.Code, resp.Body)
		}
		want := path + `:3: modules.mx.smtpp: unknown field "smtpp"`
		if !strings.Contains(resp.Body.String(), want) {
			t.Errorf("body %q does not contain the config error %q", resp.Body, want)
		}
		if v := reloadOK(); v != 0 {
			t.Errorf("reload gauge = %v, want 0", v)
		}
		if f.sc.Get() != before {
			t.Errorf("a failed reload replaced the running config")
		}
		if r := htGet(probe, "/probe?target=old-target"); r.Code != http.StatusOK {
			t.Errorf("old target no longer probes after a failed reload: %d %s", r.Code, r.Body)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		before := f.sc.Get()
		if err := os.Rename(path, path+".moved"); err != nil {
			t.Fatal(err)
		}
		defer os.Rename(path+".moved", path)
		resp := post()
		if resp.Code != http.StatusInternalServerError || !strings.Contains(resp.Body.String(), path) {
			t.Errorf("status %d body %q, want 500 naming %s", resp.Code, resp.Body, path)
		}
		if f.sc.Get() != before {
			t.Errorf("a failed reload replaced the running config")
		}
	})

	t.Run("good file", func(t *testing.T) {
		htRewrite(t, path, newCfg)
		resp := post()
		if resp.Code != http.StatusOK {
			t.Fatalf("status %d: %s", resp.Code, resp.Body)
		}
		if v := reloadOK(); v != 1 {
			t.Errorf("reload gauge = %v, want 1", v)
		}
		if ts := htGauge(t, "smtp_exporter_config_last_reload_success_timestamp_seconds", f.sc.Collectors()...); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
			t.Errorf("reload timestamp %v is not recent", ts)
		}
		cfg := f.sc.Get()
		if len(cfg.Targets) != 1 || cfg.Targets[0].Name != "new-target" {
			t.Fatalf("running targets %+v, want new-target", cfg.Targets)
		}
		if r := htGet(probe, "/probe?target=new-target"); r.Code != http.StatusOK {
			t.Errorf("new target does not probe: %d %s", r.Code, r.Body)
		}
		if r := htGet(probe, "/probe?target=old-target"); r.Code != http.StatusBadRequest {
			t.Errorf("removed target still probes: %d %s", r.Code, r.Body)
		}
		calls := rec.Calls()
		if len(calls) == 0 || calls[len(calls)-1].target != "127.0.0.1:2" {
			t.Errorf("last probe calls %+v, want one to new-target's address", calls)
		}
	})
}

func TestHistoryHandler(t *testing.T) {
	const limit = 3
	f := htNewFixtureWith(t, htWriteConfig(t, htPlainConfig("127.0.0.1:1")), (&htRecorder{}).probe, 4, limit)
	h := f.handler(true)
	for i := 1; i <= 5; i++ {
		if rec := htGet(h, fmt.Sprintf("/probe?module=mx&target=host%d.example.test:25", i)); rec.Code != http.StatusOK {
			t.Fatalf("probe %d: status %d: %s", i, rec.Code, rec.Body)
		}
	}
	hh := HistoryHandler(f.history)

	entries := f.history.List()
	if len(entries) != limit {
		t.Fatalf("history holds %d entries, want %d", len(entries), limit)
	}
	rec := htGet(hh, "/history")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q, want text/html", ct)
	}
	body := rec.Body.String()
	// Newest first: 5, 4, 3; 1 and 2 were dropped.
	last := -1
	for i := 5; i >= 3; i-- {
		target := fmt.Sprintf("host%d.example.test:25", i)
		at := strings.Index(body, target)
		if at < 0 {
			t.Errorf("history page lacks %s", target)
			continue
		}
		if at < last {
			t.Errorf("history page is not newest first at %s", target)
		}
		last = at
	}
	for _, dropped := range []string{"host1.example.test", "host2.example.test"} {
		if strings.Contains(body, dropped) {
			t.Errorf("history page still lists %s beyond its limit", dropped)
		}
	}
	if !strings.Contains(body, fmt.Sprintf("keeps the last %d", limit)) {
		t.Errorf("history page does not state its limit")
	}
	links := regexp.MustCompile(`href="\?id=(\d+)"`).FindAllStringSubmatch(body, -1)
	if len(links) != limit {
		t.Fatalf("history page has %d transcript links, want %d", len(links), limit)
	}

	newest := entries[0]
	rec = htGet(hh, fmt.Sprintf("/history?id=%d", newest.ID))
	if rec.Code != http.StatusOK {
		t.Fatalf("?id=%d: status %d: %s", newest.ID, rec.Code, rec.Body)
	}
	if want := "220 fake.test ESMTP run 5 for host5.example.test:25"; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("?id=%d lacks the transcript line %q:\n%s", newest.ID, want, rec.Body)
	}
	if !strings.Contains(rec.Body.String(), `"target": "host5.example.test:25"`) {
		t.Errorf("?id=%d lacks the result JSON:\n%s", newest.ID, rec.Body)
	}

	for _, id := range []string{"1", "2", "999", "abc", "-1"} {
		if rec := htGet(hh, "/history?id="+id); rec.Code != http.StatusNotFound {
			t.Errorf("?id=%s: status %d, want 404", id, rec.Code)
		}
	}
}

// htBlocking is a fake ProbeFunc whose calls to block block until their
// context ends or 10s pass; entered receives each call's target.
type htBlocking struct {
	htRecorder
	block   string
	entered chan string
}

func newHTBlocking(block string) *htBlocking {
	return &htBlocking{block: block, entered: make(chan string, 10)}
}

func (b *htBlocking) probe(ctx context.Context, target string, m probes.Module, logger log.Logger) *probes.Result {
	b.entered <- target
	if target == b.block {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
	}
	return b.htRecorder.probe(ctx, target, m, logger)
}

// A scrape of a target that is being probed answers 503 at its deadline
// rather than wait out the other run. The test runs in a synctest bubble,
// whose clock moves only when every goroutine in it is blocked: the
// deadlines and the blocked probe take no real time.
func TestProbeHandler_ConfiguredTargetBusy(t *testing.T) {
	synctest.Test(t, testProbeHandlerConfiguredTargetBusy)
}

func testProbeHandlerConfiguredTargetBusy(t *testing.T) {
	fake := newHTBlocking("127.0.0.1:1")
	f := htNewFixture(t, htWriteConfig(t, htPlainConfig("127.0.0.1:1")), fake.probe)
	h := f.handler(false)
	first := make(chan int, 1)
	go func() { first <- htGet(h, "/probe?target=mx1").Code }()
	<-fake.entered

	start := time.Now()
	rec := htGet(h, "/probe?target=mx1", "X-Prometheus-Scrape-Timeout-Seconds", "0.8")
	elapsed := time.Since(start)
	if elapsed > 3*time.Second {
		t.Errorf("answered after %s with a 0.8s scrape timeout", elapsed)
	}
	// The scrape's timeout less the offset, and the slack past it.
	if want := 300*time.Millisecond + answerSlack; elapsed != want {
		t.Errorf("answered after %s, want at the deadline, %s", elapsed, want)
	}
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503: %s", rec.Code, rec.Body)
	}
	if want := `target "mx1" is being probed by the schedule or another request; try again`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("body %q does not contain %q", rec.Body, want)
	}
	if n := len(fake.Calls()); n != 0 {
		t.Errorf("%d probes finished while the first still runs", n)
	}
	f.sched.Shutdown(0)
	<-first
}

// Ad hoc probes share --probe.concurrency with the rest, count as in
// flight, and are waited for and cancelled by shutdown. In a synctest
// bubble, as TestProbeHandler_ConfiguredTargetBusy.
func TestProbeHandler_AdhocUnderSchedulerLimits(t *testing.T) {
	synctest.Test(t, testProbeHandlerAdhocUnderSchedulerLimits)
}

func testProbeHandlerAdhocUnderSchedulerLimits(t *testing.T) {
	fake := newHTBlocking("blocked.example.test:25")
	f := htNewFixtureWith(t, htWriteConfig(t, htPlainConfig("127.0.0.1:1")), fake.probe, 1, 10)
	h := f.handler(true)
	inFlight := func() float64 { return htGauge(t, "smtp_exporter_probes_in_flight", f.sched.Collectors()...) }

	first := make(chan *httptest.ResponseRecorder, 1)
	go func() { first <- htGet(h, "/probe?module=mx&target=blocked.example.test:25") }()
	<-fake.entered
	if v := inFlight(); v != 1 {
		t.Errorf("smtp_exporter_probes_in_flight = %v during an ad hoc probe, want 1", v)
	}

	// The only slot is taken: neither kind of probe starts.
	for _, url := range []string{"/probe?module=mx&target=other.example.test:25", "/probe?target=mx1"} {
		rec := htGet(h, url, "X-Prometheus-Scrape-Timeout-Seconds", "0.8")
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "all 1 dialog probe slots (--probe.concurrency) are in use") {
			t.Errorf("%s with the only slot taken: status %d, body %q; want 503 naming the slots", url, rec.Code, rec.Body)
		}
	}
	select {
	case target := <-fake.entered:
		t.Errorf("probe of %s started without a slot", target)
	default:
	}

	done := make(chan struct{})
	go func() { f.sched.Shutdown(100 * time.Millisecond); close(done) }()
	select {
	case <-done:
		t.Fatal("Shutdown returned while an ad hoc probe was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	var rec *httptest.ResponseRecorder
	select {
	case rec = <-first:
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not cancel the ad hoc probe")
	}
	<-done
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "shutting down") {
		t.Errorf("ad hoc probe cancelled by shutdown: status %d, body %q; want 503", rec.Code, rec.Body)
	}
	if rec := htGet(h, "/probe?module=mx&target=late.example.test:25"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("ad hoc probe after shutdown: status %d, want 503: %s", rec.Code, rec.Body)
	}
	if v := inFlight(); v != 0 {
		t.Errorf("smtp_exporter_probes_in_flight = %v after shutdown, want 0", v)
	}
	if n := len(f.history.List()); n != 0 {
		t.Errorf("history holds %d entries; the cancelled probe has no result", n)
	}
}

// An ad hoc probe never sends mail, however often it is asked for: no
// target's min_send_interval covers an address anyone may name.
func TestProbeHandler_AdhocNeverSends(t *testing.T) {
	cfg := `modules:
  send:
    smtp:
      tls: none
      mail_from: monitor@example.test
      rcpt_to: [sink@example.test]
      send: true
targets:
  - {name: mx1, address: "127.0.0.1:1", module: send, interval: 1h}
`
	rec := &htRecorder{}
	f := htNewFixture(t, htWriteConfig(t, cfg), rec.probe)
	h := f.handler(true)
	for range 3 {
		if resp := htGet(h, "/probe?module=send&target=victim.example.test:25&debug=true"); resp.Code != http.StatusOK {
			t.Fatalf("status %d: %s", resp.Code, resp.Body)
		} else if strings.Contains(resp.Body.String(), "send: true") {
			t.Errorf("debug page shows a sending module:\n%s", resp.Body)
		}
	}
	for i, c := range rec.Calls() {
		if c.module.SMTP.Send {
			t.Errorf("ad hoc probe %d ran with send: true", i+1)
		}
	}
	if !f.sc.Get().Modules["send"].SMTP.Send {
		t.Error("the running configuration's module no longer sends")
	}
}

// A module's credentials go to an ad hoc address only over TLS verified
// against the server name the module pins.
func TestProbeHandler_AdhocCredentialsPinned(t *testing.T) {
	const auth = `auth: {username: monitor@example.test, password: ` + htSecret + `}`
	caFile := probestest.NewCA(t).WriteCAFile(t)
	for _, tc := range []struct {
		name, smtp string
		want       int
	}{
		{"auth, server name not pinned", `{tls: starttls, ` + auth + `}`, http.StatusForbidden},
		{"auth, CA pinned, server name not", `{tls: implicit, tls_config: {ca_file: "` + caFile + `"}, ` + auth + `}`, http.StatusForbidden},
		{"auth, pinned, verification off", `{tls: starttls, tls_config: {server_name: mail.example.test, insecure_skip_verify: true}, ` + auth + `}`, http.StatusForbidden},
		{"auth without TLS, pinned", `{tls: none, allow_insecure_auth: true, tls_config: {server_name: mail.example.test}, ` + auth + `}`, http.StatusForbidden},
		{"auth, pinned", `{tls: starttls, tls_config: {server_name: mail.example.test}, ` + auth + `}`, http.StatusOK},
		{"auth, implicit TLS, pinned", `{tls: implicit, tls_config: {server_name: mail.example.test}, ` + auth + `}`, http.StatusOK},
		{"no auth", `{tls: starttls}`, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &htRecorder{}
			path := htWriteConfig(t, "modules:\n  m:\n    smtp: "+tc.smtp+"\ntargets:\n  - {name: configured, address: \"127.0.0.1:1\", module: m, interval: 1h}\n")
			f := htNewFixture(t, path, rec.probe)
			h := f.handler(true)
			resp := htGet(h, "/probe?module=m&target=elsewhere.example.test:587")
			if resp.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.Code, tc.want, resp.Body)
			}
			if tc.want == http.StatusForbidden {
				if !strings.Contains(resp.Body.String(), `module "m"`) || !strings.Contains(resp.Body.String(), "server_name") {
					t.Errorf("body %q does not say which module and what it needs", resp.Body)
				}
				if n := len(rec.Calls()); n != 0 {
					t.Errorf("refused ad hoc probe ran %d probes", n)
				}
			}
			// The configured target names its own server: always allowed.
			if resp := htGet(h, "/probe?target=configured"); resp.Code != http.StatusOK {
				t.Errorf("configured target: status %d: %s", resp.Code, resp.Body)
			}
		})
	}
}

// Once shutdown has begun, /probe answers 503, not "unknown target".
func TestProbeHandler_DuringShutdown(t *testing.T) {
	rec := &htRecorder{}
	f := htNewFixture(t, htWriteConfig(t, htPlainConfig("127.0.0.1:1")), rec.probe)
	f.sched.Shutdown(0)
	for _, url := range []string{"/probe?target=mx1", "/probe?module=mx&target=mail.example.test:25"} {
		resp := htGet(f.handler(true), url)
		if resp.Code != http.StatusServiceUnavailable || !strings.Contains(resp.Body.String(), "shutting down") {
			t.Errorf("%s during shutdown: status %d, body %q; want 503 saying so", url, resp.Code, resp.Body)
		}
	}
	if n := len(rec.Calls()); n != 0 {
		t.Errorf("%d probes ran after shutdown", n)
	}
}

// TestProbeHandler_ClientGoneNotRecorded: a scrape that goes away mid-probe
// leaves no "timeout" in /history, whether by name or ad hoc.
func TestProbeHandler_ClientGoneNotRecorded(t *testing.T) {
	started := make(chan struct{}, 2)
	probe := func(ctx context.Context, target string, m probes.Module, _ log.Logger) *probes.Result {
		started <- struct{}{}
		<-ctx.Done()
		return &probes.Result{Start: time.Now(), Reason: probes.ReasonTimeout, FailedPhase: probes.PhaseBanner,
			Err: fmt.Errorf("%w: i/o timeout", context.Canceled)}
	}
	f := htNewFixture(t, htWriteConfig(t, htPlainConfig("127.0.0.1:1")), probe)
	for _, url := range []string{"/probe?target=mx1", "/probe?module=mx&target=mail.example.test:25"} {
		ctx, cancel := context.WithCancel(context.Background())
		req := httptest.NewRequest(http.MethodGet, url, nil).WithContext(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.handler(true).ServeHTTP(httptest.NewRecorder(), req)
		}()
		<-started
		cancel()
		<-done
	}
	if n := len(f.history.List()); n != 0 {
		t.Errorf("history holds %d abandoned probes, want 0", n)
	}
}

func TestAdhocAllowList_Set(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"192.0.2.7/32:25", "192.0.2.7/32:25"},
		{"10.1.2.3/8:25,465,587", "10.0.0.0/8:25,465,587"},
		{"2001:db8::/32:24-26,587", "2001:db8::/32:24-26,587"},
		{"::1/128", "::1/128"},
	} {
		var l AdhocAllowList
		if err := l.Set(tc.value); err != nil {
			t.Errorf("Set(%q): %v", tc.value, err)
			continue
		}
		if got := l.String(); got != tc.want {
			t.Errorf("Set(%q) reads back as %q, want %q", tc.value, got, tc.want)
		}
	}
	for _, tc := range []struct{ value, want string }{
		{"10.0.0.1", `--probe.adhoc-allow: "10.0.0.1" is not CIDR[:PORTS]: the network needs a prefix length (10.0.0.1/32 for one address)`},
		{"mail.example.net/32", `--probe.adhoc-allow: "mail.example.net/32" is not CIDR[:PORTS]: invalid network "mail.example.net/32" (want an address and a prefix length: 192.0.2.0/24, 2001:db8::/32)`},
		{"10.0.0.0/8:", `--probe.adhoc-allow: "10.0.0.0/8:" is not CIDR[:PORTS]: empty port list`},
		{"10.0.0.0/8:smtp", `--probe.adhoc-allow: "10.0.0.0/8:smtp" is not CIDR[:PORTS]: invalid port "smtp" (want 1-65535)`},
		{"10.0.0.0/8:0", `--probe.adhoc-allow: "10.0.0.0/8:0" is not CIDR[:PORTS]: invalid port "0" (want 1-65535)`},
		{"10.0.0.0/8:70000", `--probe.adhoc-allow: "10.0.0.0/8:70000" is not CIDR[:PORTS]: invalid port "70000" (want 1-65535)`},
		{"10.0.0.0/8:600-500", `--probe.adhoc-allow: "10.0.0.0/8:600-500" is not CIDR[:PORTS]: invalid port range "600-500"`},
	} {
		var l AdhocAllowList
		if err := l.Set(tc.value); err == nil || err.Error() != tc.want {
			t.Errorf("Set(%q) = %v\nwant %s", tc.value, err, tc.want)
		}
	}
}

// TestProbeHandler_AdhocAllowList checks which ad hoc targets the
// allow-list lets through, after resolving their names: every address a
// name resolves to must be allowed.
func TestProbeHandler_AdhocAllowList(t *testing.T) {
	resolver := &htResolver{addrs: map[string][]string{
		"mail.example.test":   {"192.0.2.10"},
		"mixed.example.test":  {"192.0.2.11", "10.0.0.1"},
		"inside.example.test": {"10.1.2.3"},
	}}
	for _, tc := range []struct {
		name     string
		allow    []string
		target   string
		resolver Resolver
		wantCode int
		wantBody []string
		hidden   string // not in the body
	}{
		{name: "allowed network", allow: []string{"192.0.2.0/24"}, target: "192.0.2.7:25", wantCode: 200},
		{name: "allowed network and port", allow: []string{"192.0.2.0/24:25,587"}, target: "192.0.2.7:587", wantCode: 200},
		{name: "allowed port range", allow: []string{"192.0.2.0/24:2500-2600"}, target: "192.0.2.7:2525", wantCode: 200},
		{name: "allowed name", allow: []string{"192.0.2.0/24:25"}, target: "mail.example.test:25", wantCode: 200},
		{name: "default port allowed", allow: []string{"192.0.2.0/24:25"}, target: "mail.example.test", wantCode: 200},
		{name: "second rule", allow: []string{"10.0.0.0/8:25", "192.0.2.0/24:587"}, target: "192.0.2.7:587", wantCode: 200},
		{name: "IPv4-mapped IPv6 address", allow: []string{"192.0.2.0/24"}, target: "[::ffff:192.0.2.7]:25", wantCode: 200},
		{name: "IPv6 network", allow: []string{"2001:db8::/32:25"}, target: "[2001:db8::25]:25", wantCode: 200},
		{name: "denied network", allow: []string{"192.0.2.0/24"}, target: "198.51.100.7:25", wantCode: 403,
			wantBody: []string{`ad hoc target "198.51.100.7:25"`, "198.51.100.7 is not in a network that --probe.adhoc-allow allows"}},
		{name: "denied port", allow: []string{"192.0.2.0/24:25,587"}, target: "192.0.2.7:22", wantCode: 403,
			wantBody: []string{`ad hoc target "192.0.2.7:22"`, "port 22 of 192.0.2.7 is not allowed by --probe.adhoc-allow"}},
		{name: "denied default port", allow: []string{"192.0.2.0/24:587"}, target: "mail.example.test", wantCode: 403,
			wantBody: []string{"port 25 of an address of mail.example.test is not allowed"}},
		{name: "name resolving into a denied network", allow: []string{"192.0.2.0/24"}, target: "inside.example.test:25", wantCode: 403,
			wantBody: []string{`ad hoc target "inside.example.test:25": an address of inside.example.test is not in a network`}, hidden: "10.1.2.3"},
		{name: "name with one denied address", allow: []string{"192.0.2.0/24"}, target: "mixed.example.test:25", wantCode: 403,
			wantBody: []string{"an address of mixed.example.test is not in a network"}, hidden: "10.0.0.1"},
		{name: "localhost outside the list", allow: []string{"192.0.2.0/24"}, target: "localhost:25", resolver: net.DefaultResolver, wantCode: 403,
			wantBody: []string{`ad hoc target "localhost:25"`, "is not in a network that --probe.adhoc-allow allows"}},
		{name: "mapped address of a denied network", allow: []string{"192.0.2.0/24"}, target: "[::ffff:10.0.0.1]:25", wantCode: 403,
			wantBody: []string{"10.0.0.1 is not in a network"}},
		{name: "no list: loopback", target: "127.0.0.1:2525", wantCode: 200},
		{name: "no list: IPv6 loopback", target: "[::1]:25", wantCode: 200},
		{name: "no list: anything else", target: "192.0.2.7:25", wantCode: 403,
			wantBody: []string{"192.0.2.7 is not in a network", "without --probe.adhoc-allow, only loopback addresses are allowed"}},
		{name: "no list: name resolving elsewhere", target: "mail.example.test:25", wantCode: 403},
		{name: "malformed target", target: "127.0.0.1:smtp", wantCode: 400, wantBody: []string{`target "127.0.0.1:smtp" has an invalid port "smtp"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &htRecorder{}
			f := htNewFixture(t, htWriteConfig(t, htPlainConfig("127.0.0.1:1")), rec.probe)
			h := f.handler(true)
			h.AdhocAllow = htAllowList(t, tc.allow...)
			h.Resolver = resolver
			if tc.resolver != nil {
				h.Resolver = tc.resolver
			}
			resp := htGet(h, "/probe?module=mx&target="+tc.target)
			if resp.Code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", resp.Code, tc.wantCode, resp.Body)
			}
			for _, w := range tc.wantBody {
				if !strings.Contains(resp.Body.String(), w) {
					t.Errorf("body %q does not contain %q", resp.Body, w)
				}
			}
			if tc.hidden != "" && strings.Contains(resp.Body.String(), tc.hidden) {
				t.Errorf("body %q tells where the name points (%s)", resp.Body, tc.hidden)
			}
			calls := rec.Calls()
			if tc.wantCode != 200 {
				if len(calls) != 0 || len(f.history.List()) != 0 {
					t.Errorf("a refused target was probed: %+v", calls)
				}
				return
			}
			if len(calls) != 1 || calls[0].target != tc.target {
				t.Errorf("probe calls = %+v, want one for %s", calls, tc.target)
			}
		})
	}
}

// TestProbeHandler_AdhocResolvedOnce checks that the probe connects to the
// address the allow-list checked, without resolving the name again: a name
// that answers an allowed address to the check and a denied one later
// (DNS rebinding) must not reach the denied one.
func TestProbeHandler_AdhocResolvedOnce(t *testing.T) {
	srv := probestest.NewScriptServer(t, probestest.Dialog{}.Serve)
	_, port, err := net.SplitHostPort(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	f := htNewFixture(t, htWriteConfig(t, htPlainConfig("127.0.0.1:1")), smtp.Probe)
	h := f.handler(true)
	h.AdhocAllow = htAllowList(t, "127.0.0.0/8:"+port)
	resolver := &htResolver{addrs: map[string][]string{"rebind.example.test": {"127.0.0.1"}}}
	h.Resolver = resolver
	// Were the name resolved again, by the probe, it would not resolve.
	rec := htGet(h, "/probe?module=mx&target=rebind.example.test:"+port+"&debug=true")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if !strings.Contains(rec.Body.String(), "probe_success 1") {
		t.Errorf("probe failed:\n%s", rec.Body)
	}
	if !htContainsPrefix(srv.Received(), "EHLO probe.example.test") {
		t.Errorf("server saw %q, want the probe's dialog", srv.Received())
	}
	if n := resolver.Lookups(); n != 1 {
		t.Errorf("the name was resolved %d times, want once", n)
	}
	hist := f.history.List()
	if len(hist) != 1 || hist[0].Result.Target != "rebind.example.test:"+port {
		t.Errorf("history = %+v, want the run under the name asked for", hist)
	}
}

// TestProbeHandler_AdhocUnresolvable checks that a name that does not
// resolve is the probe's DNS failure, as for a configured target, not an
// HTTP error.
func TestProbeHandler_AdhocUnresolvable(t *testing.T) {
	f := htNewFixture(t, htWriteConfig(t, htPlainConfig("127.0.0.1:1")), smtp.Probe)
	h := f.handler(true)
	resolver := &htResolver{addrs: map[string][]string{}}
	h.Resolver = resolver
	rec := htGet(h, "/probe?module=mx&target=nowhere.example.test:25")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	mfs := htParse(t, rec.Body.String())
	if v := htMustValue(t, mfs, "probe_success", nil); v != 0 {
		t.Errorf("probe_success = %v, want 0", v)
	}
	if v := htMustValue(t, mfs, "probe_smtp_failure_info", map[string]string{"phase": "resolve", "reason": "dns"}); v != 1 {
		t.Errorf("probe_smtp_failure_info{phase=resolve,reason=dns} = %v, want 1\n%s", v, rec.Body)
	}
	if n := resolver.Lookups(); n != 1 {
		t.Errorf("the name was resolved %d times, want once", n)
	}
}

// htDomainConfig has a domain module beside htPlainConfig's smtp one.
const htDomainConfig = `modules:
  inbound:
    smtp:
      tls: starttls
      ehlo: probe.example.test
  posture:
    prober: domain
    domain:
      mx_module: inbound
      dns_server: 127.0.0.1:53
targets: []
`

// htDialRecorder is a fake domain prober: it asks the context's dial
// check about each of dials, as the real one does before each MX session
// and the MTA-STS fetch, and records the answers.
type htDialRecorder struct {
	dials   []netip.AddrPort
	mu      sync.Mutex
	targets []string
	answers map[netip.AddrPort]error
}

func (r *htDialRecorder) probe(ctx context.Context, target string, _ probes.Module, _ log.Logger) *probes.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.targets = append(r.targets, target)
	r.answers = map[netip.AddrPort]error{}
	for _, a := range r.dials {
		r.answers[a] = probes.CheckDial(ctx, a)
	}
	return &probes.Result{Start: time.Now(), Success: true, Domain: &probes.DomainFacts{}}
}

// TestProbeHandler_AdhocDomain: an ad hoc domain target is a domain, not a
// host: it is not resolved and checked up front (its MX hosts are the
// prober's to find), but every address the prober connects to passes the
// allow-list in the probe's context.
func TestProbeHandler_AdhocDomain(t *testing.T) {
	allowed := netip.MustParseAddrPort("192.0.2.25:25")
	outside := netip.MustParseAddrPort("10.1.2.3:25")
	wrongPort := netip.MustParseAddrPort("192.0.2.25:443")
	v6 := netip.MustParseAddrPort("[2001:db8::25]:25")
	rec := &htDialRecorder{dials: []netip.AddrPort{allowed, outside, wrongPort, v6}}
	f := htNewFixture(t, htWriteConfig(t, htDomainConfig), rec.probe)
	h := f.handler(true)
	h.AdhocAllow = htAllowList(t, "192.0.2.0/24:25", "2001:db8::/32:25")
	resolver := &htResolver{addrs: map[string][]string{}}
	h.Resolver = resolver
	resp := htGet(h, "/probe?module=posture&target=example.com")
	if resp.Code != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", resp.Code, resp.Body)
	}
	if n := resolver.Lookups(); n != 0 {
		t.Errorf("the domain was resolved %d times as a host, want never", n)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !slices.Equal(rec.targets, []string{"example.com"}) {
		t.Fatalf("probe calls for %v, want one for example.com", rec.targets)
	}
	for _, a := range []netip.AddrPort{allowed, v6} {
		if err := rec.answers[a]; err != nil {
			t.Errorf("dial check refused %s, which the allow-list allows: %v", a, err)
		}
	}
	if err := rec.answers[outside]; err == nil || !strings.Contains(err.Error(), "not in a network that --probe.adhoc-allow allows") {
		t.Errorf("dial check of %s = %v, want a refusal by the allow-list", outside, err)
	} else if strings.Contains(err.Error(), "10.1.2.3") {
		t.Errorf("refusal %q tells where the domain's DNS points", err)
	}
	if err := rec.answers[wrongPort]; err == nil || !strings.Contains(err.Error(), "port 443") {
		t.Errorf("dial check of %s = %v, want the port refused", wrongPort, err)
	}
}

// TestProbeHandler_AdhocDomainMalformed: a domain module's target must be
// a domain; host:port is a 400 before anything runs.
func TestProbeHandler_AdhocDomainMalformed(t *testing.T) {
	rec := &htDialRecorder{}
	f := htNewFixture(t, htWriteConfig(t, htDomainConfig), rec.probe)
	h := f.handler(true)
	resp := htGet(h, "/probe?module=posture&target=mx.example.com:25")
	if resp.Code != http.StatusBadRequest || !strings.Contains(resp.Body.String(), "not a mail domain") {
		t.Errorf("status %d %q, want 400 naming a mail domain", resp.Code, resp.Body)
	}
	if len(rec.targets) != 0 {
		t.Errorf("a malformed domain was probed: %v", rec.targets)
	}
}

// TestProbeHandler_ScheduledHasNoDialCheck: the allow-list is the ad hoc
// path's; a configured domain target's prober connects wherever its DNS
// says.
func TestProbeHandler_ScheduledHasNoDialCheck(t *testing.T) {
	outside := netip.MustParseAddrPort("10.1.2.3:25")
	rec := &htDialRecorder{dials: []netip.AddrPort{outside}}
	cfg := strings.Replace(htDomainConfig, "targets: []", "targets:\n  - {name: example, address: example.com, module: posture, interval: 1h}", 1)
	f := htNewFixture(t, htWriteConfig(t, cfg), rec.probe)
	h := f.handler(true)
	if resp := htGet(h, "/probe?target=example"); resp.Code != http.StatusOK {
		t.Fatalf("status %d: %s", resp.Code, resp.Body)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err := rec.answers[outside]; err != nil {
		t.Errorf("a configured target's dial was checked: %v", err)
	}
}

// htProbeResults are results of every prober with every gauge /probe
// may serve: SMTP with and without TLS, a failure, a delivery run with
// its IMAP leg and bounce mailbox, a domain run with address labels.
func htProbeResults() map[string]*probes.Result {
	delivery := deliveryResult()
	delivery.Delivery.BounceMailbox = "ok"
	delivery.Delivery.IMAPTLS = delivery.TLS
	domain := domainFailingResult()
	domain.Domain.AddressLabels = true
	return map[string]*probes.Result{
		"send": successResult(), "starttls": startTLSResult(), "lmtp": lmtpResult(), "refused": refusedResult(),
		"delivery": delivery, "dmarc": dmarcResult(), "domain": domain,
	}
}

// htRegistryExposition is /probe's body as a registry of resultCollector
// encodes it, in format.
func htRegistryExposition(t *testing.T, res *probes.Result, format expfmt.Format) []byte {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(resultCollector{res: res})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		c.Close()
	}
	return buf.Bytes()
}

// TestProbeMetrics_SameAsRegistry: /probe's encoding is byte for byte
// what a registry of the result's gauges encodes, in every format it
// encodes itself.
func TestProbeMetrics_SameAsRegistry(t *testing.T) {
	for name, res := range htProbeResults() {
		for f, format := range map[int]expfmt.Format{
			fastText:        expfmt.NewFormat(expfmt.TypeTextPlain),
			fastOpenMetrics: expfmt.NewFormat(expfmt.TypeOpenMetrics),
			fastProto:       expfmt.NewFormat(expfmt.TypeProtoDelim),
		} {
			got, want := appendProbeMetrics(nil, res, f), htRegistryExposition(t, res, format)
			if !bytes.Equal(got, want) {
				t.Errorf("%s, %s: differs from the registry's\n got %q\nwant %q", name, format, got, want)
			}
		}
	}
}

// TestProbeHandler_SameAsPromhttp: /probe answers as promhttp.HandlerFor
// did (Content-Type, Vary, body) for every Accept, with and without gzip,
// a name[] filter included.
func TestProbeHandler_SameAsPromhttp(t *testing.T) {
	t.Run("small", func(t *testing.T) { htSameAsPromhttp(t, htProbeResults()["delivery"], false) })
	t.Run("large", func(t *testing.T) { htSameAsPromhttp(t, htLargeDomainResult(), true) })
}

// htLargeDomainResult is a domain run with 50 MX hosts of two addresses
// each, addresses labelled: a body well over probeGzipMin.
func htLargeDomainResult() *probes.Result {
	res := domainResult()
	res.Domain.AddressLabels = true
	for i := range 48 {
		h := res.Domain.MX[i%2]
		h.Host = fmt.Sprintf("mx%d.example.com.", i+3)
		h.Addresses = slices.Clone(h.Addresses)
		for j := range h.Addresses {
			h.Addresses[j].Address = fmt.Sprintf("192.0.2.%d", 2*i+j)
		}
		res.Domain.MX = append(res.Domain.MX, h)
	}
	return res
}

// htSameAsPromhttp compares writeProbeMetrics of res with promhttp; a
// body gzipped when the client accepts it only when large.
func htSameAsPromhttp(t *testing.T, res *probes.Result, large bool) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(resultCollector{res: res})
	want := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	got := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeProbeMetrics(w, r, r.URL.Query(), res) })
	for _, url := range []string{"/probe?target=x", "/probe?target=x&name[]=probe_success&name[]=probe_tls_version_info"} {
		for _, accept := range []string{"", "text/plain;version=0.0.4", "text/plain;version=1.0.0;escaping=allow-utf-8", openMetricsAccept, protoAccept,
			"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text"} {
			for _, enc := range []string{"", "gzip", "gzip;q=0"} {
				g := htGet(got, url, "Accept", accept, "Accept-Encoding", enc)
				w := htGet(want, url, "Accept", accept)
				for _, h := range []string{"Content-Type", "Vary"} {
					if g, w := g.Result().Header.Values(h), w.Result().Header.Values(h); !slices.Equal(g, w) {
						t.Errorf("%s, Accept %q, %q: %s %q, want %q", url, accept, enc, h, g, w)
					}
				}
				// promhttp, which the formats not kept and name[] go through, gzips
				// every body.
				kept := !strings.Contains(url, "name[]") && !strings.Contains(accept, "encoding=text")
				if gz := g.Header().Get("Content-Encoding") == "gzip"; kept && gz != (large && enc == "gzip") {
					t.Errorf("%s, Accept %q, %q: gzipped %v, body of %d bytes", url, accept, enc, gz, len(htBody(t, g)))
				}
				if g.Code != w.Code || !bytes.Equal(htBody(t, g), w.Body.Bytes()) {
					t.Errorf("%s, Accept %q, %q: status %d, body\n%q\nwant status %d, body\n%q", url, accept, enc, g.Code, htBody(t, g), w.Code, w.Body)
				}
			}
		}
	}
}

// htBody is a response's body, gunzipped when it says it is gzipped.
func htBody(t *testing.T, rec *httptest.ResponseRecorder) []byte {
	t.Helper()
	if rec.Header().Get("Content-Encoding") != "gzip" {
		return rec.Body.Bytes()
	}
	zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProbeMetrics_Promtool lints /probe's text exposition of every kind
// of result with promtool. SMTP_EXPORTER_E2E=1 makes a missing promtool a
// failure.
func TestProbeMetrics_Promtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SMTP_EXPORTER_E2E") == "1" {
			t.Fatalf("promtool not found with SMTP_EXPORTER_E2E=1: %v", err)
		}
		t.Skip("promtool not on PATH")
	}
	for name, res := range htProbeResults() {
		rec := htGet(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeProbeMetrics(w, r, r.URL.Query(), res) }), "/probe?target=x")
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(rec.Body.Bytes())
		if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("%s: promtool check metrics: %v\n%s", name, err, out)
		}
	}
}
