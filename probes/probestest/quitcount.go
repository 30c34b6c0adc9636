package probestest

import (
	"crypto/tls"
	"strings"
	"sync"
	"testing"
	"time"
)

// Pause, inside a QuitServer reply, makes the server flush what comes
// before it, signal the "PAUSE" event and wait PauseFor before sending the
// rest: a reply cut mid-line or between the lines of a multi-line reply.
const Pause = "\x00pause\x00"

// QuitOptions configures a QuitServer.
type QuitOptions struct {
	// LMTP answers LHLO and sends one reply per recipient after the
	// message; otherwise the server speaks SMTP.
	LMTP bool
	// TLS, when set, offers STARTTLS and upgrades after its 220.
	TLS *tls.Config
	// Delays holds how long the server waits before answering a verb
	// (upper case: "EHLO", "MAIL", "RCPT", "DATA", ...), "BANNER" for the
	// greeting and "DOT" for the reply after the message. Every wait ends
	// early when the server shuts down.
	Delays map[string]time.Duration
	// Replies overrides the reply to a verb (same keys as Delays); lines
	// are joined with "\r\n" and may hold Pause.
	Replies map[string]string
	// PauseFor is how long a Pause lasts.
	PauseFor time.Duration
	// Event, when set, is called from the connection's goroutine on
	// "CONNECT" (before the banner's delay), on every command received
	// (its verb, before the command's delay) and on "PAUSE". Tests use it
	// to cancel a probe at a known point of the dialog.
	Event func(event string)
}

// Session is how one connection to a QuitServer went, as the server saw it.
type Session struct {
	// Commands are the verbs received, in order ("." for the end of a
	// message).
	Commands []string
	// Quit is set when the client sent QUIT.
	Quit bool
	// Reset is set when an RSET closed a transaction that was open
	// (between an accepted MAIL and the reply after the message).
	Reset bool
	// OpenTx is set when the session ended (QUIT or hang-up) with a
	// transaction still open.
	OpenTx bool
}

// QuitServer is a well-behaved SMTP or LMTP server that can be slow at any
// point of the dialog and records, per connection, whether the client
// ended the session with QUIT (and RSET before it when a transaction was
// open): what "a monitor must never hurt its target" means on the wire.
type QuitServer struct {
	*ScriptServer

	opts  QuitOptions
	mu    sync.Mutex
	ended []Session
	added chan struct{} // signalled (without blocking) when a session ends
}

// NewQuitServer starts a QuitServer on 127.0.0.1:0; cleanup as for
// NewScriptServer.
func NewQuitServer(t testing.TB, opts QuitOptions) *QuitServer {
	t.Helper()
	q := &QuitServer{opts: opts, added: make(chan struct{}, 1)}
	q.ScriptServer = NewScriptServer(t, q.serve)
	return q
}

// Sessions returns the sessions that have ended so far.
func (q *QuitServer) Sessions() []Session {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]Session(nil), q.ended...)
}

// WaitSessions waits until n sessions have ended, or fails the test after
// timeout, and returns them.
func (q *QuitServer) WaitSessions(t testing.TB, n int, timeout time.Duration) []Session {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		if s := q.Sessions(); len(s) >= n {
			return s
		}
		select {
		case <-q.added:
		case <-timer.C:
			t.Fatalf("probestest: %d session(s) ended within %s, want %d: %+v", len(q.Sessions()), timeout, n, q.Sessions())
			return nil
		}
	}
}

func (q *QuitServer) serve(c *Conn) {
	var sess Session
	defer func() {
		q.mu.Lock()
		q.ended = append(q.ended, sess)
		q.mu.Unlock()
		select {
		case q.added <- struct{}{}:
		default:
		}
	}()
	inTx := false
	rcpts := 0
	tlsActive := false
	defer func() { sess.OpenTx = inTx }()
	q.event("CONNECT")
	if !q.answer(c, "BANNER", "220 quit.test ESMTP probestest") {
		return
	}
	for {
		line, err := c.ReadLine()
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		sess.Commands = append(sess.Commands, verb)
		q.event(verb)
		switch verb {
		case "EHLO", "LHLO", "HELO":
			ext := []string{"250-quit.test", "250-PIPELINING", "250-SIZE 10240000"}
			if q.opts.TLS != nil && !tlsActive {
				ext = append(ext, "250-STARTTLS")
			}
			ext = append(ext, "250-8BITMIME", "250 ENHANCEDSTATUSCODES")
			if !q.answer(c, verb, strings.Join(ext, "\r\n")) {
				return
			}
		case "STARTTLS":
			if q.opts.TLS == nil || tlsActive {
				if !q.answer(c, verb, "502 5.5.2 Error: command not recognized") {
					return
				}
				continue
			}
			if !q.answer(c, verb, "220 2.0.0 Ready to start TLS") || c.StartTLS(q.opts.TLS) != nil {
				return
			}
			tlsActive = true
		case "MAIL":
			if !q.answer(c, verb, "250 2.1.0 Ok") {
				return
			}
			inTx, rcpts = true, 0
		case "RCPT":
			if !q.answer(c, verb, "250 2.1.5 Ok") {
				return
			}
			rcpts++
		case "DATA":
			if !q.answer(c, verb, "354 End data with <CR><LF>.<CR><LF>") {
				return
			}
			for {
				l, err := c.ReadLine()
				if err != nil {
					return
				}
				if l == "." {
					break
				}
			}
			sess.Commands = append(sess.Commands, ".")
			q.event("DOT")
			n := 1
			if q.opts.LMTP {
				n = rcpts
			}
			replies := make([]string, n)
			for i := range replies {
				replies[i] = "250 2.0.0 Ok: queued as QUIT1"
			}
			if !q.answer(c, "DOT", strings.Join(replies, "\r\n")) {
				return
			}
			inTx = false
		case "RSET":
			if inTx {
				sess.Reset = true
			}
			inTx = false
			if !q.answer(c, verb, "250 2.0.0 Ok") {
				return
			}
		case "QUIT":
			sess.Quit = true
			q.answer(c, verb, "221 2.0.0 Bye")
			return
		default:
			if !q.answer(c, verb, "502 5.5.2 Error: command not recognized") {
				return
			}
		}
	}
}

func (q *QuitServer) event(e string) {
	if q.opts.Event != nil {
		q.opts.Event(e)
	}
}

// answer waits the key's delay, then sends its reply (or the override),
// pausing where the reply holds Pause. It reports false when the server
// is shutting down.
func (q *QuitServer) answer(c *Conn, key, reply string) bool {
	if d := q.opts.Delays[key]; d > 0 && !c.Sleep(d) {
		return false
	}
	if r, ok := q.opts.Replies[key]; ok {
		reply = r
	}
	parts := strings.Split(reply+"\r\n", Pause)
	for i, p := range parts {
		if i > 0 {
			q.event("PAUSE")
			if !c.Sleep(q.opts.PauseFor) {
				return false
			}
		}
		c.SendRaw([]byte(p))
	}
	return true
}
