package probes

import (
	"context"
	"net"
)

// Limiter bounds work that needs CPU rather than waiting, the TLS
// handshake: a thousand probes may wait on slow servers at once, but a
// thousand handshakes computing at once would each take a thousand times
// longer and time out together. A nil *Limiter limits nothing.
type Limiter struct{ permits chan struct{} }

// NewLimiter returns a limiter of n permits (at least 1).
func NewLimiter(n int) *Limiter { return &Limiter{permits: make(chan struct{}, max(n, 1))} }

func (l *Limiter) acquire(ctx context.Context) error {
	select {
	case l.permits <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Limiter) release() { <-l.permits }

type limiterKey struct{}

// WithLimiter returns a context whose probes run their TLS handshakes
// under l (LimitHandshake). The scheduler sets it; without one, as in the
// probe command, handshakes are not limited.
func WithLimiter(ctx context.Context, l *Limiter) context.Context {
	if l == nil {
		return ctx
	}
	return context.WithValue(ctx, limiterKey{}, l)
}

// LimitHandshake returns conn for a TLS handshake to run on, which holds a
// permit of ctx's limiter only while the handshake computes: it gives the
// permit back while it waits for the server to send, and takes one again,
// waiting in turn, when data came. A server that stalls mid-handshake thus
// holds no permit. done ends the limiting, before the dialog goes on over
// the connection; call it when the handshake returns. Without a limiter
// in ctx (or without a ctx), conn comes back as it is.
func LimitHandshake(ctx context.Context, conn net.Conn) (limited net.Conn, done func()) {
	var l *Limiter
	if ctx != nil {
		l, _ = ctx.Value(limiterKey{}).(*Limiter)
	}
	if l == nil {
		return conn, func() {}
	}
	c := &limitedConn{Conn: conn, ctx: ctx, l: l, limiting: true}
	return c, c.done
}

// limitedConn is LimitHandshake's conn. The handshake reads and done are
// called by one goroutine, the probe's.
type limitedConn struct {
	net.Conn
	ctx            context.Context
	l              *Limiter
	limiting, held bool
}

func (c *limitedConn) Read(p []byte) (int, error) {
	if !c.limiting {
		return c.Conn.Read(p)
	}
	if c.held {
		c.l.release()
		c.held = false
	}
	n, err := c.Conn.Read(p)
	if err != nil {
		return n, err
	}
	if err := c.l.acquire(c.ctx); err != nil {
		return n, err
	}
	c.held = true
	return n, nil
}

func (c *limitedConn) done() {
	if c.held {
		c.l.release()
		c.held = false
	}
	c.limiting = false
}
