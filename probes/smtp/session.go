package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-kit/log"
)

// session is one probe's dialog state.
type session struct {
	m *probes.Module
	// debug is the caller's logger at level debug, made once (level.Debug
	// allocates), nil without a logger.
	debug    log.Logger
	res      *probes.Result
	deadline time.Time

	conn net.Conn
	// br and bw are made once and follow the connection through STARTTLS;
	// bw only once the first command is due, so that a probe waiting for
	// a greeting holds no more than it needs to read it.
	br      *bufio.Reader
	bw      *bufio.Writer
	state   streamState // where the stream stands (state.go)
	host    string
	ext     map[string]string
	tlsOn   bool
	stopped bool // expectation met: end the dialog early, successfully
	// red holds the module's credential from the start of the session: a
	// server that has seen it once (in an earlier probe) can send it
	// before AUTH, in the greeting or in EHLO.
	red          probes.Redactor
	rcptAccepted int
	tlsConfig    *tls.Config
	secret       string // the credential, once read (addSecrets)
	haveSecret   bool
	msg          []byte // the test message, once built
	msgID        string // its Message-ID, a fact once sent
	token        string // its X-SMTP-Exporter-Probe value, likewise

	// For ending a cancelled session politely (quit.go): the probe's
	// context, the connection's deadline, the reader under br that keeps
	// a cut line's start, replies due and the last command's verb, the
	// start of a reply line a timeout cut, LMTP replies given up on, and
	// whether the grace's farewell is being sent.
	ctx        context.Context
	dl         *connDeadline
	tail       *lineTail
	pending    int
	pendingCmd string
	partial    string
	owed       int
	closing    bool

	// connectAddr is the address dialled; phaseStart when the phase
	// running began: both for saying what a timeout cut (timeout.go).
	connectAddr string
	phaseStart  time.Time
}

// stepError is a failure with a reason decided by the probe, not the server.
type stepError struct {
	reason probes.Reason
	msg    string
}

func (e *stepError) Error() string { return e.msg }

// replyError is a negative (or unexpected) reply that ends the probe.
type replyError struct {
	reply  probes.Reply
	reason probes.Reason
	cmd    string
}

func (e *replyError) Error() string {
	return fmt.Sprintf("%s: server replied %d %s", e.cmd, e.reply.Code, e.reply.Text())
}

// phase runs one step, timing it on the monotonic clock and recording its
// outcome; it reports whether the dialog may go on.
func (s *session) phase(p probes.Phase, fn func(*probes.PhaseResult) error) bool {
	pr := &probes.PhaseResult{Phase: p, Reason: probes.ReasonOK}
	s.res.Phases = append(s.res.Phases, pr)
	start := time.Now()
	s.phaseStart = start
	err := fn(pr)
	pr.Duration = time.Since(start)
	if err == nil {
		return true
	}
	err = s.redactErr(s.describeTimeout(p, err))
	pr.Err = err
	pr.Reason = s.reasonOf(err)
	s.fail(p, pr.Reason, err)
	return false
}

// fail records the probe's verdict: the first failure decides it.
func (s *session) fail(p probes.Phase, reason probes.Reason, err error) {
	r := s.res
	if !r.Success {
		return
	}
	r.Success = false
	r.FailedPhase, r.Reason, r.Err = p, reason, err
	r.Temporary = reason.Temporary()
	var re *replyError
	if errors.As(err, &re) {
		r.Code, r.EnhancedCode, r.ReplyText = re.reply.Code, re.reply.EnhancedCode, re.reply.Text()
		if re.reply.Code >= 400 {
			r.Temporary = re.reply.Temporary()
		}
	}
	s.note("probe failed in phase %s: %s (%v)", p, reason, err)
	if s.debug != nil {
		s.debug.Log("msg", "Probe failed", "phase", p, "reason", reason, "err", err)
	}
}

// reasonOf maps an error onto the taxonomy.
func (s *session) reasonOf(err error) probes.Reason {
	var (
		re  *replyError
		se  *stepError
		pe  *ProtocolError
		ve  *probes.TLSVerifyError
		ne  net.Error
		dns *net.DNSError
	)
	switch {
	case errors.As(err, &re):
		return re.reason
	case errors.As(err, &se):
		return se.reason
	case errors.As(err, &ve):
		return ve.Reason
	case errors.As(err, &pe):
		return probes.ReasonProtocol
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return probes.ReasonTimeout
	case errors.Is(err, context.Canceled):
		return probes.ReasonTimeout
	case errors.As(err, &dns):
		return probes.ReasonDNS
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNABORTED):
		return probes.ReasonConnectionLost
	}
	return probes.ReasonOther
}

