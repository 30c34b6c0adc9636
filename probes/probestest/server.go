package probestest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// ServerOptions configures a Server. The zero value is a plain SMTP server
// on loopback that accepts any message.
type ServerOptions struct {
	// Domain is the name in the greeting; default "mx.probestest".
	Domain string
	// TLS enables STARTTLS, or implicit TLS with ImplicitTLS.
	TLS         *tls.Certificate
	ImplicitTLS bool
	// LMTP serves LMTP: LHLO instead of EHLO and one reply per recipient
	// after DATA.
	LMTP bool
	// Users (user → password) enables AUTH PLAIN, LOGIN and CRAM-MD5.
	Users map[string]string
	// Tokens (user → bearer token) enables XOAUTH2 and OAUTHBEARER.
	Tokens map[string]string
	// AllowInsecureAuth offers and accepts AUTH without TLS.
	AllowInsecureAuth bool
	// RequireTLS answers MAIL with "530 5.7.0 Must issue a STARTTLS command
	// first" on a plaintext connection.
	RequireTLS bool
	// RequireAuth answers MAIL with "530 5.7.0 Authentication required"
	// until the client has authenticated.
	RequireAuth bool
	// MailError is returned at MAIL. As with RcptErrors and DataError, a
	// 421 closes the connection after the reply.
	MailError *smtp.SMTPError
	// RcptErrors maps a recipient address (exact match) to the error
	// returned at RCPT.
	RcptErrors map[string]*smtp.SMTPError
	// DataError is returned after the message's final ".". Over LMTP it
	// applies to every recipient without an LMTPDataErrors entry.
	DataError *smtp.SMTPError
	// LMTPDataErrors maps a recipient to its own reply after DATA; the
	// other recipients succeed.
	LMTPDataErrors map[string]*smtp.SMTPError
	// MaxMessageBytes advertises SIZE and rejects bigger messages with
	// "552 5.3.4 Maximum message size exceeded".
	MaxMessageBytes int64
}

// Message is a message the server accepted, with the sender, the recipients
// it was delivered to and the authentication in force when it was sent.
type Message struct {
	From      string
	To        []string
	Data      []byte
	AuthUser  string
	Mechanism string
}

// Server is a real SMTP (or LMTP) server built on github.com/emersion/go-smtp,
// for full, standards-following dialogs.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string

	opts      ServerOptions
	smtp      *smtp.Server
	listener  *trackingListener
	serveDone chan struct{}

	mu           sync.Mutex
	messages     []Message
	authAttempts []string
}

// NewServer starts a server on 127.0.0.1:0. Cleanup closes the listener and
// every connection and waits for go-smtp's connection goroutines to finish.
func NewServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	if opts.Domain == "" {
		opts.Domain = "mx.probestest"
	}
	if opts.ImplicitTLS && opts.TLS == nil {
		t.Fatalf("probestest: ImplicitTLS needs ServerOptions.TLS")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("probestest: listen: %v", err)
	}
	s := &Server{
		Addr:      l.Addr().String(),
		opts:      opts,
		listener:  &trackingListener{Listener: l, conns: make(map[net.Conn]struct{})},
		serveDone: make(chan struct{}),
	}
	s.smtp = smtp.NewServer(backend{s})
	s.smtp.Domain = opts.Domain
	s.smtp.LMTP = opts.LMTP
	s.smtp.AllowInsecureAuth = opts.AllowInsecureAuth
	s.smtp.MaxMessageBytes = opts.MaxMessageBytes
	s.smtp.EnableSMTPUTF8 = true
	s.smtp.ErrorLog = testLogger{t}
	// Deadlines bound how long a stuck client can hold cleanup; they are
	// far above any probe timeout a test would use.
	s.smtp.ReadTimeout = time.Minute
	s.smtp.WriteTimeout = time.Minute

	var serveOn net.Listener = s.listener
	if opts.TLS != nil {
		s.smtp.TLSConfig = ServerTLSConfig(*opts.TLS)
		if opts.ImplicitTLS {
			// go-smtp recognises the *tls.Conn this listener yields, so it
			// neither offers STARTTLS nor refuses AUTH on it.
			serveOn = tls.NewListener(s.listener, s.smtp.TLSConfig)
		}
	}
	go func() {
		defer close(s.serveDone)
		_ = s.smtp.Serve(serveOn)
	}()
	t.Cleanup(func() { s.close(t) })
	return s
}

