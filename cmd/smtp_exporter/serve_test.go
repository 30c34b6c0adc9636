package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
	"golang.org/x/crypto/bcrypt"
)

// The tests in this file and e2e_test.go run the exporter as a process:
// serve blocks on signals, and SIGHUP and SIGTERM are part of what is
// under test. The binary is built once per `go test` run.

// exporterBuild is the binary shared by the tests that run it. Each test
// takes it before t.Parallel, so that every user holds it until the last
// one ends, and the last one removes it.
var exporterBuild struct {
	mu    sync.Mutex
	users int
	dir   string
	err   error
}

// exporterBinary returns the path of the exporter binary, building it on
// first use. SMTP_EXPORTER_BINARY names a prebuilt one instead (to test a
// release build).
func exporterBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SMTP_EXPORTER_BINARY"); p != "" {
		return p
	}
	b := &exporterBuild
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.users == 0 {
		b.dir, b.err = buildExporter()
	}
	if b.err != nil {
		t.Fatalf("build the exporter: %v", b.err)
	}
	b.users++
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.users--; b.users == 0 {
			os.RemoveAll(b.dir)
		}
	})
	return filepath.Join(b.dir, appName)
}

func buildExporter() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "smtp_exporter-test-")
	if err != nil {
		return "", err
	}
	// The test runs in the package directory: "." is cmd/smtp_exporter.
	cmd := exec.Command(goTool, "build", "-o", filepath.Join(dir, appName), ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("%v\n%s", err, out)
	}
	return dir, nil
}

// lockedBuffer collects a process's output while tests read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// exporterProcess is a running exporter.
type exporterProcess struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string // 127.0.0.1:port
	logs *lockedBuffer
	done chan struct{} // closed when the process has exited
	err  error         // from Wait, once done
}

// startExporter runs the binary with args and a fresh listen address, and
// returns once the port accepts connections. Cleanup kills it if a test
// did not stop it, and shows its log when the test failed.
func startExporter(t *testing.T, bin string, args ...string) *exporterProcess {
	t.Helper()
	p := &exporterProcess{t: t, addr: probestest.ClosedAddr(t), logs: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"--web.listen-address=" + p.addr}, args...)...)
	p.cmd.Stdout = p.logs
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start exporter: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("exporter log:\n%s", p.logs)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if p.exited() {
			t.Fatalf("exporter exited during startup (%v):\n%s", p.err, p.logs)
		}
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("exporter did not listen on %s within 15s:\n%s", p.addr, p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *exporterProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *exporterProcess) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits up to timeout for the process to exit and returns its status.
func (p *exporterProcess) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("exporter still running %s after being asked to stop", timeout)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	default:
		p.t.Fatalf("wait: %v", p.err)
		return -1
	}
}

func (p *exporterProcess) url(path string) string { return "http://" + p.addr + path }

// newTestClient returns a client whose connections are closed when the test
// ends, so that no keep-alive goroutine outlives it.
func newTestClient(t *testing.T, tlsConfig *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: tlsConfig}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// httpGet fetches url and returns the status and body.
func httpGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// metricFamilies is one scrape of /metrics.
type metricFamilies map[string]*dto.MetricFamily

// scrapeMetrics fetches /metrics in the text format and parses it.
func scrapeMetrics(t *testing.T, c *http.Client, url string) metricFamilies {
	t.Helper()
	code, body := httpGet(t, c, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", url, code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return mfs
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// find returns the series of family name whose labels include want.
func (mfs metricFamilies) find(name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		got := labelMap(m)
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// value returns the value of the one gauge, counter or untyped series of
// family name with labels want.
func (mfs metricFamilies) value(name string, want map[string]string) (float64, bool) {
	ms := mfs.find(name, want)
	if len(ms) != 1 {
		return 0, false
	}
	m := ms[0]
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue(), true
	case m.Counter != nil:
		return m.GetCounter().GetValue(), true
	default:
		return m.GetUntyped().GetValue(), true
	}
}

// seriesOf lists every series, in any family, labelled target=name.
func (mfs metricFamilies) seriesOf(target string) []string {
	var out []string
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if labelMap(m)["target"] == target {
				out = append(out, fmt.Sprintf("%s%v", name, labelMap(m)))
			}
		}
	}
	return out
}

