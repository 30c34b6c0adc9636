package main

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/coreos/go-systemd/v22/activation"
	"github.com/mdlayher/vsock"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/smtp-exporter/smtp_exporter/collector"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
)

// webLimits bound what web clients can hold. Without them, idle keep-alive
// and slow clients keep their connections for good, and the descriptors
// they hold are the ones probes need to connect: every target would fail
// with "too many open files", a false "all targets down".
//
// The open-files limit itself needs no raising here: since Go 1.19 a
// program raises its soft RLIMIT_NOFILE to the hard limit at start.
type webLimits struct {
	maxConns                               *int
	readTimeout, writeTimeout, idleTimeout *time.Duration
}

func addWebLimitFlags(cmd *kingpin.CmdClause) *webLimits {
	return &webLimits{
		maxConns: cmd.Flag("web.max-connections", "Most web connections open at once; beyond it idle ones are closed to make room, and new ones wait.").Default("512").Int(),
		readTimeout: cmd.Flag("web.read-timeout", "Most time to read a request, body included (the headers: at most 10s).").
			Default("30s").Duration(),
		writeTimeout: cmd.Flag("web.write-timeout", "Most time to answer a request once read; /probe gets twice the longest configured probe timeout on top.").
			Default("60s").Duration(),
		idleTimeout: cmd.Flag("web.idle-timeout", "How long an idle keep-alive connection stays open.").Default("2m").Duration(),
	}
}

// server returns the web server for handler with the limits' timeouts.
func (wl *webLimits) server(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: min(10*time.Second, *wl.readTimeout),
		ReadTimeout:       *wl.readTimeout,
		WriteTimeout:      *wl.writeTimeout,
		IdleTimeout:       *wl.idleTimeout,
	}
}

// probeDeadlines gives each /probe request the time its probe may take on
// top of the write timeout, read from the running configuration so that a
// reload that lengthens a timeout is followed. The read deadline moves too:
// net/http cancels a request's context when it passes, even after the
// request was read, which would abandon the probe.
func (wl *webLimits) probeDeadlines(sc *collector.SafeConfig, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The probe, and before it the wait for the target's scheduled
		// run, which takes as long at most.
		deadline := time.Now().Add(*wl.writeTimeout + 2*longestProbeTimeout(sc.Get()))
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(deadline)
		rc.SetWriteDeadline(deadline)
		next.ServeHTTP(w, r)
	})
}

// longestProbeTimeout is the longest timeout of any module or target.
func longestProbeTimeout(cfg *config.Config) time.Duration {
	var longest time.Duration
	if cfg == nil {
		return 0
	}
	for _, m := range cfg.Modules {
		longest = max(longest, m.Timeout)
	}
	for _, t := range cfg.Targets {
		longest = max(longest, t.Timeout)
	}
	return longest
}

// listenAndServe is web.ListenAndServe (listen addresses, vsock, systemd
// socket activation; TLS and basic auth from the web config file) with
// every listener under one connection cap.
func (wl *webLimits) listenAndServe(srv *http.Server, flags *web.FlagConfig, logger *slog.Logger) error {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	switch {
	case flags.WebSystemdSocket != nil && *flags.WebSystemdSocket:
		logger.Info("Listening on systemd activated listeners instead of port listeners.")
		ls, err := activation.Listeners()
		if err != nil {
			return err
		}
		for _, l := range ls {
			if l != nil {
				listeners = append(listeners, l)
			}
		}
		if len(listeners) == 0 {
			return errors.New("no socket activation file descriptors found")
		}
	case flags.WebListenAddresses == nil || len(*flags.WebListenAddresses) == 0:
		return web.ErrNoListeners
	default:
		for _, address := range *flags.WebListenAddresses {
			l, err := listen(address)
			if err != nil {
				return err
			}
			listeners = append(listeners, l)
		}
	}
	limiter := newConnLimiter(*wl.maxConns)
	srv.ConnState = limiter.track
	limited := make([]net.Listener, len(listeners))
	for i, l := range listeners {
		limited[i] = limiter.listener(l)
	}
	return web.ServeMultiple(limited, srv, flags, logger)
}

func listen(address string) (net.Listener, error) {
	if !strings.HasPrefix(address, "vsock://") {
		return net.Listen("tcp", address)
	}
	u, err := url.Parse(address)
	if err != nil {
		return nil, err
	}
	_, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, err
	}
	p, err := strconv.ParseUint(port, 10, 32)
	if err != nil {
		return nil, err
	}
	return vsock.Listen(uint32(p), nil)
}

// connLimiter holds the web server's connections, on every listener, to at
// most max. A new connection beyond it closes the one idle the longest (a
// keep-alive client reconnects when it needs to), else the oldest that has
// not sent a request yet, and waits only when every connection is busy
// with a request: a scrape is never stuck behind clients that do nothing.
type connLimiter struct {
	max int

	mu    sync.Mutex
	freed *sync.Cond // a connection or a listener closed
	conns map[*limitedConn]struct{}
}

func newConnLimiter(n int) *connLimiter {
	lim := &connLimiter{max: max(n, 1), conns: map[*limitedConn]struct{}{}}
	lim.freed = sync.NewCond(&lim.mu)
	return lim
}

type limitedListener struct {
	net.Listener
	lim    *connLimiter
	closed bool // guarded by lim.mu
}

// limitedConn is a connection the limiter counts until it is closed.
type limitedConn struct {
	net.Conn
	lim  *connLimiter
	once sync.Once
	// Guarded by lim.mu: the server's view of the connection, and since
	// when.
	state http.ConnState
	since time.Time
}

func (lim *connLimiter) listener(l net.Listener) net.Listener {
	return &limitedListener{Listener: l, lim: lim}
}

func (l *limitedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lim := l.lim
	lim.mu.Lock()
	defer lim.mu.Unlock()
	for len(lim.conns) >= lim.max {
		if l.closed {
			c.Close()
			return nil, net.ErrClosed
		}
		if v := lim.victim(); v != nil {
			delete(lim.conns, v)
			v.Conn.Close()
			continue
		}
		lim.freed.Wait()
	}
	lc := &limitedConn{Conn: c, lim: lim, state: http.StateNew, since: time.Now()}
	lim.conns[lc] = struct{}{}
	return lc, nil
}

func (l *limitedListener) Close() error {
	l.lim.mu.Lock()
	l.closed = true
	l.lim.freed.Broadcast()
	l.lim.mu.Unlock()
	return l.Listener.Close()
}

// victim is the connection to close for a new one, or nil when all are
// busy. The caller holds lim.mu.
func (lim *connLimiter) victim() *limitedConn {
	var idle, fresh *limitedConn
	for c := range lim.conns {
		switch c.state {
		case http.StateIdle:
			if idle == nil || c.since.Before(idle.since) {
				idle = c
			}
		case http.StateNew:
			if fresh == nil || c.since.Before(fresh.since) {
				fresh = c
			}
		}
	}
	if idle != nil {
		return idle
	}
	return fresh
}

// track is the server's ConnState hook.
func (lim *connLimiter) track(c net.Conn, state http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	lim.mu.Lock()
	defer lim.mu.Unlock()
	lc.state, lc.since = state, time.Now()
	if state == http.StateIdle {
		lim.freed.Broadcast() // a waiting Accept may close it
	}
}

func (c *limitedConn) Close() error {
	c.once.Do(func() {
		c.lim.mu.Lock()
		delete(c.lim.conns, c)
		c.lim.freed.Broadcast()
		c.lim.mu.Unlock()
	})
	return c.Conn.Close()
}
