package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/smtp-exporter/smtp_exporter/probes"
	"go.yaml.in/yaml/v3"
)

// ProbeHandler serves /probe: a configured target by name, or, only when
// allowed, an ad hoc host:port with a named module. Ad hoc probing is off
// by default: an exporter reachable by others would otherwise let them
// make it connect anywhere. When allowed, ad hoc probes reach only the
// addresses and ports of AdhocAllow (loopback when it is empty), never
// send mail, and send a module's AUTH credentials only to the server its
// tls_config.server_name pins (403 otherwise). Both kinds run through the
// Scheduler, under --probe.concurrency and shutdown; one that cannot start
// before the scrape's timeout, or during shutdown, is answered with 503.
type ProbeHandler struct {
	Config     *SafeConfig
	Scheduler  *Scheduler
	AllowAdhoc bool
	// AdhocAllow limits where ad hoc probes may go; empty, to loopback.
	AdhocAllow AdhocAllowList
	// Resolver resolves ad hoc host names before the allow-list check;
	// nil means net.DefaultResolver.
	Resolver      Resolver
	TimeoutOffset time.Duration
	Logger        log.Logger
}

var probeDescs = newResultDescs()

func (h *ProbeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	target, moduleName := q.Get("target"), q.Get("module")
	if target == "" {
		http.Error(w, "target parameter is missing", http.StatusBadRequest)
		return
	}
	timeout, err := scrapeTimeout(r, h.TimeoutOffset)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var (
		res    *probes.Result
		module *probes.Module
		logBuf *bytes.Buffer
	)
	debug := q.Get("debug") == "true"
	logger := h.Logger
	if debug {
		// The debug page shows this probe's own log lines, at every level.
		logBuf = new(bytes.Buffer)
		logger = log.NewLogfmtLogger(logBuf)
	}
	if moduleName == "" {
		res, module, err = h.Scheduler.RunNow(r.Context(), target, timeout, logger)
	} else {
		if !h.AllowAdhoc {
			http.Error(w, "ad hoc targets are disabled: probe configured targets by name, or start the exporter with --probe.allow-adhoc", http.StatusForbidden)
			return
		}
		m, ok := h.Config.Get().Modules[moduleName]
		if !ok {
			http.Error(w, fmt.Sprintf("unknown module %q", moduleName), http.StatusBadRequest)
			return
		}
		ctx, left, status, refused := h.resolveAdhoc(r.Context(), target, m, timeout)
		if refused != nil {
			http.Error(w, refused.Error(), status)
			return
		}
		res, module, err = h.Scheduler.RunAdhoc(ctx, target, moduleName, m, left, logger)
	}
	switch {
	case errors.Is(err, ErrUnknownTarget):
		http.Error(w, fmt.Sprintf("unknown target %q: name a configured target, or give module= for an ad hoc host:port (needs --probe.allow-adhoc)", target), http.StatusBadRequest)
		return
	case errors.Is(err, ErrUnpinnedCredentials):
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	case errors.Is(err, ErrAbandoned):
		// Nobody is listening: nothing to write, nothing to log.
		return
	case errors.Is(err, ErrBusy), errors.Is(err, ErrShuttingDown):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	logResult(h.Logger, res.Target, res.Module, res)

	if !debug {
		writeProbeMetrics(w, r, q, res)
		return
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(resultCollector{res: res})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	writeDebug(w, res, module, reg, logBuf.String())
}

// resolveAdhoc resolves an ad hoc target's host once and checks every
// address it has against the allow-list (for a domain target, which has
// no port, it leaves the check of each address to the prober's dials): a name with one address outside
// it is refused, whichever the probe would pick. The context returned pins
// the addresses checked, so that the probe does not resolve the name again
// (a second answer could point elsewhere); a failed lookup is pinned too,
// for the probe to report as its own. The timeout returned is what is left
// of timeout after the lookup. A malformed target is a 400, a refused one
// a 403.
func (h *ProbeHandler) resolveAdhoc(ctx context.Context, target string, m *probes.Module, timeout time.Duration) (context.Context, time.Duration, int, error) {
	host, portStr, err := probes.SplitTarget(target, m)
	if err != nil {
		return nil, 0, http.StatusBadRequest, err
	}
	if portStr == "" {
		// A mail domain, not a host: the prober finds the hosts (MX,
		// MTA-STS) in DNS, which whoever names the domain may control, so
		// the allow-list applies to each address it dials instead.
		return probes.WithDialCheck(ctx, h.AdhocAllow.dialCheck), timeout, 0, nil
	}
	port, _ := strconv.ParseUint(portStr, 10, 16) // SplitTarget checked it
	var addrs []netip.Addr
	// A refusal does not say where a name points: /probe must not tell
	// whoever reaches it how internal names resolve.
	shown := "an address of " + host
	if a, err := netip.ParseAddr(host); err == nil {
		addrs, shown = []netip.Addr{a}, a.Unmap().String()
	} else {
		var resolver Resolver = net.DefaultResolver
		if h.Resolver != nil {
			resolver = h.Resolver
		}
		limit := m.Timeout
		if timeout > 0 {
			limit = min(limit, timeout)
		}
		start := time.Now()
		lookupCtx, cancel := context.WithTimeout(ctx, limit)
		ipAddrs, err := resolver.LookupIPAddr(lookupCtx, host)
		cancel()
		ctx = probes.WithResolved(ctx, host, ipAddrs, err)
		if timeout > 0 {
			timeout = max(timeout-time.Since(start), time.Millisecond)
		}
		for _, ip := range ipAddrs {
			a, _ := netip.AddrFromSlice(ip.IP)
			addrs = append(addrs, a.WithZone(ip.Zone))
		}
	}
	for _, a := range addrs {
		if err := h.AdhocAllow.check(a, uint16(port), shown); err != nil {
			return nil, 0, http.StatusForbidden, fmt.Errorf("ad hoc target %q: %w", target, err)
		}
	}
	return ctx, timeout, 0, nil
}

// maxScrapeTimeoutSeconds is the longest header value that fits a
// time.Duration; a longer one means "as long as the module allows", as no
// header does.
const maxScrapeTimeoutSeconds = float64(math.MaxInt64 / int64(time.Second))

// scrapeTimeout takes Prometheus's scrape timeout header, less the offset
// that leaves time to answer (half the header when the offset would leave
// nothing); zero means "the module's own timeout". NaN, infinities, and
// values under a millisecond are refused: converted to a Duration they
// overflow or round to nothing, and would silently lift the limit.
func scrapeTimeout(r *http.Request, offset time.Duration) (time.Duration, error) {
	v := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds")
	if v == "" {
		return 0, nil
	}
	secs, err := strconv.ParseFloat(v, 64)
	// Written so that NaN fails it too.
	if err != nil || !(secs >= 0.001) || math.IsInf(secs, 1) {
		return 0, fmt.Errorf("invalid X-Prometheus-Scrape-Timeout-Seconds %q: want a number of seconds, at least 0.001", v)
	}
	if secs > maxScrapeTimeoutSeconds {
		return 0, nil
	}
	d := time.Duration(secs * float64(time.Second))
	if d-offset > 0 {
		return d - offset, nil
	}
	return d / 2, nil
}

// resultCollector serves one result as the unlabelled per-run gauges.
type resultCollector struct {
	res *probes.Result
}

func (c resultCollector) Describe(ch chan<- *prometheus.Desc) { probeDescs.describe(ch) }
func (c resultCollector) Collect(ch chan<- prometheus.Metric) {
	probeDescs.collect(ch, c.res)
}

// writeDebug renders what an operator needs to debug one probe: its log,
// the transcript, the verdict, the metrics and the module (secrets masked).
func writeDebug(w http.ResponseWriter, res *probes.Result, m *probes.Module, reg *prometheus.Registry, logs string) {
	fmt.Fprintf(w, "Logs for the probe:\n%s\n", logs)
	fmt.Fprintf(w, "Transcript:\n")
	probes.WriteTranscript(w, "", res.Transcript)
	fmt.Fprintf(w, "\nResult:\n")
	b, _ := json.MarshalIndent(res, "", "  ")
	w.Write(b)
	fmt.Fprintf(w, "\n\nMetrics that would have been returned:\n")
	mfs, err := reg.Gather()
	if err == nil {
		enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			enc.Encode(mf)
		}
	}
	fmt.Fprintf(w, "\nModule configuration:\n")
	out, err := yaml.Marshal(m)
	if err != nil {
		fmt.Fprintf(w, "error marshalling module: %v\n", err)
		return
	}
	w.Write(out)
}

// ConfigHandler serves the running configuration as YAML; config.Secret
// fields marshal as "<secret>".
func ConfigHandler(sc *SafeConfig) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		out, err := yaml.Marshal(sc.Get())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(out)
	})
}

