package delivery

import (
	"bufio"
	"errors"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// ProbeHeader is the header field that carries a probe message's token;
// the returned copy of the message in a bounce carries it too. Only
// messages with it are ever touched in a mailbox.
const ProbeHeader = "X-SMTP-Exporter-Probe"

// Action is what a delivery status notification says happened to one
// recipient (RFC 3464 §2.3.3), as a fixed-set value.
type Action string

// The RFC 3464 actions, and "other" for whatever else an MTA writes.
const (
	ActionFailed    Action = "failed"
	ActionDelayed   Action = "delayed"
	ActionDelivered Action = "delivered"
	ActionRelayed   Action = "relayed"
	ActionExpanded  Action = "expanded"
	ActionOther     Action = "other"
)

// Failure reports an action that means the message did not get there:
// for good (failed) or not yet (delayed).
func (a Action) Failure() bool { return a == ActionFailed || a == ActionDelayed }

// Bounce formats: an RFC 3464 report, or one of the plain-text notices
// older MTAs still send (qmail, Exchange before 2007).
const (
	FormatDSN  = "dsn"
	FormatText = "text"
)

// BounceRecipient is what a bounce says of one recipient.
type BounceRecipient struct {
	FinalRecipient    string `json:"final_recipient,omitempty"`
	OriginalRecipient string `json:"original_recipient,omitempty"`
	Action            Action `json:"action"`
	// Status is the RFC 3463 code of the Status field, "" when it had none.
	Status    string `json:"status,omitempty"`
	RemoteMTA string `json:"remote_mta,omitempty"`
	// DiagnosticType is the Diagnostic-Code's type ("smtp", "x-postfix"),
	// lower case.
	DiagnosticType string `json:"diagnostic_type,omitempty"`
	// The diagnosis as a reply: Code is the Diagnostic-Code's reply code
	// or, without one, one of the Status's class (550, 450, 250);
	// EnhancedCode the reply's own enhanced code, else the Status; Text
	// the reply text, unfolded, without the code.
	Code         int           `json:"code"`
	EnhancedCode string        `json:"enhanced_code,omitempty"`
	Text         string        `json:"text,omitempty"`
	Reason       probes.Reason `json:"reason"`
	Temporary    bool          `json:"temporary"`
}

// Bounce is what a delivery status notification or a plain-text bounce
// says, and which message it is about.
type Bounce struct {
	Format       string `json:"format"`
	ReportingMTA string `json:"reporting_mta,omitempty"`
	// EnvelopeID is the ENVID the sender gave with MAIL FROM (RFC 3461),
	// echoed as Original-Envelope-Id.
	EnvelopeID string            `json:"envelope_id,omitempty"`
	Recipients []BounceRecipient `json:"recipients,omitempty"`
	// What identifies the returned message: its ProbeHeader token and its
	// Message-ID, "" when the bounce did not return them.
	ProbeToken string `json:"probe_token,omitempty"`
	MessageID  string `json:"message_id,omitempty"`
	// Verdict is the recipient the bounce is reported by: the first that
	// failed, else the first delayed, else the first.
	Verdict BounceRecipient `json:"verdict"`
}

// Bounds on what a bounce may cost to read. Real bounces are a few KiB
// plus the returned message, which comes last and of which only the header
// is read.
const (
	maxBounceBytes  = 1 << 20
	maxPartBytes    = 64 << 10
	maxParts        = 32
	maxDepth        = 4
	maxRecipients   = 100
	maxFieldBytes   = 4 << 10
	maxFieldsPerSet = 64
	maxTextBytes    = 1 << 10
)

// ParseBounce reads one message and reports whether it is a bounce: an
// RFC 3464 delivery status notification (multipart/report with a
// message/delivery-status part, or its RFC 6533 global form), or a
// plain-text notice from a mailer daemon. It never fails: what does not
// parse is skipped, so that a broken bounce still reports what it could.
// It reads at most 1 MiB of r.
//
// Each recipient's reason comes from the classifier of live replies
// (probes.Classify), run on the Diagnostic-Code: its reply code, its
// enhanced code (more specific than a Status that reporting MTAs such as
// Exim set to a generic 5.0.0; the Status when the reply has none) and its
// text. Temporary follows the Action: delayed is temporary, failed is
// not, whatever the reply's class (a 4xx that expired in the queue failed
// for good).
//
// A message that carries ProbeHeader itself is a probe message, never a
// bounce, even when its sender is a postmaster.
func ParseBounce(r io.Reader) (Bounce, bool) {
	e, err := message.Read(io.LimitReader(r, maxBounceBytes))
	if e == nil || (err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err)) {
		return Bounce{}, false
	}
	if e.Header.Has(ProbeHeader) {
		return Bounce{}, false
	}
	w := &bounceWalker{}
	w.walk(e, 0)
	b := w.bounce
	if w.statusParts > 0 {
		b.Format = FormatDSN
	} else {
		if !looksLikeBounce(e.Header) || w.notice == "" {
			return Bounce{}, false
		}
		b.Format = FormatText
		b.Recipients = []BounceRecipient{textRecipient(w.notice)}
		if b.ProbeToken == "" {
			b.ProbeToken, b.MessageID = returnedIDsInText(w.notice)
		}
	}
	b.Verdict = verdictOf(b.Recipients)
	return b, true
}

