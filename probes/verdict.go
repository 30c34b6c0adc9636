package probes

import (
	"fmt"
	"io"
	"strings"
)

// WriteVerdict writes a result's verdict as the probe command and
// /history show it: success, or the failed phase and reason, the server's
// reply that decided it (quoted here once) or the error, and one line of
// what to do first about the reason.
func WriteVerdict(w io.Writer, r *Result) {
	if r.Success {
		verdict := "SUCCESS"
		if r.SMTP != nil && r.SMTP.ExpectationMet {
			verdict += " (expected reply received)"
		}
		fmt.Fprintf(w, "Result: %s in %.3fs\n", verdict, r.Duration.Seconds())
		return
	}
	kind := "permanent"
	if r.Temporary {
		kind = "temporary"
	}
	fmt.Fprintf(w, "Result: FAILED in phase %s after %.3fs: reason=%s (%s)", r.FailedPhase, r.Duration.Seconds(), r.Reason, kind)
	if r.Code != 0 {
		fmt.Fprintf(w, " code=%d", r.Code)
		if r.EnhancedCode != "" {
			fmt.Fprintf(w, " enhanced_code=%s", r.EnhancedCode)
		}
		fmt.Fprintf(w, "\n  server said: %s", r.ReplyText)
	}
	if r.Err != nil && !ErrorRestatesReply(r) {
		fmt.Fprintf(w, "\n  error: %v", r.Err)
	}
	fmt.Fprintf(w, "\nWhat to do first: %s\n", r.Reason.Advice())
}

// ErrorRestatesReply reports whether the result's error only restates
// the reply ("RCPT: server replied 550 ..."): shown beside the reply, it
// would quote the server a second time.
func ErrorRestatesReply(r *Result) bool {
	return r.Err != nil && r.ReplyText != "" && strings.Contains(r.Err.Error(), r.ReplyText)
}
