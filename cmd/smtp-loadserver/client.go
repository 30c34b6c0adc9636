package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// scrapeSummary is what loadrun.sh reports of one /metrics scrape.
type scrapeSummary struct {
	Samples  int
	Lags     []float64 // smtp_exporter_scheduler_lag_seconds, one per target
	Runs     float64   // sum of probe_smtp_runs_total
	Failures float64   // sum of probe_smtp_failures_total
	Success  int       // targets whose probe_success is 1
	Failed   int       // targets whose probe_success is 0
}

// summarize reads the text exposition format: every line that is not a
// comment or blank is one sample.
func summarize(body []byte) scrapeSummary {
	var s scrapeSummary
	for len(body) > 0 {
		var line []byte
		line, body, _ = bytes.Cut(body, []byte("\n"))
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		s.Samples++
		name, _, _ := bytes.Cut(line, []byte("{"))
		name, _, _ = bytes.Cut(name, []byte(" "))
		sp := bytes.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(string(line[sp+1:]), 64)
		if sp < 0 || err != nil {
			continue
		}
		switch string(name) {
		case "smtp_exporter_scheduler_lag_seconds":
			s.Lags = append(s.Lags, v)
		case "probe_smtp_runs_total":
			s.Runs += v
		case "probe_smtp_failures_total":
			s.Failures += v
		case "probe_success":
			if v == 1 {
				s.Success++
			} else {
				s.Failed++
			}
		}
	}
	return s
}

// quantile is the nearest-rank quantile of sorted values, NaN when empty.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func scrapeCmd(ctx context.Context, fs *flag.FlagSet, stdout io.Writer) func() error {
	url := fs.String("url", "", "the exporter's /metrics URL")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up on the scrape after this long")
	return func() error {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
		if err != nil {
			return err
		}
		// The text format, as curl would get it: what this tool parses.
		req.Header.Set("Accept", "text/plain")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		wall := time.Since(start)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", *url, resp.Status)
		}
		s := summarize(body)
		slices.Sort(s.Lags)
		fmt.Fprintf(stdout, "wall_seconds %.3f\nbytes %d\nsamples %d\n", wall.Seconds(), len(body), s.Samples)
		fmt.Fprintf(stdout, "lag_targets %d\nlag_p50_seconds %.3f\nlag_p99_seconds %.3f\nlag_max_seconds %.3f\n",
			len(s.Lags), quantile(s.Lags, 0.5), quantile(s.Lags, 0.99), quantile(s.Lags, 1))
		fmt.Fprintf(stdout, "runs_total %.0f\nfailures_total %.0f\nsuccess_targets %d\nfailed_targets %d\n",
			s.Runs, s.Failures, s.Success, s.Failed)
		return nil
	}
}

// getCmd makes n requests one after another, for the CPU per /probe.
func getCmd(ctx context.Context, fs *flag.FlagSet, stdout io.Writer) func() error {
	url := fs.String("url", "", "URL to request")
	n := fs.Int("n", 100, "requests, one after another")
	want := fs.String("want", "probe_success 1", "a line each response must contain")
	return func() error {
		start := time.Now()
		for i := range *n {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(*want)) {
				return fmt.Errorf("request %d: %s, no %q in:\n%s", i, resp.Status, *want, body)
			}
		}
		fmt.Fprintf(stdout, "requests %d\nwall_seconds %.3f\n", *n, time.Since(start).Seconds())
		return nil
	}
}

// bareCmd runs the same STARTTLS dialog as the exporter's probe with
// net/textproto and crypto/tls and nothing else, n times one after another,
// and prints its own CPU per dialog: the yardstick for "CPU per probe".
func bareCmd(ctx context.Context, fs *flag.FlagSet, stdout io.Writer) func() error {
	addr := fs.String("addr", "", "host:port of the server")
	caFile := fs.String("ca-file", "", "CA certificate (PEM) to verify the server with")
	serverName := fs.String("server-name", "mx.loadrun.test", "name to verify the certificate against")
	n := fs.Int("n", 100, "dialogs, one after another")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the dialogs to this file, to hold against the exporter's (/debug/pprof/profile)")
	every := fs.Duration("every", 0, "start a dialog this often, each in its own goroutine, instead of back to back: the pace of the exporter's scheduler, to compare its CPU per probe with (a dialog costs more CPU when dialogs are spread out: caches go cold, the runtime parks and wakes)")
	return func() error {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return errors.New("no certificate in " + *caFile)
		}
		cfg := &tls.Config{RootCAs: pool, ServerName: *serverName}
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		before := cpuSelf()
		start := time.Now()
		if *every > 0 {
			err = pacedDialogs(ctx, *n, *every, func() error { return bareDialog(ctx, *addr, cfg) })
		} else {
			for i := range *n {
				if err = bareDialog(ctx, *addr, cfg); err != nil {
					err = fmt.Errorf("dialog %d: %w", i, err)
					break
				}
			}
		}
		if err != nil {
			return err
		}
		cpu := cpuSelf() - before
		fmt.Fprintf(stdout, "dialogs %d\nwall_seconds %.3f\ncpu_microseconds %d\n",
			*n, time.Since(start).Seconds(), cpu.Microseconds())
		return nil
	}
}

// pacedDialogs starts dialog n times, every apart, and waits for all of
// them; the first error wins.
func pacedDialogs(ctx context.Context, n int, every time.Duration, dialog func() error) error {
	t := time.NewTicker(every)
	defer t.Stop()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	defer wg.Wait()
	for i := range n {
		if i > 0 {
			select {
			case <-t.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := dialog(); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("dialog %d: %w", i, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func bareDialog(ctx context.Context, addr string, cfg *tls.Config) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return err
	}
	tp := textproto.NewConn(c)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return err
	}
	if _, err := cmd(tp, 250, "EHLO bare.loadrun.test"); err != nil {
		return err
	}
	if _, err := cmd(tp, 220, "STARTTLS"); err != nil {
		return err
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	tp = textproto.NewConn(tc)
	if _, err := cmd(tp, 250, "EHLO bare.loadrun.test"); err != nil {
		return err
	}
	if _, err := cmd(tp, 221, "QUIT"); err != nil {
		return err
	}
	// Closing the TLS connection, not only the socket, sends close_notify,
	// as net/smtp's Client.Close, Postfix and the exporter's probe do.
	return tc.Close()
}

func cmd(tp *textproto.Conn, code int, line string) (string, error) {
	id, err := tp.Cmd("%s", line)
	if err != nil {
		return "", err
	}
	tp.StartResponse(id)
	defer tp.EndResponse(id)
	_, msg, err := tp.ReadResponse(code)
	return msg, err
}

// cpuSelf is this process's user plus system CPU time.
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
