package collector

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The formats whose encoding of a target's gauges is kept: the text
// format, OpenMetrics and delimited protobuf, which is what Prometheus
// negotiates. Others (protobuf as text) are encoded at every scrape.
const (
	fastText = iota
	fastOpenMetrics
	fastProto
	numFastFormats
)

func fastFormat(f expfmt.Format) (int, bool) {
	switch f.FormatType() {
	case expfmt.TypeTextPlain:
		return fastText, true
	case expfmt.TypeOpenMetrics:
		return fastOpenMetrics, true
	case expfmt.TypeProtoDelim:
		return fastProto, true
	}
	return 0, false
}

// TargetSource is a set of per-target series whose encoding is kept
// between scrapes: the store's per-run gauges (Collector) and the
// scheduler's across-runs series (Scheduler.MetricSources).
type TargetSource interface {
	prometheus.Collector
	// encodedTargets returns the headers of the source's families in the
	// format numbered f and, target by target in name order, the target's
	// samples of each family.
	encodedTargets(f int) (headers [][]byte, targets []encodedTarget)
}

// encodedTarget is one target's samples in one format, family after
// family in one buffer of their size: family i's are buf[ends[i-1]:ends[i]].
// It is kept for every target and format scraped, so it holds no slack and
// no slice header per family (33 of them would cost 0.8 KB a target).
type encodedTarget struct {
	buf  []byte
	ends []uint32
}

// kept reports whether e holds an encoding (of no samples, perhaps).
func (e encodedTarget) kept() bool { return e.ends != nil }

// family returns the samples of family i.
func (e encodedTarget) family(i int) []byte {
	start := uint32(0)
	if i > 0 {
		start = e.ends[i-1]
	}
	return e.buf[start:e.ends[i]]
}

// MetricsHandler serves /metrics: reg's series, encoded at every scrape,
// and the series of sources, whose encoding is kept per target and format
// until the target changes. Register no source with reg: their families
// are written after reg's. The format is negotiated as promhttp does with
// OpenMetrics enabled, and the body gzipped when the scraper accepts it.
func MetricsHandler(reg prometheus.Gatherer, sources ...TargetSource) http.Handler {
	own := prometheus.NewRegistry()
	for _, s := range sources {
		own.MustRegister(s)
	}
	return &metricsHandler{reg: reg, sources: sources, all: prometheus.Gatherers{reg, own}}
}

type metricsHandler struct {
	reg     prometheus.Gatherer
	sources []TargetSource
	all     prometheus.Gatherer // reg and sources, for the formats not kept
}

var gzipPool = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
	fast, ok := fastFormat(format)
	g := h.reg
	if !ok {
		g = h.all
	}
	mfs, err := g.Gather()
	if err != nil {
		http.Error(w, "An error has occurred while gathering metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Add("Vary", "Accept")
	w.Header().Add("Vary", "Accept-Encoding")
	w.Header().Set("Content-Type", string(format))
	var out io.Writer = w
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzipPool.Get().(*gzip.Writer)
		gz.Reset(w)
		defer func() { gz.Close(); gzipPool.Put(gz) }()
		out = gz
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	defer bw.Flush()
	enc := expfmt.NewEncoder(bw, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return // the status is sent: nothing better to do than stop
		}
	}
	if ok {
		for _, s := range h.sources {
			writeFamilies(bw, fast, s)
		}
	}
	if closer, ok := enc.(expfmt.Closer); ok {
		closer.Close()
	}
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip: it
// names gzip without q=0.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			q, _ = strconv.ParseFloat(v, 64)
		}
		return q > 0
	}
	return false
}

// writeFamilies writes the families of s in the format numbered f: each
// family's header once, then each target's kept samples of it, target by
// target.
func writeFamilies(w *bufio.Writer, f int, s TargetSource) {
	headers, targets := s.encodedTargets(f)
	for i, header := range headers {
		size := 0
		for _, t := range targets {
			size += len(t.family(i))
		}
		if size == 0 {
			continue
		}
		if f == fastProto {
			w.Write(protowire.AppendVarint(nil, uint64(len(header)+size)))
		}
		w.Write(header)
		for _, t := range targets {
			w.Write(t.family(i))
		}
	}
}

