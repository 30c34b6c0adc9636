package probestest

import (
	"crypto/tls"
	"encoding/base64"
	"strings"
)

// Dialog is a well-behaved SMTP server script for ScriptServer handlers whose
// replies can be overridden per verb, for "reply X at phase Y" tests:
//
//	s := probestest.NewScriptServer(t, probestest.Dialog{
//		Replies: map[string]string{"RCPT": "550 5.1.1 User unknown"},
//	}.Serve)
type Dialog struct {
	// Banner is the greeting; default "220 script.test ESMTP probestest".
	Banner string
	// EHLO are the reply lines to EHLO, sent as given. The default
	// advertises PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES and
	// SMTPUTF8, plus STARTTLS when TLS is set and not yet active.
	EHLO []string
	// TLS, when set, makes STARTTLS answer "220 2.0.0 Ready to start TLS"
	// and upgrade the connection.
	TLS *tls.Config
	// Replies maps an upper-case verb (HELO, EHLO, STARTTLS, AUTH, MAIL,
	// RCPT, DATA, RSET, QUIT, NOOP, or any other verb) or "DOT" (the reply
	// after the message's final ".") to a raw reply used instead of the
	// default. Multi-line replies are joined with "\r\n". For AUTH it
	// replaces the final reply; the 334 challenges are still sent.
	Replies map[string]string
	// Deliver, when set, gets each message the client sent (dot-stuffing
	// undone, lines joined with CRLF) before the reply after the final
	// ".": a delivery agent for tests that follow the message further.
	Deliver func(msg string)
}

// Serve runs the dialog on c until QUIT, a 421 reply, or a connection error.
// Every reply starting with "421" (banner included) is followed by a close,
// as RFC 5321 §3.8 requires of a server that is shutting down.
func (d Dialog) Serve(c *Conn) {
	banner := d.Banner
	if banner == "" {
		banner = "220 script.test ESMTP probestest"
	}
	if !d.send(c, banner) {
		return
	}
	tlsActive := false
	for {
		line, err := c.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		switch verb {
		case "HELO":
			if !d.send(c, d.reply(verb, "250 script.test")) {
				return
			}
		case "EHLO":
			if !d.send(c, d.reply(verb, d.ehloReply(tlsActive))) {
				return
			}
		case "STARTTLS":
			upgraded, ok := d.startTLS(c, tlsActive)
			if !ok {
				return
			}
			tlsActive = tlsActive || upgraded
		case "AUTH":
			if !d.auth(c, arg) {
				return
			}
		case "MAIL":
			if !d.send(c, d.reply(verb, "250 2.1.0 Ok")) {
				return
			}
		case "RCPT":
			if !d.send(c, d.reply(verb, "250 2.1.5 Ok")) {
				return
			}
		case "DATA":
			if !d.data(c) {
				return
			}
		case "RSET", "NOOP":
			if !d.send(c, d.reply(verb, "250 2.0.0 Ok")) {
				return
			}
		case "QUIT":
			d.send(c, d.reply(verb, "221 2.0.0 Bye"))
			return
		default:
			if !d.send(c, d.reply(verb, "502 5.5.2 Error: command not recognized")) {
				return
			}
		}
	}
}

// send writes reply and reports whether the dialog may go on.
func (d Dialog) send(c *Conn, reply string) bool {
	c.Send(reply)
	return !strings.HasPrefix(reply, "421")
}

func (d Dialog) reply(verb, fallback string) string {
	if r, ok := d.Replies[verb]; ok {
		return r
	}
	return fallback
}

func (d Dialog) ehloReply(tlsActive bool) string {
	lines := d.EHLO
	if lines == nil {
		lines = []string{"250-script.test", "250-PIPELINING", "250-SIZE 10240000"}
		if d.TLS != nil && !tlsActive {
			lines = append(lines, "250-STARTTLS")
		}
		lines = append(lines, "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250 SMTPUTF8")
	}
	return strings.Join(lines, "\r\n")
}

// startTLS answers STARTTLS and upgrades when the reply is a 220 and TLS is
// configured; an overridden refusal leaves the connection in plaintext.
func (d Dialog) startTLS(c *Conn, tlsActive bool) (upgraded, ok bool) {
	fallback := "502 5.5.2 Error: command not recognized"
	if d.TLS != nil && !tlsActive {
		fallback = "220 2.0.0 Ready to start TLS"
	}
	reply := d.reply("STARTTLS", fallback)
	if !d.send(c, reply) {
		return false, false
	}
	if !strings.HasPrefix(reply, "220") || d.TLS == nil || tlsActive {
		return false, true
	}
	if err := c.StartTLS(d.TLS); err != nil {
		return false, false
	}
	return true, true
}

// auth walks the client through the challenges its mechanism needs before
// the final reply, so that clients which insist on finishing the exchange
// (net/smtp, go-sasl) reach the reply under test.
func (d Dialog) auth(c *Conn, arg string) bool {
	fields := strings.Fields(arg)
	if len(fields) == 0 {
		return d.send(c, d.reply("AUTH", "501 5.5.4 Syntax: AUTH mechanism"))
	}
	mech := strings.ToUpper(fields[0])
	hasInitial := len(fields) > 1
	var challenges []string
	switch mech {
	case "LOGIN":
		if !hasInitial {
			challenges = append(challenges, "334 VXNlcm5hbWU6") // "Username:"
		}
		challenges = append(challenges, "334 UGFzc3dvcmQ6") // "Password:"
	case "CRAM-MD5":
		challenges = append(challenges, "334 "+base64.StdEncoding.EncodeToString([]byte("<1896.697170952@script.test>")))
	case "PLAIN", "XOAUTH2", "OAUTHBEARER":
		if !hasInitial {
			challenges = append(challenges, "334 ")
		}
	default:
		return d.send(c, d.reply("AUTH", "504 5.5.4 Unrecognized authentication type"))
	}
	for _, ch := range challenges {
		c.Send(ch)
		resp, err := c.ReadLine()
		if err != nil {
			return false
		}
		if resp == "*" {
			return d.send(c, "501 5.7.0 Authentication aborted")
		}
	}
	return d.send(c, d.reply("AUTH", "235 2.7.0 Authentication successful"))
}

func (d Dialog) data(c *Conn) bool {
	reply := d.reply("DATA", "354 End data with <CR><LF>.<CR><LF>")
	if !d.send(c, reply) {
		return false
	}
	if !strings.HasPrefix(reply, "354") {
		return true
	}
	var msg strings.Builder
	for {
		line, err := c.ReadLine()
		if err != nil {
			return false
		}
		if line == "." {
			break
		}
		msg.WriteString(strings.TrimPrefix(line, "."))
		msg.WriteString("\r\n")
	}
	if d.Deliver != nil {
		d.Deliver(msg.String())
	}
	return d.send(c, d.reply("DOT", "250 2.0.0 Ok: queued as ABC123"))
}
