package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/common/config"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// The probe benchmarks compare the probe with a bare client doing the same
// dialog with net/textproto and crypto/tls and nothing else, against the
// same server:
//
//	go test -run='^$' -bench='STARTTLS' -benchmem ./probes/smtp/
//
// The server runs in a child process (TestBenchServerProcess), so that
// the benchmark process's CPU time is the client's alone. Each benchmark
// reports cpu-ns/op: the process's user and system CPU (getrusage) over
// the loop divided by the probes run. That counts everything the client
// costs, garbage collection and the runtime's own threads included, and
// none of the server's; ns/op is wall time, round trips included. The
// ratio the issue sets goals for is BenchmarkRun_STARTTLS's cpu-ns/op over
// BenchmarkBareClient_STARTTLS's, sub-benchmark by sub-benchmark:
//
//   - plain: banner, EHLO, STARTTLS, handshake with verification, EHLO,
//     QUIT;
//   - auth: the same with AUTH PLAIN after the second EHLO, the password
//     read from a password_file, as real modules do.
//
// Both verify the certificate against a ca_file. The probe logs through a
// logger shaped as the exporter's, at level info. The bare client reads
// its CA file and password once; the probe as it must, picking up a
// rotated file at the next probe.

const (
	benchUser     = "probe"
	benchPassword = "bench-s3cret-password"
	benchServerV  = "SMTP_EXPORTER_BENCH_SERVER"
)

var benchDialogs = []struct {
	name string
	auth bool
	// verify: the probe verifies the chain at every run instead of
	// reusing its verification (probes/tlscache.go), as it does for a
	// certificate it has not seen; the bare client always verifies.
	verify bool
}{{"plain", false, false}, {"auth", true, false}, {"plain-verify", false, true}}

func BenchmarkRun_STARTTLS(b *testing.B) {
	benchmarkRun(b, productionLogger)
}

// BenchmarkRun_STARTTLS_NilLogger is the probe without a logger: what the
// exporter's logger adds is the difference to BenchmarkRun_STARTTLS.
func BenchmarkRun_STARTTLS_NilLogger(b *testing.B) {
	benchmarkRun(b, func(string) log.Logger { return nil })
}

func benchmarkRun(b *testing.B, logger func(target string) log.Logger) {
	for _, d := range benchDialogs {
		b.Run(d.name, func(b *testing.B) {
			srv := startBenchServer(b)
			m := benchModule(srv, d.auth)
			ctx := context.Background()
			l := logger(srv.starttls)
			probestest.MeasureCPU(b, func() {
				if d.verify {
					probes.ForgetVerifications()
				}
				res := Probe(ctx, srv.starttls, m, l)
				if !res.Success {
					b.Fatalf("probe failed in phase %q: %s (%v)", res.FailedPhase, res.Reason, res.Err)
				}
			})
		})
	}
}

