package smtp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

// waitError says in the operator's words what a probe waited for when its
// deadline passed or it was cancelled ("no reply to EHLO within 5s"), where
// Go says "read tcp 10.0.0.1:4711->10.0.0.2:25: i/o timeout". It unwraps
// to the error it replaces, so the reason stays timeout; a cancelled
// one also unwraps to context.Canceled.
type waitError struct {
	msg       string
	err       error
	cancelled bool
}

func (e *waitError) Error() string { return e.msg }

func (e *waitError) Unwrap() []error {
	if e.cancelled {
		return []error{context.Canceled, e.err}
	}
	return []error{e.err}
}

// timeLimit is the deadline that applied, as a duration from the probe's
// start: the module's timeout, or a shorter one the caller's context set
// (a scrape's), rounded to what a person reads.
func (s *session) timeLimit() time.Duration {
	limit := s.deadline.Sub(s.res.Start)
	if d := limit - s.m.Timeout; d > -10*time.Millisecond && d < 10*time.Millisecond {
		return s.m.Timeout
	}
	return roundForPeople(limit)
}

func roundForPeople(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// waitedFor wraps a timeout that ended what (a phrase such as "no reply to
// EHLO") with the deadline that applied, or, for a cancelled probe, says
// so. Errors that already say it pass unchanged.
func (s *session) waitedFor(what string, err error) error {
	var we *waitError
	if errors.As(err, &we) {
		return err
	}
	if s.ctx != nil && errors.Is(s.ctx.Err(), context.Canceled) {
		return &waitError{msg: "probe cancelled: " + what + " yet", err: err, cancelled: true}
	}
	limit := s.timeLimit()
	msg := fmt.Sprintf("%s within %s", what, limit)
	// The deadline is the whole probe's: a phase that began late had less.
	if waited := time.Since(s.phaseStart); waited < limit*9/10 {
		msg += fmt.Sprintf(" (the probe's timeout; this phase waited %s)", roundForPeople(waited))
	}
	return &waitError{msg: msg, err: err}
}

// describeTimeout rewrites a timeout of phase p from what the dialog was
// waiting for: a DNS answer, the TCP connection, the greeting, the reply
// to the last command, or the server reading what the probe wrote. Other
// errors pass unchanged.
func (s *session) describeTimeout(p probes.Phase, err error) error {
	if s.reasonOf(err) != probes.ReasonTimeout {
		return err
	}
	var op *net.OpError
	switch {
	case p == probes.PhaseResolve:
		return s.waitedFor("no DNS answer for "+s.host, err)
	case p == probes.PhaseConnect:
		return s.waitedFor("no TCP connection to "+s.connectAddr, err)
	case errors.As(err, &op) && op.Op == "write":
		return s.waitedFor(fmt.Sprintf("the server did not take what the probe sent in phase %s", p), err)
	case p == probes.PhaseBanner && s.pending > 0:
		return s.waitedFor("no banner", err)
	case s.pending > 0:
		cmd := s.pendingCmd
		switch {
		case cmd == ".":
			cmd = "the end of DATA"
		case cmd == "" && s.state == authExchange:
			cmd = "AUTH"
		}
		return s.waitedFor("no reply to "+cmd, err)
	}
	return s.waitedFor(fmt.Sprintf("phase %s did not finish", p), err)
}

// connectError says why a connection failed without Go's "dial tcp"
// wording: refused by the address, or the system's words for the rest.
// Errors DialTCP wrapped (about source_ip_address) keep their words.
func connectError(addr string, err error) string {
	op, ok := err.(*net.OpError)
	if !ok || op.Op != "dial" {
		return err.Error()
	}
	var sys *os.SyscallError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused by " + addr
	case errors.As(op.Err, &sys):
		return fmt.Sprintf("cannot connect to %s: %v", addr, sys.Err)
	}
	return err.Error()
}
