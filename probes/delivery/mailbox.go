package delivery

// This file is the receive leg's mailbox: connecting and logging in,
// finding the watched folders, finding, waiting for and deleting probe
// messages, and leaving.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"
	"github.com/emersion/go-imap/commands"
	"github.com/emersion/go-imap/responses"
	"github.com/emersion/go-sasl"
	"github.com/go-kit/log"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

// Phases of the receive leg, defined with the others in probes/phase.go.
const (
	PhaseIMAPConnect = probes.PhaseIMAPConnect
	PhaseIMAPAuth    = probes.PhaseIMAPAuth
	PhaseWait        = probes.PhaseWait
)

// Class is where a folder stands for placement: a label value, so a fixed set.
type Class string

// Folder classes.
const (
	ClassInbox Class = "inbox"
	ClassJunk  Class = "junk"
	ClassOther Class = "other"
)

// Bounds on what a server may send, so that a hostile or broken one cannot
// make the probe buffer without end: go-imap's reader allocates a literal's
// declared size at once and grows lines and atoms as long as bytes come.
const (
	maxLine = 64 << 10 // one line outside literals
	// maxRawLine bounds the greeting and the STARTTLS dialog, read a byte
	// at a time.
	maxRawLine  = 4096
	maxLiteral  = 4 << 20 // one literal: a message's header block
	maxResponse = 8 << 20 // one response, its literals included
	maxMessages = 1000    // probe messages looked at per folder and search
	// maxTranscript bounds the transcript of a long wait; later lines are
	// counted, not kept.
	maxTranscript = 400
	maxLineShown  = 512
	// logoutGrace is the time LOGOUT gets after the caller's context is
	// done, as QUIT gets in the SMTP dialog (ARCHITECTURE.md §8).
	logoutGrace = 500 * time.Millisecond
	// idleExitGrace bounds ending IDLE (DONE and its tagged reply).
	idleExitGrace = 2 * time.Second
)

// Auth mechanisms. LOGIN is the IMAP LOGIN command (RFC 3501 §6.2.3), which
// every server has unless it says LOGINDISABLED (and then has PLAIN): the
// SASL mechanism of that name adds nothing. PLAIN and XOAUTH2 go through
// AUTHENTICATE.
const (
	MechPLAIN   = "PLAIN"
	MechLOGIN   = "LOGIN"
	MechXOAUTH2 = "XOAUTH2"
)

// Config says how to reach and log in to a mailbox.
type Config struct {
	// Address is host:port.
	Address string
	// SourceIPAddress is the local address to connect from; "" for the
	// system's choice.
	SourceIPAddress string
	// TLS is probes.TLSImplicit, probes.TLSStartTLS or probes.TLSNone.
	TLS string
	// TLSConfig holds the trust roots, client certificate and server name
	// (default: the address's host). The chain is verified by the Mailbox
	// so that its facts are recorded also when it fails; set
	// InsecureSkipVerify to accept any.
	TLSConfig *tls.Config
	// Mechanism is MechPLAIN, MechLOGIN or MechXOAUTH2; empty for none,
	// which works only with a PREAUTH greeting.
	Mechanism string
	Username  string
	// Secret is the password or, for XOAUTH2, the token.
	Secret string
	// AllowInsecureAuth permits sending credentials without TLS.
	AllowInsecureAuth bool
	// Folders are watched besides INBOX and the junk folders.
	Folders []string
	// Start is the time transcript offsets count from; zero means Dial's.
	Start  time.Time
	Logger log.Logger
}

// Folder is one watched folder.
type Folder struct {
	Name       string
	Class      Class
	Attributes []string
}

// Message is a probe message found in a folder.
type Message struct {
	Folder      string
	Class       Class
	UID         uint32
	UIDValidity uint32
	// Token is the value of its ProbeHeader.
	Token string
	// Header is the header block as the server returned it. It is server
	// data: pass it through Mailbox.Redact before it reaches an output.
	Header       []byte
	InternalDate time.Time
	// Flags are the message's flags and keywords as the server sent
	// them: server data, see Header.
	Flags []string
}

// Error is a failure of the receive leg, mapped onto the taxonomy. Its text
// is redacted; it unwraps to the cause (context.Canceled, a net error).
type Error struct {
	Phase  probes.Phase
	Reason probes.Reason
	msg    string
	err    error
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.err }

// Mailbox is one logged-in IMAP session. It is not safe for concurrent use.
type Mailbox struct {
	cfg    Config
	logger log.Logger
	raw    net.Conn
	w      *wire
	c      *client.Client
	dl     deadline

	// reading is closed when go-imap's reader goroutine has ended, drained
	// when the goroutine that takes its updates has.
	reading <-chan struct{}
	drained chan struct{}
	// changed is signalled when go-imap reports a change to the selected
	// folder. It lags behind the stream, so the EXISTS responses the wire
	// counted decide: seen is their count when INBOX was last examined,
	// and IDLE wakes only for later ones.
	changed chan struct{}
	seen    int64

	caps    map[string]bool
	folders []Folder
	phases  []*probes.PhaseResult
	tlsInfo *probes.TLSInfo
	closed  bool

	// What a timeout cut short, for saying it in the error (wrap):
	// awaiting is the step under way before go-imap's client exists (then
	// the wire knows the command); op the operations under way under one
	// context, since the first began; dial Dial's; stepStart when the
	// last step began.
	awaiting  string
	op, dial  opTime
	stepStart time.Time
}

// opTime is when an operation began, its context and that context's
// deadline.
type opTime struct {
	ctx      context.Context
	start    time.Time
	deadline time.Time
}

// Dial connects, secures and logs in, recording the phases imap_connect
// and imap_auth. It always returns a Mailbox: on failure it is closed, and
// only its Phases, Transcript and TLS tell what happened. Every read and
// write is bounded by ctx's deadline.
func Dial(ctx context.Context, cfg Config) (*Mailbox, error) {
	m := &Mailbox{cfg: cfg, logger: cfg.Logger, changed: make(chan struct{}, 1)}
	if m.logger == nil {
		m.logger = log.NewNopLogger()
	}
	start := cfg.Start
	if start.IsZero() {
		start = time.Now()
	}
	m.w = &wire{start: start, logger: m.logger, debug: probes.DebugLogger(m.logger), gate: make(chan struct{}), released: make(chan struct{})}
	// Registered before the first byte is read: a server may echo a
	// credential it saw in an earlier session in its greeting.
	m.w.red.Add(cfg.Secret)
	m.track(ctx, true)
	err := m.phase(PhaseIMAPConnect, func() error { return m.connect(ctx) })
	if err == nil {
		err = m.phase(PhaseIMAPAuth, func() error { return m.login(ctx) })
	}
	if err != nil {
		m.Close()
		return m, err
	}
	return m, nil
}

// Phases returns the phases Dial ran, in order.
func (m *Mailbox) Phases() []*probes.PhaseResult { return m.phases }

// TLS returns the facts of the TLS connection, nil without TLS.
func (m *Mailbox) TLS() *probes.TLSInfo { return m.tlsInfo }

// Transcript returns the dialog so far, redacted.
func (m *Mailbox) Transcript() []probes.TranscriptLine { return m.w.transcript() }

// Redact removes the credential from server data, such as a Message's
// Header, before it reaches an output.
func (m *Mailbox) Redact(s string) string { return m.w.redact(s) }

// SupportsIDLE reports whether Wait can use IDLE.
func (m *Mailbox) SupportsIDLE() bool { return m.caps["IDLE"] }

