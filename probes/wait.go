package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// WaitError says in the operator's words what a probe waited for when its
// deadline passed or it was cancelled ("no reply to EHLO within 5s"), where
// Go says "read tcp 10.0.0.1:4711->10.0.0.2:25: i/o timeout". It unwraps
// to the error it replaces, so the reason stays timeout; a cancelled
// one also unwraps to context.Canceled.
type WaitError struct {
	msg       string
	err       error
	cancelled bool
}

func (e *WaitError) Error() string { return e.msg }

func (e *WaitError) Unwrap() []error {
	if e.cancelled {
		return []error{context.Canceled, e.err}
	}
	return []error{e.err}
}

// Wait describes a wait that err (a timeout) ended: what was awaited (a
// phrase such as "no reply to EHLO"), the deadline that applied (limit),
// how long this step waited of it, and whose deadline it was. A step that
// began late had less than limit, and the text says so with whose (such
// as "the probe's timeout; this phase waited").
type Wait struct {
	What   string
	Limit  time.Duration
	Waited time.Duration
	Whose  string
}

// WaitedFor wraps err with w's words, or, when ctx was cancelled, says so
// ("probe cancelled: no reply to EHLO yet"). Errors that already say it
// pass unchanged.
func WaitedFor(ctx context.Context, w Wait, err error) error {
	var we *WaitError
	if errors.As(err, &we) {
		return err
	}
	if ctx != nil && errors.Is(ctx.Err(), context.Canceled) {
		return &WaitError{msg: "probe cancelled: " + w.What + " yet", err: err, cancelled: true}
	}
	msg := fmt.Sprintf("%s within %s", w.What, w.Limit)
	if w.Whose != "" && w.Waited < w.Limit*9/10 {
		msg += fmt.Sprintf(" (%s %s)", w.Whose, RoundForPeople(w.Waited))
	}
	return &WaitError{msg: msg, err: err}
}

// RoundForPeople rounds a duration to what a person reads in an error.
func RoundForPeople(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// ConnectError says why a connection to addr failed without Go's "dial
// tcp" wording: refused by the address, or the system's words for the
// rest. Errors DialTCP wrapped (about source_ip_address) keep their words.
func ConnectError(addr string, err error) string {
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

// Reworded is err told in other words, msg: a redacted text, or the
// operator's words where Go's would do (Go's error stays underneath, for
// errors.Is and errors.As).
func Reworded(msg string, err error) error { return &rewordedError{msg: msg, err: err} }

type rewordedError struct {
	msg string
	err error
}

func (e *rewordedError) Error() string { return e.msg }
func (e *rewordedError) Unwrap() error { return e.err }