// ReloadHandler reloads the configuration on POST; reload does the work
// and returns its error, which is then reported with status 500.
func ReloadHandler(reload func() error, logger log.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "This endpoint requires a POST request.", http.StatusMethodNotAllowed)
			return
		}
		if err := reload(); err != nil {
			level.Error(logger).Log("msg", "Error reloading config", "err", err)
			http.Error(w, fmt.Sprintf("failed to reload config: %s", err), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "Config reloaded.")
	})
}

var historyTmpl = template.Must(template.New("history").Funcs(template.FuncMap{
	"ms":            func(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1000, 'f', 1, 64) },
	"restatesReply": probes.ErrorRestatesReply,
}).Parse(`<!DOCTYPE html>
<html><head><title>SMTP Exporter: recent probes</title>
<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}.fail{background:#fdd}</style>
</head><body>
<h1>Recent probes</h1>
<p><a href="/">Home</a> — newest first; the exporter keeps the last {{.Limit}}.{{if or .Target .Module}} Only{{with .Target}} target {{.}}{{end}}{{with .Module}} module {{.}}{{end}}: <a href="/history">all</a>.{{end}}</p>
<table>
<tr><th>Time</th><th>Source</th><th>Target</th><th>Module</th><th>Result</th><th>Phase</th><th>Reason</th><th>Code</th><th>Reply or error</th><th>What to do first</th><th>Duration (ms)</th><th></th></tr>
{{range .Entries}}<tr{{if not .Result.Success}} class="fail"{{end}}>
<td>{{.Time.UTC.Format "2006-01-02 15:04:05Z"}}</td><td>{{.Source}}</td><td>{{.Result.Target}}</td><td>{{.Result.Module}}</td>
<td>{{if .Result.Success}}success{{else}}failure{{end}}</td><td>{{.Result.FailedPhase}}</td><td>{{.Result.Reason}}</td>
<td>{{if .Result.Code}}{{.Result.Code}} {{.Result.EnhancedCode}}{{end}}</td><td>{{.Result.ReplyText}}{{if and .Result.Err (not (restatesReply .Result))}}{{if .Result.ReplyText}}<br>{{end}}{{.Result.Err}}{{end}}</td>
<td>{{if not .Result.Success}}{{.Result.Reason.Advice}}{{end}}</td><td>{{ms .Result.Duration}}</td>
<td><a href="?id={{.ID}}">transcript</a></td></tr>
{{end}}</table></body></html>
`))