// note adds the probe's own remark to the transcript.
func (s *session) note(format string, args ...any) {
	s.record(probes.DirInfo, fmt.Sprintf(format, args...))
}

func (s *session) record(dir probes.Direction, text string) {
	s.recordAt(dir, text, time.Now())
}

// recordAt records a line that arrived at a given time: the lines of a
// reply are recorded once it is complete (see readRedactedReply), each at
// its own offset.
func (s *session) recordAt(dir probes.Direction, text string, at time.Time) {
	text = s.redact(text)
	s.res.Transcript = append(s.res.Transcript, probes.TranscriptLine{Offset: at.Sub(s.res.Start), Dir: dir, Text: text})
	if s.debug != nil {
		s.debug.Log("msg", "SMTP", "dir", dirValue(dir), "line", text)
	}
}

// dirValue is dir as a log value, converted once, not at every line.
func dirValue(dir probes.Direction) any {
	switch dir {
	case probes.DirSend:
		return dirSend
	case probes.DirRecv:
		return dirRecv
	}
	return dir
}

var dirSend, dirRecv any = probes.DirSend, probes.DirRecv

// redact is the last line of defence: a credential that reaches a
// transcript line by any path (an error echoing the command, a server
// echoing the payload) is replaced.
func (s *session) redact(text string) string {
	return s.red.Redact(text)
}

// redactErr returns err, or when its text holds a secret an error with the
// redacted text that still unwraps to err, so that its reason and the
// collector's checks (context.Canceled) see through it.
func (s *session) redactErr(err error) error {
	if err == nil || s.red.Empty() {
		return err
	}
	msg := err.Error()
	if red := s.red.Redact(msg); red != msg {
		return probes.Reworded(red, err)
	}
	return err
}

// addSecrets registers the module's credential before the first byte is
// read, and keeps it for auth. One that cannot be read now is read again
// by auth, which then fails the probe.
func (s *session) addSecrets() {
	if a := s.m.SMTP.Auth; a != nil {
		if secret, err := a.Secret(); err == nil {
			s.red.AddSecret(secret)
			s.secret, s.haveSecret = secret, true
		}
	}
}

// redactResult is the final pass over what the probe keeps beyond the
// transcript and the replies, which are redacted as they arrive: the
// verdict's error and text, and the facts of the server's certificate,
// whose names a server chooses.
func (s *session) redactResult() {
	if s.red.Empty() {
		return
	}
	r := s.res
	r.Err = s.redactErr(r.Err)
	r.ReplyText = s.redact(r.ReplyText)
	for _, p := range r.Phases {
		p.Err = s.redactErr(p.Err)
	}
	// A copy: the names are the parsed certificate's, which crypto/tls
	// shares between connections.
	r.TLS = r.TLS.Redacted(s.redact)
}

// Buffer sizes. Replies are read line by line whatever the buffer (a
// longer line takes several reads), and a greeting or an EHLO reply fits
// in one; commands are short, and the message, the one long write, goes out
// in a few.
const (
	readBufSize  = 512
	writeBufSize = 1024
)

// setConn makes c the session's connection: at connect, and at the TLS
// handshake, when nothing is buffered in either direction.
func (s *session) setConn(c net.Conn) {
	s.conn = c
	if s.tail == nil {
		s.tail = &lineTail{r: c}
		s.br = bufio.NewReaderSize(s.tail, readBufSize)
		return
	}
	s.tail.r, s.tail.tail = c, s.tail.tail[:0]
	s.br.Reset(s.tail)
	if s.bw != nil {
		s.bw.Reset(c)
	}
}

// writer is the connection's buffered writer, made at the first command.
func (s *session) writer() *bufio.Writer {
	if s.bw == nil {
		s.bw = bufio.NewWriterSize(s.conn, writeBufSize)
	}
	return s.bw
}