// eventually polls cond every 100ms until it holds or timeout passes; cond
// returns a description of what it is still waiting for.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, waiting := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s still waiting for %s", timeout, waiting)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeTestFile writes content to dir/name.
func writeTestFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// closedPortAddr is a loopback address where nothing listens: port 1,
// which only root could bind and nothing does, so that no port another
// test picks later can collide with it.
func closedPortAddr(t *testing.T) string {
	const addr = "127.0.0.1:1"
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("something listens on %s", addr)
	}
	return addr
}

// minimalConfig has one module and targets on closed ports (their probes
// fail at connect, quickly), scheduled every second.
func minimalConfig(t *testing.T, targets ...string) string {
	var b strings.Builder
	b.WriteString("modules:\n  mx:\n    timeout: 1s\n    smtp: {tls: none}\n")
	if len(targets) > 0 {
		b.WriteString("targets:\n")
	}
	for _, name := range targets {
		fmt.Fprintf(&b, "  - {name: %s, address: %q, module: mx, interval: 1s}\n", name, closedPortAddr(t))
	}
	return b.String()
}

func TestServe_TLSAndBasicAuth(t *testing.T) {
	bin := exporterBinary(t)
	t.Parallel()
	dir := t.TempDir()

	ca := probestest.NewCA(t)
	cert := ca.Valid(t) // localhost, 127.0.0.1, ::1
	var chain bytes.Buffer
	for _, der := range cert.Certificate {
		pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, dir, "server.crt", chain.String())
	writeTestFile(t, dir, "server.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	const user, password = "prometheus", "correct horse battery staple"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// Relative file names: exporter-toolkit resolves them against the web
	// config file's directory.
	webConfig := writeTestFile(t, dir, "web.yml", fmt.Sprintf(`tls_server_config:
  cert_file: server.crt
  key_file: server.key
basic_auth_users:
  %s: %q
`, user, hash))
	config := writeTestFile(t, dir, "smtp_exporter.yml", minimalConfig(t))

	p := startExporter(t, bin, "--config.file="+config, "--web.config.file="+webConfig)
	httpsURL := "https://" + p.addr + "/metrics"
	client := newTestClient(t, &tls.Config{RootCAs: ca.Pool()})

	get := func(setAuth func(*http.Request)) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, httpsURL, nil)
		if setAuth != nil {
			setAuth(req)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", httpsURL, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	t.Run("no credentials", func(t *testing.T) {
		resp, _ := get(nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
		if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic") {
			t.Errorf("WWW-Authenticate %q, want a Basic challenge", got)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		resp, body := get(func(r *http.Request) { r.SetBasicAuth(user, "hunter2") })
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
		if strings.Contains(body, "smtp_exporter_build_info") {
			t.Errorf("metrics served with a wrong password")
		}
	})
	t.Run("wrong user", func(t *testing.T) {
		resp, _ := get(func(r *http.Request) { r.SetBasicAuth("admin", password) })
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
	})
	t.Run("right password", func(t *testing.T) {
		resp, body := get(func(r *http.Request) { r.SetBasicAuth(user, password) })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
		}
		if resp.TLS == nil {
			t.Errorf("response did not come over TLS")
		}
		if !strings.Contains(body, "smtp_exporter_build_info") {
			t.Errorf("body lacks smtp_exporter_build_info")
		}
	})
	t.Run("plain http", func(t *testing.T) {
		plain := newTestClient(t, nil)
		req, _ := http.NewRequest(http.MethodGet, p.url("/metrics"), nil)
		req.SetBasicAuth(user, password)
		resp, err := plain.Do(req)
		if err != nil {
			return // refused outright: fine
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		// Go's TLS server answers a plaintext request with a bare 400.
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body), "smtp_exporter_build_info") {
			t.Errorf("plain http got status %d with metrics", resp.StatusCode)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		other := newTestClient(t, &tls.Config{RootCAs: probestest.NewCA(t).Pool()})
		_, err := other.Get(httpsURL)
		var uae x509.UnknownAuthorityError
		if !errors.As(err, &uae) {
			t.Errorf("client trusting another CA: err = %v, want x509.UnknownAuthorityError", err)
		}
	})
	if logs := p.logs.String(); !strings.Contains(logs, "TLS is enabled.") {
		t.Errorf("log does not say TLS is enabled")
	}
}