// HistoryHandler lists recent results, newest first, those of one target
// or module with ?target= and ?module=; ?id=N shows one result's verdict,
// advice, transcript and JSON; ?target=T&module=M&last=failure redirects
// to the newest failed run of T (of module M) kept, the page alerts and
// the dashboard link to.
func HistoryHandler(h *History) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		target, module := q.Get("target"), q.Get("module")
		if idStr := q.Get("id"); idStr != "" {
			id, err := strconv.ParseUint(idStr, 10, 64)
			e, ok := h.Get(id)
			if err != nil || !ok {
				http.Error(w, "no such result (it may have been dropped from the history)", http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			probes.WriteVerdict(w, e.Result)
			fmt.Fprintf(w, "\nTranscript:\n")
			probes.WriteTranscript(w, "", e.Result.Transcript)
			b, _ := json.MarshalIndent(e.Result, "", "  ")
			fmt.Fprintf(w, "\n%s\n", b)
			return
		}
		if last := q.Get("last"); last != "" {
			if last != "failure" || target == "" {
				http.Error(w, "last=failure needs target= (and module=)", http.StatusBadRequest)
				return
			}
			e, ok := h.LastFailure(target, module)
			if !ok {
				http.Error(w, fmt.Sprintf("no failed run of %s/%s is kept", target, module), http.StatusNotFound)
				return
			}
			http.Redirect(w, r, fmt.Sprintf("/history?id=%d", e.ID), http.StatusFound)
			return
		}
		entries := h.List()
		if target != "" || module != "" {
			entries = slices.DeleteFunc(entries, func(e HistoryEntry) bool { return !e.matches(target, module) })
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := historyTmpl.Execute(w, struct {
			Limit          int
			Target, Module string
			Entries        []HistoryEntry
		}{h.limit, target, module, entries}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
}
