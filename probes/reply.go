package probes

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
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
// What was read before an error is returned, for the transcript.
func readLine(r *bufio.Reader) (string, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxReplyLineBytes+2 {
			return string(buf[:64]) + "...", &ProtocolError{Msg: fmt.Sprintf("reply line too long (over %d bytes)", maxReplyLineBytes)}
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

// parseReplyLine splits "250-text" or "250 text" into code, continuation
// flag and text.
func parseReplyLine(line string) (code int, more bool, text string, err error) {
	if len(line) < 3 {
		return 0, false, "", &ProtocolError{Msg: fmt.Sprintf("short reply line %q", truncate(line, 64))}
	}
	c, convErr := strconv.Atoi(line[:3])
	if convErr != nil || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' {
		return 0, false, "", &ProtocolError{Msg: fmt.Sprintf("reply line does not start with a reply code: %q", truncate(line, 64))}
	}
	if len(line) == 3 {
		return c, false, "", nil
	}
	switch line[3] {
	case '-':
		return c, true, line[4:], nil
	case ' ':
		return c, false, line[4:], nil
	}
	return 0, false, "", &ProtocolError{Msg: fmt.Sprintf("malformed reply line %q", truncate(line, 64))}
}

// readReply reads one complete, possibly multi-line, reply. onLine sees every
// raw line received (also the partial or malformed last one), so that the
// transcript shows exactly what the server sent.
func readReply(r *bufio.Reader, onLine func(string)) (Reply, error) {
	var (
		code  int
		lines []string
	)
	for {
		line, err := readLine(r)
		if line != "" || err == nil {
			onLine(line)
		}
		if err != nil {
			return Reply{}, err
		}
		c, more, text, err := parseReplyLine(line)
		if err != nil {
			return Reply{}, err
		}
		if code != 0 && c != code {
			return Reply{}, &ProtocolError{Msg: fmt.Sprintf("reply code changed from %d to %d within one reply", code, c)}
		}
		code = c
		lines = append(lines, text)
		if !more {
			return newReply(code, lines), nil
		}
		if len(lines) >= maxReplyLines {
			return Reply{}, &ProtocolError{Msg: fmt.Sprintf("reply longer than %d lines", maxReplyLines)}
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
