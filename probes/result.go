package probes

import (
	"encoding/json"
	"time"
)

// Result is everything one probe learned. It holds no Prometheus types: the
// collector maps it to metrics, the probe command prints it.
type Result struct {
	Target string
	Module string
	Start  time.Time
	// Duration covers the whole probe, QUIT included.
	Duration time.Duration
	Success  bool

	// On failure: where, why, and the server's own words when a reply
	// caused it. Temporary says whether a retry may help (4xx, timeouts).
	FailedPhase  Phase
	Reason       Reason
	Temporary    bool
	Code         int
	EnhancedCode string
	ReplyText    string
	Err          error

	// Phases in the order they ran, each with its replies.
	Phases []*PhaseResult

	// What every prober that connects somewhere learns: the TLS facts of
	// its connection and the address it reached.
	TLS        *TLSInfo
	RemoteAddr string
	Transcript []TranscriptLine

	// Facts of one prober each; nil when that prober did not run. The
	// collector maps each to its own metrics.
	SMTP     *SMTPFacts
	Delivery *DeliveryFacts
	Domain   *DomainFacts
}

// DeliveryFacts is what the delivery prober's receive leg learned about
// the message it sent. Folder and the verdicts are label values from
// fixed sets; the rest are facts for the output only.
type DeliveryFacts struct {
	// Found: the message was seen in the mailbox; the facts below hold
	// only then.
	Found bool `json:"found"`
	// TimeToInbox runs from the reply that accepted the message to the
	// moment the mailbox showed it.
	TimeToInbox time.Duration `json:"-"`
	// Folder is the class of the folder it landed in: inbox, junk or other.
	Folder string `json:"folder,omitempty"`
	// Flags are the message's IMAP flags as found: the system flags and
	// the keywords a junk filter or a user's client sets ($Junk,
	// $NotJunk and their older spellings), in a fixed order; other
	// keywords are left out.
	Flags []string `json:"flags,omitempty"`
	// AuthFound: a trusted Authentication-Results header was there.
	AuthFound  bool   `json:"auth_found"`
	SPF        string `json:"spf,omitempty"`
	DKIM       string `json:"dkim,omitempty"`
	DMARC      string `json:"dmarc,omitempty"`
	DKIMDomain string `json:"dkim_domain,omitempty"`
	// The receiving filter's spam verdict, when its headers say.
	SpamSource  string  `json:"spam_source,omitempty"`
	SpamFlagged bool    `json:"spam_flagged"`
	SpamScored  bool    `json:"spam_scored"`
	SpamScore   float64 `json:"spam_score"`
	// The Received: chain: hop count, the delay from the oldest hop to
	// arrival, and the longest single hop.
	Hops        int           `json:"hops"`
	HopsTotal   time.Duration `json:"-"`
	HopsLargest time.Duration `json:"-"`
	// Deleted: the message was expunged (or, without UIDPLUS, flagged
	// \Deleted) after it was read.
	Deleted bool `json:"deleted"`
	// IMAPTLS is the TLS facts of the receive mailbox's connection
	// (delivery.imap), also when its certificate failed; nil without TLS
	// or before a handshake. The certificates' names are redacted.
	IMAPTLS *TLSInfo `json:"imap_tls,omitempty"`
	// Bounce is the delivery status notification that came back about
	// the message instead of it; nil when none did.
	Bounce *BounceFacts `json:"bounce,omitempty"`
	// BounceMailbox is how the session with delivery.bounce_imap went:
	// "ok", or "failed" when it could not log in or a search for bounces
	// failed, with BounceMailboxError (redacted) saying why; empty
	// without bounce_imap. A failure does not fail a run whose message
	// arrived: bounces only matter for a missing one, whose not_delivered
	// error then says that they could not be checked.
	BounceMailbox      string `json:"bounce_mailbox,omitempty"`
	BounceMailboxError string `json:"bounce_mailbox_error,omitempty"`
	// Cleaned is how many probe messages of this target that earlier
	// runs left behind (arrived more than delivery_timeout ago) the run
	// deleted.
	Cleaned int `json:"cleaned"`
	// Late is how many of them had arrived after their run gave up: more
	// than delivery_timeout after their Date header (the time they were
	// sent). A leftover that arrived in time, whose run was interrupted
	// by a restart or could not delete it, is cleaned but not late.
	Late int `json:"late"`
	// CleanedBounces is how many bounces about this target's probe
	// messages, arrived more than delivery_timeout ago, the run deleted
	// from the bounce mailbox's INBOX (the receive mailbox's without
	// bounce_imap).
	CleanedBounces int `json:"cleaned_bounces"`
}