func (m *Mailbox) phase(p probes.Phase, fn func() error) error {
	pr := &probes.PhaseResult{Phase: p, Reason: probes.ReasonOK}
	m.phases = append(m.phases, pr)
	start := time.Now()
	err := fn()
	pr.Duration = time.Since(start)
	if err != nil {
		e := m.wrap(p, err)
		pr.Reason, pr.Err = e.Reason, e
		m.w.note("%s failed: %s (%s)", p, e.Reason, e.msg)
		return e
	}
	return nil
}

// connect opens the connection, runs TLS as configured and reads the
// greeting into a go-imap client.
func (m *Mailbox) connect(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(m.cfg.Address)
	if err != nil {
		return &Error{Reason: probes.ReasonOther, msg: "bad address: " + err.Error(), err: err}
	}
	m.awaiting = "no TCP connection to " + m.cfg.Address
	raw, err := probes.DialTCP(ctx, m.cfg.Address, m.cfg.SourceIPAddress)
	if err != nil {
		var ne net.Error
		if ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() {
			return err
		}
		return &Error{Reason: probes.ReasonConnect, msg: probes.ConnectError(m.cfg.Address, err), err: err}
	}
	m.raw = raw
	m.dl.conn = raw
	m.w.note("connected to %s from %s", raw.RemoteAddr(), raw.LocalAddr())
	stop := m.dl.bind(ctx)
	defer stop()
	var conn net.Conn = raw
	switch m.cfg.TLS {
	case probes.TLSImplicit:
		if conn, err = m.handshake(raw, host); err != nil {
			return err
		}
	case probes.TLSStartTLS:
		if err := m.startTLSDialog(raw); err != nil {
			return err
		}
		if conn, err = m.handshake(raw, host); err != nil {
			return err
		}
	case probes.TLSNone:
	default:
		return &Error{Reason: probes.ReasonOther, msg: fmt.Sprintf("unknown tls mode %q", m.cfg.TLS)}
	}
	preauth := false
	if m.cfg.TLS != probes.TLSStartTLS {
		if preauth, err = m.readGreeting(conn); err != nil {
			return err
		}
	}
	// go-imap's client gets a greeting of its own: one with capabilities,
	// so that it sends no CAPABILITY before its reader is set up (the real
	// ones are asked for at login); after STARTTLS, the real greeting came
	// before TLS and was recorded then.
	status := "OK"
	if preauth {
		status = "PREAUTH"
	}
	m.w.prefix = []byte("* " + status + " [CAPABILITY IMAP4rev1] greeting read\r\n")
	// From here the wire knows the command a reply is awaited to.
	m.awaiting = ""
	m.w.Conn = conn
	c, err := client.New(m.w)
	if err != nil {
		return err
	}
	// Set before the reader goroutine reads past the greeting (the wire
	// holds it back until release): go-imap logs to stderr by default,
	// and blocks its reader on Updates when nobody takes them.
	c.ErrorLog = readerLog{m: m, c: c}
	updates := make(chan client.Update)
	c.Updates = updates
	m.c = c
	m.reading = c.LoggedOut()
	m.drained = make(chan struct{})
	go m.drain(updates)
	m.w.release()
	return nil
}

// readGreeting reads and judges the server's greeting, reporting whether
// it is PREAUTH. It reads a byte at a time, so that nothing after it is
// consumed: before STARTTLS, bytes sent after the OK must break the
// handshake rather than pass for plaintext (RFC 2595 §3.1).
func (m *Mailbox) readGreeting(conn net.Conn) (preauth bool, err error) {
	m.awaiting = "no IMAP greeting from " + m.cfg.Address
	greeting, err := m.rawLine(conn)
	if err != nil {
		return false, err
	}
	f := strings.Fields(greeting)
	if len(f) < 2 || f[0] != "*" {
		return false, &Error{Reason: probes.ReasonProtocol, msg: "malformed greeting"}
	}
	switch strings.ToUpper(f[1]) {
	case "OK":
		return false, nil
	case "PREAUTH":
		return true, nil
	case "BYE":
		return false, &Error{Reason: probes.ReasonServiceUnavailable, msg: "server refused the session: " + greeting}
	}
	return false, &Error{Reason: probes.ReasonProtocol, msg: "malformed greeting"}
}

// drain takes go-imap's unilateral updates, so that its reader never
// blocks on them, and turns a change of the selected folder into a signal.
func (m *Mailbox) drain(updates <-chan client.Update) {
	defer close(m.drained)
	for {
		select {
		case u := <-updates:
			if _, ok := u.(*client.MailboxUpdate); ok {
				select {
				case m.changed <- struct{}{}:
				default:
				}
			}
		case <-m.reading:
			return
		}
	}
}

// readerLog receives what go-imap's reader goroutine would log. A response
// it cannot parse leaves the stream out of step: the session ends there,
// before the reader goes on parsing from the middle of a response.
type readerLog struct {
	m *Mailbox
	c *client.Client
}

func (l readerLog) Printf(format string, v ...any) { l.log(fmt.Sprintf(format, v...), v) }
func (l readerLog) Println(v ...any)               { l.log(strings.TrimSpace(fmt.Sprintln(v...)), v) }

func (l readerLog) log(text string, v []any) {
	for _, a := range v {
		if err, ok := a.(error); ok && imap.IsParseError(err) {
			l.m.w.fail(&Error{Reason: probes.ReasonProtocol, msg: "malformed response: " + err.Error(), err: err})
			l.c.SetState(imap.LogoutState, nil)
		}
	}
	l.m.w.note("imap client: %s", text)
}

// handshake runs TLS on conn and verifies the chain itself, so that the
// facts of a bad certificate are still recorded.
func (m *Mailbox) handshake(conn net.Conn, host string) (net.Conn, error) {
	cfg := &tls.Config{}
	if m.cfg.TLSConfig != nil {
		cfg = m.cfg.TLSConfig.Clone()
	}
	skip := cfg.InsecureSkipVerify
	if cfg.ServerName == "" && net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	cfg.InsecureSkipVerify = true
	m.awaiting = "TLS handshake with " + m.cfg.Address + " did not finish"
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		if r := reasonOf(err); r == probes.ReasonTimeout || r == probes.ReasonConnectionLost {
			return nil, err
		}
		return nil, &Error{Reason: probes.ReasonTLSHandshake, msg: "TLS handshake failed: " + err.Error(), err: err}
	}
	name := cfg.ServerName
	if name == "" {
		name = host
	}
	info := probes.TLSFacts(tc.ConnectionState(), cfg.RootCAs, name)
	m.tlsInfo = info
	m.w.note("TLS handshake done: %s, %s, verified=%t", info.Version, info.Cipher, info.Verified)
	if info.Verified || skip {
		return tc, nil
	}
	return nil, &probes.TLSVerifyError{Reason: probes.VerifyReason(info, time.Now()), Err: info.VerifyError}
}