func TestServe_Reload(t *testing.T) {
	bin := exporterBinary(t)
	t.Parallel()
	dir := t.TempDir()
	config := writeTestFile(t, dir, "smtp_exporter.yml", minimalConfig(t, "alpha", "beta"))
	p := startExporter(t, bin, "--config.file="+config)
	client := newTestClient(t, nil)
	metrics := func() metricFamilies { return scrapeMetrics(t, client, p.url("/metrics")) }
	reloadGauge := func(mfs metricFamilies) float64 {
		v, _ := mfs.value("smtp_exporter_config_last_reload_successful", nil)
		return v
	}
	hasResult := func(target string) func() (bool, string) {
		return func() (bool, string) {
			_, ok := metrics().value("probe_success", map[string]string{"target": target})
			return ok, "a result for " + target
		}
	}
	eventually(t, 10*time.Second, hasResult("alpha"))
	eventually(t, 10*time.Second, hasResult("beta"))
	if v := reloadGauge(metrics()); v != 1 {
		t.Fatalf("reload gauge after start = %v, want 1", v)
	}

	// A broken file and SIGHUP: the exporter keeps running on the old one.
	writeTestFile(t, dir, "smtp_exporter.yml", "modules:\n  mx:\n    smtp: {tls: sometimes}\n")
	p.signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, func() (bool, string) {
		return reloadGauge(metrics()) == 0, "smtp_exporter_config_last_reload_successful 0 after SIGHUP"
	})
	if p.exited() {
		t.Fatalf("exporter exited on SIGHUP with a bad config")
	}
	mfs := metrics()
	if v, _ := mfs.value("smtp_exporter_targets", nil); v != 2 {
		t.Errorf("smtp_exporter_targets = %v after a failed reload, want 2", v)
	}
	for _, target := range []string{"alpha", "beta"} {
		if _, ok := mfs.value("probe_success", map[string]string{"target": target}); !ok {
			t.Errorf("%s lost its series after a failed reload", target)
		}
	}
	if logs := p.logs.String(); !strings.Contains(logs, "Error reloading config, keeping the running one") || !strings.Contains(logs, `unknown value \"sometimes\"`) {
		t.Errorf("log does not report the failed reload with its reason")
	}

	// Fixed, with beta replaced by gamma, and reloaded over HTTP.
	writeTestFile(t, dir, "smtp_exporter.yml", minimalConfig(t, "alpha", "gamma"))
	resp, err := client.Post(p.url("/-/reload"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /-/reload: status %d: %s", resp.StatusCode, body)
	}
	mfs = metrics()
	if v := reloadGauge(mfs); v != 1 {
		t.Errorf("reload gauge after a good reload = %v, want 1", v)
	}
	if s := mfs.seriesOf("beta"); len(s) > 0 {
		t.Errorf("removed target beta still has series: %v", s)
	}
	if logs := p.logs.String(); !strings.Contains(logs, "Reloaded config file") || !strings.Contains(logs, "verified_chains_forgotten=") {
		t.Errorf("a good reload does not say it forgot the verified chains:\n%s", logs)
	}
	eventually(t, 10*time.Second, hasResult("gamma"))
	mfs = metrics()
	if v, _ := mfs.value("smtp_exporter_targets", nil); v != 2 {
		t.Errorf("smtp_exporter_targets = %v, want 2", v)
	}
	if s := mfs.seriesOf("beta"); len(s) > 0 {
		t.Errorf("removed target beta came back: %v", s)
	}
	if _, ok := mfs.value("probe_smtp_runs_total", map[string]string{"target": "alpha"}); !ok {
		t.Errorf("alpha lost its run counter across the reload")
	}

	// A GET does not reload.
	if code, _ := httpGet(t, client, p.url("/-/reload")); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: status %d, want 405", code)
	}
}