// bounceWalker goes through a bounce's MIME tree, collecting the
// delivery-status fields, the returned message's identifiers and the
// first text part (the human-readable notice).
type bounceWalker struct {
	bounce      Bounce
	parts       int
	statusParts int
	returned    bool
	notice      string
}

func (w *bounceWalker) walk(e *message.Entity, depth int) {
	w.parts++
	mediaType, _, _ := e.Header.ContentType()
	switch mediaType {
	case "message/delivery-status", "message/global-delivery-status":
		w.statusParts++
		w.readStatus(readBounded(e.Body, maxPartBytes))
	case "message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers":
		if !w.returned {
			w.returned = true
			h, _ := ReadHeader(e.Body)
			w.bounce.ProbeToken = firstWord(h.Get(ProbeHeader))
			w.bounce.MessageID = firstWord(h.Get("Message-Id"))
		}
	case "", "text/plain":
		if w.notice == "" {
			w.notice = readBounded(e.Body, maxPartBytes)
		}
	}
	mr := e.MultipartReader()
	if mr == nil || depth >= maxDepth {
		return
	}
	for w.parts < maxParts {
		p, err := mr.NextPart()
		if p == nil || (err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err)) {
			return
		}
		w.walk(p, depth+1)
	}
}

// readStatus reads a message/delivery-status body: one group of
// per-message fields, then one group per recipient (RFC 3464 §2.1).
func (w *bounceWalker) readStatus(body string) {
	for i, fields := range fieldGroups(body) {
		if i == 0 && fields["final-recipient"] == "" && fields["action"] == "" {
			w.bounce.ReportingMTA = unfold(valueAfterType(fields["reporting-mta"]))
			w.bounce.EnvelopeID = unfold(fields["original-envelope-id"])
			continue
		}
		if len(w.bounce.Recipients) < maxRecipients {
			w.bounce.Recipients = append(w.bounce.Recipients, dsnRecipient(fields))
		}
	}
}

func dsnRecipient(fields map[string]string) BounceRecipient {
	rc := BounceRecipient{
		FinalRecipient:    unfold(valueAfterType(fields["final-recipient"])),
		OriginalRecipient: unfold(valueAfterType(fields["original-recipient"])),
		RemoteMTA:         unfold(valueAfterType(fields["remote-mta"])),
	}
	rc.Status, _ = probes.LeadingEnhancedCode(unfold(fields["status"]))
	if diag, ok := fields["diagnostic-code"]; ok {
		typ, rest, found := strings.Cut(diag, ";")
		if !found {
			typ, rest = "", diag
		}
		rc.DiagnosticType = strings.ToLower(strings.TrimSpace(typ))
		rc.Code, rc.EnhancedCode, rc.Text = parseDiagnostic(rest)
	}
	rc.Action = actionOf(fields["action"], rc.Status)
	if rc.EnhancedCode == "" {
		rc.EnhancedCode = rc.Status
	}
	classify(&rc)
	return rc
}