// Messages returns a copy of the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		m.To = append([]string(nil), m.To...)
		m.Data = append([]byte(nil), m.Data...)
		out[i] = m
	}
	return out
}

// AuthAttempts returns one "MECH user ok|fail" entry per credential check,
// in order; user is "-" when the client's response could not be parsed.
func (s *Server) AuthAttempts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.authAttempts...)
}

func (s *Server) recordAuth(mech, user string, ok bool) {
	if user == "" {
		user = "-"
	}
	result := "fail"
	if ok {
		result = "ok"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authAttempts = append(s.authAttempts, fmt.Sprintf("%s %s %s", mech, user, result))
}

func (s *Server) recordMessage(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
}

// close shuts down in an order that lets us wait for go-smtp's goroutines:
// smtp.Server.Close closes connections but does not wait, and Shutdown
// waits but leaves connections open, so we close connections ourselves,
// let Serve return (so no wg.Add can race the wait), then Shutdown.
func (s *Server) close(t testing.TB) {
	s.listener.closeAll()
	<-s.serveDone
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.smtp.Shutdown(ctx); err == context.DeadlineExceeded {
		t.Errorf("probestest: SMTP server connections did not finish: %v", err)
	}
}

// trackingListener remembers accepted connections so that shutdown can
// close them, including those go-smtp has wrapped in TLS.
type trackingListener struct {
	net.Listener

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			nc.Close()
			continue
		}
		tc := &trackedConn{Conn: nc, l: l}
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		return tc, nil
	}
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	l.closed = true
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	l.Listener.Close()
	for _, c := range conns {
		c.Close()
	}
}

type trackedConn struct {
	net.Conn
	l *trackingListener

	// hangUp makes the next read report EOF, so go-smtp closes the
	// connection once it has written the current reply.
	hangUp atomic.Bool
}