func TestServe_SIGTERM(t *testing.T) {
	bin := exporterBinary(t)
	t.Parallel()
	config := writeTestFile(t, t.TempDir(), "smtp_exporter.yml", minimalConfig(t, "alpha"))
	p := startExporter(t, bin, "--config.file="+config)
	client := newTestClient(t, nil)
	eventually(t, 10*time.Second, func() (bool, string) {
		_, ok := scrapeMetrics(t, client, p.url("/metrics")).value("probe_success", map[string]string{"target": "alpha"})
		return ok, "a first result"
	})
	client.Transport.(*http.Transport).CloseIdleConnections()

	start := time.Now()
	p.signal(syscall.SIGTERM)
	if code := p.wait(5 * time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s to exit after SIGTERM", d)
	}
	logs := p.logs.String()
	for _, want := range []string{`msg="Shutting down"`, "signal=terminated", "msg=Stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// muteServer accepts connections and never greets, so that a probe of it
// waits for the banner until its timeout; accepted receives a value per
// connection.
func muteServer(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 16)
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), ch
}

// A second SIGTERM during the shutdown grace period cancels the probes
// still running instead of waiting for them.
func TestServe_SecondSignalCancelsProbes(t *testing.T) {
	bin := exporterBinary(t)
	t.Parallel()
	addr, accepted := muteServer(t)
	config := writeTestFile(t, t.TempDir(), "smtp_exporter.yml", fmt.Sprintf(
		"modules:\n  mute:\n    timeout: 30s\n    smtp: {tls: none}\ntargets:\n  - {name: mute, address: %q, module: mute, interval: 1m}\n", addr))
	p := startExporter(t, bin, "--config.file="+config, "--shutdown.grace-period=1m")

	// No client timeout: the request must end because the probe does.
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		if resp, err := (&http.Client{Transport: tr}).Get(p.url("/probe?target=mute")); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the probe did not connect")
	}

	start := time.Now()
	p.signal(syscall.SIGTERM)
	eventually(t, 5*time.Second, func() (bool, string) {
		return strings.Contains(p.logs.String(), `msg="Shutting down"`), "the first signal's log line"
	})
	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to exit after the second SIGTERM; the probe's timeout is 30s", d)
	}
	if !strings.Contains(p.logs.String(), `msg="Signalled again during shutdown, cancelling probes in flight"`) {
		t.Error("log does not say why probes were cancelled")
	}
	<-probeDone
}

