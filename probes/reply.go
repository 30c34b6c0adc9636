package probes

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Limits on what a server may send in one reply. RFC 5321 §4.5.3.1.5 allows
// 512 octets per reply line; real servers exceed that a little, hostile ones
// a lot, and a probe must not buffer megabytes to find out.
const (
	maxReplyLineBytes = 4096
	maxReplyLines     = 100
)

// Reply is one complete SMTP reply: the code, the RFC 3463 enhanced status
// code when the text carries one, every text line and the diagnosed reason.
type Reply struct {
	Code         int      `json:"code"`
	EnhancedCode string   `json:"enhanced_code"`
	Lines        []string `json:"lines"`
	Reason       Reason   `json:"reason"`
}

// Class is the reply's class as a label value: "2xx", "3xx", "4xx" or "5xx".
func (r Reply) Class() string {
	if r.Code < 100 || r.Code > 599 {
		return ""
	}
	return strconv.Itoa(r.Code/100) + "xx"
}

// Positive reports a 2xx or 3xx reply.
func (r Reply) Positive() bool { return r.Code >= 200 && r.Code < 400 }

// Temporary reports a transient negative reply (4xx): retrying later may help.
func (r Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// Text joins the reply's text lines with a space, as a human reads it.
func (r Reply) Text() string { return strings.Join(r.Lines, " ") }

// newReply builds a Reply from a code and its text lines, extracting the
// enhanced code and classifying it.
func newReply(code int, lines []string) Reply {
	enh := enhancedCodeOf(code, lines)
	return Reply{
		Code:         code,
		EnhancedCode: enh,
		Lines:        lines,
		Reason:       Classify(code, enh, strings.Join(lines, " ")),
	}
}

// enhancedCodeOf finds an RFC 3463 status code at the start of a reply line
// whose class matches the reply code's. Servers that do not advertise
// ENHANCEDSTATUSCODES often send one anyway, and some only on the last line
// of a multi-line reply, so every line is looked at.
func enhancedCodeOf(code int, lines []string) string {
	class := byte('0' + code/100)
	for _, l := range lines {
		if enh, ok := leadingEnhancedCode(l); ok && enh[0] == class {
			return enh
		}
	}
	return ""
}

// leadingEnhancedCode parses "class.subject.detail" (RFC 3463: class 2, 4 or
// 5; subject 1-3 digits; detail 1-3 digits) at the start of s.
func leadingEnhancedCode(s string) (string, bool) {
	s = strings.TrimLeft(s, " \t")
	if len(s) < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.' {
		return "", false
	}
	i := 2
	for part := 0; part < 2; part++ {
		start := i
		for i < len(s) && i-start < 4 && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		n := i - start
		if n < 1 || n > 3 {
			return "", false
		}
		if part == 0 {
			if i >= len(s) || s[i] != '.' {
				return "", false
			}
			i++
		}
	}
	if i < len(s) && s[i] != ' ' && s[i] != '\t' {
		return "", false
	}
	return s[:i], true
}

// ProtocolError is a reply that does not follow RFC 5321's grammar.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "smtp protocol error: " + e.Msg }

// readLine reads one CRLF-terminated line of at most maxReplyLineBytes. A
// bare LF is a protocol error: RFC 5321 §2.3.8 requires CRLF and a server
// that sends LF alone is broken in ways other clients will trip over too.
// What was read before an error is returned, for the transcript: whole, an
// over-long line included, since it must be redacted before it is cut.
func readLine(r *bufio.Reader) (string, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxReplyLineBytes+2 {
			return string(buf), errLineTooLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(buf) > 0 {
			// The server hung up in the middle of a line.
			return string(buf), io.ErrUnexpectedEOF
		}
		if err != nil {
			return string(buf), err
		}
		break
	}
	line := buf[:len(buf)-1]
	if !bytes.HasSuffix(line, []byte{'\r'}) {
		return string(line), &ProtocolError{Msg: "reply line ends in a bare LF, not CRLF"}
	}
	return string(line[:len(line)-1]), nil
}

var errLineTooLong = &ProtocolError{Msg: fmt.Sprintf("reply line too long (over %d bytes)", maxReplyLineBytes)}

