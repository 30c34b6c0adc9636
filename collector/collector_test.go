package collector

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
	"google.golang.org/protobuf/proto"
)

// handlerFixture is a store of one target per module kind and the run
// metrics of one run each, served by MetricsHandler as serve.go does, and
// the same series registered together, as promhttp would serve them.
type handlerFixture struct {
	store   *Store
	rm      *runMetrics
	handler *metricsHandler
	plain   *prometheus.Registry // everything in one registry
}

func newHandlerFixture(t *testing.T) *handlerFixture {
	t.Helper()
	rm := newRunMetrics()
	f := &handlerFixture{store: NewStore(), rm: rm}
	for _, k := range seriesKinds() {
		tg := &config.Target{Name: k.target, Address: k.target + ":25", Module: k.module, Interval: time.Minute}
		res := k.result()
		res.Target, res.Module = tg.Name, tg.Module
		rm.observe(tg, res)
		rm.lag.WithLabelValues(tg.Name, tg.Module).Set(0.002) // as the scheduler's publish does
		rm.backoff.WithLabelValues(tg.Name, tg.Module).Set(1)
		f.store.Set(StoreEntry{Target: tg, Result: res})
	}
	// Label values that need escaping, and values of every kind of number.
	odd := &config.Target{Name: `odd "name" \ here`, Address: "odd.example.net:25", Module: "mx", Interval: time.Minute}
	res := startTLSResult()
	res.TLS.Version, res.Duration = "TLS\n1.3", 1234567890*time.Nanosecond
	rm.observe(odd, res)
	rm.lag.WithLabelValues(odd.Name, odd.Module).Set(-1)
	rm.backoff.WithLabelValues(odd.Name, odd.Module).Set(1e-9)
	f.store.Set(StoreEntry{Target: odd, Result: res})
	reg := prometheus.NewRegistry()
	reg.MustRegister(rm.shared()...)
	f.handler = MetricsHandler(reg, NewCollector(f.store), rm).(*metricsHandler)
	f.plain = prometheus.NewPedanticRegistry()
	f.plain.MustRegister(rm.collectors()...)
	f.plain.MustRegister(NewCollector(f.store))
	return f
}

type httpHandler interface {
	ServeHTTP(w http.ResponseWriter, r *http.Request)
}

// scrape gets /metrics from h with accept and encoding, ungzipping the
// body when it came gzipped.
func scrape(t *testing.T, h httpHandler, accept, encoding string) (contentType string, body []byte) {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body = rec.Body.Bytes()
	if rec.Header().Get("Content-Encoding") == "gzip" {
		// One member, its CRC and size checked, nothing after it.
		br := bytes.NewReader(body)
		zr, err := gzip.NewReader(br)
		if err != nil {
			t.Fatal(err)
		}
		zr.Multistream(false)
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("Accept %q: gzip: %v", accept, err)
		}
		if br.Len() != 0 {
			t.Errorf("Accept %q: %d bytes after the gzip member", accept, br.Len())
		}
	} else if strings.Contains(encoding, "gzip") && !strings.Contains(encoding, "q=0") {
		t.Errorf("Accept-Encoding %q: body not gzipped", encoding)
	}
	return rec.Header().Get("Content-Type"), body
}

// seriesKind is a realistic healthy result of one module kind and the
// series budget README.md's table and ARCHITECTURE.md §6 give it.
type seriesKind struct {
	kind, target, module string
	result               func() *probes.Result
	budget               int
}

func seriesKinds() []seriesKind {
	return []seriesKind{
		{"smtp STARTTLS", "starttls.example.net", "mx_starttls", startTLSResult, 27},
		{"smtp implicit TLS, AUTH and send", "smtps.example.net", "submissions", implicitTLSSendResult, 38},
		{"lmtp", "lmtp.example.net", "lmtp", lmtpResult, 28},
		{"delivery", "delivery.example.net", "delivery", healthyDeliveryResult, 74},
		{"domain", "example.com", "posture", domainResult, 31},
	}
}

