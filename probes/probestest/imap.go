package probestest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap"
	imapbackend "github.com/emersion/go-imap/backend"
	"github.com/emersion/go-imap/backend/memory"
	"github.com/emersion/go-imap/responses"
	"github.com/emersion/go-imap/server"
	"github.com/emersion/go-sasl"
)

// IMAPOptions configures an in-memory IMAP server (go-imap v1's memory
// backend behind its server).
type IMAPOptions struct {
	// Username and Password log in with LOGIN or AUTHENTICATE PLAIN;
	// Token with AUTHENTICATE XOAUTH2.
	Username, Password, Token string
	// TLS is "", "implicit" or "starttls", with Cert (self-signed for
	// 127.0.0.1 and localhost by default).
	TLS  string
	Cert *tls.Certificate
	// Folders are created besides INBOX, each with its attributes (such
	// as `\Junk`).
	Folders map[string][]string
	// SpecialUse advertises SPECIAL-USE (RFC 6154), UIDPlus UIDPLUS with
	// UID EXPUNGE (RFC 4315).
	SpecialUse, UIDPlus bool
	// NoIDLE hides IDLE from CAPABILITY once logged in.
	NoIDLE bool
	// Push sends EXISTS to the sessions idling on a folder when Deliver
	// adds a message to it. Without TLS only.
	Push bool
}

// IMAPServer is a running in-memory IMAP server. Its INBOX starts with one
// message that is not a probe's.
type IMAPServer struct {
	Addr string
	opts IMAPOptions
	mu   sync.Mutex
	user imapbackend.User // the memory backend's
	srv  *server.Server
	// conns are the sessions Push watches.
	conns []*pushConn
}

// NewIMAPServer starts a server on loopback, stopped at the test's end.
func NewIMAPServer(t testing.TB, opts IMAPOptions) *IMAPServer {
	t.Helper()
	if opts.Username == "" {
		opts.Username = "probe@example.org"
	}
	mem := memory.New()
	user, err := mem.Login(nil, "username", "password")
	if err != nil {
		t.Fatal(err)
	}
	for name := range opts.Folders {
		if err := user.CreateMailbox(name); err != nil {
			t.Fatal(err)
		}
	}
	s := &IMAPServer{opts: opts, user: user}
	srv := server.New(&imapBackend{s: s})
	srv.AllowInsecureAuth = true
	// Discarded: a connection's goroutine may log after the test ended.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.EnableAuth("XOAUTH2", func(c server.Conn) sasl.Server {
		return NewXOAuth2Server(func(user, token string) error {
			if opts.Token == "" || user != opts.Username || token != opts.Token {
				return errors.New("invalid token")
			}
			ctx := c.Context()
			ctx.User = &lockedUser{s: s}
			ctx.State = imap.AuthenticatedState
			return nil
		})
	})
	srv.Enable(&imapExtension{s: s})
	s.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.TLS != "" {
		cert := opts.Cert
		if cert == nil {
			c := SelfSigned(t, "127.0.0.1", "localhost")
			cert = &c
		}
		cfg := ServerTLSConfig(*cert)
		if opts.TLS == "implicit" {
			ln = tls.NewListener(ln, cfg)
		} else {
			srv.TLSConfig = cfg
		}
	}
	if opts.Push {
		if opts.TLS != "" {
			t.Fatal("IMAPOptions.Push works without TLS only")
		}
		ln = &pushListener{Listener: ln, s: s}
	}
	s.Addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
		// Serve returns when the listener closes; the connections'
		// goroutines end once srv.Close has closed them.
		waitIMAPConns(srv)
	})
	return s
}

