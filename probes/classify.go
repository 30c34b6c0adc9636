package probes

import (
	"regexp"
	"slices"
	"strings"
)

// Classify decides the reason of one SMTP reply (ARCHITECTURE.md §5) from its
// code, its RFC 3463 enhanced code ("5.7.26", or "" when it has none) and its
// text.
//
// The three inputs are not equally trustworthy. The basic code is always
// there but says little: 550 covers everything from "no such user" to "you
// are on a blocklist". Enhanced codes are more precise, but providers stretch
// the generic ones (4.7.0, 5.7.1, 5.0.0) over dozens of causes and even
// repurpose specific ones (Gmail's 4.7.23 is a PTR failure, RFC 7372 says SPF).
// The text is what people actually read and what providers keep precise. So
// the rules run from the most specific evidence to the least:
//
//  1. the few enhanced codes, and providers' own reference codes, whose
//     meaning no wording changes;
//  2. specific wording (greylisting, blocklists, DMARC, rate limits, ...);
//  3. enhanced codes that name an address or size problem (5.1.1, 5.2.2, ...);
//  4. softer wording (spam, content, policy, syntax);
//  5. the generic enhanced codes (x.1.0, x.2.0, 5.5.x, 5.7.x, ...) by subject;
//  6. the basic code alone.
//
// The first matching rule wins, so a text that plainly says what happened
// beats a generic enhanced code: "550 5.0.0 mailbox full" is a full mailbox,
// "550 5.5.0 user account is locked" an unavailable mailbox. Only basic and
// enhanced codes that RFCs give one meaning come before the text (tier 1,
// and 500-504 in tier 3).
//
// A reply without an RFC 3463 code at the start of a line may still carry
// one qmail-style ("(#5.7.1)"); the classifier uses it, though it is not the
// reply's EnhancedCode.
//
// 2xx and 3xx replies are always ReasonOK; a code outside 200..599 cannot
// come from a well-formed reply and is a protocol error.
func Classify(code int, enhanced string, text string) Reason {
	switch {
	case code >= 200 && code < 400:
		return ReasonOK
	case code < 200 || code > 599:
		return ReasonProtocol
	}
	text = normalizeReplyText(enhanced, text)
	if enhanced == "" {
		enhanced = embeddedEnhancedCode(code, text)
	}
	for _, r := range classifyRules {
		if r.matches(code, enhanced, text) {
			return r.reason
		}
	}
	return ReasonOther
}

// maxClassifiedText bounds the text the rules read. Providers say why in the
// first few lines; a hostile server may send 100 lines of 4 KB, and the
// regexp engine's cost grows with the input times the size of the tables.
const maxClassifiedText = 2048

// normalizeReplyText undoes the line wrapping of multi-line replies. Servers
// such as Gmail repeat the enhanced code at the start of every line, so a
// phrase broken across two lines ("unusual rate of 4.7.28 unsolicited mail")
// would otherwise never match.
func normalizeReplyText(enhanced, text string) string {
	// Generous before normalizing, since whitespace runs shrink.
	if len(text) > 4*maxClassifiedText {
		text = text[:4*maxClassifiedText]
	}
	words := strings.Fields(text)
	if enhanced != "" {
		words = slices.DeleteFunc(words, func(w string) bool { return w == enhanced })
	}
	text = strings.Join(words, " ")
	if len(text) > maxClassifiedText {
		text = text[:maxClassifiedText]
	}
	return text
}

// classifyRule maps replies to a reason. Empty fields match anything, so a
// rule states only what it depends on.
type classifyRule struct {
	reason   Reason
	class    int            // 4 or 5 (the code's first digit); 0 for either
	codes    []int          // basic reply codes; nil for any
	enhanced *regexp.Regexp // the whole enhanced code; nil for any, even none
	text     *regexp.Regexp // somewhere in the normalized text; nil for any
}

func (r classifyRule) matches(code int, enhanced, text string) bool {
	return (r.class == 0 || r.class == code/100) &&
		(r.codes == nil || slices.Contains(r.codes, code)) &&
		(r.enhanced == nil || r.enhanced.MatchString(enhanced)) &&
		(r.text == nil || r.text.MatchString(text))
}

// enhancedRE matches a whole enhanced code; the pattern uses RE2 syntax, so
// "[45]\.7\.26" covers both the temporary and the permanent form.
func enhancedRE(pattern string) *regexp.Regexp {
	return regexp.MustCompile(`^(?:` + pattern + `)$`)
}