// startTLSResult is a STARTTLS check: EHLO, STARTTLS, EHLO again, QUIT.
func startTLSResult() *probes.Result {
	r := successResult()
	r.Phases = slices.DeleteFunc(r.Phases, func(pr *probes.PhaseResult) bool {
		return slices.Contains([]probes.Phase{probes.PhaseAuth, probes.PhaseMail, probes.PhaseRcpt, probes.PhaseData}, pr.Phase)
	})
	r.SMTP.MessageID, r.SMTP.QueueID = "", ""
	return r
}

// implicitTLSSendResult is port 465: TLS first, AUTH LOGIN, a message sent.
func implicitTLSSendResult() *probes.Result {
	r := successResult()
	var phases []*probes.PhaseResult
	for _, pr := range r.Phases {
		switch pr.Phase {
		case probes.PhaseSTARTTLS:
			continue
		case probes.PhaseBanner:
			phases = append(phases, phaseResult(probes.PhaseTLS, 60))
		case probes.PhaseAuth:
			pr = phaseResult(probes.PhaseAuth, 40, okReply(334, "", "VXNlcm5hbWU6"), okReply(334, "", "UGFzc3dvcmQ6"),
				okReply(235, "2.7.0", "2.7.0 Authentication successful"))
		}
		phases = append(phases, pr)
	}
	r.Phases = phases
	r.SMTP.STARTTLSOffered = false
	return r
}

// lmtpResult is LMTP without TLS: LHLO, MAIL, RCPT, DATA, QUIT.
func lmtpResult() *probes.Result {
	r := successResult()
	var phases []*probes.PhaseResult
	for _, pr := range r.Phases {
		switch pr.Phase {
		case probes.PhaseSTARTTLS, probes.PhaseAuth:
			continue
		case probes.PhaseEHLO:
			pr = phaseResult(probes.PhaseLHLO, 4, okReply(250, "", "lmtp.example.net", "PIPELINING", "ENHANCEDSTATUSCODES"))
		}
		phases = append(phases, pr)
	}
	r.Phases, r.TLS = phases, nil
	r.SMTP.STARTTLSOffered = false
	return r
}

// healthyDeliveryResult is a delivery run whose message reached the inbox
// with SPF, DKIM and DMARC passing, read over IMAP with TLS.
func healthyDeliveryResult() *probes.Result {
	r := deliveryResult()
	r.Success, r.Reason, r.FailedPhase = true, probes.ReasonOK, ""
	r.Phases[len(r.Phases)-1].Reason = probes.ReasonOK
	d := r.Delivery
	d.Folder, d.DKIM, d.DMARC, d.SpamFlagged = "inbox", "pass", "pass", false
	d.IMAPTLS = r.TLS
	return r
}

// TestSeriesBudget counts the /metrics series of one healthy target of
// each module kind, per-run gauges and run metrics, with the default
// flags: the numbers README.md's budget table and ARCHITECTURE.md §6 give.
// The per-module phase histogram is bounded by modules, not targets, and
// not counted.
func TestSeriesBudget(t *testing.T) {
	f := newHandlerFixture(t)
	_, body := scrape(t, f.handler, "", "")
	for _, k := range seriesKinds() {
		n := 0
		var names []string
		for line := range strings.SplitSeq(string(body), "\n") {
			if !strings.HasPrefix(line, "#") && strings.Contains(line, `target="`+k.target+`"`) {
				n++
				names = append(names, line[:strings.IndexAny(line, "{ ")])
			}
		}
		if n != k.budget {
			t.Errorf("a healthy %s target has %d series, want %d (update README.md's table and ARCHITECTURE.md §6 with it): %v", k.kind, n, k.budget, names)
		}
		if k.kind == "smtp STARTTLS" && n > 30 {
			t.Errorf("a healthy STARTTLS target has %d series, more than the budget of 30", n)
		}
	}
}

