package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// quitGrace is how long a probe that was cancelled, or ran out of time,
// still has to end the session politely: read the reply it was waiting
// for, RSET an open transaction and QUIT. It runs on its own deadline,
// counted from the cancellation, whatever the cancelled context says: a
// monitor that drops sessions without QUIT looks like an attacker to its
// target (Postfix logs "lost connection", fail2ban counts them). So a
// cancelled Run returns within quitGrace of its cancellation, a timed-out
// one within timeout + quitGrace. Half a second covers a loaded server's
// RSET and QUIT on any network a probe can usefully measure, and is short
// enough for a scrape deadline or a shutdown to absorb.
const quitGrace = 500 * time.Millisecond

// lmtpReplyWait bounds the wait for each LMTP reply after the first one
// to the message (RFC 2033 §4.2: one per accepted recipient). The first
// reply waits as long as the probe may, since the server may scan or
// deliver the message first; the others follow it in a well-behaved
// server within milliseconds, each one delivery later. A server that
// sends fewer replies than recipients (a known non-conformance) is
// detected after this wait, not after the whole timeout.
const lmtpReplyWait = 2 * time.Second

// connDeadline owns the connection's deadline once the dialog has begun.
// Cancellation (a context.AfterFunc, on its own goroutine) and the probe
// (setting the grace, or a shorter wait for one read) both move it; the
// mutex and graceEnd make sure a cancellation that fires late can never
// move the deadline back to the past once the grace has begun, and a
// shorter wait can never undo a cancellation.
type connDeadline struct {
	mu       sync.Mutex
	conn     net.Conn
	graceEnd time.Time // zero until cancelled or the grace begins
}

// cancel interrupts the read in flight: the reply it was waiting for may
// still be read under the grace. Writes keep until the grace's end, so that
// a command or a message already on its way is not cut in half, which
// would leave the stream out of step.
func (d *connDeadline) cancel() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.graceEnd.IsZero() {
		return
	}
	d.graceEnd = time.Now().Add(quitGrace)
	_ = d.conn.SetReadDeadline(time.Unix(1, 0))
	_ = d.conn.SetWriteDeadline(d.graceEnd)
}

// setRead moves the read deadline, unless the probe was cancelled.
func (d *connDeadline) setRead(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.graceEnd.IsZero() {
		_ = d.conn.SetReadDeadline(t)
	}
}

// grace begins the grace, unless a cancellation already has, and gives
// every read and write until its end.
func (d *connDeadline) grace() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.graceEnd.IsZero() {
		d.graceEnd = time.Now().Add(quitGrace)
	}
	_ = d.conn.SetDeadline(d.graceEnd)
}

// lineTail sits under the session's bufio.Reader and keeps what the server
// sent after its last line feed. When a read times out, readLine has taken
// everything buffered (there was no line feed in it), so the tail is
// exactly the part of the line that the timed-out read consumed: the
// beginning of the reply line still to be finished.
type lineTail struct {
	r    io.Reader
	tail []byte
}

func (t *lineTail) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
		t.tail = append(t.tail[:0], p[i+1:n]...)
	} else if len(t.tail)+n <= maxReplyLineBytes+2 {
		t.tail = append(t.tail, p[:n]...)
	}
	return n, err
}

// cancelled refuses to send a new command once the probe's context has
// ended, so that nothing but the grace's own farewell follows a
// cancellation: a command sent then would have a reply due as well.
func (s *session) cancelled() error {
	if s.ctx == nil || s.closing {
		return nil
	}
	return s.ctx.Err()
}

// readFailed decides, after a read error, whether the stream is still in
// step. Only a timeout leaves it so: the reply is late, not wrong, and may
// still be read whole under the grace, also when the timeout cut a line
// (its start is kept) or fell between the lines of a multi-line reply. A
// protocol error (garbage, a bare LF, an over-long line) or a lost
// connection leaves it out of step.
func (s *session) readFailed(err error) {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || s.tail == nil {
		s.to(broken)
		return
	}
	s.partial = string(s.tail.tail)
}