func waitIMAPConns(srv *server.Server) {
	for range 200 {
		n := 0
		srv.ForEachConn(func(server.Conn) { n++ })
		if n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Deliver adds a message to folder, as a mail server's delivery agent
// would, and returns its UID.
func (s *IMAPServer) Deliver(t testing.TB, folder, raw string, date time.Time) uint32 {
	t.Helper()
	s.mu.Lock()
	mbox, err := s.user.GetMailbox(folder)
	if err != nil {
		s.mu.Unlock()
		t.Fatalf("deliver to %q: %v", folder, err)
	}
	if err := mbox.CreateMessage(nil, date, bytes.NewBufferString(raw)); err != nil {
		s.mu.Unlock()
		t.Fatal(err)
	}
	msgs := mbox.(*memory.Mailbox).Messages
	uid := msgs[len(msgs)-1].Uid
	exists := fmt.Sprintf("* %d EXISTS\r\n", len(msgs))
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	for _, c := range conns {
		c.push(folder, exists)
	}
	return uid
}

// pushListener watches what each client sends, to know which sessions
// idle on which folder: go-imap's own way to push updates (a backend's
// Updates) reads the sessions' state without locking, a data race.
type pushListener struct {
	net.Listener
	s *IMAPServer
}

func (l *pushListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pc := &pushConn{Conn: c}
	l.s.mu.Lock()
	l.s.conns = append(l.s.conns, pc)
	l.s.mu.Unlock()
	return pc, nil
}

type pushConn struct {
	net.Conn
	mu     sync.Mutex
	line   []byte
	folder string
	idling bool
}

func (c *pushConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range p[:n] {
		if b != '\n' {
			c.line = append(c.line, b)
			continue
		}
		f := strings.Fields(string(c.line))
		c.line = c.line[:0]
		switch {
		case len(f) == 1 && strings.EqualFold(f[0], "DONE"):
			c.idling = false
		case len(f) == 2 && strings.EqualFold(f[1], "IDLE"):
			c.idling = true
		case len(f) == 3 && (strings.EqualFold(f[1], "SELECT") || strings.EqualFold(f[1], "EXAMINE")):
			c.folder = strings.Trim(f[2], `"`)
		}
	}
	return n, err
}

// push writes an untagged response to a session idling on folder: while
// it idles, the server itself writes nothing that it could interleave with.
func (c *pushConn) push(folder, resp string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idling && c.folder == folder {
		_, _ = io.WriteString(c.Conn, resp)
	}
}

// IMAPMessage is a stored message as a test sees it.
type IMAPMessage struct {
	UID   uint32
	Flags []string
	Body  string
}

// Messages returns the messages of folder.
func (s *IMAPServer) Messages(t testing.TB, folder string) []IMAPMessage {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	mbox, err := s.user.GetMailbox(folder)
	if err != nil {
		t.Fatalf("folder %q: %v", folder, err)
	}
	var out []IMAPMessage
	for _, m := range mbox.(*memory.Mailbox).Messages {
		out = append(out, IMAPMessage{UID: m.Uid, Flags: slices.Clone(m.Flags), Body: string(m.Body)})
	}
	return out
}

// Flag sets flags on a message, as another client of the mailbox would.
func (s *IMAPServer) Flag(t testing.TB, folder string, uid uint32, flags ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	mbox, err := s.user.GetMailbox(folder)
	if err != nil {
		t.Fatal(err)
	}
	seq := new(imap.SeqSet)
	seq.AddNum(uid)
	if err := mbox.UpdateMessagesFlags(true, seq, imap.AddFlags, flags); err != nil {
		t.Fatal(err)
	}
}

// imapBackend serialises every access to the memory backend, which has no
// locking of its own, and adds the folders' attributes.
type imapBackend struct{ s *IMAPServer }

func (b *imapBackend) Login(_ *imap.ConnInfo, username, password string) (imapbackend.User, error) {
	o := b.s.opts
	if username != o.Username || o.Password == "" || password != o.Password {
		return nil, errors.New("invalid credentials")
	}
	return &lockedUser{s: b.s}, nil
}

type lockedUser struct{ s *IMAPServer }

func (u *lockedUser) Username() string { return "username" }

func (u *lockedUser) ListMailboxes(subscribed bool) ([]imapbackend.Mailbox, error) {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	list, err := u.s.user.ListMailboxes(subscribed)
	out := make([]imapbackend.Mailbox, len(list))
	for i, m := range list {
		out[i] = &lockedMailbox{Mailbox: m, s: u.s}
	}
	return out, err
}

func (u *lockedUser) GetMailbox(name string) (imapbackend.Mailbox, error) {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	m, err := u.s.user.GetMailbox(name)
	if err != nil {
		return nil, err
	}
	return &lockedMailbox{Mailbox: m, s: u.s}, nil
}

func (u *lockedUser) CreateMailbox(string) error         { return errors.New("read-only test server") }
func (u *lockedUser) DeleteMailbox(string) error         { return errors.New("read-only test server") }
func (u *lockedUser) RenameMailbox(string, string) error { return errors.New("read-only test server") }
func (u *lockedUser) Logout() error                      { return nil }

type lockedMailbox struct {
	imapbackend.Mailbox
	s *IMAPServer
}

func (m *lockedMailbox) Info() (*imap.MailboxInfo, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	info, err := m.Mailbox.Info()
	if err == nil {
		info.Attributes = append(info.Attributes, m.s.opts.Folders[m.Name()]...)
	}
	return info, err
}

func (m *lockedMailbox) Status(items []imap.StatusItem) (*imap.MailboxStatus, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return m.Mailbox.Status(items)
}

func (m *lockedMailbox) ListMessages(uid bool, seq *imap.SeqSet, items []imap.FetchItem, ch chan<- *imap.Message) error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return m.Mailbox.ListMessages(uid, seq, items, ch)
}

func (m *lockedMailbox) SearchMessages(uid bool, c *imap.SearchCriteria) ([]uint32, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return m.Mailbox.SearchMessages(uid, c)
}

func (m *lockedMailbox) CreateMessage(flags []string, date time.Time, body imap.Literal) error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return m.Mailbox.CreateMessage(flags, date, body)
}