// startTLSDialog reads the greeting and runs STARTTLS on the raw
// connection, before go-imap's client exists: its own StartTLS cannot put
// the transcript and the limits above the TLS layer.
func (m *Mailbox) startTLSDialog(raw net.Conn) error {
	preauth, err := m.readGreeting(raw)
	if err != nil {
		return err
	}
	if preauth {
		return &Error{Reason: probes.ReasonProtocol, msg: "PREAUTH greeting: the session is authenticated before STARTTLS could protect it"}
	}
	const tag = "T0"
	m.awaiting = "no reply to IMAP STARTTLS"
	if err := m.rawWrite(raw, tag+" STARTTLS"); err != nil {
		return err
	}
	for range 20 {
		line, err := m.rawLine(raw)
		if err != nil {
			return err
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != tag {
			continue
		}
		if strings.EqualFold(f[1], "OK") {
			return nil
		}
		return &Error{Reason: probes.ReasonSTARTTLSUnavailable, msg: "STARTTLS refused: " + line}
	}
	return &Error{Reason: probes.ReasonProtocol, msg: "no reply to STARTTLS"}
}

func (m *Mailbox) rawLine(r io.Reader) (string, error) {
	var line []byte
	b := make([]byte, 1)
	for len(line) < maxRawLine {
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		if b[0] == '\n' {
			s := strings.TrimSuffix(string(line), "\r")
			m.w.record(probes.DirRecv, s)
			return s, nil
		}
		line = append(line, b[0])
	}
	return "", &Error{Reason: probes.ReasonProtocol, msg: fmt.Sprintf("server sent a line longer than %d bytes", maxRawLine)}
}

func (m *Mailbox) rawWrite(w io.Writer, line string) error {
	m.w.record(probes.DirSend, line)
	_, err := io.WriteString(w, line+"\r\n")
	return err
}

// login authenticates as configured and learns the capabilities the
// server has once logged in.
func (m *Mailbox) login(ctx context.Context) error {
	stop := m.dl.bind(ctx)
	defer stop()
	if m.c.State() == imap.AuthenticatedState {
		m.w.note("greeting was PREAUTH: no login")
	} else if err := m.authenticate(); err != nil {
		return err
	}
	caps, err := m.c.Capability()
	if err != nil {
		return err
	}
	m.caps = caps
	return nil
}

func (m *Mailbox) authenticate() error {
	cfg := m.cfg
	if cfg.Mechanism == "" {
		return &Error{Reason: probes.ReasonAuthRequired, msg: "the server wants a login and none is configured"}
	}
	if cfg.TLS == probes.TLSNone && !cfg.AllowInsecureAuth {
		return &Error{Reason: probes.ReasonAuthFailed, msg: "refusing to log in over a connection without TLS (allow insecure auth to permit it)"}
	}
	caps, err := m.c.Capability()
	if err != nil {
		return err
	}
	mech := strings.ToUpper(cfg.Mechanism)
	if mech == MechLOGIN {
		if caps["LOGINDISABLED"] {
			return &Error{Reason: probes.ReasonAuthFailed, msg: "server disables the LOGIN command (LOGINDISABLED): use mechanism PLAIN"}
		}
		return m.loginCommand()
	}
	if !caps["AUTH="+mech] {
		var offered []string
		for c := range caps {
			if strings.HasPrefix(c, "AUTH=") {
				offered = append(offered, strings.TrimPrefix(c, "AUTH="))
			}
		}
		slices.Sort(offered)
		return &Error{Reason: probes.ReasonAuthFailed, msg: fmt.Sprintf("server does not offer AUTHENTICATE %s (offers: %s)", mech, strings.Join(offered, " "))}
	}
	var sc sasl.Client
	switch mech {
	case MechPLAIN:
		sc = sasl.NewPlainClient("", cfg.Username, cfg.Secret)
	case MechXOAUTH2:
		sc = &xoauth2Client{user: cfg.Username, token: cfg.Secret}
	default:
		return &Error{Reason: probes.ReasonOther, msg: fmt.Sprintf("unsupported mechanism %q", mech)}
	}
	sc = &boundedClient{Client: sc, w: m.w}
	name, ir, err := sc.Start()
	if err != nil {
		return &Error{Reason: probes.ReasonAuthFailed, msg: err.Error(), err: err}
	}
	cmd := &commands.Authenticate{Mechanism: name}
	res := &responses.Authenticate{Mechanism: sc, InitialResponse: ir, RepliesCh: make(chan []byte, 10)}
	if caps["SASL-IR"] {
		cmd.InitialResponse, res.InitialResponse = ir, nil
	}
	status, err := m.c.Execute(cmd, res)
	if err != nil {
		if errors.Is(err, errTooManyChallenges) || errors.Is(err, errChallenge) {
			return &Error{Reason: probes.ReasonProtocol, msg: err.Error(), err: err}
		}
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return &Error{Reason: probes.ReasonProtocol, msg: "AUTHENTICATE challenge is not base64", err: err}
		}
		return err
	}
	return m.loggedIn("AUTHENTICATE "+name, status)
}

// loginCommand runs the LOGIN command. go-imap sends a credential that a
// quoted string cannot carry as a synchronising literal and then waits for
// the server's "+" with no deadline, so such credentials go through
// AUTHENTICATE PLAIN instead.
func (m *Mailbox) loginCommand() error {
	if needsLiteral(m.cfg.Username) || needsLiteral(m.cfg.Secret) {
		return &Error{Reason: probes.ReasonOther, msg: "the LOGIN command cannot carry this user name or password (8-bit or control characters): use mechanism PLAIN"}
	}
	status, err := m.c.Execute(&commands.Login{Username: m.cfg.Username, Password: m.cfg.Secret}, nil)
	if err != nil {
		return err
	}
	return m.loggedIn("LOGIN", status)
}

func needsLiteral(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e })
}

func (m *Mailbox) loggedIn(cmd string, status *imap.StatusResp) error {
	if status.Type != imap.StatusRespOk {
		return &Error{Reason: authReason(status), msg: fmt.Sprintf("%s: server replied %s %s", cmd, status.Type, status.Info)}
	}
	m.c.SetState(imap.AuthenticatedState, nil)
	return nil
}

// authReason reads the response code of a failed login (RFC 5530).
func authReason(s *imap.StatusResp) probes.Reason {
	switch s.Code {
	case "UNAVAILABLE":
		return probes.ReasonServiceUnavailable
	case "PRIVACYREQUIRED":
		return probes.ReasonTLSRequired
	case "LIMIT":
		return probes.ReasonThrottled
	case "INUSE":
		return probes.ReasonMailboxBusy
	case "SERVERBUG":
		return probes.ReasonLocalError
	}
	if s.Type == imap.StatusRespBad {
		return probes.ReasonProtocol
	}
	return probes.ReasonAuthFailed
}

var (
	errTooManyChallenges = errors.New("server sent too many AUTHENTICATE challenges")
	errChallenge         = errors.New("unexpected AUTHENTICATE challenge")
)

// boundedClient registers every response with the redactor and limits the
// challenges, so that a server answering "+" forever cannot make the probe
// resend the password thousands of times.
type boundedClient struct {
	sasl.Client
	w          *wire
	challenges int
}

func (c *boundedClient) Start() (string, []byte, error) {
	mech, ir, err := c.Client.Start()
	c.w.addResponse(ir)
	return mech, ir, err
}

// Next runs in go-imap's reader goroutine, before it reads on: an error
// closes the exchange in the wire at once, so that a "+" the server sends
// after go-imap gave up is refused rather than left to go-imap, which
// would start a goroutine that blocks forever on it.
func (c *boundedClient) Next(ch []byte) ([]byte, error) {
	if c.challenges++; c.challenges > 2 {
		c.w.endAuth()
		return nil, errTooManyChallenges
	}
	resp, err := c.Client.Next(ch)
	if err != nil {
		c.w.endAuth()
		return nil, fmt.Errorf("%w: %w", errChallenge, err)
	}
	c.w.addResponse(resp)
	return resp, nil
}

// xoauth2Client is Google's and Microsoft's XOAUTH2, which go-sasl lacks.
// A challenge carries a JSON error, which an empty response acknowledges
// (as Google and Microsoft document it); the server then replies NO.
type xoauth2Client struct{ user, token string }

func (c *xoauth2Client) Start() (string, []byte, error) {
	return MechXOAUTH2, probes.XOAuth2Response(c.user, c.token), nil
}

func (c *xoauth2Client) Next(ch []byte) ([]byte, error) {
	return []byte{}, nil
}