func BenchmarkBareClient_STARTTLS(b *testing.B) {
	for _, d := range benchDialogs {
		b.Run(d.name, func(b *testing.B) {
			srv := startBenchServer(b)
			cfg := srv.bareTLSConfig(b)
			var password string
			if d.auth {
				p, err := os.ReadFile(srv.passwordFile)
				if err != nil {
					b.Fatal(err)
				}
				password = strings.TrimSpace(string(p))
			}
			probestest.MeasureCPU(b, func() {
				if err := bareSTARTTLS(srv.starttls, cfg, password); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// productionLogger is shaped as the exporter's probe logger is
// (cmd/smtp_exporter/logging.go withTimestamp): logfmt at level info, the
// time and caller valuers, the level filter again above them, and the
// scheduler's keys, marked probes.WithoutDebug: the probe does not build
// its debug lines at all.
func productionLogger(target string) log.Logger {
	l := level.NewFilter(log.NewLogfmtLogger(io.Discard), level.AllowInfo())
	l = log.With(l, "time", log.DefaultTimestampUTC, "caller", log.Caller(5))
	l = level.NewFilter(l, level.AllowInfo())
	// Marked as the exporter marks its probe loggers when its level drops
	// debug lines (cmd/smtp_exporter/serve.go).
	return probes.LoggerWith(probes.WithoutDebug(log.With(l, "component", "probe")), "target", target, "module", "bench")
}

// bareSTARTTLS is the dialog a minimal Go client has, with one deadline
// for the whole session; password, when set, is sent with AUTH PLAIN. It
// ends the TLS session properly (close_notify), as the probe does.
func bareSTARTTLS(addr string, cfg *tls.Config, password string) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	tp := textproto.NewConn(conn)
	step := func(code int, format string, args ...any) error {
		if _, err := tp.Cmd(format, args...); err != nil {
			return err
		}
		_, _, err := tp.ReadResponse(code)
		return err
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		return err
	}
	if err := step(250, "EHLO probe.test"); err != nil {
		return err
	}
	if err := step(220, "STARTTLS"); err != nil {
		return err
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	tp = textproto.NewConn(tc)
	if err := step(250, "EHLO probe.test"); err != nil {
		return err
	}
	if password != "" {
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + benchUser + "\x00" + password))
		if err := step(235, "AUTH PLAIN %s", ir); err != nil {
			return err
		}
	}
	if err := step(221, "QUIT"); err != nil {
		return err
	}
	// Closing the TLS connection, not only the socket under it, sends
	// close_notify, as net/smtp's Client.Close, Postfix and the probe do:
	// a client using crypto/tls as documented.
	return tc.Close()
}

// BenchmarkTLSHandshakeOnly is a bare crypto/tls client handshake, with
// verification, against the same server on implicit TLS: TCP connect,
// handshake, close.
func BenchmarkTLSHandshakeOnly(b *testing.B) {
	srv := startBenchServer(b)
	cfg := srv.bareTLSConfig(b)
	probestest.MeasureCPU(b, func() {
		conn, err := tls.Dial("tcp", srv.implicit, cfg)
		if err != nil {
			b.Fatal(err)
		}
		conn.Close()
	})
}

// BenchmarkProbe_WaitingForBanner reports what a probe costs while it
// waits for a greeting that does not come (postscreen makes servers wait
// 6 s and more): the heap and goroutine stacks in use with
// waitingProbes probes blocked on the banner, less those before they
// started, per probe, as bytes/waiting-probe. The server, in the child
// process, accepts and never writes.
func BenchmarkProbe_WaitingForBanner(b *testing.B) {
	const waitingProbes = 500
	srv := startBenchServer(b)
	m := benchModule(srv, true)
	var perProbe float64
	for b.Loop() {
		perProbe = waitingProbeBytes(b, srv, m, waitingProbes)
	}
	b.ReportMetric(perProbe, "bytes/waiting-probe")
}

func waitingProbeBytes(b *testing.B, srv *benchServer, m probes.Module, n int) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	before := inUse()
	for range n {
		wg.Go(func() { Probe(ctx, srv.silent, m, nil) })
	}
	srv.silentAccepted += n
	srv.awaitAccepted(b, srv.silentAccepted)
	// Accepted is not yet waiting: wait until every probe is parked in
	// its banner read.
	for waitingForBanner() < n {
		time.Sleep(5 * time.Millisecond)
	}
	return float64(inUse()-before) / float64(n)
}

// inUse is the heap and the goroutine stacks in use, after a collection.
func inUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// waitingForBanner counts the goroutines blocked in network I/O within a
// probe's banner step.
func waitingForBanner() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[IO wait") && strings.Contains(g, "(*session).banner") {
			count++
		}
	}
	return count
}

func benchModule(srv *benchServer, auth bool) probes.Module {
	m := probes.Module{
		Prober:  probes.ProberSMTP,
		Timeout: 10 * time.Second,
		SMTP: probes.SMTPModule{
			TLS:       probes.TLSStartTLS,
			EHLO:      "probe.test",
			TLSConfig: config.TLSConfig{CAFile: srv.caFile, ServerName: "localhost"},
		},
	}
	if auth {
		m.SMTP.Auth = &probes.AuthConfig{Mechanism: "PLAIN", Username: benchUser, PasswordFile: srv.passwordFile}
	}
	return m
}

// benchServer is the child process serving the benchmarks.
type benchServer struct {
	starttls, implicit, silent string // addresses
	caFile, passwordFile       string
	stdin                      io.WriteCloser
	stdout                     *bufio.Reader
	silentAccepted             int // connections to silent so far
}

// startBenchServer starts TestBenchServerProcess in a child process of
// the test binary and stops it when b ends.
func startBenchServer(b *testing.B) *benchServer {
	b.Helper()
	dir := b.TempDir()
	srv := &benchServer{caFile: filepath.Join(dir, "ca.pem"), passwordFile: filepath.Join(dir, "password")}
	if err := os.WriteFile(srv.passwordFile, []byte(benchPassword+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	srv.stdin, srv.stdout = probestest.StartChild(b, "TestBenchServerProcess", benchServerV+"="+dir)
	line, err := srv.stdout.ReadString('\n')
	if err != nil {
		b.Fatalf("bench server: %v", err)
	}
	if _, err := fmt.Sscanf(line, "bench-server %s %s %s", &srv.starttls, &srv.implicit, &srv.silent); err != nil {
		b.Fatalf("bench server said %q: %v", line, err)
	}
	// As a deployment's files are: written long before (the probe reads
	// again a file that changed in the last seconds).
	old := time.Now().Add(-time.Hour)
	for _, f := range []string{srv.caFile, srv.passwordFile} {
		if err := os.Chtimes(f, old, old); err != nil {
			b.Fatal(err)
		}
	}
	return srv
}

// bareTLSConfig is a bare client's config, its CA file read once.
func (srv *benchServer) bareTLSConfig(b *testing.B) *tls.Config {
	pem, err := os.ReadFile(srv.caFile)
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

// awaitAccepted returns once the silent listener has accepted n
// connections in all.
func (srv *benchServer) awaitAccepted(b *testing.B, n int) {
	if _, err := fmt.Fprintln(srv.stdin, n); err != nil {
		b.Fatal(err)
	}
	if line, err := srv.stdout.ReadString('\n'); err != nil || line != "ok\n" {
		b.Fatalf("bench server: %q, %v", line, err)
	}
}

// TestBenchServerProcess is the benchmarks' server, run in a child
// process by startBenchServer; it skips otherwise. It serves STARTTLS (with
// AUTH after it) and implicit TLS with a certificate from a CA it writes
// to the directory it is given, and a listener that accepts and never
// speaks. Each number read from stdin is answered "ok" once that listener
// has accepted that many connections; it stops at stdin's end.
func TestBenchServerProcess(t *testing.T) {
	dir := os.Getenv(benchServerV)
	if dir == "" {
		t.Skip("run by the benchmarks as their server")
	}
	ca := probestest.NewCA(t)
	cert := ca.Valid(t, "localhost", "127.0.0.1")
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	users := map[string]string{benchUser: benchPassword}
	starttls := probestest.NewServer(t, probestest.ServerOptions{TLS: &cert, Users: users})
	implicit := probestest.NewServer(t, probestest.ServerOptions{TLS: &cert, ImplicitTLS: true})

	var (
		mu       sync.Mutex
		accepted = sync.NewCond(&mu)
		conns    int
	)
	silent := probestest.NewScriptServer(t, func(c *probestest.Conn) {
		mu.Lock()
		conns++
		accepted.Broadcast()
		mu.Unlock()
		<-c.Done()
	})
	fmt.Printf("bench-server %s %s %s\n", starttls.Addr, implicit.Addr, silent.Addr)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		n, err := strconv.Atoi(in.Text())
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		for conns < n {
			accepted.Wait()
		}
		mu.Unlock()
		fmt.Println("ok")
	}
}
