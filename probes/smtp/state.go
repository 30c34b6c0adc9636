package smtp

import (
	"slices"
	"strings"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

// streamState is where the SMTP stream stands: what the server will take
// the probe's next line for, once the replies due are read. It alone
// decides how a session may end (farewell). The replies due are counted
// beside it (session.pending), not as a state of their own, because one can
// be due in any state: the greeting, a command in or out of a transaction,
// the message's final dot.
type streamState int

const (
	// greetingDue: connected (implicit TLS may handshake first), the
	// greeting not waited for. A dialog that ends here hangs up: speaking
	// before the greeting is what Postfix's postscreen punishes (PREGREET).
	greetingDue    streamState = iota
	ready                      // the server reads commands, no transaction open
	inTransaction              // MAIL was sent: RSET goes before QUIT
	sendingMessage             // 354 came: every line is message text up to the final dot
	tlsHandshake               // 220 to STARTTLS came: the next bytes are a ClientHello
	// authExchange: AUTH was sent and its final reply has not come. After
	// a 334 the next line is a SASL response: "*" cancels (RFC 4954 §4).
	authExchange
	// broken: out of step after an I/O or protocol error, the server's
	// next line could not be told from a reply to QUIT. Final.
	broken
)

// to moves the stream to st. Nothing puts a broken stream back in step.
func (s *session) to(st streamState) {
	if s.state != broken {
		s.state = st
	}
}

// sent notes a command on the wire: its reply is now due. pendingCmd keeps
// its verb; in the SASL exchange only "*", never a response, which holds a
// credential.
func (s *session) sent(line string) {
	s.pending++
	s.pendingCmd = strings.ToUpper(verb(line))
	switch {
	case s.state == authExchange && line != "*":
		s.pendingCmd = ""
	case s.pendingCmd == "MAIL":
		s.to(inTransaction)
	case s.pendingCmd == "AUTH":
		s.to(authExchange)
	}
}

// replied notes a reply read and where it leaves the server. The probe's
// steps and the grace's drain both read through here, so a reply read
// under the grace moves the stream as one read in the dialog does.
func (s *session) replied(code int) {
	s.pending = max(s.pending-1, 0)
	switch {
	case code == 354 && s.pendingCmd == "DATA":
		s.to(sendingMessage)
	case code == 220 && s.pendingCmd == "STARTTLS":
		s.to(tlsHandshake)
	case s.state != authExchange: // other replies leave it where it was
	case code != 334:
		s.to(ready)
	case s.pendingCmd == "*":
		// The server ignored the cancel: QUIT would be a response.
		s.to(broken)
	}
}

// farewell decides, in one place, how the session ends from where the
// stream stands: the commands to send, none to hang up, and whether they
// are pipelined before the replies due. Otherwise those are read first,
// within the grace (the greeting too, or the probe hangs up without it),
// and farewell is asked again in the state they leave.
//
// Pipelining lets a server slower than the grace still see QUIT, after
// its late reply. RFC 2920 allows it only to a server that advertised
// PIPELINING (every LMTP server must, RFC 2033 §5), and only after a
// command whose reply leaves the server reading commands: not after EHLO
// (last of a group), AUTH (a 334 would take QUIT for a credential),
// STARTTLS (a 220 waits for a ClientHello) or DATA (a 354 takes every line
// as message text).
func (s *session) farewell() (cmds []string, pipelined bool) {
	switch s.state {
	case ready:
		cmds = []string{"QUIT"}
	case inTransaction:
		cmds = []string{"RSET", "QUIT"}
	case authExchange:
		cmds = []string{"*", "QUIT"}
	default:
		return nil, false
	}
	_, ok := s.ext["PIPELINING"]
	ok = ok || s.m.Prober == probes.ProberLMTP
	return cmds, ok && s.pending > 0 && slices.Contains([]string{"MAIL", "RCPT", "RSET", "NOOP", "."}, s.pendingCmd)
}