// familySet describes metric families with their name, help and type,
// for encoding their samples without a registry.
type familySet struct {
	descs        []*prometheus.Desc
	names, helps []string
	types        []dto.MetricType
	// labelNames are each family's label names in name order, and
	// labelOrder the positions of its label values in that order: a
	// metric's labels are written sorted by name.
	labelNames [][]string
	labelOrder [][]int
	index      map[*prometheus.Desc]int

	mu   sync.Mutex
	kept [numFastFormats][][]byte // headers per format
}

// sample is one series: a family's desc, its label values in the desc's
// order, its value and, for a counter, when it was made.
type sample struct {
	desc    *prometheus.Desc
	labels  []string
	value   float64
	created time.Time
}

func newFamilySet() *familySet { return &familySet{index: map[*prometheus.Desc]int{}} }

// add makes a family and returns its desc.
func (s *familySet) add(name, help string, typ dto.MetricType, labels []string) *prometheus.Desc {
	d := prometheus.NewDesc(name, help, labels, nil)
	s.index[d] = len(s.descs)
	s.descs = append(s.descs, d)
	s.names, s.helps, s.types = append(s.names, name), append(s.helps, help), append(s.types, typ)
	order := make([]int, len(labels))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	names := make([]string, len(labels))
	for i, j := range order {
		names[i] = labels[j]
	}
	s.labelNames, s.labelOrder = append(s.labelNames, names), append(s.labelOrder, order)
	return d
}

// constMetrics appends samples as const metrics.
func (s *familySet) constMetrics(out []prometheus.Metric, samples []sample) []prometheus.Metric {
	for _, x := range samples {
		if s.types[s.index[x.desc]] == dto.MetricType_COUNTER {
			out = append(out, prometheus.MustNewConstMetricWithCreatedTimestamp(x.desc, prometheus.CounterValue, x.value, x.created, x.labels...))
		} else {
			out = append(out, prometheus.MustNewConstMetric(x.desc, prometheus.GaugeValue, x.value, x.labels...))
		}
	}
	return out
}

// headers returns each family's HELP and TYPE in the format numbered f
// (for protobuf its name, help and type fields), as expfmt writes them.
func (s *familySet) headers(f int) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kept[f] != nil {
		return s.kept[f]
	}
	out := make([][]byte, len(s.descs))
	for i := range s.descs {
		if f == fastProto {
			b := protowire.AppendTag(nil, 1, protowire.BytesType)
			b = protowire.AppendString(b, s.names[i])
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendString(b, s.helps[i])
			b = protowire.AppendTag(b, 3, protowire.VarintType)
			out[i] = protowire.AppendVarint(b, uint64(s.types[i]))
			continue
		}
		// A family of one sample, the sample cut off.
		m := &dto.Metric{Gauge: &dto.Gauge{Value: proto.Float64(0)}}
		if s.types[i] == dto.MetricType_COUNTER {
			m = &dto.Metric{Counter: &dto.Counter{Value: proto.Float64(0)}}
		}
		mf := &dto.MetricFamily{Name: &s.names[i], Help: &s.helps[i], Type: s.types[i].Enum(), Metric: []*dto.Metric{m}}
		var buf bytes.Buffer
		if f == fastOpenMetrics {
			expfmt.MetricFamilyToOpenMetrics(&buf, mf)
		} else {
			expfmt.MetricFamilyToText(&buf, mf)
		}
		b := buf.Bytes()
		out[i] = b[:bytes.LastIndexByte(b[:len(b)-1], '\n')+1]
	}
	s.kept[f] = out
	return out
}

