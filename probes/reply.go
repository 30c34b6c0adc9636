package probes

import (
	"strconv"
	"strings"
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

// NewReply builds a Reply from a code and its text lines, extracting the
// enhanced code and classifying it.
func NewReply(code int, lines []string) Reply {
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
		if enh, ok := LeadingEnhancedCode(l); ok && enh[0] == class {
			return enh
		}
	}
	return ""
}

// Truncate cuts s to at most n bytes, marking the cut with "...". Callers
// redact first: a cut can leave a fragment of a secret that redaction no
// longer recognises.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