// TestMetricsHandler_SameAsRegistry: in every format, with and without
// gzip, MetricsHandler serves the same families and samples as one
// registry of everything would through promhttp.
func TestMetricsHandler_SameAsRegistry(t *testing.T) {
	f := newHandlerFixture(t)
	want := promhttp.HandlerFor(f.plain, promhttp.HandlerOpts{EnableOpenMetrics: true})
	for _, tc := range []struct{ name, accept string }{
		{"text", ""},
		{"text 0.0.4", "text/plain;version=0.0.4"},
		{"openmetrics", openMetricsAccept},
		{"protobuf", protoAccept},
		{"protobuf text", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text"},
	} {
		for _, enc := range []string{"", "gzip", "gzip;q=0"} {
			ctGot, got := scrape(t, f.handler, tc.accept, enc)
			ctWant, wantBody := scrape(t, want, tc.accept, "")
			if ctGot != ctWant {
				t.Errorf("%s: Content-Type %q, want %q", tc.name, ctGot, ctWant)
			}
			format := expfmt.Format(ctGot)
			switch format.FormatType() {
			case expfmt.TypeProtoDelim:
				if g, w := decodeProto(t, got), decodeProto(t, wantBody); !slices.EqualFunc(g, w, func(a, b *dto.MetricFamily) bool { return proto.Equal(a, b) }) {
					t.Errorf("%s, %q: protobuf families differ:\n got %v\nwant %v", tc.name, enc, g, w)
				}
			default:
				if g, w := sortedLines(got), sortedLines(wantBody); !slices.Equal(g, w) {
					t.Errorf("%s, %q: lines differ:\n got %d lines\nwant %d lines\n%s", tc.name, enc, len(g), len(w), got)
				}
			}
			if format.FormatType() == expfmt.TypeOpenMetrics && !bytes.HasSuffix(got, []byte("\n# EOF\n")) {
				t.Errorf("%s: OpenMetrics does not end with # EOF", tc.name)
			}
		}
	}
}

func sortedLines(b []byte) []string {
	lines := strings.Split(string(b), "\n")
	slices.Sort(lines)
	return lines
}

// decodeProto decodes delimited families, each family's metrics in label
// order and the families in name order.
func decodeProto(t *testing.T, b []byte) []*dto.MetricFamily {
	t.Helper()
	dec := expfmt.NewDecoder(bytes.NewReader(b), expfmt.NewFormat(expfmt.TypeProtoDelim))
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		slices.SortStableFunc(mf.Metric, compareLabels)
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

// TestMetricsHandler_FollowsStore: what is kept follows the store: a new
// result of a target replaces its samples in every format kept, and a
// target deleted from the store is gone.
func TestMetricsHandler_FollowsStore(t *testing.T) {
	f := newHandlerFixture(t)
	accepts := []string{"", openMetricsAccept, protoAccept}
	for _, a := range accepts {
		scrape(t, f.handler, a, "") // keeps each format's encoding
		scrape(t, f.handler, a, "gzip")
	}
	tg := &config.Target{Name: "starttls.example.net", Address: "starttls.example.net:25", Module: "mx_starttls", Interval: time.Minute}
	failed := refusedResult()
	failed.Target, failed.Module = tg.Name, tg.Module
	f.store.Set(StoreEntry{Target: tg, Result: failed})
	f.rm.observe(tg, failed)
	f.store.Delete("example.com")
	f.rm.forget("example.com")
	for i := range 2 * len(accepts) {
		a, enc := accepts[i/2], []string{"", "gzip"}[i%2]
		_, body := scrape(t, f.handler, a, enc)
		var mfs []*dto.MetricFamily
		if a == protoAccept {
			mfs = decodeProto(t, body)
		} else {
			// The text parser reads OpenMetrics' gauges too, once # EOF is gone.
			parser := expfmt.NewTextParser(model.LegacyValidation)
			parsed, err := parser.TextToMetricFamilies(bytes.NewReader(bytes.TrimSuffix(body, []byte("# EOF\n"))))
			if err != nil {
				t.Fatalf("%q: %v", a, err)
			}
			for _, mf := range parsed {
				mfs = append(mfs, mf)
			}
		}
		if v, ok := find(mfs, "probe_success", map[string]string{"target": tg.Name}); !ok || v != 0 {
			t.Errorf("%q: probe_success of the new result = %v, %v; want 0", a, v, ok)
		}
		if _, ok := find(mfs, "probe_smtp_failure_info", map[string]string{"target": tg.Name, "reason": "connect"}); !ok {
			t.Errorf("%q: the new result's failure is missing", a)
		}
		if _, ok := find(mfs, "probe_tls_version_info", map[string]string{"target": tg.Name}); ok {
			t.Errorf("%q: the old result's TLS version is still served", a)
		}
		for _, name := range []string{"probe_success", "probe_smtp_runs_total"} {
			if _, ok := find(mfs, name, map[string]string{"target": "example.com"}); ok {
				t.Errorf("%q: %s of a deleted target is still served", a, name)
			}
		}
		if v, ok := find(mfs, "probe_smtp_runs_total", map[string]string{"target": tg.Name}); !ok || v != 2 {
			t.Errorf("%q: probe_smtp_runs_total after the second run = %v, %v; want 2", a, v, ok)
		}
		if v, ok := find(mfs, "probe_smtp_failures_total", map[string]string{"target": tg.Name, "reason": "connect"}); !ok || v != 1 {
			t.Errorf("%q: probe_smtp_failures_total of the second run = %v, %v; want 1", a, v, ok)
		}
	}
}

// TestMetricsHandler_ConcurrentScrapes: scrapes in every format at once,
// through the kept encodings and the registry path, while runs are
// recorded (run with -race).
func TestMetricsHandler_ConcurrentScrapes(t *testing.T) {
	f := newHandlerFixture(t)
	tg := &config.Target{Name: "starttls.example.net", Address: "starttls.example.net:25", Module: "mx_starttls", Interval: time.Minute}
	var wg sync.WaitGroup
	for _, a := range []string{"", openMetricsAccept, protoAccept, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text"} {
		wg.Go(func() {
			for range 20 {
				scrape(t, f.handler, a, "")
			}
		})
	}
	for range 20 {
		res := startTLSResult()
		res.Target, res.Module = tg.Name, tg.Module
		f.rm.observe(tg, res)
		f.rm.lag.WithLabelValues(tg.Name, tg.Module).Set(0.5)
		f.store.Set(StoreEntry{Target: tg, Result: res})
	}
	wg.Wait()
	_, body := scrape(t, f.handler, "", "")
	if !strings.Contains(string(body), `probe_smtp_runs_total{module="mx_starttls",target="starttls.example.net"} 21`) {
		t.Errorf("the runs recorded meanwhile are not all served:\n%s", body)
	}
}

// TestPhaseHistograms_PerTargetOptIn: by default the phase histogram is
// per module and phase; --metrics.phase-histograms=target labels it with
// the target too, and a removed target's histograms go.
func TestPhaseHistograms_PerTargetOptIn(t *testing.T) {
	for _, perTarget := range []bool{false, true} {
		s := NewScheduler(nil, 1, NewStore(), nil, nopLogger())
		s.SetPhaseHistograms(perTarget)
		shared, _ := s.MetricSources()
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(shared...)
		for _, name := range []string{"a", "b"} {
			s.metrics.observe(&config.Target{Name: name, Module: "mx_starttls"}, startTLSResult())
		}
		mfs := gatherAll(t, reg)
		byTarget := matching(mfs, "probe_smtp_phase_latency_seconds", map[string]string{"target": "a", "phase": "banner"})
		byModule := matching(mfs, "probe_smtp_phase_latency_seconds", map[string]string{"module": "mx_starttls", "phase": "banner"})
		switch {
		case !perTarget && (len(byTarget) != 0 || len(byModule) != 1 || byModule[0].GetHistogram().GetSampleCount() != 2):
			t.Errorf("per module: %d series of target a, %v of the module; want none and one of 2 runs", len(byTarget), byModule)
		case perTarget && (len(byTarget) != 1 || len(byModule) != 2):
			t.Errorf("per target: %d series of target a, %d of the module; want 1 and 2", len(byTarget), len(byModule))
		}
		s.metrics.forget("a")
		if perTarget && len(matching(gatherAll(t, reg), "probe_smtp_phase_latency_seconds", map[string]string{"target": "a"})) != 0 {
			t.Error("a removed target keeps its phase histograms")
		}
	}
}

// Accept headers as Prometheus sends them, preferring OpenMetrics or
// protobuf.
const (
	openMetricsAccept = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.1"
	protoAccept       = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,text/plain;q=0.1"
)