// Folders lists the watched folders: INBOX, every folder with the \Junk
// attribute (RFC 6154), and the configured ones. A server without
// SPECIAL-USE marks none, so there a folder named Junk or Spam (the last
// part of its name, in any case) is taken for junk, and the transcript says
// so. The list is learned once per session.
func (m *Mailbox) Folders(ctx context.Context) ([]Folder, error) {
	if m.folders != nil {
		return m.folders, nil
	}
	stop, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	ch := make(chan *imap.MailboxInfo, 16)
	done := make(chan error, 1)
	go func() { done <- m.c.List("", "*", ch) }()
	var junk, byName []Folder
	inbox := Folder{Name: "INBOX", Class: ClassInbox}
	for info := range ch {
		if strings.EqualFold(info.Name, "INBOX") {
			inbox.Attributes = info.Attributes
			continue
		}
		if hasAttr(info.Attributes, imap.NoSelectAttr) || hasAttr(info.Attributes, "\\NonExistent") {
			continue
		}
		if hasAttr(info.Attributes, imap.JunkAttr) {
			junk = append(junk, Folder{Name: info.Name, Class: ClassJunk, Attributes: info.Attributes})
		} else if isJunkName(info.Name, info.Delimiter) {
			byName = append(byName, Folder{Name: info.Name, Class: ClassJunk, Attributes: info.Attributes})
		}
	}
	if err := <-done; err != nil {
		return nil, m.wrap(PhaseWait, err)
	}
	if len(junk) == 0 && !m.caps["SPECIAL-USE"] {
		for _, f := range byName {
			m.w.note("server has no SPECIAL-USE: taking %q for the junk folder by its name", f.Name)
		}
		junk = byName
	}
	folders := append([]Folder{inbox}, junk...)
	for _, name := range m.cfg.Folders {
		if !slices.ContainsFunc(folders, func(f Folder) bool { return f.Name == name }) {
			folders = append(folders, Folder{Name: name, Class: ClassOther})
		}
	}
	m.folders = folders
	return folders, nil
}

func hasAttr(attrs []string, a string) bool {
	return slices.ContainsFunc(attrs, func(x string) bool { return strings.EqualFold(x, a) })
}

func isJunkName(name, delim string) bool {
	if delim != "" {
		name = name[strings.LastIndex(name, delim)+len(delim):]
	}
	return slices.ContainsFunc(junkNames, func(n string) bool { return strings.EqualFold(name, n) })
}

// junkNames are the junk folders' names where a server does not mark them
// (no SPECIAL-USE): the common ones, Exchange Online's "Junk Email" and
// older Exchange's "Junk E-mail", and Yahoo's "Bulk Mail".
var junkNames = []string{"Junk", "Spam", "Junk Email", "Junk E-mail", "Bulk Mail"}

// Find searches every watched folder for messages whose ProbeHeader is
// token.
func (m *Mailbox) Find(ctx context.Context, token string) ([]Message, error) {
	if err := checkToken(token); err != nil {
		return nil, err
	}
	folders, err := m.Folders(ctx)
	if err != nil {
		return nil, err
	}
	stop, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	return m.findIn(folders, token, func(v string) bool { return v == token })
}

// findIn searches the folders, INBOX last, so that it is the selected one
// when Wait goes on to IDLE.
func (m *Mailbox) findIn(folders []Folder, search string, match func(string) bool) ([]Message, error) {
	var found []Message
	for i := len(folders) - 1; i >= 0; i-- {
		msgs, err := m.searchFolder(folders[i], search, match)
		if err != nil {
			return nil, err
		}
		found = append(found, msgs...)
	}
	return found, nil
}