// shownLineBytes is how much of an over-long line the transcript keeps.
const shownLineBytes = 64

// parseReplyLine splits "250-text" or "250 text" into code, continuation
// flag and text. A line that breaks the grammar gets bad, the start of the
// error message; the caller quotes the line after it, once redacted.
func parseReplyLine(line string) (code int, more bool, text string, bad string) {
	if len(line) < 3 {
		return 0, false, "", "short reply line"
	}
	c, convErr := strconv.Atoi(line[:3])
	if convErr != nil || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' {
		return 0, false, "", "reply line does not start with a reply code:"
	}
	if len(line) == 3 {
		return c, false, "", ""
	}
	switch line[3] {
	case '-':
		return c, true, line[4:], ""
	case ' ':
		return c, false, line[4:], ""
	}
	return 0, false, "", "malformed reply line"
}

// replyTextStart is where the text of a reply line starts: after its code
// and separator when it has them, else at 0 (the whole of a malformed line
// may carry anything).
func replyTextStart(line string) int {
	if _, _, _, bad := parseReplyLine(line); bad != "" {
		return 0
	}
	return min(len(line), 4)
}

// readReply reads one complete, possibly multi-line, reply without
// redaction. onLine sees every raw line received (also the partial or
// malformed last one), so that the transcript shows what the server sent.
func readReply(r *bufio.Reader, onLine func(string)) (Reply, error) {
	rep, _, err := readRedactedReply(r, nil, func(l string, _ time.Time) { onLine(l) })
	return rep, err
}

// readRedactedReply reads one complete reply. Every line read, the partial,
// malformed or over-long last one too, goes through red before anything
// else happens to it: all of the reply's lines at once, so that a secret
// split over line ends is caught, and before any cutting, quoting or
// joining. The Reply, its classification, the error and the lines onLine
// sees are all built from red's output; onLine sees them when the reply
// is complete, each with the time it arrived. challenge is the unredacted
// text of a 334 reply, for the SASL mechanism alone.
func readRedactedReply(r *bufio.Reader, red *Redactor, onLine func(line string, arrived time.Time)) (rep Reply, challenge string, err error) {
	var (
		code    int
		raw     []string // the lines as received
		arrived []time.Time
		bad     string // how the last line breaks the grammar
	)
	for {
		line, lerr := readLine(r)
		if line != "" || lerr == nil {
			raw = append(raw, line)
			arrived = append(arrived, time.Now())
		}
		if lerr != nil {
			err = lerr
			break
		}
		c, more, _, why := parseReplyLine(line)
		if why != "" {
			bad = why
			break
		}
		if code != 0 && c != code {
			err = &ProtocolError{Msg: fmt.Sprintf("reply code changed from %d to %d within one reply", code, c)}
			break
		}
		code = c
		if !more {
			break
		}
		if len(raw) >= maxReplyLines {
			err = &ProtocolError{Msg: fmt.Sprintf("reply longer than %d lines", maxReplyLines)}
			break
		}
	}
	shown := red.RedactLines(raw, replyTextStart)
	if err == errLineTooLong {
		shown[len(shown)-1] = truncate(shown[len(shown)-1], shownLineBytes)
	}
	for i, l := range shown {
		onLine(l, arrived[i])
	}
	if bad != "" {
		last := truncate(shown[len(shown)-1], shownLineBytes)
		// Redacted again as quoted, in case quoting completed a fragment.
		err = &ProtocolError{Msg: red.Redact(fmt.Sprintf("%s %q", bad, last))}
	}
	if err != nil {
		return Reply{}, "", err
	}
	texts := make([]string, len(shown))
	for i, l := range shown {
		// A fragment that began in the code took the code along: then
		// the whole line, which starts with the replacement, is text.
		if ts := replyTextStart(raw[i]); strings.HasPrefix(l, raw[i][:ts]) {
			l = l[ts:]
		}
		texts[i] = l
	}
	if code == 334 {
		rawTexts := make([]string, len(raw))
		for i, l := range raw {
			rawTexts[i] = l[replyTextStart(l):]
		}
		challenge = strings.Join(rawTexts, " ")
	}
	return newReply(code, texts), challenge, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
