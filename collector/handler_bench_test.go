//go:build unix

package collector

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
	"github.com/smtp-exporter/smtp_exporter/probes/smtp"
)

// BenchmarkProbeHandler_Adhoc is what /probe costs over the probe it runs,
// in one command:
//
//	go test -run='^$' -bench='ProbeHandler_Adhoc' -benchmem ./collector/
//
// probe is smtp.Probe alone (what probes/smtp's BenchmarkRun_STARTTLS/plain
// measures); handler is ProbeHandler.ServeHTTP of
// /probe?module=starttls&target=127.0.0.1:PORT, in process, with the
// headers Prometheus sends, for the text format and protobuf. Both run
// the same module (STARTTLS, a ca_file, the server name pinned) against
// the same server, which runs in a child process (TestProbeHandlerBenchServer)
// so that cpu-ns/op, the process's user and system CPU over the loop per
// op (getrusage, GC included), is the client's alone. The handler's
// overhead is handler's cpu-ns/op over probe's. Both log through a logger
// shaped as the exporter's, at level info.
func BenchmarkProbeHandler_Adhoc(b *testing.B) {
	srv := startHandlerBenchServer(b)
	cfgPath := filepath.Join(b.TempDir(), "smtp_exporter.yml")
	cfg := fmt.Sprintf(`modules:
  starttls:
    timeout: 10s
    smtp:
      tls: starttls
      ehlo: probe.test
      tls_config: {ca_file: %q, server_name: localhost}
`, srv.caFile)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	sc := NewSafeConfig(cfgPath)
	c, err := sc.Reload()
	if err != nil {
		b.Fatal(err)
	}
	logger := benchLogger()

	b.Run("probe", func(b *testing.B) {
		m := *c.Modules["starttls"]
		l := log.With(logger, "target", srv.addr, "module", "starttls")
		ctx := context.Background()
		probestest.MeasureCPU(b, func() {
			if res := smtp.Probe(ctx, srv.addr, m, l); !res.Success {
				b.Fatalf("probe failed in phase %q: %s (%v)", res.FailedPhase, res.Reason, res.Err)
			}
		})
	})
	for _, f := range []struct{ name, accept string }{
		// Prometheus 3's default scrape_protocols, and with protobuf first.
		{"handler/text", "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"},
		{"handler/protobuf", protoAccept},
	} {
		b.Run(f.name, func(b *testing.B) {
			sched := NewScheduler(smtp.Probe, 64, NewStore(), NewHistory(100), logger)
			sched.Apply(c)
			b.Cleanup(func() { sched.Shutdown(5 * time.Second) })
			h := &ProbeHandler{Config: sc, Scheduler: sched, AllowAdhoc: true, TimeoutOffset: 500 * time.Millisecond, Logger: logger}
			u, err := url.Parse("/probe?module=starttls&target=" + srv.addr)
			if err != nil {
				b.Fatal(err)
			}
			req := (&http.Request{Method: http.MethodGet, URL: u, Header: http.Header{
				"Accept":                              {f.accept},
				"Accept-Encoding":                     {"gzip"},
				"X-Prometheus-Scrape-Timeout-Seconds": {"10"},
			}}).WithContext(context.Background())
			w := &benchWriter{}
			probestest.MeasureCPU(b, func() {
				w.reset()
				h.ServeHTTP(w, req)
				if w.code != 0 && w.code != http.StatusOK || w.n == 0 {
					b.Fatalf("status %d, %d bytes", w.code, w.n)
				}
			})
		})
	}
}

// benchWriter is a ResponseWriter that counts and throws the body away.
type benchWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *benchWriter) reset()              { w.h, w.code, w.n = http.Header{}, 0, 0 }
func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(c int)   { w.code = c }
func (w *benchWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	return len(b), nil
}

// benchLogger is shaped as the exporter's logger (probes/smtp's
// productionLogger): logfmt at level info with time and caller, the level
// filter again above them.
func benchLogger() log.Logger {
	l := level.NewFilter(log.NewLogfmtLogger(io.Discard), level.AllowInfo())
	l = log.With(l, "time", log.DefaultTimestampUTC, "caller", log.Caller(5))
	return level.NewFilter(l, level.AllowInfo())
}

const handlerBenchServerV = "SMTP_EXPORTER_HANDLER_BENCH_SERVER"

type handlerBenchServer struct{ addr, caFile string }

// startHandlerBenchServer runs TestProbeHandlerBenchServer in a child
// process of the test binary until b ends.
func startHandlerBenchServer(b *testing.B) *handlerBenchServer {
	b.Helper()
	dir := b.TempDir()
	_, out := probestest.StartChild(b, "TestProbeHandlerBenchServer", handlerBenchServerV+"="+dir)
	line, err := out.ReadString('\n')
	if err != nil {
		b.Fatalf("bench server: %v", err)
	}
	srv := &handlerBenchServer{caFile: filepath.Join(dir, "ca.pem")}
	if _, err := fmt.Sscanf(line, "bench-server %s", &srv.addr); err != nil {
		b.Fatalf("bench server said %q: %v", line, err)
	}
	// Written long before, as a deployment's files are.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(srv.caFile, old, old); err != nil {
		b.Fatal(err)
	}
	return srv
}

// TestProbeHandlerBenchServer is BenchmarkProbeHandler_Adhoc's STARTTLS
// server, run in a child process; it skips otherwise. It writes its CA to
// the directory it is given and stops at stdin's end.
func TestProbeHandlerBenchServer(t *testing.T) {
	dir := os.Getenv(handlerBenchServerV)
	if dir == "" {
		t.Skip("run by BenchmarkProbeHandler_Adhoc as its server")
	}
	ca := probestest.NewCA(t)
	cert := ca.Valid(t, "localhost", "127.0.0.1")
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := probestest.NewServer(t, probestest.ServerOptions{TLS: &cert})
	fmt.Printf("bench-server %s\n", srv.Addr)
	io.Copy(io.Discard, os.Stdin)
}