func (m *lockedMailbox) UpdateMessagesFlags(uid bool, seq *imap.SeqSet, op imap.FlagsOp, flags []string) error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return m.Mailbox.UpdateMessagesFlags(uid, seq, op, flags)
}

func (m *lockedMailbox) CopyMessages(uid bool, seq *imap.SeqSet, dest string) error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return m.Mailbox.CopyMessages(uid, seq, dest)
}

func (m *lockedMailbox) Expunge() error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return m.Mailbox.Expunge()
}

// expungeUIDs removes the given messages if flagged \Deleted (UID
// EXPUNGE) and returns their sequence numbers, highest first.
func (m *lockedMailbox) expungeUIDs(set *imap.SeqSet) []uint32 {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	mem := m.Mailbox.(*memory.Mailbox)
	var seqs []uint32
	for i := len(mem.Messages) - 1; i >= 0; i-- {
		msg := mem.Messages[i]
		if set.Contains(msg.Uid) && slices.Contains(msg.Flags, imap.DeletedFlag) {
			mem.Messages = slices.Delete(mem.Messages, i, i+1)
			seqs = append(seqs, uint32(i+1))
		}
	}
	return seqs
}

// imapExtension adds the options' capabilities and UID EXPUNGE.
type imapExtension struct{ s *IMAPServer }

func (e *imapExtension) Capabilities(server.Conn) []string {
	var caps []string
	if e.s.opts.SpecialUse {
		caps = append(caps, "SPECIAL-USE")
	}
	if e.s.opts.UIDPlus {
		caps = append(caps, "UIDPLUS")
	}
	return caps
}

func (e *imapExtension) Command(name string) server.HandlerFactory {
	if name == "EXPUNGE" && e.s.opts.UIDPlus {
		return func() server.Handler { return &uidExpunge{} }
	}
	return nil
}

func (e *imapExtension) NewConn(c server.Conn) server.Conn {
	if e.s.opts.NoIDLE {
		return noIdleConn{c}
	}
	return c
}

type noIdleConn struct{ server.Conn }

func (c noIdleConn) Capabilities() []string {
	return slices.DeleteFunc(c.Conn.Capabilities(), func(s string) bool { return s == "IDLE" })
}

// uidExpunge is EXPUNGE, and with UID the RFC 4315 UID EXPUNGE.
type uidExpunge struct {
	server.Expunge
	set *imap.SeqSet
}

func (h *uidExpunge) Parse(fields []any) error {
	if len(fields) == 0 {
		return nil
	}
	s, ok := fields[0].(string)
	if !ok {
		return errors.New("UID EXPUNGE wants a UID set")
	}
	set, err := imap.ParseSeqSet(s)
	h.set = set
	return err
}

func (h *uidExpunge) UidHandle(conn server.Conn) error {
	mbox, ok := conn.Context().Mailbox.(*lockedMailbox)
	if !ok || h.set == nil {
		return errors.New("no mailbox selected or no UID set")
	}
	seqs := mbox.expungeUIDs(h.set)
	ch := make(chan uint32, len(seqs))
	for _, n := range seqs {
		ch <- n
	}
	close(ch)
	return conn.WriteResp(&responses.Expunge{SeqNums: ch})
}