// cmd sends one command line. display is what the transcript shows instead
// of line when the line carries a credential.
func (s *session) cmd(line, display string) error {
	if err := s.queue(line, display); err != nil {
		return err
	}
	if err := s.flush(); err != nil {
		return err
	}
	s.sent(line)
	return nil
}

// queue buffers one command line for the next flush, as pipelining
// (RFC 2920) sends a group of commands in one write; the caller notes
// each as sent once flushed.
func (s *session) queue(line, display string) error {
	if err := s.cancelled(); err != nil {
		return err
	}
	if display == "" {
		display = line
	}
	s.record(probes.DirSend, display)
	w := s.writer()
	_, _ = w.WriteString(line)
	if _, err := w.WriteString("\r\n"); err != nil {
		// A full buffer was written out on the way and failed.
		s.to(broken)
		return err
	}
	return nil
}

// flush writes out the commands queued.
func (s *session) flush() error {
	if err := s.writer().Flush(); err != nil {
		s.to(broken)
		return err
	}
	return nil
}

// read reads one reply into the phase.
func (s *session) read(pr *probes.PhaseResult) (probes.Reply, error) {
	rep, _, err := s.readReply(pr)
	return rep, err
}

// readReply reads one reply into the phase. The reply is redacted as it
// is read (see readRedactedReply): what is kept, the phase's replies and
// through them the result's reply text, errors, JSON and logs, never holds
// a credential a server echoed. In the SASL exchange the text of the 334
// challenges is kept and shown as redacted whole, whatever it holds: it
// can echo credentials (LOGIN's prompts do not, but XOAUTH2's error report
// names the user). challenge is that text as received, for the mechanism
// alone.
func (s *session) readReply(pr *probes.PhaseResult) (probes.Reply, string, error) {
	inAuth := s.state == authExchange
	rep, challenge, err := readRedactedReply(s.br, &s.red, func(line string, arrived time.Time) {
		if inAuth && strings.HasPrefix(line, "334") && len(line) > 4 {
			line = line[:4] + probes.Redacted
		}
		s.recordAt(probes.DirRecv, line, arrived)
	})
	if err != nil {
		s.readFailed(err)
		return probes.Reply{}, "", err
	}
	s.replied(rep.Code)
	if inAuth && rep.Code == 334 {
		for i := range rep.Lines {
			rep.Lines[i] = probes.Redacted
		}
	}
	pr.Replies = append(pr.Replies, rep)
	return rep, challenge, nil
}

// exchange sends a command and reads its reply, then judges the reply
// against what the phase expects: ok lists the codes that let the dialog
// go on, unless the module's expect_codes for the phase say otherwise.
func (s *session) exchange(pr *probes.PhaseResult, line string, ok ...int) (probes.Reply, error) {
	if err := s.cmd(line, ""); err != nil {
		return probes.Reply{}, err
	}
	rep, err := s.read(pr)
	if err != nil {
		return rep, err
	}
	return rep, s.judge(pr.Phase, verb(line), rep, ok...)
}

func verb(line string) string {
	if i := strings.IndexByte(line, ' '); i > 0 {
		return line[:i]
	}
	return line
}

// judge decides whether a reply lets the dialog continue. With expect_codes
// for the phase, an expected negative reply ends the dialog successfully
// (the negative test passed) and any other code fails it.
func (s *session) judge(p probes.Phase, cmd string, rep probes.Reply, ok ...int) error {
	if want, set := s.m.SMTP.ExpectCodes[p]; set {
		if slices.Contains(want, rep.Code) {
			if !slices.Contains(ok, rep.Code) {
				s.note("%s: expected reply %d received, ending the dialog", p, rep.Code)
				s.res.SMTP.ExpectationMet = true
				s.stopped = true
			}
			return nil
		}
		reason := rep.Reason
		if rep.Positive() {
			reason = probes.ReasonUnexpectedReply
		}
		return &replyError{reply: rep, reason: reason, cmd: cmd + fmt.Sprintf(" (expected %v)", want)}
	}
	if slices.Contains(ok, rep.Code) {
		return nil
	}
	reason := rep.Reason
	if rep.Positive() {
		// A positive reply where another was due (250 to DATA, say) is
		// out of sequence.
		reason = probes.ReasonProtocol
	}
	return &replyError{reply: rep, reason: reason, cmd: cmd}
}
