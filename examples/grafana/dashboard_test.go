// Package grafana_test checks the example dashboard smtp_exporter.json:
// that it is a valid Grafana dashboard (strictly decoded and validated
// with Grafana's own schema types), importable the way community
// dashboards are (a DS_PROMETHEUS input, __requires, no hard-coded
// datasource), laid out sanely, and that every query asks only for
// metrics and labels the exporter really serves, taken from its
// collectors' descriptors.
package grafana_test

// The dashboard is in Grafana's classic JSON model (schemaVersion 39),
// what "Import dashboard" and file provisioning take; the SDK marks those
// types deprecated in favour of Grafana 12's v2 schema.
//
//lint:file-ignore SA1019 the classic dashboard model is the one the file is in.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	grafprom "github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"

	"github.com/smtp-exporter/smtp_exporter/collector"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

const (
	dashboardFile = "smtp_exporter.json"
	// The one datasource reference panels, queries and variables use: the
	// datasource template variable.
	datasourceUID = "${datasource}"
	// The import input; it only seeds the datasource variable.
	inputName = "DS_PROMETHEUS"
)

// Labels Prometheus adds to every scraped series.
var scrapeLabels = []string{"job", "instance"}

func readDashboard(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

var registerPlugins sync.Once

// envelope strips Grafana's export envelope: __inputs and __requires are
// not part of the dashboard schema (they are checked separately).
func envelope(t *testing.T, raw []byte) []byte {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	delete(top, "__inputs")
	delete(top, "__requires")
	body, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// strictErrors decodes a dashboard with the foundation SDK's strict
// decoder: unknown fields, wrong types and missing required fields fail,
// down to each panel type's options and custom field config and each
// Prometheus query.
func strictErrors(t *testing.T, body []byte) error {
	t.Helper()
	registerPlugins.Do(plugins.RegisterDefaultPlugins)
	var d dashboard.Dashboard
	return sdkError(d.UnmarshalJSONStrict(body))
}

// loadDashboard checks the dashboard strictly, then returns it decoded
// and validated for inspection.
//
// The two decodings are on purpose: in SDK v0.0.22 a successful nested
// strict decode returns a typed-nil cog.BuildErrors that the caller takes
// for an error, so UnmarshalJSONStrict reports every real error but leaves
// panels, queries and panel options out of the value it fills. The plain
// decoder keeps them.
func loadDashboard(t *testing.T, raw []byte) *dashboard.Dashboard {
	t.Helper()
	body := envelope(t, raw)
	if err := strictErrors(t, body); err != nil {
		t.Fatalf("strict decoding:\n%v", err)
	}
	var d dashboard.Dashboard
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if err := sdkError(d.Validate()); err != nil {
		t.Fatalf("validation:\n%v", err)
	}

	// The typed model holds everything the JSON has.
	var shape struct {
		Panels []struct {
			Targets []json.RawMessage `json:"targets"`
			Panels  []struct {
				Targets []json.RawMessage `json:"targets"`
			} `json:"panels"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(body, &shape); err != nil {
		t.Fatal(err)
	}
	wantPanels, wantTargets := 0, 0
	for _, p := range shape.Panels {
		wantPanels += 1 + len(p.Panels)
		wantTargets += len(p.Targets)
		for _, c := range p.Panels {
			wantTargets += len(c.Targets)
		}
	}
	rows, panels := allPanels(&d)
	gotTargets := 0
	for _, p := range panels {
		gotTargets += len(p.Targets)
	}
	if len(rows)+len(panels) != wantPanels || gotTargets != wantTargets {
		t.Fatalf("decoded %d panels and %d queries; the JSON has %d and %d",
			len(rows)+len(panels), gotTargets, wantPanels, wantTargets)
	}
	return &d
}

// sdkError turns the SDK's success value, a typed-nil (empty)
// cog.BuildErrors in a non-nil error interface, into nil.
func sdkError(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}

// allPanels flattens the dashboard: rows, the panels between them and the
// panels inside collapsed rows.
func allPanels(d *dashboard.Dashboard) (rows []*dashboard.RowPanel, panels []*dashboard.Panel) {
	for _, p := range d.Panels {
		switch {
		case p.Panel != nil:
			panels = append(panels, p.Panel)
		case p.RowPanel != nil:
			rows = append(rows, p.RowPanel)
			for i := range p.RowPanel.Panels {
				panels = append(panels, &p.RowPanel.Panels[i])
			}
		}
	}
	return rows, panels
}

func title(p *dashboard.Panel) string {
	if p.Title == nil {
		return fmt.Sprintf("panel %d", deref(p.Id))
	}
	return *p.Title
}

// query is one PromQL expression of the dashboard and where it is.
type query struct {
	where, expr, legend string
	variable            bool // a template variable's query, not a panel's
}

func promQueries(t *testing.T, d *dashboard.Dashboard) []query {
	t.Helper()
	var qs []query
	_, panels := allPanels(d)
	for _, p := range panels {
		for i, tg := range p.Targets {
			dq, ok := tg.(*grafprom.Dataquery)
			if !ok {
				t.Errorf("%s: target %d decoded as %T, not a Prometheus query", title(p), i, tg)
				continue
			}
			legend := ""
			if dq.LegendFormat != nil {
				legend = *dq.LegendFormat
			}
			qs = append(qs, query{where: fmt.Sprintf("%s / target %d", title(p), i), expr: dq.Expr, legend: legend})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := ""
		if v.Query != nil {
			switch {
			case v.Query.String != nil:
				q = *v.Query.String
			case v.Query.Map != nil:
				q, _ = v.Query.Map["query"].(string)
			}
		}
		qs = append(qs, query{where: "variable " + v.Name, expr: q, variable: true})
	}
	return qs
}

// servedMetric is a series name the exporter exposes and its label names.
type servedMetric struct {
	labels    []string
	histogram bool // a _bucket series, which also has "le"
}

var (
	fqNameRE   = regexp.MustCompile(`fqName: "([^"]+)"`)
	varLabelRE = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	constLabRE = regexp.MustCompile(`constLabels: \{([^}]*)\}`)
	labelKeyRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
)

// servedMetrics lists what the exporter registers in cmd/smtp_exporter
// (apart from the Go and process collectors), from the collectors' own
// descriptors: Describe needs no probe result. Histograms add their
// _bucket, _sum and _count series.
func servedMetrics(t *testing.T) map[string]servedMetric {
	t.Helper()
	store := collector.NewStore()
	sched := collector.NewScheduler(nil, 1, store, collector.NewHistory(0), log.NewNopLogger())
	t.Cleanup(func() { sched.Shutdown(time.Second) })

	cs := []prometheus.Collector{
		versioncollector.NewCollector("smtp_exporter"),
		collector.NewCollector(store),
	}
	cs = append(cs, collector.NewSafeConfig("").Collectors()...)
	cs = append(cs, sched.Collectors()...)

	served := map[string]servedMetric{}
	for _, c := range cs {
		// The exporter has no summaries (prometheus.Summary and
		// prometheus.Histogram have the same methods, so a type switch
		// could not tell them apart).
		var histogram bool
		switch c.(type) {
		case *prometheus.HistogramVec, prometheus.Histogram:
			histogram = true
		}
		ch := make(chan *prometheus.Desc)
		go func() { c.Describe(ch); close(ch) }()
		for desc := range ch {
			s := desc.String()
			m := fqNameRE.FindStringSubmatch(s)
			if m == nil {
				t.Fatalf("no fqName in %s", s)
			}
			var labels []string
			if vl := varLabelRE.FindStringSubmatch(s); vl != nil && vl[1] != "" {
				for _, l := range strings.Split(vl[1], ",") {
					labels = append(labels, strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"))
				}
			}
			if cl := constLabRE.FindStringSubmatch(s); cl != nil {
				for _, l := range labelKeyRE.FindAllStringSubmatch(cl[1], -1) {
					labels = append(labels, l[1])
				}
			}
			name := m[1]
			switch {
			case histogram:
				served[name+"_bucket"] = servedMetric{labels: labels, histogram: true}
				served[name+"_sum"] = servedMetric{labels: labels}
				served[name+"_count"] = servedMetric{labels: labels}
			default:
				served[name] = servedMetric{labels: labels}
			}
		}
	}
	// Sanity: the descriptors were read.
	for _, n := range []string{"probe_success", "smtp_exporter_build_info", "smtp_exporter_targets", "probe_smtp_phase_latency_seconds_bucket"} {
		if _, ok := served[n]; !ok {
			t.Fatalf("%s missing from the exporter's descriptors; parsed %d names", n, len(served))
		}
	}
	return served
}

func TestDashboardValidates(t *testing.T) {
	d := loadDashboard(t, readDashboard(t))
	if d.Title == nil || *d.Title == "" {
		t.Error("dashboard has no title")
	}
	if d.Uid == nil || *d.Uid == "" {
		t.Error("dashboard has no uid (links and provisioning need a stable one)")
	}
	if d.Id != nil {
		t.Errorf("dashboard id is %d; an importable dashboard has id null", *d.Id)
	}
	if d.SchemaVersion < 36 || d.SchemaVersion > 41 {
		t.Errorf("schemaVersion %d; want about 39", d.SchemaVersion)
	}
}

func TestDashboardPrettyPrinted(t *testing.T) {
	raw := readDashboard(t)
	var compact, want bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&want, compact.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	want.WriteByte('\n')
	if !bytes.Equal(raw, want.Bytes()) {
		t.Errorf("%s is not indented with two spaces and a final newline (e.g. `jq . %[1]s`); keep it so for stable diffs", dashboardFile)
	}
}

func TestDashboardImportable(t *testing.T) {
	raw := readDashboard(t)
	var env struct {
		Inputs []struct {
			Name     string `json:"name"`
			Type     string `json:"type"`
			PluginID string `json:"pluginId"`
		} `json:"__inputs"`
		Requires []struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		} `json:"__requires"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	var inputs []string
	for _, in := range env.Inputs {
		if in.Type != "datasource" || in.PluginID != "prometheus" {
			t.Errorf("__inputs %s: type %q plugin %q; want a prometheus datasource", in.Name, in.Type, in.PluginID)
		}
		inputs = append(inputs, in.Name)
	}
	if !slices.Equal(inputs, []string{inputName}) {
		t.Errorf("__inputs %v; want exactly [%s]", inputs, inputName)
	}

	required := map[string]bool{}
	for _, r := range env.Requires {
		required[r.Type+"/"+r.ID] = true
	}
	d := loadDashboard(t, raw)
	_, panels := allPanels(d)
	want := []string{"grafana/grafana", "datasource/prometheus"}
	for _, p := range panels {
		want = append(want, "panel/"+p.Type)
	}
	for _, w := range want {
		if !required[w] {
			t.Errorf("__requires lacks %s", w)
		}
	}

	// Every ${DS_...} placeholder refers to a declared input, and the
	// input is used: it seeds the datasource variable.
	for _, m := range regexp.MustCompile(`\$\{(DS_[A-Z0-9_]+)\}`).FindAllStringSubmatch(string(raw), -1) {
		if m[1] != inputName {
			t.Errorf("${%s} is not declared in __inputs", m[1])
		}
	}
	var dsVar *dashboard.VariableModel
	for i, v := range d.Templating.List {
		if v.Name == "datasource" {
			dsVar = &d.Templating.List[i]
		}
	}
	switch {
	case dsVar == nil:
		t.Error("no datasource variable named datasource")
	case dsVar.Type != "datasource" || dsVar.Query == nil || dsVar.Query.String == nil || *dsVar.Query.String != "prometheus":
		t.Errorf("variable datasource: type %q query %v; want a datasource variable over prometheus", dsVar.Type, dsVar.Query)
	case dsVar.Current == nil || dsVar.Current.Value.String == nil || *dsVar.Current.Value.String != "${"+inputName+"}":
		t.Errorf("variable datasource: current value should be ${%s}, so the datasource chosen on import becomes its default", inputName)
	}
}

// TestDatasourceReferences: no datasource is hard-coded. Every
// datasource reference anywhere in the JSON (panels, queries, variables,
// annotations) is the datasource variable; the raw walk also catches
// places the typed model does not decode into DataSourceRef.
func TestDatasourceReferences(t *testing.T) {
	raw := readDashboard(t)
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				p := path + "." + k
				if k == "datasource" {
					switch ds := c.(type) {
					case map[string]any:
						if uid, ok := ds["uid"]; !ok || uid != datasourceUID {
							t.Errorf("%s: uid %v; want %q", p, uid, datasourceUID)
						}
						if typ := ds["type"]; typ != "prometheus" {
							t.Errorf("%s: type %v; want prometheus", p, typ)
						}
					default:
						// A bare string is a legacy datasource name.
						t.Errorf("%s: %v; want {\"type\":\"prometheus\",\"uid\":%q}", p, c, datasourceUID)
					}
				}
				walk(p, c)
			}
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
	}
	walk("", doc)

	d := loadDashboard(t, raw)
	_, panels := allPanels(d)
	for _, p := range panels {
		if p.Datasource == nil || deref(p.Datasource.Uid) != datasourceUID {
			t.Errorf("%s: panel datasource uid %q; want %q", title(p), dsUID(p.Datasource), datasourceUID)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && (v.Datasource == nil || deref(v.Datasource.Uid) != datasourceUID) {
			t.Errorf("variable %s: datasource uid %q; want %q", v.Name, dsUID(v.Datasource), datasourceUID)
		}
	}
}

func dsUID(ref *common.DataSourceRef) string {
	if ref == nil {
		return "(none)"
	}
	return deref(ref.Uid)
}

func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t, readDashboard(t))
	rows, panels := allPanels(d)
	if len(rows) == 0 {
		t.Error("no rows; group the panels")
	}

	ids := map[uint32]string{}
	seen := func(id uint32, what string) {
		if id == 0 {
			t.Errorf("%s has no id", what)
		}
		if prev, ok := ids[id]; ok {
			t.Errorf("id %d used by %s and %s", id, prev, what)
		}
		ids[id] = what
	}
	for _, r := range rows {
		seen(r.Id, "row "+deref(r.Title))
	}
	types := map[string]bool{}
	for _, p := range panels {
		if p.Id == nil {
			t.Errorf("%s has no id", title(p))
		} else {
			seen(*p.Id, title(p))
		}
		types[p.Type] = true
		if !slices.Contains([]string{"timeseries", "table", "stat", "bargauge", "state-timeline"}, p.Type) {
			t.Errorf("%s: panel type %q", title(p), p.Type)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s has no queries", title(p))
		}
	}
	for _, typ := range []string{"timeseries", "table", "stat", "bargauge"} {
		if !types[typ] {
			t.Errorf("no %s panel", typ)
		}
	}

	// Grid: inside the 24 columns, no two panels overlapping. Panels in
	// collapsed rows are laid out when the row opens, so they are checked
	// against each other only.
	type box struct {
		name       string
		x, y, w, h uint32
	}
	check := func(boxes []box) {
		for i, a := range boxes {
			if a.w == 0 || a.h == 0 || a.x+a.w > 24 {
				t.Errorf("%s: gridPos x=%d w=%d h=%d outside the 24-column grid", a.name, a.x, a.w, a.h)
			}
			for _, b := range boxes[:i] {
				if a.x < b.x+b.w && b.x < a.x+a.w && a.y < b.y+b.h && b.y < a.y+a.h {
					t.Errorf("%s overlaps %s", a.name, b.name)
				}
			}
		}
	}
	var top []box
	for _, p := range d.Panels {
		switch {
		case p.Panel != nil && p.Panel.GridPos != nil:
			g := p.Panel.GridPos
			top = append(top, box{title(p.Panel), g.X, g.Y, g.W, g.H})
		case p.Panel != nil:
			t.Errorf("%s has no gridPos", title(p.Panel))
		case p.RowPanel != nil && p.RowPanel.GridPos != nil:
			g := p.RowPanel.GridPos
			top = append(top, box{"row " + deref(p.RowPanel.Title), g.X, g.Y, g.W, g.H})
			var inner []box
			for _, c := range p.RowPanel.Panels {
				if c.GridPos != nil {
					inner = append(inner, box{title(&c), c.GridPos.X, c.GridPos.Y, c.GridPos.W, c.GridPos.H})
				}
			}
			check(inner)
		}
	}
	check(top)

	vars := map[string]dashboard.VariableModel{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	for _, name := range []string{"target", "module"} {
		v, ok := vars[name]
		if !ok {
			t.Errorf("no %s variable", name)
			continue
		}
		if v.Type != "query" || !deref(v.Multi) || !deref(v.IncludeAll) {
			t.Errorf("variable %s: type %q multi %v includeAll %v; want a multi-select query variable with All",
				name, v.Type, deref(v.Multi), deref(v.IncludeAll))
		}
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

var (
	metricRE   = regexp.MustCompile(`\b(probe_[a-z0-9_]+|smtp_exporter_[a-z0-9_]+)\b`)
	selectorRE = regexp.MustCompile(`\b(probe_[a-z0-9_]+|smtp_exporter_[a-z0-9_]+)\b(\{[^}]*\})?`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	groupingRE = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	legendRE   = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
)

// TestDashboardMetrics: every query is non-empty, names only metrics the
// exporter serves, filters each selector by the template variables that
// apply to it (target and module where the metric has them, job and
// instance always) and uses only labels those metrics carry.
func TestDashboardMetrics(t *testing.T) {
	d := loadDashboard(t, readDashboard(t))
	served := servedMetrics(t)
	qs := promQueries(t, d)
	if len(qs) == 0 {
		t.Fatal("no queries found")
	}
	used := map[string]bool{}
	for _, q := range qs {
		if strings.TrimSpace(q.expr) == "" {
			t.Errorf("%s: empty expression", q.where)
			continue
		}
		names := metricRE.FindAllString(q.expr, -1)
		if len(names) == 0 {
			t.Errorf("%s: %q names no exporter metric", q.where, q.expr)
		}
		// Labels available in this expression's results and groupings.
		avail := map[string]bool{}
		for _, l := range scrapeLabels {
			avail[l] = true
		}
		for _, n := range names {
			m, ok := served[n]
			if !ok {
				t.Errorf("%s: %s is not a metric the exporter serves", q.where, n)
				continue
			}
			used[n] = true
			for _, l := range m.labels {
				avail[l] = true
			}
			if m.histogram {
				avail["le"] = true
			}
		}

		for _, sel := range selectorRE.FindAllStringSubmatch(q.expr, -1) {
			name, matchers := sel[1], sel[2]
			m, ok := served[name]
			if !ok {
				continue
			}
			got := map[string]string{}
			for _, mm := range matcherRE.FindAllStringSubmatch(matchers, -1) {
				label := mm[1]
				if !slices.Contains(m.labels, label) && !slices.Contains(scrapeLabels, label) {
					t.Errorf("%s: %s has no label %q", q.where, name, label)
				}
				got[label] = mm[2] + `"` + mm[3] + `"`
			}
			want := map[string]string{}
			for _, l := range scrapeLabels {
				want[l] = `=~"$` + l + `"`
			}
			for _, l := range []string{"target", "module"} {
				if slices.Contains(m.labels, l) {
					want[l] = `=~"$` + l + `"`
				}
			}
			if q.variable {
				// A variable's query filters by the variables before it,
				// never by itself.
				for l, w := range want {
					if g, ok := got[l]; ok && g != w {
						t.Errorf("%s: %s matcher %s%s; want %s%s", q.where, name, l, g, l, w)
					}
				}
				continue
			}
			for l, w := range want {
				if got[l] != w {
					t.Errorf("%s: %s lacks the matcher %s%s", q.where, name, l, w)
				}
			}
		}

		for _, g := range groupingRE.FindAllStringSubmatch(q.expr, -1) {
			for _, l := range strings.Split(g[1], ",") {
				if l = strings.TrimSpace(l); l != "" && !avail[l] {
					t.Errorf("%s: grouping label %q is on none of %v", q.where, l, names)
				}
			}
		}
		if q.variable {
			if m := regexp.MustCompile(`,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`).FindStringSubmatch(q.expr); m == nil || !avail[m[1]] {
				t.Errorf("%s: %q does not take the values of a label of %v", q.where, q.expr, names)
			}
		}
		for _, l := range legendRE.FindAllStringSubmatch(q.legend, -1) {
			if !avail[l[1]] {
				t.Errorf("%s: legend uses {{%s}}, a label of none of %v", q.where, l[1], names)
			}
		}
	}

	// The contract's key series are all on the dashboard.
	var missing []string
	for _, n := range []string{
		"probe_success", "probe_duration_seconds", "probe_smtp_failure_info", "probe_smtp_reply_code",
		"probe_smtp_phase_latency_seconds_bucket", "probe_smtp_replies_total", "probe_ssl_earliest_cert_expiry",
		"probe_tls_version_info", "probe_tls_cipher_info", "smtp_exporter_scheduler_backoff_factor",
		"smtp_exporter_scheduler_lag_seconds", "smtp_exporter_config_last_reload_successful",
		"smtp_exporter_probes_in_flight", "smtp_exporter_targets", "probe_smtp_runs_total",
		// The Mail flow row: the delivery prober's facts.
		"probe_delivery_time_to_inbox_seconds", "probe_delivery_inbox_latency_seconds_bucket",
		"probe_delivery_placement_info", "probe_delivery_auth_result_info", "probe_delivery_hops",
		"probe_delivery_bounces_total", "probe_delivery_lost_total", "probe_delivery_late_total",
	} {
		if !used[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("dashboard does not show %v", missing)
	}
}

// TestStrictDecodingCatchesErrors guards the check above: the SDK's
// strict decoder must still see into panels, their options and custom
// field config, their queries and the panels of collapsed rows, whatever
// it does with what it decodes.
func TestStrictDecodingCatchesErrors(t *testing.T) {
	body := envelope(t, readDashboard(t))
	firstOf := func(d map[string]any, typ string) map[string]any {
		for _, p := range d["panels"].([]any) {
			if p := p.(map[string]any); p["type"] == typ {
				return p
			}
		}
		t.Fatalf("no %s panel", typ)
		return nil
	}
	for _, tc := range []struct {
		name   string
		mutate func(d map[string]any)
	}{
		{"unknown top-level field", func(d map[string]any) { d["refresh_interval"] = "1m" }},
		{"unknown panel field", func(d map[string]any) { firstOf(d, "stat")["datasourceUid"] = "x" }},
		{"unknown timeseries option", func(d map[string]any) {
			firstOf(d, "timeseries")["options"].(map[string]any)["legendMode"] = "table"
		}},
		{"missing stat option", func(d map[string]any) {
			delete(firstOf(d, "stat")["options"].(map[string]any), "reduceOptions")
		}},
		{"wrong type in table custom field config", func(d map[string]any) {
			firstOf(d, "table")["fieldConfig"].(map[string]any)["defaults"].(map[string]any)["custom"].(map[string]any)["inspect"] = "no"
		}},
		{"unknown Prometheus query field", func(d map[string]any) {
			firstOf(d, "bargauge")["targets"].([]any)[0].(map[string]any)["query"] = "up"
		}},
		{"bad panel inside a collapsed row", func(d map[string]any) {
			row := firstOf(d, "row")
			p := firstOf(d, "timeseries")
			inner := map[string]any{}
			for k, v := range p {
				inner[k] = v
			}
			inner["options"] = map[string]any{"legend": "bottom"}
			row["collapsed"] = true
			row["panels"] = []any{inner}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d map[string]any
			if err := json.Unmarshal(body, &d); err != nil {
				t.Fatal(err)
			}
			tc.mutate(d)
			broken, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if err := strictErrors(t, broken); err == nil {
				t.Error("strict decoding accepted it")
			} else {
				t.Log(err)
			}
		})
	}
}

// panelByTitle returns the panel with the given title, failing the test
// without one.
func panelByTitle(t *testing.T, d *dashboard.Dashboard, name string) *dashboard.Panel {
	t.Helper()
	_, panels := allPanels(d)
	for _, p := range panels {
		if title(p) == name {
			return p
		}
	}
	t.Fatalf("no panel %q", name)
	return nil
}

func exprs(t *testing.T, p *dashboard.Panel) []string {
	t.Helper()
	var out []string
	for _, tg := range p.Targets {
		if dq, ok := tg.(*grafprom.Dataquery); ok {
			out = append(out, dq.Expr)
		}
	}
	return out
}

var counterSelectorRE = regexp.MustCompile(`\b((?:probe|smtp_exporter)_[a-z0-9_]+_total)(\{[^}]*\})?`)

// TestDashboardCountersCountNewSeries: the exporter creates a counter
// series at its first event (a target's first failure, a new reply code),
// so increase() and rate() never see that step from 0, and a target that
// failed once in the range showed no failure. Every query over a counter
// must also take the whole value of a series that did not exist at the
// start of its window: (X unless X offset W).
func TestDashboardCountersCountNewSeries(t *testing.T) {
	d := loadDashboard(t, readDashboard(t))
	for _, q := range promQueries(t, d) {
		if q.variable {
			continue
		}
		for _, m := range counterSelectorRE.FindAllString(q.expr, -1) {
			if !strings.Contains(q.expr, "("+m+" unless "+m+" offset ") {
				t.Errorf("%s: counter %s without (%[2]s unless %[2]s offset WINDOW): a series born inside the window is missed\n\texpr: %s", q.where, m, q.expr)
			}
		}
	}
}

// The links from a failing target: its failed run on the exporter (the
// /history contract: 302 to the most recent failed run of target and
// module) and the RUNBOOK section of its reason.
const (
	historyLink = "http://${__data.fields.instance}/history?target=${__data.fields.target:percentencode}&module=${__data.fields.module:percentencode}&last=failure"
	runbookLink = "https://github.com/smtp-exporter/smtp_exporter/blob/main/examples/RUNBOOK.md#${__data.fields.reason}"
)

// TestDashboardFailingNow: with hundreds of targets, the failing ones come
// first, in a table right below the overview's counts, each row linking to
// its failed run and the RUNBOOK section of its reason, which exists for
// every reason a probe can give.
func TestDashboardFailingNow(t *testing.T) {
	d := loadDashboard(t, readDashboard(t))
	runbook, err := os.ReadFile("../RUNBOOK.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(runbook), "\n") {
		if h, ok := strings.CutPrefix(line, "### "); ok {
			anchors[strings.Trim(strings.TrimSpace(h), "`")] = true
		}
	}
	for _, r := range probes.AllReasons {
		if !anchors[string(r)] {
			t.Errorf("RUNBOOK.md has no section ### `%s` for the dashboard's link to it", r)
		}
	}

	failing := panelByTitle(t, d, "Failing now")
	if failing.Type != "table" {
		t.Errorf("Failing now: type %q, want table", failing.Type)
	}
	// Nothing but the stats above it.
	_, panels := allPanels(d)
	for _, p := range panels {
		if p != failing && p.Type != "stat" && p.GridPos != nil && failing.GridPos != nil && p.GridPos.Y < failing.GridPos.Y {
			t.Errorf("%s (%s) is above Failing now", title(p), p.Type)
		}
	}
	for _, name := range []string{"Failing now", "Failures in the time range"} {
		p := panelByTitle(t, d, name)
		var urls []string
		if p.FieldConfig != nil {
			for _, l := range p.FieldConfig.Defaults.Links {
				urls = append(urls, deref(l.Url))
			}
		}
		for _, want := range []string{historyLink, runbookLink} {
			if !slices.Contains(urls, want) {
				t.Errorf("%s: no data link %s (links: %q)", name, want, urls)
			}
		}
		for _, e := range exprs(t, p) {
			for _, l := range []string{"instance", "target", "module", "reason"} {
				if strings.Contains(e, "by (") && !strings.Contains(e, l+",") && !strings.Contains(e, l+")") {
					t.Errorf("%s: the query drops %s, which the links need\n\texpr: %s", name, l, e)
				}
			}
		}
	}
}