// graceReason says why the session ends under the grace, or "" when it
// ends as usual.
func (s *session) graceReason() string {
	switch {
	case s.ctx != nil && s.ctx.Err() != nil:
		if errors.Is(s.ctx.Err(), context.Canceled) {
			return "probe cancelled"
		}
		return "probe out of time"
	case s.owed > 0:
		return fmt.Sprintf("%d LMTP replies never came", s.owed)
	case s.pending > 0:
		return "probe out of time"
	}
	return ""
}

// drain reads the n replies the dialog was waiting for when it stopped,
// finishing a reply cut mid-line or between lines.
func (s *session) drain(pr *probes.PhaseResult, n int) error {
	if s.partial != "" {
		// Read the cut line again from its beginning, so that it is
		// parsed, and recorded, whole.
		s.br = bufio.NewReaderSize(io.MultiReader(strings.NewReader(s.partial), s.br), 1024)
		s.partial = ""
	}
	for ; n > 0; n-- {
		if _, err := s.read(pr); err != nil {
			return err
		}
	}
	return nil
}

// quit ends the session politely, as farewell decides: RSET an open
// transaction, then QUIT. It runs after failures too, and its replies are
// recorded but never fail a good probe. A dialog that ended as usual says
// goodbye within the probe's own deadline; one that was cancelled, ran out
// of time or still waits for replies does it under quitGrace.
func (s *session) quit() {
	cmds, pipelined := s.farewell()
	why := s.graceReason()
	if cmds == nil || why == "" && time.Now().After(s.deadline) {
		return
	}
	pr := &probes.PhaseResult{Phase: probes.PhaseQuit, Reason: probes.ReasonOK}
	start := time.Now()
	attempted := false
	defer func() {
		// A grace that heard nothing and sent nothing (the greeting
		// never came) is no quit phase, only a transcript note.
		if attempted || pr.Replies != nil {
			pr.Duration = time.Since(start)
			s.res.Phases = append(s.res.Phases, pr)
		}
	}()
	fail := func(err error) { pr.Err, pr.Reason = err, s.reasonOf(err) }
	pending := s.pending
	if why != "" {
		s.closing = true
		s.dl.grace()
		list := strings.Join(cmds, " and ")
		msg := fmt.Sprintf("%s: sending %s within a %s grace", why, list, quitGrace)
		switch {
		case pipelined:
			msg += fmt.Sprintf(" (pending replies: %d, %s pipelined before them)", pending, list)
		case pending > 0:
			msg += fmt.Sprintf(" (pending replies: %d, read first)", pending)
		}
		s.note("%s", msg)
	}
	if pipelined {
		// In one write: the group RFC 2920 lets a client send at once.
		attempted = true
		for _, c := range cmds {
			if err := s.queue(c, ""); err != nil {
				fail(err)
				return
			}
		}
		if err := s.flush(); err != nil {
			fail(err)
			return
		}
		for _, c := range cmds {
			s.sent(c)
		}
	}
	if pending > 0 {
		if err := s.drain(pr, pending); err != nil {
			fail(err)
			return
		}
		if cmds, _ = s.farewell(); cmds == nil {
			waits := "message" // the replies left it in sendingMessage or tlsHandshake
			if s.state == tlsHandshake {
				waits = "TLS handshake"
			}
			s.note("server waits for the %s: hanging up", waits)
			return
		}
	}
	attempted = true
	for _, c := range cmds {
		if !pipelined {
			if err := s.cmd(c, ""); err != nil {
				fail(err)
				return
			}
		}
		rep, err := s.read(pr)
		switch {
		case err != nil:
			fail(err)
			return
		case s.state == broken:
			return
		case !rep.Positive() && c != "*":
			pr.Reason = rep.Reason
		}
	}
}
