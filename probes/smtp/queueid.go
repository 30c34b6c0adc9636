package smtp

import "regexp"

// queueIDForms are the final DATA replies of the common MTAs, each with
// the queue id as its first group. Each form is anchored on its MTA's fixed
// wording and the shape of its ids, so that a reply in no known form gives
// no id rather than a word of it taken for one. queueid_test.go holds a
// real reply of each form and where its wording comes from.
var queueIDForms = []*regexp.Regexp{
	// Postfix smtpd.c: "250 Ok: queued as %s".
	regexp.MustCompile(`\bqueued as ([0-9A-Za-z]+)\b`),
	// Exim receive.c: "250 OK id=%s", ids of three dash-separated parts.
	regexp.MustCompile(`\bOK id=([0-9A-Za-z]+-[0-9A-Za-z]+-[0-9A-Za-z]+)\b`),
	// Sendmail srvrsmtp.c: "250 2.0.0 %s Message accepted for delivery",
	// ids of seven characters and a pid of at least five digits.
	regexp.MustCompile(`(?:^|\s)([0-9A-Za-z]{7}[0-9]{5,}) Message accepted for delivery`),
	// OpenSMTPD smtp_session.c: "250 %s %08x Message accepted for delivery".
	regexp.MustCompile(`(?:^|\s)([0-9a-f]{8}) Message accepted for delivery`),
	// Haraka connection.js: "Message Queued (" + transaction.uuid + ")".
	regexp.MustCompile(`\bMessage Queued \(([0-9A-Za-z.-]+)\)`),
	// Microsoft Exchange: "<Message-ID> [InternalId=N, Hostname=H] ...
	// Queued mail for delivery".
	regexp.MustCompile(`\[InternalId=([0-9]+)[,\]]`),
	// Gmail: "OK  <Unix time> <id> - gsmtp".
	regexp.MustCompile(`\bOK +[0-9]+ ([0-9A-Za-z._-]+) - gsmtp$`),
	// Dovecot LMTP lmtp-local.c: "<%s> %s Saved", the session id.
	regexp.MustCompile(`<[^>]*> ([0-9A-Za-z+/:]+) Saved$`),
}

// queueID returns the queue id in the text of a final DATA reply, or ""
// when it is in none of queueIDForms.
func queueID(text string) string {
	for _, form := range queueIDForms {
		if m := form.FindStringSubmatch(text); m != nil {
			return m[1]
		}
	}
	return ""
}