// TestDashboardReadableAtScale: no graph draws one probe_success line per
// target (unreadable at hundreds); a state timeline shows the ones that
// failed.
func TestDashboardReadableAtScale(t *testing.T) {
	d := loadDashboard(t, readDashboard(t))
	_, panels := allPanels(d)
	timeline := false
	for _, p := range panels {
		if p.Type == "state-timeline" {
			timeline = true
			for _, e := range exprs(t, p) {
				if !strings.Contains(e, "min_over_time(probe_success") {
					t.Errorf("%s: shows every target, not those that failed in the range\n\texpr: %s", title(p), e)
				}
			}
		}
		if p.Type != "timeseries" {
			continue
		}
		for _, tg := range p.Targets {
			dq := tg.(*grafprom.Dataquery)
			if strings.HasPrefix(strings.TrimSpace(dq.Expr), "probe_success") && dq.LegendFormat != nil && strings.Contains(*dq.LegendFormat, "{{target}}") {
				t.Errorf("%s: one line per target: %s", title(p), dq.Expr)
			}
		}
	}
	if !timeline {
		t.Error("no state timeline panel")
	}
}

// TestDashboardLatencyNotSummed: the phase latency quantiles are not summed
// over every target and module together, and a per-target view follows
// the target selection.
func TestDashboardLatencyNotSummed(t *testing.T) {
	d := loadDashboard(t, readDashboard(t))
	perTarget := false
	for _, q := range promQueries(t, d) {
		if strings.Contains(q.expr, "histogram_quantile") && strings.Contains(q.expr, "probe_smtp_phase_latency_seconds_bucket") {
			for _, g := range groupingRE.FindAllStringSubmatch(q.expr, -1) {
				if !strings.Contains(g[1], "module") {
					t.Errorf("%s: phase quantiles summed over all modules: by (%s)", q.where, g[1])
				}
			}
		}
		if strings.Contains(q.expr, "_over_time(0.95, probe_smtp_phase_duration_seconds{") && strings.Contains(q.expr, `target=~"$target"`) {
			perTarget = true
		}
	}
	if !perTarget {
		t.Error("no per-target p95 of probe_smtp_phase_duration_seconds")
	}
}