// classify completes a recipient's code, reason and temporary flag from
// what its bounce said.
func classify(rc *BounceRecipient) {
	code := rc.Code
	if code == 0 {
		code = codeOfClass(rc.EnhancedCode, rc.Action)
		rc.Code = code
	}
	switch {
	case !rc.Action.Failure():
		rc.Reason = probes.ReasonOK
	default:
		rc.Reason = probes.Classify(code, rc.EnhancedCode, rc.Text)
		if rc.Reason == probes.ReasonOK {
			// A failure reported with a positive code: the report
			// contradicts itself, so it says nothing of the cause.
			rc.Reason = probes.ReasonOther
		}
	}
	rc.Temporary = rc.Action == ActionDelayed
}

// codeOfClass stands in for a missing reply code: one of the enhanced
// code's class, else of the action.
func codeOfClass(enhanced string, a Action) int {
	switch {
	case strings.HasPrefix(enhanced, "5"):
		return 550
	case strings.HasPrefix(enhanced, "4"):
		return 450
	case strings.HasPrefix(enhanced, "2"):
		return 250
	case a == ActionFailed:
		return 550
	case a == ActionDelayed:
		return 450
	}
	return 250
}

// actionOf reads an Action field ("failed", "Failed (bad mailbox)"); when
// there is none, the Status's class stands in.
func actionOf(v, status string) Action {
	w, _, _ := strings.Cut(strings.TrimSpace(stripComments(v)), " ")
	switch a := Action(strings.ToLower(strings.TrimSpace(w))); a {
	case ActionFailed, ActionDelayed, ActionDelivered, ActionRelayed, ActionExpanded:
		return a
	case "":
		switch {
		case strings.HasPrefix(status, "5"):
			return ActionFailed
		case strings.HasPrefix(status, "4"):
			return ActionDelayed
		case strings.HasPrefix(status, "2"):
			return ActionDelivered
		}
	}
	return ActionOther
}

// verdictOf picks the recipient a bounce is reported by.
func verdictOf(rcs []BounceRecipient) BounceRecipient {
	for _, want := range []Action{ActionFailed, ActionDelayed} {
		for _, rc := range rcs {
			if rc.Action == want {
				return rc
			}
		}
	}
	if len(rcs) > 0 {
		return rcs[0]
	}
	return BounceRecipient{Action: ActionOther, Reason: probes.ReasonOther}
}

// parseDiagnostic reads the value of an smtp Diagnostic-Code after its
// type: a reply, possibly of several lines that the MTA folded into the
// field, each repeating the code ("550-5.1.1 The email account ...\n
// 550-5.1.1 double-checking ..."), as Gmail and Postfix write them. The
// repeated codes are dropped, so that a phrase broken over two lines reads
// whole. A value that does not start with a reply code is all text.
func parseDiagnostic(v string) (code int, enhanced, text string) {
	lines := strings.Split(v, "\n")
	first := strings.TrimSpace(lines[0])
	code, rest := replyCodeOf(first)
	if code == 0 {
		return 0, "", truncateText(unfold(v))
	}
	if enh, ok := probes.LeadingEnhancedCode(rest); ok && enh[0] == first[0] {
		enhanced = enh
	}
	parts := []string{rest}
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		if c, r := replyCodeOf(l); c == code {
			l = r
			if enhanced != "" {
				if enh, ok := probes.LeadingEnhancedCode(l); ok && enh == enhanced {
					l = strings.TrimSpace(strings.TrimLeft(l, " \t")[len(enh):])
				}
			}
		}
		parts = append(parts, l)
	}
	// Joined by whoever wrapped it, the code may also repeat mid-line.
	words := strings.Fields(strings.Join(parts, " "))
	repeated := strconv.Itoa(code) + "-" + enhanced
	words = slices.DeleteFunc(words, func(w string) bool { return enhanced != "" && w == repeated })
	return code, enhanced, truncateText(strings.Join(words, " "))
}

