package collector

import (
	"compress/gzip"
	"encoding/binary"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/smtp-exporter/smtp_exporter/probes"
	"google.golang.org/protobuf/encoding/protowire"
)

// probeGzipMin is the smallest /probe body worth gzipping. A STARTTLS
// result is about 1.5 KB: compressed, it saves one TCP segment at most,
// and gzip's setup costs more CPU than encoding the body does.
const probeGzipMin = 8 << 10

// writeProbeMetrics answers /probe with one result's per-run gauges, as
// promhttp.HandlerFor a registry of resultCollector would (same format
// negotiation, families in name order, samples in label order), but
// encoded straight from resultDescs.samples with familySet.encode, the
// encoder /metrics keeps its targets' samples with: no registry, no
// const metrics, no gathering per probe. Formats it does not encode
// (protobuf as text, a name[] filter) go through the registry. q is
// r's query, parsed.
func writeProbeMetrics(w http.ResponseWriter, r *http.Request, q url.Values, res *probes.Result) {
	format := negotiateProbeFormat(r.Header.Get("Accept"))
	f, ok := fastFormat(format)
	if !ok || q.Has("name[]") {
		reg := prometheus.NewRegistry()
		reg.MustRegister(resultCollector{res: res})
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		return
	}
	buf := probeBodies.Get().(*[]byte)
	body := appendProbeMetrics((*buf)[:0], res, f)
	defer func() {
		if cap(body) <= probeGzipMin {
			*buf = body
			probeBodies.Put(buf)
		}
	}()
	w.Header().Add("Vary", "Accept")
	w.Header().Add("Vary", "Accept-Encoding")
	w.Header().Set("Content-Type", string(format))
	if len(body) < probeGzipMin || !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Write(body)
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	gz := gzipPool.Get().(*gzip.Writer)
	gz.Reset(w)
	gz.Write(body)
	gz.Close()
	gzipPool.Put(gz)
}

// probeBodies are /probe's body buffers; a large one (a domain with many
// MX hosts) is left to the collector rather than kept.
var probeBodies = sync.Pool{New: func() any { return new([]byte) }}

// appendProbeMetrics appends res's per-run gauges, unlabelled, in the
// format numbered f: each family that has samples, its header then its
// samples, in name order as a registry gathers them; OpenMetrics ends
// with # EOF.
func appendProbeMetrics(b []byte, res *probes.Result, f int) []byte {
	fams := probeDescs.fams
	headers := fams.headers(f)
	enc := fams.encode(probeDescs.samples(res), f)
	size := len(b) + len("# EOF\n")
	for i := range enc.ends {
		if c := enc.family(i); len(c) > 0 {
			size += binary.MaxVarintLen64 + len(headers[i]) + len(c)
		}
	}
	b = slices.Grow(b, size-len(b))
	for _, i := range probeFamilyOrder() {
		c := enc.family(i)
		if len(c) == 0 {
			continue
		}
		if f == fastProto {
			b = protowire.AppendVarint(b, uint64(len(headers[i])+len(c)))
		}
		b = append(append(b, headers[i]...), c...)
	}
	if f == fastOpenMetrics {
		b = append(b, "# EOF\n"...)
	}
	return b
}

// probeFamilyOrder is probeDescs' families by name.
var probeFamilyOrder = sync.OnceValue(func() []int {
	names := probeDescs.fams.names
	order := make([]int, len(names))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(names[a], names[b]) })
	return order
})

// lastNegotiated is the format negotiated for the last Accept header:
// Prometheus sends the same one at every scrape, and parsing it costs
// more than encoding a small result does. One entry, so that varied
// headers cannot grow it.
var lastNegotiated atomic.Pointer[negotiated]

type negotiated struct {
	accept string
	scheme model.EscapingScheme // the default a header does not name
	format expfmt.Format
}

// negotiateProbeFormat is the format promhttp.HandlerFor with default
// options would answer a request with this Accept header in.
func negotiateProbeFormat(accept string) expfmt.Format {
	scheme := model.NameEscapingScheme
	if n := lastNegotiated.Load(); n != nil && n.accept == accept && n.scheme == scheme {
		return n.format
	}
	format := expfmt.NegotiateAccept(http.Header{"Accept": {accept}}, expfmt.DefaultAcceptedFormats()...)
	lastNegotiated.Store(&negotiated{accept, scheme, format})
	return format
}