// BounceFacts is what a bounce said about the probe message: its
// verdict's diagnosis as a reply (Text is redacted, server data), its
// reason from the classifier of live replies, and its Action.
type BounceFacts struct {
	Reason       Reason `json:"reason"`
	Temporary    bool   `json:"temporary"`
	Action       string `json:"action"`
	Code         int    `json:"code"`
	EnhancedCode string `json:"enhanced_code,omitempty"`
	Text         string `json:"text,omitempty"`
}

// MarshalJSON writes the durations in seconds, as everywhere in the
// result's JSON.
func (d *DeliveryFacts) MarshalJSON() ([]byte, error) {
	type plain DeliveryFacts
	return json.Marshal(struct {
		*plain
		TimeToInbox float64 `json:"time_to_inbox_seconds"`
		HopsTotal   float64 `json:"hops_total_seconds"`
		HopsLargest float64 `json:"hops_largest_seconds"`
	}{(*plain)(d), d.TimeToInbox.Seconds(), d.HopsTotal.Seconds(), d.HopsLargest.Seconds()})
}

// SMTPFacts is what an SMTP or LMTP dialog learned beyond the phases.
type SMTPFacts struct {
	// What the server advertised after the last EHLO/LHLO (upper-case
	// keyword → parameters), and whether it offered STARTTLS on the first.
	// HelloAnswered says the server answered EHLO or LHLO at all: before
	// that, whether it offers STARTTLS is unknown, not "no".
	Extensions      map[string]string
	HelloAnswered   bool
	STARTTLSOffered bool
	HELOFallback    bool
	MessageID       string
	QueueID         string
	// ProbeToken is the message's X-SMTP-Exporter-Probe value, by which
	// the delivery prober finds it; in the JSON as probe_token.
	ProbeToken string
	// NegativeTest: the module has expect_codes; ExpectationMet: a phase
	// got the reply it expects.
	NegativeTest   bool
	ExpectationMet bool
}

// PhaseResult is one phase: its duration, every reply it received, and its
// outcome.
type PhaseResult struct {
	Phase    Phase
	Duration time.Duration
	Replies  []Reply
	Reason   Reason
	Err      error
}

// LastReply is the reply that decided the phase (the last one received), or
// nil when the phase got none.
func (p *PhaseResult) LastReply() *Reply {
	if len(p.Replies) == 0 {
		return nil
	}
	return &p.Replies[len(p.Replies)-1]
}

// DecidingReply is the reply that decided the phase: the last one, except
// in a successful starttls phase, whose last replies are the EHLO after the
// handshake; there it is the server's answer to STARTTLS itself.
func (p *PhaseResult) DecidingReply() *Reply {
	last := p.LastReply()
	if p.Phase == PhaseSTARTTLS && last != nil && last.Positive() {
		return &p.Replies[0]
	}
	return last
}

// AttemptedSend reports whether the run got as far as sending a message
// (its data phase ran), which counts against a target's min_send_interval
// whatever the server answered.
func (r *Result) AttemptedSend() bool { return r.Phase(PhaseData) != nil }