// checkToken keeps tokens to what a quoted string carries: go-imap sends
// anything else as a synchronising literal, which waits for the server
// without a deadline.
func checkToken(t string) error {
	if needsLiteral(t) || strings.ContainsAny(t, `"\`) {
		return &Error{Phase: PhaseWait, Reason: probes.ReasonOther, msg: fmt.Sprintf("token %q holds characters a search cannot carry", t)}
	}
	return nil
}

// searchFolder examines a folder, searches it for the header (HEADER
// matches a substring, RFC 3501 §6.4.4), then fetches the matches' headers
// and keeps those whose value match accepts.
func (m *Mailbox) searchFolder(f Folder, search string, match func(string) bool) ([]Message, error) {
	crit := imap.NewSearchCriteria()
	crit.Header.Add(ProbeHeader, search)
	// One flagged \Deleted (Delete without UIDPLUS) is dealt with: found
	// again, a clean-up would count it late on every run.
	crit.WithoutFlags = []string{imap.DeletedFlag}
	status, uids, err := m.examineSearch(f, crit)
	if err != nil || len(uids) == 0 {
		return nil, err
	}
	if len(uids) > maxMessages {
		m.w.note("%d messages carry %s in %q: looking at the first %d", len(uids), ProbeHeader, f.Name, maxMessages)
		uids = uids[:maxMessages]
	}
	seq := new(imap.SeqSet)
	seq.AddNum(uids...)
	section := &imap.BodySectionName{BodyPartName: imap.BodyPartName{Specifier: imap.HeaderSpecifier}, Peek: true}
	items := []imap.FetchItem{imap.FetchUid, imap.FetchInternalDate, imap.FetchFlags, section.FetchItem()}
	ch := make(chan *imap.Message, 16)
	done := make(chan error, 1)
	go func() { done <- m.c.UidFetch(seq, items, ch) }()
	var found []Message
	for msg := range ch {
		lit := msg.GetBody(section)
		if lit == nil || msg.Uid == 0 {
			continue
		}
		header, _ := io.ReadAll(lit)
		value, ok := headerValue(header)
		if !ok || !match(value) {
			continue
		}
		found = append(found, Message{
			Folder: f.Name, Class: f.Class, UID: msg.Uid, UIDValidity: status.UidValidity,
			Token: value, Header: header, InternalDate: msg.InternalDate, Flags: msg.Flags,
		})
	}
	if err := <-done; err != nil {
		return nil, m.folderErr(f, "FETCH", err)
	}
	return found, nil
}

// examineSearch examines a folder and searches it.
func (m *Mailbox) examineSearch(f Folder, crit *imap.SearchCriteria) (*imap.MailboxStatus, []uint32, error) {
	status, err := m.c.Select(f.Name, true)
	if err != nil {
		return nil, nil, m.folderErr(f, "EXAMINE", err)
	}
	// The search covers every message the folder holds from here on.
	m.seen = m.w.existsCount()
	uids, err := m.c.UidSearch(crit)
	if err != nil {
		return nil, nil, m.folderErr(f, "SEARCH", err)
	}
	return status, uids, nil
}

// headerValue returns the ProbeHeader of a header block; a message with
// none, several or a block that does not parse is not a probe's.
func headerValue(header []byte) (string, bool) {
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(header))).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return "", false
	}
	v := h.Values(ProbeHeader)
	if len(v) != 1 {
		return "", false
	}
	return strings.TrimSpace(v[0]), true
}

// Wait returns as soon as a message whose ProbeHeader is token is in a
// watched folder, or ctx's error when ctx ends first. Where the server has
// IDLE it idles on INBOX, where a probe message lands when all is well, and
// so sees it arrive at once; every pollInterval it leaves IDLE to search
// all folders, so that a message in Junk is seen within pollInterval.
// Without IDLE it searches all folders every pollInterval. The transcript
// keeps the first round; later rounds are counted in a note.
func (m *Mailbox) Wait(ctx context.Context, token string, pollInterval time.Duration) ([]Message, error) {
	return m.WaitUntil(ctx, token, pollInterval, nil)
}

// WaitUntil is Wait that also gives up, returning no messages and no
// error, as soon as stop (when not nil) says so. stop runs at the start of
// every round, before the search, so that INBOX is the folder examined
// last when IDLE starts: a bounce found there ends the wait early.
func (m *Mailbox) WaitUntil(ctx context.Context, token string, pollInterval time.Duration, stop func(context.Context) bool) ([]Message, error) {
	if err := checkToken(token); err != nil {
		return nil, err
	}
	if pollInterval <= 0 {
		pollInterval = time.Second
	}
	folders, err := m.Folders(ctx)
	if err != nil {
		return nil, err
	}
	rounds, wakes := 0, 0
	defer func() {
		m.w.setQuiet(false)
		if rounds > 1 {
			m.w.note("searched %d times (%d IDLE wake-ups); rounds after the first not recorded", rounds, wakes)
		}
	}()
	for {
		rounds++
		if stop != nil && ctx.Err() == nil && stop(ctx) {
			return nil, nil
		}
		found, err := m.waitRound(ctx, folders, token)
		if err == nil && len(found) > 0 {
			return found, nil
		}
		if err != nil && ctx.Err() == nil {
			return nil, err
		}
		m.w.setQuiet(rounds > 1)
		if m.caps["IDLE"] {
			woke, err := m.idle(ctx, pollInterval)
			if err != nil {
				return nil, err
			}
			if woke {
				wakes++
			}
		} else {
			t := time.NewTimer(pollInterval)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, &Error{Phase: PhaseWait, Reason: probes.ReasonTimeout, msg: "no probe message before the wait ended", err: err}
		}
	}
}

// waitRound searches once. A round under way when ctx ends gets
// logoutGrace to finish, so that the session can still log out.
func (m *Mailbox) waitRound(ctx context.Context, folders []Folder, token string) ([]Message, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, nil
	}
	m.track(ctx, false)
	stop := m.dl.bindGrace(ctx, logoutGrace)
	defer stop()
	return m.findIn(folders, token, func(v string) bool { return v == token })
}

// idle waits in IDLE on the selected folder (INBOX, which findIn searched
// last) for a change, pollInterval or the end of ctx. It ends IDLE with
// DONE in every case, under a grace of its own when ctx is done, so that
// the session can still log out.
func (m *Mailbox) idle(ctx context.Context, pollInterval time.Duration) (woke bool, err error) {
	if ctx.Err() != nil {
		return false, nil
	}
	if m.w.existsCount() > m.seen {
		// INBOX changed after it was examined: search again first.
		return true, nil
	}
	// ctx's end is waited for below, to leave IDLE politely: the
	// connection's deadline only catches a server that stops answering.
	if dl, ok := ctx.Deadline(); ok {
		m.dl.set(dl.Add(idleExitGrace))
	}
	stopIdle := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- m.c.Idle(stopIdle, &client.IdleOptions{LogoutTimeout: -1}) }()
	t := time.NewTimer(pollInterval)
	defer t.Stop()
wait:
	for {
		select {
		case <-m.changed:
			if m.w.existsCount() > m.seen {
				woke = true
				break wait
			}
		case <-t.C:
			break wait
		case <-ctx.Done():
			break wait
		case err := <-done:
			// The server ended IDLE (or the connection) on its own.
			close(stopIdle)
			if err != nil {
				return false, m.wrap(PhaseWait, err)
			}
			return false, nil
		}
	}
	close(stopIdle)
	m.dl.set(time.Now().Add(idleExitGrace))
	err = <-done
	m.dl.set(time.Time{})
	if err != nil {
		return false, m.wrap(PhaseWait, err)
	}
	return woke, nil
}

// Delete removes the given messages from a folder: flags them \Deleted and
// expunges them with UID EXPUNGE (RFC 4315) where the server has UIDPLUS.
// Without it, a plain EXPUNGE would also remove whatever else is flagged
// \Deleted in the folder, so it runs only when nothing else is; otherwise
// the messages stay flagged (expunged false) for the mailbox's own client
// to expunge.
func (m *Mailbox) Delete(ctx context.Context, folder string, uids []uint32) (expunged bool, err error) {
	if len(uids) == 0 {
		return true, nil
	}
	stop, err := m.begin(ctx)
	if err != nil {
		return false, err
	}
	defer stop()
	f := Folder{Name: folder}
	if _, err := m.c.Select(folder, false); err != nil {
		return false, m.folderErr(f, "SELECT", err)
	}
	seq := new(imap.SeqSet)
	seq.AddNum(uids...)
	op := imap.FormatFlagsOp(imap.AddFlags, true)
	if err := m.c.UidStore(seq, op, []any{imap.DeletedFlag}, nil); err != nil {
		return false, m.folderErr(f, "STORE", err)
	}
	if m.caps["UIDPLUS"] {
		cmd := &commands.Uid{Cmd: &imap.Command{Name: "EXPUNGE", Arguments: []any{seq}}}
		status, err := m.c.Execute(cmd, nil)
		if err == nil {
			err = status.Err()
		}
		if err != nil {
			return false, m.folderErr(f, "UID EXPUNGE", err)
		}
		return true, nil
	}
	crit := imap.NewSearchCriteria()
	crit.WithFlags = []string{imap.DeletedFlag}
	flagged, err := m.c.UidSearch(crit)
	if err != nil {
		return false, m.folderErr(f, "SEARCH", err)
	}
	for _, u := range flagged {
		if !slices.Contains(uids, u) {
			m.w.note("%q holds other messages flagged \\Deleted and the server has no UIDPLUS: probe messages left flagged, not expunged", folder)
			return false, nil
		}
	}
	if err := m.c.Expunge(nil); err != nil {
		return false, m.folderErr(f, "EXPUNGE", err)
	}
	return true, nil
}

// Cleaned counts what a clean-up deleted (or left flagged, see Delete).
type Cleaned struct {
	// Messages are the probe messages cleaned up.
	Messages int
	// Late are those of them that arrived (INTERNALDATE) more than
	// lateAfter after their own Date header, which a probe writes when it
	// sends: their run had given up on them. The others arrived in time
	// and were left by a run that was interrupted (a restart) or could
	// not delete them; so is one without a Date, which cannot tell.
	Late int
}

// Cleanup deletes the probe messages that earlier runs or an earlier
// exporter left behind: those in the watched folders whose ProbeHeader
// value starts with prefix ("" for any value) and which arrived before
// before. Nothing without the header is ever touched.
func (m *Mailbox) Cleanup(ctx context.Context, before time.Time, prefix string, lateAfter time.Duration) (Cleaned, error) {
	var c Cleaned
	if err := checkToken(prefix); err != nil {
		return c, err
	}
	folders, err := m.Folders(ctx)
	if err != nil {
		return c, err
	}
	for _, f := range folders {
		stop, err := m.begin(ctx)
		if err != nil {
			return c, err
		}
		msgs, err := m.searchFolder(f, prefix, func(v string) bool { return strings.HasPrefix(v, prefix) })
		stop()
		if err != nil {
			return c, err
		}
		var uids []uint32
		late := 0
		for _, msg := range msgs {
			if msg.InternalDate.Before(before) {
				uids = append(uids, msg.UID)
				if arrivedLate(msg, lateAfter) {
					late++
				}
			}
		}
		if len(uids) == 0 {
			continue
		}
		if _, err := m.Delete(ctx, f.Name, uids); err != nil {
			return c, err
		}
		c.Messages += len(uids)
		c.Late += late
	}
	return c, nil
}

// arrivedLate reports whether msg arrived more than lateAfter after the
// time its Date header says it was sent.
func arrivedLate(msg Message, lateAfter time.Duration) bool {
	h, _ := ReadHeader(bytes.NewReader(msg.Header))
	sent, err := mail.ParseDate(h.Get("Date"))
	return err == nil && msg.InternalDate.Sub(sent) > lateAfter
}

// maxSwept bounds the old bounces read per sweep: whatever is left goes
// at the next run's.
const maxSwept = 50

// CleanupBounces deletes from INBOX the bounces about probe messages
// whose token (or Message-ID) starts with prefix, and which arrived before
// before: a run still waiting may yet need a recent one. Only a message
// that ParseBounce takes for a bounce and that names such a probe is
// touched, so a mailbox shared with other targets or exporters keeps
// theirs, and a prefix must be given. It returns how many it deleted.
func (m *Mailbox) CleanupBounces(ctx context.Context, before time.Time, prefix string) (int, error) {
	if prefix == "" {
		return 0, &Error{Phase: PhaseWait, Reason: probes.ReasonOther, msg: "sweeping bounces needs a token prefix"}
	}
	if err := checkToken(prefix); err != nil {
		return 0, err
	}
	stop, err := m.begin(ctx)
	if err != nil {
		return 0, err
	}
	f := Folder{Name: "INBOX", Class: ClassInbox}
	crit := imap.NewSearchCriteria()
	crit.Text = []string{prefix}
	crit.WithoutFlags = []string{imap.DeletedFlag}
	_, uids, err := m.examineSearch(f, crit)
	if err == nil && len(uids) > 0 {
		uids, err = m.arrivedBefore(f, uids, before)
	}
	var found []BounceMessage
	if err == nil && len(uids) > 0 {
		found, err = m.readBounces(f, uids[:min(len(uids), maxSwept)], func(b *Bounce) bool {
			return strings.HasPrefix(b.ProbeToken, prefix) || strings.HasPrefix(strings.TrimPrefix(b.MessageID, "<"), prefix)
		})
	}
	stop()
	if err != nil || len(found) == 0 {
		return 0, err
	}
	del := make([]uint32, len(found))
	for i, b := range found {
		del[i] = b.UID
	}
	if _, err := m.Delete(ctx, f.Name, del); err != nil {
		return 0, err
	}
	return len(del), nil
}

// arrivedBefore keeps the uids of f whose INTERNALDATE is before t, at
// most maxMessages of them looked at.
func (m *Mailbox) arrivedBefore(f Folder, uids []uint32, t time.Time) ([]uint32, error) {
	seq := new(imap.SeqSet)
	seq.AddNum(uids[:min(len(uids), maxMessages)]...)
	ch := make(chan *imap.Message, 16)
	done := make(chan error, 1)
	go func() { done <- m.c.UidFetch(seq, []imap.FetchItem{imap.FetchUid, imap.FetchInternalDate}, ch) }()
	var old []uint32
	for msg := range ch {
		if msg.Uid != 0 && msg.InternalDate.Before(t) {
			old = append(old, msg.Uid)
		}
	}
	if err := <-done; err != nil {
		return nil, m.folderErr(f, "FETCH", err)
	}
	return old, nil
}

// Close logs out when the session is still in step, under a grace of its
// own also when the caller's context is done, then hangs up and waits for
// go-imap's goroutines. It is safe to call more than once.
func (m *Mailbox) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	if m.raw == nil {
		return nil
	}
	if m.c != nil && m.alive() && m.c.State() != imap.LogoutState {
		m.dl.set(time.Now().Add(logoutGrace))
		if err := m.c.Logout(); err != nil {
			m.w.note("LOGOUT failed: %s", m.w.redact(err.Error()))
		}
	}
	err := m.raw.Close()
	if errors.Is(err, net.ErrClosed) {
		// go-imap hangs up itself on the server's BYE.
		err = nil
	}
	m.w.close()
	if m.c != nil {
		<-m.reading
		<-m.drained
	}
	return err
}

func (m *Mailbox) alive() bool {
	select {
	case <-m.reading:
		return false
	default:
		return true
	}
}

// begin binds the connection's deadline to ctx for one operation.
func (m *Mailbox) begin(ctx context.Context) (func(), error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, m.wrap(PhaseWait, err)
	}
	m.track(ctx, false)
	return m.dl.bind(ctx), nil
}

func (m *Mailbox) usable() error {
	if m.closed || m.c == nil {
		return &Error{Phase: PhaseWait, Reason: probes.ReasonOther, msg: "mailbox is closed"}
	}
	if !m.alive() {
		return m.wrap(PhaseWait, errConnGone)
	}
	return nil
}

var errConnGone = errors.New("connection closed")

func (m *Mailbox) folderErr(f Folder, cmd string, err error) error {
	if !m.alive() || isTransport(err) {
		return m.wrap(PhaseWait, err)
	}
	// A NO or BAD: the folder is missing or the server refuses it.
	return &Error{Phase: PhaseWait, Reason: probes.ReasonOther, msg: m.w.redact(fmt.Sprintf("%s %q: %v", cmd, f.Name, err)), err: err}
}

func isTransport(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

// wrap maps an error onto the taxonomy. go-imap reports a connection its
// reader gave up on only as "connection closed"; the wire kept the cause.
func (m *Mailbox) wrap(p probes.Phase, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e.Phase == "" {
			e.Phase = p
		}
		e.msg = m.w.redact(e.msg)
		return e
	}
	if m.c != nil && !m.alive() {
		if cause := m.w.cause(); cause != nil {
			if errors.As(cause, &e) {
				return &Error{Phase: p, Reason: e.Reason, msg: m.w.redact(e.msg), err: e.err}
			}
			err = cause
		}
	}
	reason := reasonOf(err)
	if reason == probes.ReasonTimeout {
		err = m.waitedFor(p, err)
	}
	return &Error{Phase: p, Reason: reason, msg: m.w.redact(err.Error()), err: err}
}

// track records the operation that begins with ctx; Dial's (dial) also
// stands for the whole session's deadline. Steps under the context the
// last operation began with (Find's search after its LIST) are its.
func (m *Mailbox) track(ctx context.Context, dial bool) {
	m.stepStart = time.Now()
	if !dial && ctx == m.op.ctx {
		return
	}
	dl, _ := ctx.Deadline()
	m.op = opTime{ctx: ctx, start: m.stepStart, deadline: dl}
	if dial {
		m.dial = m.op
	}
}

// waitedFor says what a timeout cut short, where Go says "read tcp
// ...: i/o timeout": the step under way, or the command the server did
// not answer, and the deadline that applied: Dial's context's, counted
// from Dial, when the operation ran under it (the receive leg's), or else
// the operation's own.
func (m *Mailbox) waitedFor(p probes.Phase, err error) error {
	what := m.awaiting
	if what == "" {
		what = fmt.Sprintf("phase %s did not finish", p)
		var op *net.OpError
		if cmd := m.w.pendingCmd(); cmd != "" {
			what = "no reply to IMAP " + cmd
			if errors.As(err, &op) && op.Op == "write" {
				what = "the server did not take IMAP " + cmd
			}
		}
	}
	from := m.op.start
	if m.op.deadline.Equal(m.dial.deadline) && !m.dial.start.IsZero() {
		from = m.dial.start
	}
	w := probes.Wait{What: what, Limit: probes.RoundForPeople(m.op.deadline.Sub(from)), Waited: time.Since(m.stepStart),
		Whose: "the receive leg's deadline; this step waited"}
	if m.op.deadline.IsZero() {
		w.Limit, w.Whose = probes.RoundForPeople(w.Waited), ""
	}
	return probes.WaitedFor(m.op.ctx, w, err)
}

func reasonOf(err error) probes.Reason {
	var (
		ve *probes.TLSVerifyError
		ne net.Error
	)
	switch {
	case errors.As(err, &ve):
		return ve.Reason
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return probes.ReasonTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed), errors.Is(err, errConnGone),
		err.Error() == "imap: connection closed":
		return probes.ReasonConnectionLost
	}
	return probes.ReasonOther
}

// deadline owns the connection's deadline: go-imap's client clears it
// before each command (its Timeout is per command and zero means none),
// so the wire hides SetDeadline from it and operations set it here.
type deadline struct {
	mu   sync.Mutex
	conn net.Conn
	gen  int
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	_ = d.conn.SetDeadline(t)
}

// bind sets ctx's deadline and ends reads and writes at once when ctx is
// cancelled. The returned stop clears the deadline and keeps a late
// cancellation from undoing one set after it (Close's grace).
func (d *deadline) bind(ctx context.Context) (stop func()) { return d.bindGrace(ctx, 0) }

// bindGrace is bind with grace added: the command under way when ctx ends
// may still finish, so that the session stays in step for LOGOUT.
func (d *deadline) bindGrace(ctx context.Context, grace time.Duration) (stop func()) {
	dl, ok := ctx.Deadline()
	if ok {
		dl = dl.Add(grace)
	}
	d.mu.Lock()
	d.gen++
	gen := d.gen
	_ = d.conn.SetDeadline(dl)
	d.mu.Unlock()
	stopAF := context.AfterFunc(ctx, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen {
			_ = d.conn.SetDeadline(time.Now().Add(grace))
		}
	})
	return func() {
		stopAF()
		d.mu.Lock()
		defer d.mu.Unlock()
		d.gen++
		// go-imap's reader goroutine is always in a read: a deadline
		// left behind would end the session between operations.
		_ = d.conn.SetDeadline(time.Time{})
	}
}

// wire sits between the transport and go-imap's client. It records the
// transcript (redacted, credentials replaced), enforces the size limits on
// what the server sends, and refuses a continuation request ("+") no
// command asked for: go-imap answers an unexpected one by starting a
// goroutine that blocks forever.
type wire struct {
	net.Conn // the transport: TCP, or TLS over it; set before the client exists
	start    time.Time
	logger   log.Logger
	debug    log.Logger // nil when debug lines are dropped anyway

	mu     sync.Mutex
	red    probes.Redactor
	lines  []probes.TranscriptLine
	quiet  bool
	unkept int

	// Read side.
	prefix   []byte // a greeting for go-imap after STARTTLS, not recorded
	pending  []byte // read but not yet passed on
	buf      []byte
	line     []byte
	segments int   // lines of the current response before this one
	kind     byte  // the current response: '+', 's' (status) or 'd' (data)
	litLeft  int64 // bytes of a literal still to come
	respLen  int64
	greeted  bool
	failure  error // the first limit or parse failure; every later read returns it
	readErr  error
	gate     chan struct{} // closed by release once the client is set up
	released chan struct{} // closed by close, so that a held read ends
	gateOnce sync.Once
	relOnce  sync.Once

	// Write side.
	wpart   []byte
	authTag string // tag of an open AUTHENTICATE
	idleTag string // tag of an open IDLE
	// Continuation requests admitted in them.
	authConts, idleConts int
	exists               int64 // EXISTS responses seen
	// The last command sent and its tag, until its tagged reply.
	cmdTag, cmdName string
}

func (w *wire) pendingCmd() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cmdName
}

func (w *wire) existsCount() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.exists
}

// SetDeadline and its kin are go-imap's per-command timeouts: ignored, the
// deadline type owns the connection's.
func (w *wire) SetDeadline(time.Time) error      { return nil }
func (w *wire) SetReadDeadline(time.Time) error  { return nil }
func (w *wire) SetWriteDeadline(time.Time) error { return nil }

func (w *wire) release() { w.gateOnce.Do(func() { close(w.gate) }) }
func (w *wire) close()   { w.relOnce.Do(func() { close(w.released) }) }

func (w *wire) Read(p []byte) (int, error) {
	w.mu.Lock()
	if len(w.prefix) > 0 {
		n := copy(p, w.prefix)
		w.prefix = w.prefix[n:]
		if len(w.prefix) == 0 {
			w.greeted = true
		}
		w.mu.Unlock()
		return n, nil
	}
	greeted := w.greeted
	w.mu.Unlock()
	if greeted {
		// The reader goroutine waits here until the client is set up.
		select {
		case <-w.gate:
		case <-w.released:
			return 0, net.ErrClosed
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failure != nil {
		return 0, w.failure
	}
	if len(w.pending) == 0 {
		if w.buf == nil {
			w.buf = make([]byte, 4096)
		}
		w.mu.Unlock()
		n, err := w.Conn.Read(w.buf)
		w.mu.Lock()
		if n == 0 {
			if err != nil && w.readErr == nil {
				w.readErr = err
			}
			return 0, err
		}
		w.pending = w.buf[:n]
	}
	n, err := w.scan(w.pending[:min(len(p), len(w.pending))])
	copy(p, w.pending[:n])
	w.pending = w.pending[n:]
	if err != nil {
		w.failure = err
		if n == 0 {
			return 0, err
		}
	}
	return n, nil
}

// scan checks the bytes the server sent, line by line, and records them.
// It returns how many may be passed on: up to a failure, whose line is
// then never completed for go-imap.
func (w *wire) scan(b []byte) (int, error) {
	for i := 0; i < len(b); i++ {
		if w.litLeft > 0 {
			k := min(w.litLeft, int64(len(b)-i))
			w.litLeft -= k
			i += int(k) - 1
			continue
		}
		c := b[i]
		if len(w.line) >= maxLine {
			return i, &Error{Reason: probes.ReasonProtocol, msg: fmt.Sprintf("server sent a line longer than %d bytes", maxLine)}
		}
		w.line = append(w.line, c)
		if w.respLen++; w.respLen > maxResponse {
			return i, &Error{Reason: probes.ReasonProtocol, msg: fmt.Sprintf("server sent a response longer than %d bytes", maxResponse)}
		}
		if c != '\n' {
			continue
		}
		seg := strings.TrimSuffix(strings.TrimSuffix(string(w.line), "\n"), "\r")
		w.line = w.line[:0]
		if w.segments == 0 {
			w.kind = respKind(seg)
			if w.kind == '+' {
				if err := w.continuation(seg); err != nil {
					return i, err
				}
			}
		}
		n, isLit := literalSize(seg)
		if isLit && w.kind == 's' && w.segments == 0 && inRespCode(seg) {
			return i, &Error{Reason: probes.ReasonProtocol, msg: "server sent a literal inside a response code"}
		}
		if isLit && w.kind == 'd' {
			if n > maxLiteral || w.respLen+n > maxResponse {
				return i, &Error{Reason: probes.ReasonProtocol, msg: fmt.Sprintf("server announced a literal of %d bytes (limit %d)", n, maxLiteral)}
			}
			w.record(probes.DirRecv, seg)
			w.record(probes.DirRecv, fmt.Sprintf("(literal, %d bytes)", n))
			w.litLeft = n
			w.respLen += n
			w.segments++
			continue
		}
		w.record(probes.DirRecv, seg)
		if f := strings.Fields(seg); w.segments == 0 && len(f) == 3 && f[0] == "*" && strings.EqualFold(f[2], "EXISTS") {
			w.exists++
		}
		if w.kind == 's' && w.segments == 0 {
			tag, _, _ := strings.Cut(seg, " ")
			if tag == w.authTag {
				w.authTag = ""
			}
			if tag == w.idleTag {
				w.idleTag = ""
			}
			if tag == w.cmdTag {
				w.cmdTag, w.cmdName = "", ""
			}
		}
		w.segments, w.respLen = 0, 0
	}
	return len(b), nil
}

// continuation admits a continuation request only where go-imap has a
// handler waiting for it: in an open AUTHENTICATE, a bounded number of
// base64 challenges (go-imap cancels on a malformed one without closing
// the exchange), and in IDLE, the one that starts it. go-imap answers any
// other by starting a goroutine that blocks forever.
func (w *wire) continuation(seg string) error {
	text := strings.TrimPrefix(strings.TrimPrefix(seg, "+"), " ")
	switch {
	case w.authTag != "":
		if w.authConts++; w.authConts > 3 {
			return &Error{Reason: probes.ReasonProtocol, msg: "server sent too many AUTHENTICATE challenges"}
		}
		if _, err := base64.StdEncoding.DecodeString(text); err != nil {
			return &Error{Reason: probes.ReasonProtocol, msg: "AUTHENTICATE challenge is not base64"}
		}
		return nil
	case w.idleTag != "":
		if w.idleConts++; w.idleConts > 1 {
			return &Error{Reason: probes.ReasonProtocol, msg: "server sent more than one continuation request in IDLE"}
		}
		return nil
	}
	return &Error{Reason: probes.ReasonProtocol, msg: "server sent a continuation request no command asked for"}
}

func (w *wire) endAuth() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.authTag = ""
}

// respKind classifies a response by its first line as go-imap's ReadResp
// does: a continuation request, a status response or data.
func respKind(seg string) byte {
	if seg == "+" || strings.HasPrefix(seg, "+ ") {
		return '+'
	}
	f := strings.SplitN(seg, " ", 3)
	if len(f) == 3 {
		switch imap.StatusRespType(f[1]) {
		case imap.StatusRespOk, imap.StatusRespNo, imap.StatusRespBad, imap.StatusRespPreauth, imap.StatusRespBye:
			return 's'
		}
	}
	return 'd'
}

// inRespCode reports whether a status line ends inside its [code], where
// go-imap would read a literal.
func inRespCode(seg string) bool {
	f := strings.SplitN(seg, " ", 3)
	return len(f) == 3 && strings.HasPrefix(f[2], "[") && !strings.Contains(f[2], "]")
}

// literalSize reads the {n} or {n+} that ends a line before a literal.
func literalSize(seg string) (int64, bool) {
	if !strings.HasSuffix(seg, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(seg, '{')
	if i < 0 {
		return 0, false
	}
	digits := strings.TrimSuffix(seg[i+1:len(seg)-1], "+")
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		// go-imap refuses it as a parse error.
		return 0, false
	}
	return int64(n), true
}

func (w *wire) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.wpart = append(w.wpart, p...)
	for {
		i := bytes.Index(w.wpart, []byte("\r\n"))
		if i < 0 {
			break
		}
		w.sent(string(w.wpart[:i]))
		w.wpart = w.wpart[i+2:]
	}
	w.mu.Unlock()
	// Recorded, and the continuation state set, before the server can
	// answer.
	return w.Conn.Write(p)
}

// sent records a command line, with every credential replaced.
func (w *wire) sent(line string) {
	if w.authTag != "" {
		// A SASL response, or "*" cancelling the exchange.
		if line != "*" {
			line = probes.Redacted
		}
		w.record(probes.DirSend, line)
		return
	}
	f := strings.SplitN(line, " ", 4)
	if len(f) >= 2 {
		w.cmdTag, w.cmdName = f[0], strings.ToUpper(f[1])
		if w.cmdName == "UID" && len(f) >= 3 {
			w.cmdName += " " + strings.ToUpper(f[2])
		}
		switch strings.ToUpper(f[1]) {
		case "LOGIN":
			line = f[0] + " LOGIN " + probes.Redacted
		case "AUTHENTICATE":
			w.authTag, w.authConts = f[0], 0
			if len(f) > 3 {
				line = strings.Join(f[:3], " ") + " " + probes.Redacted
			}
		case "IDLE":
			w.idleTag, w.idleConts = f[0], 0
		}
	}
	w.record(probes.DirSend, line)
}

// record adds a line to the transcript; w.mu is held.
func (w *wire) record(dir probes.Direction, text string) {
	text = w.red.Redact(text)
	if len(text) > maxLineShown {
		text = fmt.Sprintf("%s… (%d bytes)", text[:maxLineShown], len(text))
	}
	if w.debug != nil {
		w.debug.Log("msg", "IMAP", "dir", dir, "line", text)
	}
	if w.quiet || len(w.lines) >= maxTranscript {
		w.unkept++
		return
	}
	w.lines = append(w.lines, probes.TranscriptLine{Offset: time.Since(w.start), Dir: dir, Text: text})
}

func (w *wire) note(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.quiet
	w.quiet = false
	w.record(probes.DirInfo, fmt.Sprintf(format, args...))
	w.quiet = q
}

func (w *wire) setQuiet(q bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.quiet = q
}

func (w *wire) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failure == nil {
		w.failure = err
	}
}

func (w *wire) cause() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failure != nil {
		return w.failure
	}
	return w.readErr
}

func (w *wire) addResponse(resp []byte) {
	if len(resp) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.red.AddResponse(resp)
}

func (w *wire) redact(s string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.red.Redact(s)
}

func (w *wire) transcript() []probes.TranscriptLine {
	w.mu.Lock()
	defer w.mu.Unlock()
	lines := slices.Clone(w.lines)
	if w.unkept > 0 && !w.quiet {
		lines = append(lines, probes.TranscriptLine{Offset: time.Since(w.start), Dir: probes.DirInfo,
			Text: fmt.Sprintf("(%d lines not kept)", w.unkept)})
	}
	return lines
}

// BounceMessage is a bounce about a probe message, found in INBOX.
type BounceMessage struct {
	UID    uint32
	Bounce Bounce
}

// maxBounces bounds the bounces read per search: one per recipient of
// one probe message at most, in practice.
const maxBounces = 10

// FindBounces returns the bounces in INBOX that refer to the probe message
// whose ProbeHeader is token (or whose Message-ID is messageID): messages
// whose text holds the token and that ParseBounce takes for a bounce. A
// bounce returns the probe's header in its body, so the search is on the
// text; the probe message itself is never a bounce (ParseBounce).
func (m *Mailbox) FindBounces(ctx context.Context, token, messageID string) ([]BounceMessage, error) {
	if err := checkToken(token); err != nil {
		return nil, err
	}
	stop, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	f := Folder{Name: "INBOX", Class: ClassInbox}
	crit := imap.NewSearchCriteria()
	crit.Text = []string{token}
	_, uids, err := m.examineSearch(f, crit)
	if err != nil || len(uids) == 0 {
		return nil, err
	}
	if len(uids) > maxBounces {
		uids = uids[:maxBounces]
	}
	return m.readBounces(f, uids, func(b *Bounce) bool {
		return b.ProbeToken == token || (messageID != "" && b.MessageID == messageID)
	})
}

// readBounces fetches the messages uids of the examined folder f and
// returns those that ParseBounce takes for a bounce and keep accepts.
func (m *Mailbox) readBounces(f Folder, uids []uint32, keep func(*Bounce) bool) ([]BounceMessage, error) {
	seq := new(imap.SeqSet)
	seq.AddNum(uids...)
	section := &imap.BodySectionName{Peek: true}
	ch := make(chan *imap.Message, 4)
	done := make(chan error, 1)
	go func() { done <- m.c.UidFetch(seq, []imap.FetchItem{imap.FetchUid, section.FetchItem()}, ch) }()
	var found []BounceMessage
	for msg := range ch {
		lit := msg.GetBody(section)
		if lit == nil || msg.Uid == 0 {
			continue
		}
		b, ok := ParseBounce(lit)
		if !ok || !keep(&b) {
			continue
		}
		found = append(found, BounceMessage{UID: msg.Uid, Bounce: b})
	}
	if err := <-done; err != nil {
		return nil, m.folderErr(f, "FETCH", err)
	}
	return found, nil
}
