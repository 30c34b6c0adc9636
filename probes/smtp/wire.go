package smtp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
)

// Limits on what a server may send in one reply. RFC 5321 §4.5.3.1.5 allows
// 512 octets per reply line; real servers exceed that a little, hostile ones
// a lot, and a probe must not buffer megabytes to find out.
const (
	maxReplyLineBytes = 4096
	maxReplyLines     = 100
)

// ProtocolError is a reply that does not follow RFC 5321's grammar.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "smtp protocol error: " + e.Msg }

// readLine reads one CRLF-terminated line of at most maxReplyLineBytes. A
// bare LF is a protocol error: RFC 5321 §2.3.8 requires CRLF and a server
// that sends LF alone is broken in ways other clients will trip over too.
// What was read before an error is returned, for the transcript: whole, an
// over-long line included, since it must be probes.Redacted before it is cut.
func readLine(r *bufio.Reader) (string, error) {
	chunk, err := r.ReadSlice('\n')
	if err == nil && len(chunk) <= maxReplyLineBytes+2 {
		// The whole line was in the buffer, which is shorter than the
		// limit: one copy, the string.
		return endLine(chunk)
	}
	buf := append([]byte(nil), chunk...)
	for {
		if len(buf) > maxReplyLineBytes+2 {
			return string(buf), errLineTooLong
		}
		if err == bufio.ErrBufferFull {
			chunk, err = r.ReadSlice('\n')
			buf = append(buf, chunk...)
			continue
		}
		if err == io.EOF && len(buf) > 0 {
			// The server hung up in the middle of a line.
			return string(buf), io.ErrUnexpectedEOF
		}
		if err != nil {
			return string(buf), err
		}
		return endLine(buf)
	}
}

// endLine takes a line read up to and including its LF.
func endLine(b []byte) (string, error) {
	line := b[:len(b)-1]
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
// error message; the caller quotes the line after it, once probes.Redacted.
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
func readReply(r *bufio.Reader, onLine func(string)) (probes.Reply, error) {
	rep, _, err := readRedactedReply(r, nil, func(l string, _ time.Time) { onLine(l) })
	return rep, err
}

// readRedactedReply reads one complete reply. Every line read, the partial,
// malformed or over-long last one too, goes through red before anything
// else happens to it: all of the reply's lines at once, so that a secret
// split over line ends is caught, and before any cutting, quoting or
// joining. The probes.Reply, its classification, the error and the lines onLine
// sees are all built from red's output; onLine sees them when the reply
// is complete, each with the time it arrived. challenge is the unredacted
// text of a 334 reply, for the SASL mechanism alone.
func readRedactedReply(r *bufio.Reader, red *probes.Redactor, onLine func(line string, arrived time.Time)) (rep probes.Reply, challenge string, err error) {
	var (
		code int
		// raw holds the lines as received: room on the stack for most
		// replies, a few hundred bytes, as the goroutine's stack while
		// it waits for the greeting is what a waiting probe costs.
		rawBuf     [8]string
		arrivedBuf [8]time.Time
		raw        = rawBuf[:0]
		arrived    = arrivedBuf[:0]
		bad        string // how the last line breaks the grammar
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
		shown[len(shown)-1] = probes.Truncate(shown[len(shown)-1], shownLineBytes)
	}
	for i, l := range shown {
		onLine(l, arrived[i])
	}
	if bad != "" {
		last := probes.Truncate(shown[len(shown)-1], shownLineBytes)
		// probes.Redacted again as quoted, in case quoting completed a fragment.
		err = &ProtocolError{Msg: red.Redact(fmt.Sprintf("%s %q", bad, last))}
	}
	if err != nil {
		return probes.Reply{}, "", err
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
	return probes.NewReply(code, texts), challenge, nil
}