// textRE matches any of the phrases, case-insensitively. Keeping each
// phrase a separate string keeps the tables below reviewable line by line.
func textRE(phrases ...string) *regexp.Regexp {
	return regexp.MustCompile(`(?i)(?:` + strings.Join(phrases, `|`) + `)`)
}

// Enhanced codes that gate text rules whose wording is ambiguous on its own.
var (
	// A bare "try again later" is greylisting only where greylisters put
	// it: 450/451 with no enhanced code or a generic 4.7.x one.
	greylistEnhanced = enhancedRE(`|4\.0\.0|4\.7\.[01]`)
	// A temporary mailbox problem that is really an unknown address (4.1.x)
	// stays mailbox_unavailable.
	notAddressEnhanced = enhancedRE(`|4\.[02-9]\.\d{1,3}`)
)

// Phrases, grouped by the reason they point at. They are matched against the
// whole reply text, so each must be specific enough not to fire inside
// another reason's wording; where two groups overlap, the order of
// classifyRules decides.
var (
	greylistText = textRE(
		`gr[ae]y-?list`, `gr[ae]y list`,
	)
	dmarcText = textRE(
		`\bdmarc\b`,
		`unauthenticated (?:e-?mail|mail|messages?)`,
		`(?:sender|it|message) is unauthenticated`,
		`(?:fails?|failed|does not|doesn't|did not|didn't) (?:to )?pass (?:the )?authentication checks`,
		`does not have authentication information`,
		`multiple authentication checks`,
		`required authentication level`,
		`(?:not|n't) aligned with`,
	)
	// Naming both mechanisms means the combined check failed, which is what
	// DMARC (and RFC 7372's 5.7.26) is about.
	spfAndDKIMText = textRE(
		`\bspf\b.{0,80}\bdkim\b`, `\bdkim\b.{0,80}\bspf\b`,
	)
	spfText = textRE(
		`\bspf\b`, `sender policy framework`, `open-?spf`,
		// Microsoft's Sender ID is SPF applied to the header sender.
		`\bsender id \((?:pra|mail from)\)`,
	)
	// Sender authorisation checks that never name SPF: the connecting IP is
	// not one the sender's domain sends from.
	senderIPText = textRE(
		`(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}|\bip(?: address)?|\bhost|\bserver) is not (?:allowed|authori[sz]ed|permitted) to send (?:mail |e-?mail )?(?:from|for)\b`,
		`not (?:allowed|authori[sz]ed|permitted) to send (?:mail |e-?mail )?from (?:this|your|the sending|that) ip\b`,
		`mismatches client ip`,
		`unverif(?:y|i)able sending ips?\b`,
	)
	dkimText = textRE(
		`\bdkim\b`, `domainkeys`,
	)
	reverseDNSText = textRE(
		`\bptr\b`, `reverse (?:dns|hostname|host ?name|lookup|address)`,
		`\brdns\b`, `fcrdns`, `cannot find your (?:reverse )?hostname`,
		`cannot resolve your (?:address|hostname|ip)`,
	)
	relayText = textRE(
		`relay(?:ing)? (?:access )?(?:is )?(?:denied|not (?:permitted|allowed|authori[sz]ed)|prohibited|refused|rejected|forbidden)`,
		`relaying denied`,
		`(?:unable|not (?:permitted|allowed|authori[sz]ed)|cannot|can't|will not|won't|do not|don't|does not|doesn't) (?:to )?relay\b`,
		`\brcpthosts\b`, `credentials for relay`, `\bno relay`, `\bnot relaying\b`,
		`(?:not|isn't) (?:an open|a) relay`, `configured to relay`, `insecure mail relay`,
		`(?:don't|do not) handle mail for`, `send to a non-local`,
		// Haraka's reply when no plugin accepted the recipient's domain.
		`\bi cannot deliver mail for\b`,
	)
	starttlsUnavailableText = textRE(
		`\b(?:start)?tls\b (?:is )?(?:currently |temporarily )?(?:not available|unavailable|not supported|not offered|not implemented|disabled)`,
		`(?:unrecognized|unknown|not implemented|not recognized)[^.]{0,20}\bstarttls\b`,
	)
	tlsRequiredText = textRE(
		`must issue a starttls`,
		`\bstarttls\b (?:command )?(?:is )?(?:required|first|needed|mandatory)`,
		`\b(?:tls|ssl|encryption|encrypted (?:connection|channel|session)|secure (?:connection|channel)) (?:is )?(?:required|needed|mandatory)`,
		`requires? (?:a |an )?(?:tls|ssl|starttls|encrypt\w*|secure (?:connection|channel))`,
		`(?:not|n't) sent over (?:a )?(?:tls|ssl|secure|encrypted)`,
		`(?:must |to )use (?:tls|ssl|starttls)`, `\brequiretls\b`,
		`(?:use|support) tls ?1\.[23]`,
	)
	// Microsoft's recipient delivery restrictions (a group or mailbox that
	// takes mail only from internal or listed senders) speak of the
	// sender being "not authenticated" or "authentication required"; that
	// is about who the sender is, not about logging in to the session.
	deliveryRestrictionText = textRE(
		`\bresolver\.rst\.(?:authrequired|notauthorized|sendernot)`,
		`\bsender was not authenticated\b`,
		`not authenticated for (?:group|mailbox|public folder)`,
		`not in (?:the )?(?:group's )?allowed[- ]senders`,
		`delivery restriction`,
	)
	// disabledRecipientText names a recipient, never the login's account.
	disabledRecipientText = textRE(
		`recipient address rejected`,
		`(?:disabled|locked|suspended|inactive|deactivated|frozen) recipient`,
	)
	authRequiredText = textRE(
		`auth(?:entication)? (?:is )?required`,
		`\bnot authenticated\b`,
		`must (?:first )?(?:authenticate|be authenticated|log ?in)`,
		`authenticate first`, `please authenticate`,
		`requires? (?:smtp )?auth(?:entication)?\b`,
		`\bnot logged in\b`, `log ?in required`,
		`unauthenticated (?:senders?|users?|clients?|relay|submission)`,
	)
	authFailedText = textRE(
		`authentication (?:failed|failure|unsuccessful|rejected|credentials invalid)`,
		`(?:auth(?:entication)?|sasl) mechanism`,
		`(?:unrecognized|unsupported|unknown|invalid) (?:auth(?:entication)?|sasl) (?:type|mechanism|method)`,
		`authentication (?:is )?not (?:enabled|available|supported|allowed)`,
		`(?:invalid|bad|incorrect|wrong) (?:user ?name|login|password|credentials)`,
		`(?:user ?name|password|credentials) (?:and password )?(?:are |is )?(?:not accepted|incorrect|invalid|rejected)`,
		`cannot authenticate`, `fail(?:ed|s)? to authenticate`, `application-specific password`,
		`auth(?:entication)? method\b.{0,40}\bnot (?:supported|available)`,
		`log ?in (?:via|with|through) your web browser`,
		`smtpclientauthentication is disabled`, `\bxoauth\b`,
		`password (?:transition|has expired|expired)`,
	)
	// Providers' reference codes for refusals over the sender's standing:
	// Outlook.com's SC-001..004 (reputation, namespace mining, open proxy,
	// complaints) and DY-001/002 (dynamic or compromised IP); Orange's and
	// La Poste's OFR/LPN codes end in 101-103 and 510 (blocked source) or
	// 999 (IP suspended after earlier breaches). Their other codes come
	// with a text precise enough to decide (OFR_416 "Invalid recipient").
	providerReputationText = textRE(
		`\b(?:sc-00[1-4]|dy-00[12])\b`,
		`\b(?:ofr|lpn)(?:aaa|\d{3})?[-_](?:10[1-3]|510|999)\b`,
	)
	// Wording that blames the sending IP or domain's standing: blocklists
	// by name, "listed at", "reputation", "banned".
	reputationText = textRE(
		`blocked using`, `\bblocked - see\b`,
		`\b(?:block|black|deny|ban|reject)[- ]?list(?:ed|ing)?\b`,
		`\b(?:rbl|dnsbls?|rhsbl|dnsrbl|uribl|surbl|pbl|sbl|xbl|dbl|cbl|psbl)\b`,
		`spamhaus`, `barracuda`, `spamcop`, `\bsorbs\b`, `uceprotect`,
		`spamrats`, `mailspike`, `abuseat`, `cloudmark`, `mail-abuse`,
		`ipcheck\.proofpoint`, `talosintelligence`, `senderbase`, `senderscore`,
		`reputation`,
		// "listed at zen.spamhaus.org", but not Domino's "not listed in
		// Domino Directory", which is an unknown user.
		`listed (?:at|on|in|by) [a-z0-9-]+(?:\.[a-z0-9-]+)+`,
		`\b(?:is|are) (?:on|in) (?:a|our|the) (?:\w+ )?(?:block|black|deny|spam) ?list`,
		`banned (?:sending )?(?:ip|sender|host|client|network)`, `bad outbound sender`,
		`block (?:has been )?placed (?:against|on) (?:your|the|this) ip`,
		// T-Online marks its block-list rejections "(BL)".
		`\(bl\)`,
		`permanently deferred`,
		`connections? (?:will )?not (?:be )?accepted from`,
		`\b(?:ip|ips|ip address|ip addresses|client host|your host|your network|netblock)\b.{0,60}\b(?:blocked|banned|blacklisted|blocklisted|listed)\b`,
		`\b(?:blocked|banned|refused|not accepted|not (?:currently )?accepting|rejected)\b(?: \w+){0,4} (?:from|for) (?:this|your|the sending|that|the) ip\b`,
		`spams? from (?:your|this) ip\b`,
		`dynamic (?:ip|address|pool|range|host)`, `residential (?:ip|address)`,
		// Listed or caught as an open relay or proxy; "we are not an open
		// relay" is a relay refusal and matched before this.
		`\bopen (?:relay|proxy)\b`,
	)
	// An "unusual rate" deferral is rate limiting even when it goes on to
	// say the IP "has been temporarily blocked".
	unusualRateText = textRE(
		`unusual (?:rate|amount|volume)`,
	)
	messageTooLargeText = textRE(
		`(?:message|mail|e-?mail|data|attachments?) (?:is |are )?(?:too (?:big|large|long)|oversized)`,
		`(?:message|mail|e-?mail) size`,
		`\bsize (?:limit|exceeds|exceeded|too (?:big|large))`,
		`exceeds? (?:the |our |its |google's )?(?:\w+ ){0,3}size`,
		`too (?:big|large) for`, `maximum (?:message )?size`,
		`message length exceeds`, `sizelimit`,
	)
	mailboxFullText = textRE(
		`over ?quota`,
		`(?:mailbox|mail ?box|inbox|user|account|disk|storage|e-?mail) quota (?:exceeded|full|reached)`,
		`(?:mailbox|mail ?box|inbox|mail folder|mail ?drop|account) (?:is )?(?:full|out of (?:storage|space)|has exceeded)`,
		`out of storage space`,
		`exceeded (?:the |its |their |his |her )?(?:storage|mailbox|disk) (?:quota|allocation|limit)`,
		`storage allocation`,
		`insufficient (?:space|storage) (?:in|for) (?:the )?(?:mailbox|user|recipient|account)`,
		`mailbox size limit`, `quotaexceeded`, `full mailbox`,
		`mailbox (?:\w+ ){0,2}(?:exceeds|would exceed|has exceeded)`,
		`exhausted (?:\w+ ){0,2}(?:storage|space|quota)`,
		`(?:mailbox|inbox|account) (?:has )?reached (?:its|the|their) (?:\w+ ){0,2}(?:limit|quota|capacity)`,
		`(?:storage|disk|mailbox|inbox) (?:size |storage |space )?(?:limit|quota|capacity) (?:exceeded|reached)`,
		`too many messages (?:on the server|in (?:the |this |your )?(?:mailbox|inbox|folder))`,
	)
	throttledText = textRE(
		`too many (?:\w+ ){0,3}(?:connections|sessions|sockets)`,
		`too many (?:\w+ ){0,2}(?:messages|mails?|e-?mails|login attempts|auth\w* attempts|transactions|requests)`,
		// Recipients are a rate only when counted per client or per time;
		// otherwise they are the per-message limit (recipientLimitText).
		`too many (?:\w+ ){0,2}(?:recipients|rcpts?) (?:from|received|per|this|today|in the last)\b`,
		`too many auth\w* commands`,
		`too much (?:mail|e-?mail|traffic)`,
		`(?:connection|message|sending|recipient|session|mail|send|delivery|submission) rate`,
		`\brate[- ]?limit`, `\bratelimit`, `\brate (?:exceeded|too high)`,
		`throttl`,
		`receiving mail (?:too quickly|at a rate)`, `too (?:fast|quickly)`,
		`(?:unexpected|unusual|excessive|high|abnormal) (?:\w+ )?(?:volume|traffic)`,
		`deferred due to (?:unexpected |excessive )?(?:volume|user complaints|complaints)`,
		`temporarily deferred(?: -|;|$)`,
		`(?:sending|daily|hourly|relay|peak|send|recipient|connection|session|outbound|submission|per[- ]\w+) (?:\w+ ){0,2}(?:limit|quota) (?:exceeded|reached)`,
		`\bper (?:hour|day|minute|second) (?:\w+ ){0,3}(?:limit|quota)`, `\b(?:receive|receiving|thread) limit`,
		`\bper (?:session|connection) (?:exceeded|reached)`,
		`reached (?:your|the|its|their) (?:\w+ ){0,2}limit`,
		`exceeded (?:the )?(?:permitted|allowed) (?:\w+ ){0,2}limits?`,
		`frequency (?:limit|limited|exceeded)`,
		`max(?:imum)? (?:number of )?(?:\w+ ){0,2}(?:connections?|messages?|e-?mails?|recipients?|sessions?) (?:per|has|have|exceeded|reached|from)`,
		`connection (?:limit|count)`, `slow down`, `\bslower\b`,
		`try again later.{0,30}\b(?:rate|volume)`,
	)
	// RFC 5321 §4.5.3.1.8 lets a server cap the recipients of one message
	// (452 4.5.3): the message has to be split, and probing less often does
	// not help, so it is the server's policy, not a rate limit.
	recipientLimitText = textRE(
		`too many (?:\w+ ){0,2}(?:recipients|rcpts?)\b`, `\breciplimit\b`,
	)
	quotaExceededText = textRE(
		`quota (?:exceeded|full|reached)`, `exceed(?:s|ed)? (?:\w+ ){0,2}quota`,
	)
	insufficientStorageText = textRE(
		`insufficient (?:system )?(?:storage|disk|space|resources)`,
		`(?:disk|spool|storage|queue) (?:\w+ )?(?:is )?full`,
		`(?:disk|spool) space`, `space shortage`, `no space left`,
		`out of (?:disk|spool|storage)`, `not enough (?:disk|storage|space)`,
	)
	mailboxBusyText = textRE(
		`mailbox (?:is )?(?:temporarily )?(?:busy|locked|in use|unavailable|not available|disabled)`,
		`mailbox temporarily`,
		`(?:user|recipient|account) (?:is )?temporarily (?:unavailable|disabled|deferred)`,
	)
	mailboxUnavailableText = textRE(
		`user unknown`, `unknown (?:user|recipient|address|mailbox|local[- ]part|alias|or illegal alias)`,
		`no such (?:user|mailbox|recipient|address|account|domain|person)`,
		`(?:does not|doesn't|did not|no longer) exists?`,
		`unrouteable|unroutable|unable to route`,
		`(?:mailbox|recipient|user|address|account) (?:is )?(?:not found|unavailable|unknown|invalid|disabled|inactive|deactivated|suspended|locked|frozen|archived|not valid|not active|no longer valid|no longer active)`,
		`invalid[- ](?:recipient|mailbox|address|user|e-?mail address|destination)`,
		`null mx`,
		`not a valid (?:mailbox|recipient|user|address)`,
		`recipient ?not ?found|recipnotfound`,
		`undeliverable address`, `unverified address`,
		`domain (?:name )?not found`, `does not resolve`, `unresolvable`, `non-?existent ?domain`,
		`unknown (?:host|domain)`, `host unknown`, `domain (?:must exist|is not reachable)`,
		`verification failed`, `verify failed`,
		`doesn't have an? .{1,40} account`,
		`\bno mailbox`, `mailbox name not allowed`, `user not local`,
		`no longer (?:valid|active|available|on (?:this )?server)`,
		`account (?:has been |is |was )?(?:temporarily |permanently )?(?:disabled|closed|terminated|suspended|inactive|deactivated|locked|frozen|archived)`,
		// "Blocked" alone could be the sender's own account; only the
		// recipient's is an unavailable mailbox.
		`(?:recipient|recipient's|destination|user) account (?:is |has been )?blocked`,
		`archived recipient`, `deactivated mailbox`, `user suspended`,
		// Exchange's store driver names the exception.
		`accountdisabled`, `userdisabled`,
		`(?:disabled|locked|suspended|inactive|deactivated|frozen) (?:recipient|mailbox|user|account)\b`,
		// A 5xx "temporary" lock is still a refusal of this recipient; a
		// 4xx one is mailbox_busy, matched before.
		`\b(?:user|mailbox|account|recipient)\b.{0,80}\btemporar(?:y|ily) (?:locked|disabled|suspended)`,
		`(?:weren't|were not|wasn't|was not) able to find the recipient domain`,
		`inactive (?:e-?mail address|account|user|mailbox)`,
		`not listed in .{0,40}(?:directory|address book)`,
	)
	// A refusal that names the sender, with no word on why: the sender is
	// on the receiver's deny list. Postfix's "Sender address rejected:"
	// prefix is not enough on its own; its detail decides.
	senderRefusedText = textRE(
		`\bsender (?:is )?(?:denied|blocked|refused|banned|rejected)\b`,
		`\bsender address (?:is )?(?:denied|blocked|refused|banned)\b`,
		// Submission: the logged-in user may not use this envelope sender
		// (Postfix's reject_sender_login_mismatch). Not SPF: no IP is
		// involved, the login and the address do not belong together.
		`not owned by (?:the )?(?:authenticated )?user`,
	)
	localErrorText = textRE(
		`local (?:error|problem)`, `error in processing`,
		`queue file write error`, `temporary lookup failure`,
		`dns temporary failure`, `temporary dns (?:failure|error)`,
		`(?:server|system) configuration (?:error|problem)`,
	)
	// At 451, "local error in processing" by RFC 5321, a generic internal
	// failure is the server's own processing error, not an outage.
	localError451Text = textRE(
		`temporary (?:system|server) (?:problem|error|failure)`,
		`internal (?:server )?error`, `system (?:error|failure)`,
	)
	serviceUnavailableText = textRE(
		`service (?:is )?(?:currently |temporarily )?(?:unavailable|not available)`,
		`(?:server|system|host|machine|service) (?:is )?(?:currently |temporarily )?(?:too )?busy`,
		`too busy`, `shutting down`, `\bshutdown\b`,
		`not accepting (?:network )?(?:messages|mail|connections)`,
		`ports? (?:are |is )?busy`,
		`temporary (?:server|system) (?:error|problem|failure)`,
		`overload`, `resources? (?:are )?(?:temporarily )?(?:unavailable|not available)`,
		`temporarily unavailable`, `maintenance`, `\bbusy\b`,
		`connection (?:expired|dropped|timed? ?out|lost)`, `lost (?:\w+ )?connection`,
		`\bdisconnected\b`,
		`time(?:d)? ?out`,
	)
	protocolText = textRE(
		`syntax error`, `bad syntax`, `\bsyntax:`,
		`command (?:not )?(?:recognized|unrecognized|implemented)`,
		`unrecognized command`, `unknown command`, `unimplemented`, `not implemented`, `invalid command`,
		`bad sequence`, `out of sequence`,
		`need (?:mail|rcpt|helo|ehlo|data)\b`, `(?:mail|rcpt|helo|ehlo) (?:command )?first`,
		`protocol (?:error|violation)`, `synchroni[sz]ation error`,
		`(?:line|command) too long`, `too many (?:\w+ )?(?:errors|commands)`,
		`no valid recipients`, `nested mail command`, `already (?:specified|given|authenticated)`,
		`bare (?:lf|line ?feed)`,
		// qmail's whole reply to a bare LF is a link to djb's smtplf page.
		`\bsmtplf\b`,
	)
	// Content and local-policy wording: why a message, rather than the
	// sender's standing, was refused.
	contentPolicyText = textRE(
		`\bspam`, `\bjunk\b`, `unsolicited`, `\bbulk (?:e-?mail|mail|advertising)`,
		`virus|malware|infected|phish|trojan`,
		`suspicious`, `\bcontent\b`, `attachment`,
		`\bpolic(?:y|ies)\b`,
		`not (?:in|on) (?:the |our )?(?:white ?list|allow ?list)`,
		`\brfc ?(?:5322|2822)\b`, `not (?:rfc )?compliant`, `malformed`,
		`administrative prohibition`,
		// A null-sender message to several recipients is no real bounce.
		`multi-recipient bounce`,
	)
	greylistRetryText = textRE(
		`\b(?:try|retry|come back|send|resend)\b.{0,20}\blater\b`, `try again in`,
	)
	// The last resort before the basic code: some refusal, no reason given.
	refusalText = textRE(
		`reject`, `denied`, `refused`, `prohibit`, `forbidden`, `blocked`, `banned`,
		`not (?:allowed|permitted|accepted|authori[sz]ed)`,
	)
)