func TestServe_LandingPageAndHealth(t *testing.T) {
	bin := exporterBinary(t)
	t.Parallel()
	config := writeTestFile(t, t.TempDir(), "smtp_exporter.yml", minimalConfig(t, "alpha"))
	p := startExporter(t, bin, "--config.file="+config)
	client := newTestClient(t, nil)

	code, body := httpGet(t, client, p.url("/"))
	if code != http.StatusOK {
		t.Fatalf("GET /: status %d", code)
	}
	for _, want := range []string{
		"<title>SMTP Exporter</title>",
		`href="/metrics"`, `href="/history"`, `href="/config"`,
		`<form action="/probe">`, `name="target"`, `name="module"`, `name="debug"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("landing page lacks %s", want)
		}
	}
	for _, path := range []string{"/-/healthy", "/-/ready", "/metrics", "/config", "/history"} {
		if code, body := httpGet(t, client, p.url(path)); code != http.StatusOK {
			t.Errorf("GET %s: status %d: %s", path, code, body)
		}
	}
	if code, _ := httpGet(t, client, p.url("/no-such-page")); code != http.StatusNotFound {
		t.Errorf("GET /no-such-page: status %d, want 404", code)
	}
}

func TestServe_JSONLogs(t *testing.T) {
	bin := exporterBinary(t)
	t.Parallel()
	config := writeTestFile(t, t.TempDir(), "smtp_exporter.yml", minimalConfig(t))
	p := startExporter(t, bin, "--config.file="+config, "--log.format=json")
	// "Listening on" comes a moment after the port opens.
	eventually(t, 5*time.Second, func() (bool, string) {
		return strings.Contains(p.logs.String(), "Listening on"), `the "Listening on" line`
	})
	p.signal(syscall.SIGTERM)
	if code := p.wait(5 * time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}

	seen := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(p.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if rec["level"] == nil {
			t.Errorf("log line has no level: %q", line)
		}
		if rec["ts"] == nil && rec["time"] == nil {
			t.Errorf("log line has no timestamp: %q", line)
		}
		if msg, ok := rec["msg"].(string); ok {
			seen[msg] = rec
		}
	}
	// The exporter's own lines and exporter-toolkit's (through slog).
	for _, msg := range []string{"Starting smtp_exporter", "Loaded config file", "Listening on", "Shutting down", "Stopped"} {
		if seen[msg] == nil {
			t.Errorf("no JSON log line with msg %q", msg)
		}
	}
	if rec := seen["Listening on"]; rec != nil && rec["address"] != p.addr {
		t.Errorf(`"Listening on" address = %v, want %s`, rec["address"], p.addr)
	}
}

// sessionServer answers SMTP briefly (a greeting, 250 to every command,
// 221 to QUIT) and records the clients' addresses in the order it accepted
// them, so that a test can tell which sessions began after a marker
// connection of its own.
type sessionServer struct {
	addr string
	mu   sync.Mutex
	seen []string
}

func newSessionServer(t *testing.T) *sessionServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sessionServer{addr: l.Addr().String()}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.seen = append(s.seen, c.RemoteAddr().String())
			s.mu.Unlock()
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fmt.Fprint(c, "220 sessions.test ESMTP\r\n")
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if strings.HasPrefix(strings.ToUpper(string(buf[:n])), "QUIT") {
						fmt.Fprint(c, "221 bye\r\n")
						return
					}
					fmt.Fprint(c, "250 ok\r\n")
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// sessions returns how many connections were accepted, and how many after
// the one from marker (-1 when marker's has not been accepted).
func (s *sessionServer) sessions(marker string) (total, after int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, a := range s.seen {
		if a == marker {
			return len(s.seen), len(s.seen) - i - 1
		}
	}
	return len(s.seen), -1
}

// On SIGTERM scheduling stops at once, a /probe in flight runs until the
// grace period and then gets an answer (a 503, not a dropped connection),
// and the exporter exits within the grace period, not after the HTTP
// server's own shutdown wait on top of it.
func TestServe_SIGTERM_ProbeInFlight(t *testing.T) {
	bin := exporterBinary(t)
	t.Parallel()
	const grace = 2 * time.Second
	muteAddr, accepted := muteServer(t)
	sessions := newSessionServer(t)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "modules:\n  mute:\n    timeout: 30s\n    smtp: {tls: none}\n  quick:\n    timeout: 1s\n    smtp: {tls: none}\ntargets:\n")
	// Scheduled once a day, first in hours: only /probe connects to it.
	fmt.Fprintf(&cfg, "  - {name: slow, address: %q, module: mute, interval: 24h}\n", muteAddr)
	for i := range 5 {
		fmt.Fprintf(&cfg, "  - {name: quick%d, address: %q, module: quick, interval: 1s}\n", i, sessions.addr)
	}
	config := writeTestFile(t, t.TempDir(), "smtp_exporter.yml", cfg.String())
	p := startExporter(t, bin, "--config.file="+config, "--shutdown.grace-period="+grace.String())
	eventually(t, 10*time.Second, func() (bool, string) {
		total, _ := sessions.sessions("")
		return total >= 5, "scheduled sessions"
	})

	// No client timeout: the request must end because the exporter answers.
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	type answer struct {
		code int
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Get(p.url("/probe?target=slow"))
		if err != nil {
			answered <- answer{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- answer{code: resp.StatusCode, body: string(b), err: err}
	}()
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the /probe did not connect")
	}

	start := time.Now()
	p.signal(syscall.SIGTERM)
	eventually(t, 5*time.Second, func() (bool, string) {
		return strings.Contains(p.logs.String(), `msg="Shutting down"`), "the shutdown's log line"
	})
	// Scheduling has stopped by the time the line is written; connections
	// the server accepts after this one began later.
	marker, err := net.Dial("tcp", sessions.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	eventually(t, 5*time.Second, func() (bool, string) {
		_, after := sessions.sessions(marker.LocalAddr().String())
		return after >= 0, "the marker connection"
	})
	// During the grace period new /probe requests are refused, and the
	// exporter says it is not ready.
	client := newTestClient(t, nil)
	if code, body := httpGet(t, client, p.url("/probe?target=quick0")); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Errorf("a new /probe during shutdown: %d %q, want 503 saying the exporter is shutting down", code, body)
	}
	if code, _ := httpGet(t, client, p.url("/-/ready")); code != http.StatusServiceUnavailable {
		t.Errorf("/-/ready during shutdown: %d, want 503", code)
	}
	client.Transport.(*http.Transport).CloseIdleConnections()

	if code := p.wait(grace + 10*time.Second); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	d := time.Since(start)
	t.Logf("exited %s after SIGTERM", d.Round(10*time.Millisecond))
	if d > grace+time.Second {
		t.Errorf("took %s to exit after SIGTERM with a %s grace period", d.Round(10*time.Millisecond), grace)
	}
	select {
	case a := <-answered:
		t.Logf("the /probe in flight: %d %q, err %v", a.code, a.body, a.err)
		switch {
		case a.err != nil:
			t.Errorf("the /probe in flight got no answer: %v", a.err)
		case a.code != http.StatusServiceUnavailable && a.code != http.StatusOK:
			t.Errorf("the /probe in flight: status %d (%s), want 503 or 200", a.code, a.body)
		case a.code == http.StatusServiceUnavailable && !strings.Contains(a.body, "shutting down"):
			t.Errorf("the /probe in flight: 503 %q does not say the exporter is shutting down", a.body)
		}
	case <-time.After(5 * time.Second):
		t.Error("the /probe in flight was not answered after the exporter exited")
	}
	if _, after := sessions.sessions(marker.LocalAddr().String()); after > 0 {
		t.Errorf("%d scheduled sessions began after SIGTERM", after)
	}
}

// limitedExporter writes a script that runs bin with at most maxFiles open
// descriptors (soft and hard, so that Go cannot raise it), as a small
// container or a service with LimitNOFILE would.
func limitedExporter(t *testing.T, bin string, maxFiles int) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "limited.sh")
	content := fmt.Sprintf("#!/bin/sh\nulimit -n %d || exit 1\nexec '%s' \"$@\"\n", maxFiles, strings.ReplaceAll(bin, "'", `'\''`))
	if err := os.WriteFile(script, []byte(content), 0o700); err != nil {
		t.Fatal(err)
	}
	return script
}

// Idle keep-alive and slow-body clients beyond the connection cap must not
// take the descriptors that scrapes and probes need: /metrics answers, the
// scheduled probe still connects, and the exporter closes every flood
// connection in time.
func TestServe_ConnectionFlood(t *testing.T) {
	bin := exporterBinary(t)
	t.Parallel()
	sessions := newSessionServer(t)
	config := writeTestFile(t, t.TempDir(), "smtp_exporter.yml", fmt.Sprintf(
		"modules:\n  quick:\n    timeout: 1s\n    smtp: {tls: none}\ntargets:\n  - {name: quick, address: %q, module: quick, interval: 1s}\n", sessions.addr))
	p := startExporter(t, limitedExporter(t, bin, 128), "--config.file="+config,
		"--web.max-connections=32", "--web.read-timeout=1s", "--web.idle-timeout=1s")
	client := newTestClient(t, nil)
	quick := map[string]string{"target": "quick"}
	eventually(t, 10*time.Second, func() (bool, string) {
		v, _ := scrapeMetrics(t, client, p.url("/metrics")).value("probe_success", quick)
		return v == 1, "a first successful run"
	})

	const floodSize = 200
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for i := range floodSize {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		flood = append(flood, c)
		req := "GET /-/healthy HTTP/1.1\r\nHost: flood\r\n\r\n" // answered, then idle
		if i%4 == 0 {
			req = "POST /metrics HTTP/1.1\r\nHost: flood\r\nContent-Length: 100000\r\n\r\nslow"
		}
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
	}
	floodStart := float64(time.Now().UnixNano()) / 1e9

	eventually(t, 20*time.Second, func() (bool, string) {
		mfs := scrapeMetrics(t, client, p.url("/metrics"))
		last, _ := mfs.value("probe_smtp_last_run_timestamp_seconds", quick)
		ok, _ := mfs.value("probe_success", quick)
		return last > floodStart && ok == 1, "a successful scheduled run that began after the flood"
	})
	for i, c := range flood {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("flood connection %d is still open", i)
				break
			}
		}
	}
	if logs := p.logs.String(); strings.Contains(logs, "too many open files") {
		t.Error("the exporter ran out of descriptors")
	}

	// Without a flood, an idle keep-alive connection is closed after the
	// idle timeout.
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /-/healthy HTTP/1.1\r\nHost: idle\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Error("an idle connection stayed open past the idle timeout")
	} else if !strings.HasPrefix(string(got), "HTTP/1.1 200") {
		t.Errorf("GET /-/healthy: %q", got)
	}
}

// A /probe may take longer than the web server's read and write timeouts:
// it gets its probe's timeout on top, and its answer is not cut off.
func TestServe_ProbeOutlastsWebTimeouts(t *testing.T) {
	bin := exporterBinary(t)
	t.Parallel()
	muteAddr, _ := muteServer(t)
	config := writeTestFile(t, t.TempDir(), "smtp_exporter.yml", fmt.Sprintf(
		"modules:\n  mute:\n    timeout: 2s\n    smtp: {tls: none}\ntargets:\n  - {name: slow, address: %q, module: mute, interval: 24h}\n", muteAddr))
	p := startExporter(t, bin, "--config.file="+config, "--web.read-timeout=500ms", "--web.write-timeout=500ms")
	client := newTestClient(t, nil)
	code, body := httpGet(t, client, p.url("/probe?target=slow"))
	if code != http.StatusOK || !strings.Contains(body, "probe_success 0") {
		t.Errorf("/probe of a server that never greets, 2s timeout: %d %q, want 200 with probe_success 0", code, body)
	}
}

// TestServe_LandingPageLinks follows every link of the landing page that
// points at the exporter itself: the exporter-toolkit page adds pprof links
// of its own, which must be served and not answer 404.
func TestServe_LandingPageLinks(t *testing.T) {
	bin := exporterBinary(t)
	t.Parallel()
	config := writeTestFile(t, t.TempDir(), "smtp_exporter.yml", minimalConfig(t, "alpha"))
	p := startExporter(t, bin, "--config.file="+config)
	client := newTestClient(t, nil)

	code, body := httpGet(t, client, p.url("/"))
	if code != http.StatusOK {
		t.Fatalf("GET /: status %d", code)
	}
	base, err := url.Parse(p.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	var followed []string
	for _, m := range regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		u, err := base.Parse(html.UnescapeString(m[1]))
		if err != nil {
			t.Errorf("link %q: %v", m[1], err)
			continue
		}
		if u.Host != base.Host {
			continue // pprof.me
		}
		if u.Path == "/debug/pprof/profile" {
			q := u.Query()
			q.Set("seconds", "1")
			u.RawQuery = q.Encode()
		}
		followed = append(followed, u.Path)
		if code, body := httpGet(t, client, u.String()); code != http.StatusOK {
			t.Errorf("GET %s: status %d: %.200s", u, code, body)
		}
	}
	for _, want := range []string{"/metrics", "/debug/pprof/heap", "/debug/pprof/profile"} {
		if !slices.Contains(followed, want) {
			t.Errorf("the landing page has no link to %s; links followed: %v", want, followed)
		}
	}
}