func (c *trackedConn) Read(b []byte) (int, error) {
	if c.hangUp.Load() {
		return 0, io.EOF
	}
	return c.Conn.Read(b)
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// testLogger sends go-smtp's internal error log to the test log, where a
// failing test shows it and a passing one hides it.
type testLogger struct{ t testing.TB }

func (l testLogger) Printf(format string, v ...any) { l.t.Logf("go-smtp: "+format, v...) }
func (l testLogger) Println(v ...any)               { l.t.Log(append([]any{"go-smtp:"}, v...)...) }

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

// session is one go-smtp session; go-smtp starts a new one after STARTTLS,
// which is what drops authentication and the envelope on upgrade.
type session struct {
	s    *Server
	conn *smtp.Conn

	from     string
	to       []string
	authUser string
	authMech string
	checks   int // credential checks so far, so authExchange can tell if one happened
}

var (
	_ smtp.LMTPSession = (*session)(nil)
	_ smtp.AuthSession = (*session)(nil)
)

var (
	errTLSRequired = &smtp.SMTPError{
		Code:         530,
		EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message:      "Must issue a STARTTLS command first",
	}
	errAuthRequired = &smtp.SMTPError{
		Code:         530,
		EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message:      "Authentication required",
	}
)

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if _, isTLS := ss.conn.TLSConnectionState(); ss.s.opts.RequireTLS && !isTLS {
		return errTLSRequired
	}
	if ss.s.opts.RequireAuth && ss.authUser == "" {
		return errAuthRequired
	}
	if ss.s.opts.MailError != nil {
		return ss.reject(ss.s.opts.MailError)
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err, ok := ss.s.opts.RcptErrors[to]; ok && err != nil {
		return ss.reject(err)
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if ss.s.opts.DataError != nil {
		return ss.reject(ss.s.opts.DataError)
	}
	ss.deliver(data, ss.to)
	return nil
}

func (ss *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	rcptErrs := make([]error, len(ss.to))
	var delivered []string
	for i, to := range ss.to {
		if e := ss.s.opts.LMTPDataErrors[to]; e != nil {
			rcptErrs[i] = e
		} else if ss.s.opts.DataError != nil {
			rcptErrs[i] = ss.s.opts.DataError
		} else {
			delivered = append(delivered, to)
		}
	}
	// go-smtp writes each recipient's reply the moment its status is set,
	// so the message must be stored first or a client could see "250"
	// before Messages() does.
	if len(delivered) > 0 {
		ss.deliver(data, delivered)
	}
	for i, to := range ss.to {
		status.SetStatus(to, rcptErrs[i])
	}
	return nil
}

// reject returns err for go-smtp to send. go-smtp keeps the connection open
// after any reply, but RFC 5321 §3.8 has a server close after 421, and
// probes must see that, so a 421 also hangs up once the reply is written.
// Commands the client pipelined behind this one are still answered first.
func (ss *session) reject(err *smtp.SMTPError) error {
	if err.Code == 421 {
		nc := ss.conn.Conn()
		if tc, ok := nc.(*tls.Conn); ok {
			nc = tc.NetConn()
		}
		if tc, ok := nc.(*trackedConn); ok {
			tc.hangUp.Store(true)
		}
	}
	return err
}

func (ss *session) deliver(data []byte, to []string) {
	ss.s.recordMessage(Message{
		From:      ss.from,
		To:        append([]string(nil), to...),
		Data:      data,
		AuthUser:  ss.authUser,
		Mechanism: ss.authMech,
	})
}

func (ss *session) Reset() {
	ss.from = ""
	ss.to = nil
}

func (ss *session) Logout() error { return nil }

func (ss *session) AuthMechanisms() []string {
	var mechs []string
	if len(ss.s.opts.Users) > 0 {
		mechs = append(mechs, sasl.Plain, sasl.Login, CRAMMD5)
	}
	if len(ss.s.opts.Tokens) > 0 {
		mechs = append(mechs, XOAuth2, sasl.OAuthBearer)
	}
	return mechs
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	users, tokens := ss.s.opts.Users, ss.s.opts.Tokens
	if len(users) == 0 && len(tokens) == 0 {
		return nil, smtp.ErrAuthUnsupported
	}
	var inner sasl.Server
	switch {
	case mech == sasl.Plain && len(users) > 0:
		inner = sasl.NewPlainServer(func(identity, user, pass string) error {
			ok := (identity == "" || identity == user) && passwordMatches(users, user, pass)
			return ss.checked(mech, user, ok)
		})
	case mech == sasl.Login && len(users) > 0:
		inner = NewLoginServer(func(user, pass string) error {
			return ss.checked(mech, user, passwordMatches(users, user, pass))
		})
	case mech == CRAMMD5 && len(users) > 0:
		inner = NewCRAMMD5Server(ss.s.opts.Domain, func(user string, check func(password string) bool) error {
			pass, ok := users[user]
			return ss.checked(mech, user, ok && check(pass))
		})
	case mech == XOAuth2 && len(tokens) > 0:
		inner = NewXOAuth2Server(func(user, token string) error {
			return ss.checked(mech, user, passwordMatches(tokens, user, token))
		})
	case mech == sasl.OAuthBearer && len(tokens) > 0:
		inner = newOAuthBearerServer(func(user, token string) error {
			if user == "" {
				user = userForToken(tokens, token)
			}
			return ss.checked(mech, user, passwordMatches(tokens, user, token))
		})
	default:
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return &authExchange{inner: inner, session: ss, mech: mech}, nil
}

// checked records a credential check and, on success, the session's
// identity; it returns the error the mechanism should report.
func (ss *session) checked(mech, user string, ok bool) error {
	ss.checks++
	ss.s.recordAuth(mech, user, ok)
	if !ok {
		return smtp.ErrAuthFailed
	}
	ss.authUser, ss.authMech = user, mech
	return nil
}

// authExchange wraps a mechanism so that every failure reaches the client as
// 535 5.7.8 and is logged once. Without it go-smtp reports any error that
// is not an *smtp.SMTPError (go-sasl's "invalid response", an OAUTHBEARER
// rejection) as "454 4.7.0 <error text>", a temporary failure no real
// server would send for bad credentials.
type authExchange struct {
	inner   sasl.Server
	session *session
	mech    string
	checked bool // credentials were checked during this exchange
}

func (a *authExchange) Next(response []byte) ([]byte, bool, error) {
	checksBefore := a.session.checks
	challenge, done, err := a.inner.Next(response)
	a.checked = a.checked || a.session.checks != checksBefore
	if err == nil {
		return challenge, done, nil
	}
	if !a.checked {
		// A malformed response fails before any credential check; log it
		// anyway so tests can see the attempt.
		a.session.s.recordAuth(a.mech, "", false)
		a.checked = true
	}
	if _, ok := err.(*smtp.SMTPError); !ok {
		err = smtp.ErrAuthFailed
	}
	return challenge, done, err
}

func passwordMatches(secrets map[string]string, user, secret string) bool {
	want, ok := secrets[user]
	return ok && want == secret
}

func userForToken(tokens map[string]string, token string) string {
	for user, t := range tokens {
		if t == token {
			return user
		}
	}
	return ""
}