// replyCodeOf splits "550-5.1.1 text" or "550 text" into 550 and the text.
func replyCodeOf(s string) (int, string) {
	if len(s) < 3 || (len(s) > 3 && s[3] != ' ' && s[3] != '-' && s[3] != '\t') {
		return 0, s
	}
	code, err := strconv.Atoi(s[:3])
	if err != nil || code < 200 || code > 599 {
		return 0, s
	}
	return code, strings.TrimSpace(s[min(len(s), 4):])
}

// fieldGroups splits a delivery-status body into its groups of fields,
// keyed by lower-case name, the first of each name kept, values with
// their continuation lines joined by "\n".
func fieldGroups(body string) []map[string]string {
	var groups []map[string]string
	var cur map[string]string
	var last string
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.TrimSpace(line) == "":
			cur, last = nil, ""
		case line[0] == ' ' || line[0] == '\t':
			if cur != nil && last != "" && len(cur[last]) < maxFieldBytes {
				cur[last] += "\n" + line
			}
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				last = ""
				continue
			}
			if cur == nil {
				if len(groups) > maxRecipients {
					return groups
				}
				cur = map[string]string{}
				groups = append(groups, cur)
			}
			last = strings.ToLower(strings.TrimSpace(name))
			if _, dup := cur[last]; dup || len(cur) >= maxFieldsPerSet {
				last = ""
				continue
			}
			cur[last] = value
		}
	}
	return groups
}

// valueAfterType drops the type of an address or MTA name field
// ("rfc822; user@example.net", "dns; mx.example.net").
func valueAfterType(v string) string {
	if _, rest, ok := strings.Cut(v, ";"); ok {
		return rest
	}
	return v
}

// unfold joins a field's lines and runs of blanks into single spaces.
func unfold(v string) string {
	return strings.Join(strings.Fields(v), " ")
}

func truncateText(s string) string {
	return probes.Truncate(s, maxTextBytes)
}

func firstWord(v string) string {
	if f := strings.Fields(v); len(f) > 0 {
		return f[0]
	}
	return ""
}

// readBounded reads at most n bytes of r; a read error ends it early.
func readBounded(r io.Reader, n int64) string {
	var b strings.Builder
	_, _ = io.Copy(&b, io.LimitReader(r, n))
	return b.String()
}

// Plain-text bounces. They name no fields, so what they say is found by
// the wording of the MTAs that still send them.

// bounceSubjectRE matches the subjects mailer daemons give their notices
// (qmail "failure notice", Exchange "Undeliverable:", Postfix "Undelivered
// Mail Returned to Sender", Sendmail "Returned mail:", Exim "Mail delivery
// failed", Gmail "Delivery Status Notification").
var bounceSubjectRE = regexp.MustCompile(`(?i)failure notice|undeliverable|undelivered mail|returned mail|mail delivery failed|delivery status notification|delivery (?:has )?failed|non-?deliver|delivery failure|could not be delivered|returned to sender`)

// looksLikeBounce tells a mailer daemon's notice from other mail: its
// sender is a mailer daemon or postmaster, or it has a bounce's subject.
func looksLikeBounce(h message.Header) bool {
	from := strings.ToLower(h.Get("From"))
	for _, who := range []string{"mailer-daemon@", "postmaster@", "<mailer-daemon>", "<postmaster>"} {
		if strings.Contains(from, who) {
			return true
		}
	}
	return bounceSubjectRE.MatchString(h.Get("Subject"))
}

// returnedMarkers start the copy of the returned message in plain-text
// bounces: qmail, Exim, Gmail before 2016, Exchange 2003.
var returnedMarkers = []string{
	"--- Below this line is a copy of the message.",
	"------ This is a copy of the message",
	"----- Original message -----",
	"----- Message header follows -----",
	"Original message headers:",
}

// noticeOnly cuts the returned message off a plain-text bounce.
func noticeOnly(text string) string {
	end := len(text)
	for _, m := range returnedMarkers {
		if i := strings.Index(text, m); i >= 0 && i < end {
			end = i
		}
	}
	return text[:end]
}