// encode encodes one target's samples per family in the format numbered
// f, without the families' headers: for text the sample lines as expfmt
// writes them, for protobuf the repeated metric fields of the family's
// message. Within a family the samples are in label order, as a registry
// sorts them. They are written into a scratch buffer and copied into one
// of their size.
func (s *familySet) encode(samples []sample, f int) encodedTarget {
	// Sorted by a key of two numbers: moving the samples themselves (with
	// their pointers) and finding their family at every comparison was a
	// quarter of a scrape's CPU.
	type key struct{ fam, i int32 }
	keys := make([]key, len(samples))
	for i, x := range samples {
		keys[i] = key{int32(s.index[x.desc]), int32(i)}
	}
	slices.SortStableFunc(keys, func(a, b key) int {
		if a.fam != b.fam {
			return int(a.fam - b.fam)
		}
		for _, k := range s.labelOrder[a.fam] {
			if c := strings.Compare(samples[a.i].labels[k], samples[b.i].labels[k]); c != 0 {
				return c
			}
		}
		return 0
	})
	scratch := scratchPool.Get().(*[]byte)
	b := (*scratch)[:0]
	ends := make([]uint32, len(s.descs))
	for _, k := range keys {
		i, x := int(k.fam), samples[k.i]
		if f == fastProto {
			b = protowire.AppendTag(b, 4, protowire.BytesType)
			b = protowire.AppendBytes(b, s.marshal(i, x))
		} else {
			b = s.appendLine(b, i, x, f == fastOpenMetrics)
		}
		ends[i] = uint32(len(b))
	}
	for i := 1; i < len(ends); i++ { // a family with no samples ends where the one before did
		ends[i] = max(ends[i], ends[i-1])
	}
	out := encodedTarget{buf: bytes.Clone(b), ends: ends}
	*scratch = b
	scratchPool.Put(scratch)
	return out
}

var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// appendLine appends x's sample line in the text format or OpenMetrics:
// labels sorted by name, values escaped and numbers written as expfmt
// does (TestMetricsHandler_SameAsRegistry holds them to it).
func (s *familySet) appendLine(b []byte, i int, x sample, openMetrics bool) []byte {
	b = append(b, s.names[i]...)
	if len(x.labels) > 0 {
		for k, j := range s.labelOrder[i] {
			if k == 0 {
				b = append(b, '{')
			} else {
				b = append(b, ',')
			}
			b = append(b, s.labelNames[i][k]...)
			b = append(b, '=', '"')
			b = appendEscaped(b, x.labels[j])
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	return append(appendFloat(b, x.value, openMetrics), '\n')
}

// appendEscaped escapes a label value: backslash, newline, double quote.
func appendEscaped(b []byte, v string) []byte {
	for i := range len(v) {
		switch c := v[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '"':
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat writes a value as expfmt's writeFloat does, or for
// OpenMetrics as its writeOpenMetricsFloat (integers get ".0").
func appendFloat(b []byte, v float64, openMetrics bool) []byte {
	suffix := ""
	if openMetrics {
		suffix = ".0"
	}
	switch {
	case v == 1, v == 0, v == -1:
		return append(strconv.AppendInt(b, int64(v), 10), suffix...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, +1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	if openMetrics && !bytes.ContainsAny(b[start:], "e.") {
		b = append(b, '.', '0')
	}
	return b
}

// marshal encodes x as the protobuf Metric a const metric writes.
func (s *familySet) marshal(i int, x sample) []byte {
	m := &dto.Metric{Label: make([]*dto.LabelPair, len(x.labels))}
	for k, j := range s.labelOrder[i] {
		m.Label[k] = &dto.LabelPair{Name: &s.labelNames[i][k], Value: &x.labels[j]}
	}
	if s.types[i] == dto.MetricType_COUNTER {
		m.Counter = &dto.Counter{Value: proto.Float64(x.value)}
		if !x.created.IsZero() {
			m.Counter.CreatedTimestamp = timestamppb.New(x.created)
		}
	} else {
		m.Gauge = &dto.Gauge{Value: proto.Float64(x.value)}
	}
	b, _ := proto.Marshal(m)
	return b
}

func compareLabels(a, b *dto.Metric) int {
	la, lb := a.GetLabel(), b.GetLabel()
	for i := range min(len(la), len(lb)) {
		if c := strings.Compare(la[i].GetValue(), lb[i].GetValue()); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}