// Phase returns the result of phase p, or nil when the probe never ran it.
func (r *Result) Phase(p Phase) *PhaseResult {
	for _, pr := range r.Phases {
		if pr.Phase == p {
			return pr
		}
	}
	return nil
}

type jsonPhase struct {
	Name         Phase   `json:"name"`
	Duration     float64 `json:"duration_seconds"`
	Code         int     `json:"code"`
	EnhancedCode string  `json:"enhanced_code"`
	Reason       Reason  `json:"reason"`
	Text         string  `json:"text"`
	Error        string  `json:"error,omitempty"`
	Replies      []Reply `json:"replies"`
}

// MarshalJSON writes the result in the shape documented in README.md: the
// verdict first, durations in seconds, times in RFC 3339.
func (r *Result) MarshalJSON() ([]byte, error) {
	phases := make([]jsonPhase, 0, len(r.Phases))
	for _, p := range r.Phases {
		jp := jsonPhase{Name: p.Phase, Duration: p.Duration.Seconds(), Reason: p.Reason, Replies: p.Replies}
		if jp.Replies == nil {
			jp.Replies = []Reply{}
		}
		if rep := p.DecidingReply(); rep != nil {
			jp.Code, jp.EnhancedCode, jp.Text = rep.Code, rep.EnhancedCode, rep.Text()
		}
		if p.Err != nil {
			jp.Error = p.Err.Error()
		}
		phases = append(phases, jp)
	}
	var errText string
	if r.Err != nil {
		errText = r.Err.Error()
	}
	// The JSON stays flat, as documented: a prober's facts sit beside the
	// common fields.
	var smtp SMTPFacts
	if r.SMTP != nil {
		smtp = *r.SMTP
	}
	return json.Marshal(struct {
		Target          string            `json:"target"`
		Module          string            `json:"module,omitempty"`
		Success         bool              `json:"success"`
		Phase           Phase             `json:"phase"`
		Reason          Reason            `json:"reason"`
		Temporary       bool              `json:"temporary"`
		Code            int               `json:"code"`
		EnhancedCode    string            `json:"enhanced_code"`
		ReplyText       string            `json:"reply_text"`
		Error           string            `json:"error,omitempty"`
		Start           string            `json:"start"`
		Duration        float64           `json:"duration_seconds"`
		RemoteAddr      string            `json:"remote_addr,omitempty"`
		Phases          []jsonPhase       `json:"phases"`
		Extensions      map[string]string `json:"extensions"`
		STARTTLSOffered bool              `json:"starttls_offered"`
		HELOFallback    bool              `json:"helo_fallback,omitempty"`
		ExpectationMet  bool              `json:"expectation_met,omitempty"`
		TLS             *TLSInfo          `json:"tls"`
		MessageID       string            `json:"message_id,omitempty"`
		QueueID         string            `json:"queue_id,omitempty"`
		ProbeToken      string            `json:"probe_token,omitempty"`
		Delivery        *DeliveryFacts    `json:"delivery,omitempty"`
		Domain          *DomainFacts      `json:"domain,omitempty"`
		Transcript      []TranscriptLine  `json:"transcript"`
	}{
		Target: r.Target, Module: r.Module, Success: r.Success, Phase: r.FailedPhase,
		Reason: r.Reason, Temporary: r.Temporary, Code: r.Code, EnhancedCode: r.EnhancedCode,
		ReplyText: r.ReplyText, Error: errText, Start: r.Start.Format(time.RFC3339Nano),
		Duration: r.Duration.Seconds(), RemoteAddr: r.RemoteAddr, Phases: phases,
		Extensions: smtp.Extensions, STARTTLSOffered: smtp.STARTTLSOffered, HELOFallback: smtp.HELOFallback,
		ExpectationMet: smtp.ExpectationMet, TLS: r.TLS, MessageID: smtp.MessageID, QueueID: smtp.QueueID,
		ProbeToken: smtp.ProbeToken, Delivery: r.Delivery, Domain: r.Domain, Transcript: r.Transcript,
	})
}
