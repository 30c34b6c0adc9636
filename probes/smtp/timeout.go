package smtp

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

// timeLimit is the deadline that applied, as a duration from the probe's
// start: the module's timeout, or a shorter one the caller's context set
// (a scrape's), rounded to what a person reads.
func (s *session) timeLimit() time.Duration {
	limit := s.deadline.Sub(s.res.Start)
	if d := limit - s.m.Timeout; d > -10*time.Millisecond && d < 10*time.Millisecond {
		return s.m.Timeout
	}
	return probes.RoundForPeople(limit)
}

// waitedFor wraps a timeout that ended what (a phrase such as "no reply to
// EHLO") with the deadline that applied, or, for a cancelled probe, says
// so. Errors that already say it pass unchanged.
func (s *session) waitedFor(what string, err error) error {
	return probes.WaitedFor(s.ctx, probes.Wait{What: what, Limit: s.timeLimit(), Waited: time.Since(s.phaseStart),
		Whose: "the probe's timeout; this phase waited"}, err)
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
