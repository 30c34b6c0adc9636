// Command smtp-loadserver is the other end of scripts/loadrun.sh: a cheap
// SMTP server with STARTTLS that holds thousands of connections, optionally
// with a postscreen-like slow greeting, plus the client-side helpers the
// script needs without curl or awk (a free port, a summarised /metrics
// scrape, a run of /probe requests, and a bare STARTTLS client to compare
// /probe against). It runs in its own process so that its CPU is never
// counted as the exporter's.
//
//	smtp-loadserver serve -listen 127.0.30.1:0 -addr-file A -ca-file C [-banner-delay 6s]
//	smtp-loadserver freeport -host 127.0.30.1
//	smtp-loadserver scrape -url http://127.0.30.1:PORT/metrics
//	smtp-loadserver get -url 'http://.../probe?target=t0' -n 500
//	smtp-loadserver bare -addr HOST:PORT -ca-file C -server-name S -n 500
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: smtp-loadserver serve|freeport|scrape|get|bare [flags]")
		return 2
	}
	fs := flag.NewFlagSet("smtp-loadserver "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cmd func() error
	switch args[0] {
	case "serve":
		cmd = serveCmd(ctx, fs, stderr)
	case "freeport":
		cmd = freeportCmd(fs, stdout)
	case "scrape":
		cmd = scrapeCmd(ctx, fs, stdout)
	case "get":
		cmd = getCmd(ctx, fs, stdout)
	case "bare":
		cmd = bareCmd(ctx, fs, stdout)
	default:
		fmt.Fprintf(stderr, "smtp-loadserver: unknown command %q\n", args[0])
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if err := cmd(); err != nil {
		fmt.Fprintf(stderr, "smtp-loadserver %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
