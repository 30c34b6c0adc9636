package probestest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// ScriptServer is a raw TCP server whose every connection is driven by a
// handler, for servers that misbehave in ways a real SMTP library would not
// allow: wrong codes, truncated replies, stalls, hang-ups mid-dialog.
type ScriptServer struct {
	// Addr is "127.0.0.1:port".
	Addr string

	listener net.Listener
	handler  func(c *Conn)
	done     chan struct{}
	wg       sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	conns    map[net.Conn]struct{}
	accepted int
	received []string
}

// NewScriptServer starts a server running handler for each connection and
// closes the connection when handler returns. Cleanup closes the listener
// and every open connection, which unblocks handlers stuck in reads, and
// then waits for all handlers so no goroutine outlives the test.
func NewScriptServer(t testing.TB, handler func(c *Conn)) *ScriptServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("probestest: listen: %v", err)
	}
	s := &ScriptServer{
		Addr:     l.Addr().String(),
		listener: l,
		handler:  handler,
		done:     make(chan struct{}),
		conns:    make(map[net.Conn]struct{}),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(s.close)
	return s
}

// Received returns every line any handler has read, in the order read.
func (s *ScriptServer) Received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.received...)
}

// Connections returns how many connections have been accepted, so tests can
// check that a probe reconnected or did not.
func (s *ScriptServer) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

func (s *ScriptServer) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.listener.Accept()
		if err != nil {
			return
		}
		if !s.track(nc) {
			nc.Close()
			return
		}
		go s.serve(nc)
	}
}

// track registers the connection and its handler goroutine under the same
// lock close takes, so close never misses a connection accepted while it
// was shutting down and wg.Add never races wg.Wait.
func (s *ScriptServer) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[nc] = struct{}{}
	s.accepted++
	s.wg.Add(1)
	return true
}

func (s *ScriptServer) serve(nc net.Conn) {
	defer s.wg.Done()
	defer func() {
		nc.Close()
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
	}()
	c := &Conn{raw: nc, conn: nc, r: bufio.NewReader(nc), server: s}
	s.handler(c)
}

func (s *ScriptServer) record(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = append(s.received, line)
}

func (s *ScriptServer) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.listener.Close()
	s.wg.Wait()
}

// Conn is one server-side connection of a ScriptServer. It is used only by
// the handler goroutine that received it.
type Conn struct {
	raw    net.Conn // the TCP connection, closed on shutdown even after StartTLS
	conn   net.Conn // what I/O goes over: raw, or a *tls.Conn on top of it
	r      *bufio.Reader
	server *ScriptServer
}

// Send writes each line followed by CRLF. Write errors are ignored because a
// hostile server does not care whether the client is still listening; the
// next ReadLine reports the broken connection.
func (c *Conn) Send(lines ...string) {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	c.SendRaw([]byte(b.String()))
}

// SendRaw writes b as is, for bare LFs, partial lines and binary junk.
func (c *Conn) SendRaw(b []byte) {
	_, _ = c.conn.Write(b)
}

// ReadLine reads one line and strips the trailing CRLF (or bare LF). The
// line is recorded in the server's Received list. A final line without a
// newline is returned together with the error that ended it.
func (c *Conn) ReadLine() (string, error) {
	line, err := c.r.ReadString('\n')
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if err == nil || line != "" {
		c.server.record(line)
	}
	return line, err
}

// Expect reads a line and reports whether it starts with prefix, ignoring
// case since SMTP verbs are case-insensitive.
func (c *Conn) Expect(prefix string) (string, bool) {
	line, err := c.ReadLine()
	if err != nil {
		return line, false
	}
	return line, len(line) >= len(prefix) && strings.EqualFold(line[:len(prefix)], prefix)
}

// StartTLS performs a server-side TLS handshake on the connection; all later
// I/O goes over TLS. Call it straight after accepting for implicit TLS.
func (c *Conn) StartTLS(cfg *tls.Config) error {
	if c.r.Buffered() > 0 {
		// Bytes pipelined after STARTTLS would be read as plaintext by us
		// but are TLS records to the client: a real server must refuse
		// (RFC 3207 §4.2 / CVE-2011-0411 STARTTLS command injection).
		return errors.New("probestest: plaintext data buffered before TLS handshake")
	}
	tc := tls.Server(c.raw, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
	return nil
}

// NetConn returns the connection I/O currently goes over (a *tls.Conn after
// StartTLS), for tests that need deadlines or connection state.
func (c *Conn) NetConn() net.Conn {
	return c.conn
}

// Done is closed when the server shuts down, so a handler that stalls or
// trickles bytes can stop instead of holding up cleanup.
func (c *Conn) Done() <-chan struct{} {
	return c.server.done
}

// Sleep waits d unless the server shuts down first, in which case it returns
// false and the handler should return.
func (c *Conn) Sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-c.server.done:
		return false
	}
}