// classifyRules is the decision table; see Classify for the order of tiers.
var classifyRules = []classifyRule{
	// Tier 1: enhanced and basic codes that mean one thing whatever the text.
	// Gmail's x.7.28 is a flood deferral (4xx) or the block that follows it
	// (5xx); its texts name the SPF or DKIM domain that was flooding, which
	// must not read as an SPF or DKIM failure.
	{reason: ReasonThrottled, enhanced: enhancedRE(`4\.7\.28`)},
	{reason: ReasonReputation, enhanced: enhancedRE(`5\.7\.28`)},
	// Provider reference codes (see providerReputationText).
	{reason: ReasonReputation, text: providerReputationText},
	// RFC 4954: 534 mechanism too weak, 535 credentials invalid, 538
	// encryption required for the mechanism; RFC 5248 pairs 525 with
	// 5.7.13, the login's own account disabled. But servers answer a
	// command sent before AUTH with 535 too (Courier: "535 Authentication
	// required."), so a 534/535 that asks for a login is auth_required.
	// And a 525 whose text names a disabled recipient (Sendmail passing a
	// remote refusal on) is about that mailbox, not the login.
	{reason: ReasonAuthRequired, codes: []int{534, 535}, text: authRequiredText},
	{reason: ReasonMailboxUnavailable, codes: []int{525}, text: disabledRecipientText},
	{reason: ReasonAuthFailed, codes: []int{525, 534, 535}},
	{reason: ReasonAuthFailed, enhanced: enhancedRE(`[45]\.7\.8`)},
	{reason: ReasonTLSRequired, codes: []int{538}},
	// Microsoft 365 (the Exchange Online NDR reference): 5.7.515 is its
	// DMARC-style "authentication level" rejection; 5.7.501-503 sending
	// account banned for spam, 5.7.507 IP blocked by the recipient's
	// organization, 5.7.511 banned sender, 5.7.513 recipient's block list,
	// 5.7.606-649 banned sending IP, 5.7.700-749 tenant banned for spam;
	// 5.7.504/505 invalid or banned recipient. 5.7.703 is the sender's own
	// tenant block list for recipients: a policy, not the sender's standing.
	{reason: ReasonDMARC, enhanced: enhancedRE(`5\.7\.515`)},
	{reason: ReasonPolicy, enhanced: enhancedRE(`5\.7\.703`)},
	{reason: ReasonReputation, enhanced: enhancedRE(`5\.7\.(?:50[1237]|60[6-9]|6[1-3]\d|64\d|7[0-4]\d|511|513)`)},
	{reason: ReasonMailboxUnavailable, enhanced: enhancedRE(`5\.7\.50[45]`)},

	// Tier 2: specific wording.
	// Greylisting first: greylisters often explain what triggered them
	// ("no reverse DNS, you are greylisted"), and the deferral is what
	// matters.
	{reason: ReasonGreylisted, class: 4, text: greylistText},
	// Sender authentication. Texts are more precise than the codes here:
	// Gmail uses 5.7.26 for a plain SPF hard fail and 4.7.23 for a missing
	// PTR record, where RFC 7372 would have them mean DMARC and SPF.
	{reason: ReasonDMARC, text: dmarcText},
	{reason: ReasonDMARC, text: spfAndDKIMText},
	{reason: ReasonSPF, text: spfText},
	{reason: ReasonSPF, text: senderIPText},
	{reason: ReasonDKIM, text: dkimText},
	{reason: ReasonPolicy, text: reverseDNSText},
	// RFC 7372 codes for replies that do not name the mechanism.
	{reason: ReasonDMARC, enhanced: enhancedRE(`[45]\.7\.26`)},
	{reason: ReasonSPF, enhanced: enhancedRE(`[45]\.7\.2[34]`)},
	{reason: ReasonDKIM, enhanced: enhancedRE(`[45]\.7\.2[0-2]`)},
	{reason: ReasonPolicy, enhanced: enhancedRE(`[45]\.7\.25`)},
	// RFC 7505: the domain publishes a null MX, it takes no mail at all.
	{reason: ReasonMailboxUnavailable, enhanced: enhancedRE(`[45]\.7\.27`)},
	// Relaying before authentication: "Relaying denied. Proper
	// authentication required" is about the destination, not the login.
	{reason: ReasonRelayDenied, text: relayText},
	{reason: ReasonSTARTTLSUnavailable, text: starttlsUnavailableText},
	{reason: ReasonTLSRequired, text: tlsRequiredText},
	// Delivery restrictions before the login wording they borrow.
	{reason: ReasonPolicy, text: deliveryRestrictionText},
	{reason: ReasonAuthRequired, text: authRequiredText},
	{reason: ReasonAuthFailed, text: authFailedText},
	// Reputation before rate limits, so that "rate limited due to IP
	// reputation" names the cause; but "unusual rate" deferrals are rate
	// limits even when they say the IP is "temporarily blocked".
	{reason: ReasonThrottled, class: 4, text: unusualRateText},
	{reason: ReasonReputation, text: reputationText},
	// Microsoft 365 throttles unknown or suspicious IPs with 4.7.500-699
	// and 4.7.850-899 ("Server busy", "Access denied, please try again
	// later"), which would otherwise read as an outage.
	{reason: ReasonThrottled, enhanced: enhancedRE(`4\.7\.(?:[56]\d\d|8[5-9]\d)`)},
	// Mailbox quota before size ("mailbox size limit") and size before
	// rate limits ("message size limit exceeded"); sending quotas are rate
	// limits, so the bare "quota exceeded" waits until after them.
	{reason: ReasonMailboxFull, text: mailboxFullText},
	{reason: ReasonMessageTooLarge, text: messageTooLargeText},
	{reason: ReasonThrottled, text: throttledText},
	{reason: ReasonPolicy, text: recipientLimitText},
	{reason: ReasonMailboxFull, text: quotaExceededText},
	{reason: ReasonInsufficientStorage, text: insufficientStorageText},
	{reason: ReasonMailboxBusy, class: 4, enhanced: notAddressEnhanced, text: mailboxBusyText},
	{reason: ReasonMailboxUnavailable, text: mailboxUnavailableText},
	// After the unknown-address wording: "Sender rejected: domain does not
	// exist" is about the address, a bare "Sender denied" about policy.
	{reason: ReasonPolicy, text: senderRefusedText},
	{reason: ReasonLocalError, text: localErrorText},
	{reason: ReasonLocalError, codes: []int{451}, text: localError451Text},
	{reason: ReasonServiceUnavailable, class: 4, text: serviceUnavailableText},

	// Tier 3: codes that name the problem precisely enough to beat softer
	// wording. RFC 5321 reserves 500-504 for syntax and sequence errors,
	// whatever the enhanced code ("501 5.1.3 Bad recipient address syntax").
	// The "other" detail codes x.1.0, 5.2.0 and 4.2.0 name only a subject
	// and wait for tier 5.
	{reason: ReasonProtocol, codes: []int{500, 501, 502, 503, 504}},
	{reason: ReasonMailboxFull, enhanced: enhancedRE(`[45]\.2\.2`)},
	{reason: ReasonMessageTooLarge, enhanced: enhancedRE(`[45]\.2\.3|[45]\.3\.4`)},
	{reason: ReasonInsufficientStorage, enhanced: enhancedRE(`[45]\.3\.1`)},
	{reason: ReasonMailboxUnavailable, enhanced: enhancedRE(`[45]\.1\.[1-9]\d{0,2}|5\.2\.[1-9]\d{0,2}|5\.4\.[14]`)},
	{reason: ReasonMailboxBusy, enhanced: enhancedRE(`4\.2\.[1-9]\d{0,2}`)},
	{reason: ReasonAuthRequired, codes: []int{530}},

	// Tier 4: softer wording.
	{reason: ReasonProtocol, text: protocolText},
	{reason: ReasonPolicy, text: contentPolicyText},
	{reason: ReasonGreylisted, codes: []int{450, 451}, enhanced: greylistEnhanced, text: greylistRetryText},

	// Tier 5: enhanced codes by subject (RFC 3463 §3).
	{reason: ReasonServiceUnavailable, codes: []int{421}},
	// 454 is both "TLS not available" and "temporary authentication
	// failure"; without wording there is no telling which.
	{reason: ReasonOther, codes: []int{454}},
	{reason: ReasonMailboxUnavailable, enhanced: enhancedRE(`[45]\.1\.0|5\.2\.0`)},
	{reason: ReasonMailboxBusy, enhanced: enhancedRE(`4\.2\.0`)},
	// RFC 3463's x.5.3 "too many recipients": a per-message limit (see
	// recipientLimitText), not a rate.
	{reason: ReasonPolicy, enhanced: enhancedRE(`[45]\.5\.3`)},
	{reason: ReasonProtocol, enhanced: enhancedRE(`[45]\.5\.\d{1,3}`)},
	{reason: ReasonLocalError, codes: []int{451}, enhanced: enhancedRE(`4\.3\.[03-9]`)},
	{reason: ReasonServiceUnavailable, enhanced: enhancedRE(`4\.[34]\.\d{1,3}`)},
	// A permanent routing failure downstream (mail loop, expired in
	// queue) is neither the recipient's nor the sender's fault.
	{reason: ReasonOther, enhanced: enhancedRE(`5\.4\.\d{1,3}`)},
	{reason: ReasonPolicy, enhanced: enhancedRE(`[45]\.[67]\.\d{1,3}`)},
	{reason: ReasonPolicy, text: refusalText},

	// Tier 6: the basic code (RFC 5321 §4.2.2, RFC 7504).
	{reason: ReasonMailboxBusy, codes: []int{450}},
	{reason: ReasonLocalError, codes: []int{451}},
	{reason: ReasonInsufficientStorage, codes: []int{452}},
	{reason: ReasonProtocol, codes: []int{555}},
	{reason: ReasonMailboxUnavailable, codes: []int{521, 550, 551, 553, 556}},
	{reason: ReasonMailboxFull, codes: []int{552}},
	{reason: ReasonPolicy, codes: []int{554}},
}