var (
	// textReplyRE finds an SMTP reply quoted in a notice: "Remote host
	// said: 550 ..." (qmail, Postfix), "smtp;550 ..." (Exchange), or at
	// the start of a line (Exim, Sendmail transcripts).
	textReplyRE = regexp.MustCompile(`(?mi)(?:^[ \t]*(?:<<<[ \t]*)?|said:[ \t]*|smtp;[ \t]*)([45][0-5][0-9])[ -]([^\n]*)`)
	// qmailRecipientRE is the line qmail puts before each recipient's
	// reason: "<user@example.net>:".
	qmailRecipientRE = regexp.MustCompile(`(?m)^<([^>\s]+@[^>\s]+)>:[ \t]*\r?$`)
	// embeddedEnhancedRE finds Exchange's and qmail's "#5.1.1".
	embeddedEnhancedRE = regexp.MustCompile(`#([45]\.\d{1,3}\.\d{1,3})\b`)
	temporaryTextRE    = regexp.MustCompile(`(?i)temporary|delayed|will (?:continue|keep) (?:trying|to try)|will (?:be )?retr(?:y|ied)|not yet been delivered|still trying`)
	permanentTextRE    = regexp.MustCompile(`(?i)permanent|given up|giving up|too long in the queue|in the queue too long`)
)

// textRecipient reads the recipient and the reason of a plain-text bounce.
func textRecipient(text string) BounceRecipient {
	notice := noticeOnly(text)
	var rc BounceRecipient
	reasonText := notice
	if m := qmailRecipientRE.FindStringSubmatchIndex(notice); m != nil {
		rc.FinalRecipient = notice[m[2]:m[3]]
		para := notice[m[1]:]
		if i := strings.Index(strings.TrimLeft(para, "\r\n"), "\n\n"); i >= 0 {
			para = strings.TrimLeft(para, "\r\n")[:i]
		}
		reasonText = para
	}
	if m := textReplyRE.FindStringSubmatch(reasonText); m != nil {
		rc.Code, _ = strconv.Atoi(m[1])
		rc.Text = truncateText(unfold(m[2]))
		if enh, ok := probes.LeadingEnhancedCode(m[2]); ok && enh[0] == m[1][0] {
			rc.EnhancedCode = enh
		}
	} else {
		rc.Text = truncateText(unfold(reasonText))
	}
	if rc.EnhancedCode == "" {
		if m := embeddedEnhancedRE.FindStringSubmatch(reasonText); m != nil {
			rc.EnhancedCode = m[1]
		}
	}
	rc.Status = rc.EnhancedCode
	temporary := temporaryTextRE.MatchString(notice) && !permanentTextRE.MatchString(notice)
	if !temporary && !permanentTextRE.MatchString(notice) {
		temporary = rc.Code/100 == 4 || (rc.Code == 0 && strings.HasPrefix(rc.EnhancedCode, "4"))
	}
	rc.Action = ActionFailed
	if temporary {
		rc.Action = ActionDelayed
	}
	classify(&rc)
	return rc
}

// returnedIDsInText finds the returned message's token and Message-ID in
// a plain-text bounce, which quotes its header after the notice.
func returnedIDsInText(text string) (token, messageID string) {
	i := len(noticeOnly(text))
	h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(strings.TrimLeft(skipLine(text[i:]), "\r\n"))))
	if err != nil && !errors.Is(err, io.EOF) && h.Len() == 0 {
		return scanIDs(text)
	}
	token, messageID = firstWord(h.Get(ProbeHeader)), firstWord(h.Get("Message-Id"))
	if token == "" && messageID == "" {
		return scanIDs(text)
	}
	return token, messageID
}

// skipLine drops the first line (the marker) of s.
func skipLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return ""
}

// scanIDs looks for the identifying fields line by line, for bounces whose
// quoted header does not parse as one (indented, or cut short).
func scanIDs(text string) (token, messageID string) {
	for _, line := range strings.Split(text, "\n") {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch {
		case token == "" && strings.EqualFold(name, ProbeHeader):
			token = firstWord(value)
		case messageID == "" && strings.EqualFold(name, "Message-ID"):
			messageID = firstWord(value)
		}
	}
	return token, messageID
}
