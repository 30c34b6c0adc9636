package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"bufio"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// parseRawReply runs raw reply lines, as a server sends them, through the
// real reply parser.
func parseRawReply(t *testing.T, lines []string) (probes.Reply, []string) {
	t.Helper()
	raw := strings.Join(lines, "\r\n") + "\r\n"
	var seen []string
	rep, err := readReply(bufio.NewReader(strings.NewReader(raw)), func(l string) { seen = append(seen, l) })
	if err != nil {
		t.Fatalf("readReply(%q): %v", raw, err)
	}
	return rep, seen
}

// classifyCase is one reply as a server sends it, with what the parser and
// the classifier must make of it.
type classifyCase struct {
	lines    []string
	code     int
	enhanced string
	want     probes.Reason
}

// realWorldReplies are replies copied from provider documentation, MTA
// sources and published bounce logs. Addresses and IPs are replaced with
// documentation values (example.com, 192.0.2.0/24); the wording is kept.
var realWorldReplies = []classifyCase{
	// --- Gmail: support.google.com/a/answer/3726730 (SMTP errors and codes),
	// multi-line replies as Gmail wraps them, one enhanced code per line.
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{"421 4.3.0 Temporary System Problem.  Try again later (10). - gsmtp"},
		code:  421, enhanced: "4.3.0", want: probes.ReasonServiceUnavailable,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{"421 4.4.5 Server busy, try again later. - gsmtp"},
		code:  421, enhanced: "4.4.5", want: probes.ReasonServiceUnavailable,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{"421 4.7.0 IP not in whitelist for RCPT domain, closing connection. - gsmtp"},
		code:  421, enhanced: "4.7.0", want: probes.ReasonPolicy,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{
			"421-4.7.0 TLS required for RCPT domain, closing connection. For more",
			"421 4.7.0 information, go to https://support.google.com/mail/answer/6330403 - gsmtp",
		},
		code: 421, enhanced: "4.7.0", want: probes.ReasonTLSRequired,
	},
	{ // Gmail: support.google.com/a/answer/3726730 (DoS protection at HELO)
		lines: []string{"421 4.7.0 Try again later, closing connection. - gsmtp"},
		code:  421, enhanced: "4.7.0", want: probes.ReasonServiceUnavailable,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{"421 4.7.0 Connection expired, try reconnecting. - gsmtp"},
		code:  421, enhanced: "4.7.0", want: probes.ReasonServiceUnavailable,
	},
	{ // Gmail: support.google.com/a/answer/3726730 (before 4.7.28 existed)
		lines: []string{
			"421-4.7.0 [192.0.2.25] Our system has detected an unusual rate of",
			"421-4.7.0 unsolicited mail originating from your IP address. To protect our",
			"421-4.7.0 users from spam, mail sent from your IP address has been temporarily",
			"421 4.7.0 blocked. - gsmtp",
		},
		code: 421, enhanced: "4.7.0", want: probes.ReasonThrottled,
	},
	{ // Gmail: support.google.com/mail/?p=UnsolicitedRateLimitError
		lines: []string{
			"421-4.7.28 [192.0.2.25] Our system has detected an unusual rate of",
			"421-4.7.28 unsolicited mail originating from your IP address. To protect our",
			"421-4.7.28 users from spam, mail sent from your IP address has been temporarily",
			"421-4.7.28 rate limited. Please visit",
			"421-4.7.28  https://support.google.com/mail/?p=UnsolicitedRateLimitError to",
			"421 4.7.28 review our Bulk Email Senders Guidelines. 41be03b00d2f7-5c6 - gsmtp",
		},
		code: 421, enhanced: "4.7.28", want: probes.ReasonThrottled,
	},
	{ // Gmail: support.google.com/mail/?p=UnsolicitedRateLimitError (SPF domain)
		lines: []string{
			"421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating",
			"421-4.7.28 from your SPF domain [example.com]. To protect our users from spam,",
			"421 4.7.28 mail sent from your domain has been temporarily rate limited. - gsmtp",
		},
		code: 421, enhanced: "4.7.28", want: probes.ReasonThrottled,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{
			"550-5.7.28 There is an unusual rate of unsolicited mail originating from your IP",
			"550-5.7.28 address. To protect our users from spam, mail sent from your IP",
			"550 5.7.28 address has been blocked. - gsmtp",
		},
		code: 550, enhanced: "5.7.28", want: probes.ReasonReputation,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{
			"450-4.2.1 The user you are trying to contact is receiving mail too quickly.",
			"450-4.2.1 Please resend your message at a later time. If the user is able to",
			"450 4.2.1 receive mail at that time, your message will be delivered. - gsmtp",
		},
		code: 450, enhanced: "4.2.1", want: probes.ReasonThrottled,
	},
	{ // Gmail: support.google.com/mail/?p=ReceivingRatePerm
		lines: []string{
			"450-4.2.1 The user you are trying to contact is receiving mail at a rate that",
			"450-4.2.1 prevents additional messages from being delivered. Please resend your",
			"450-4.2.1 message at a later time. If the user is able to receive mail at that",
			"450 4.2.1 time, your message will be delivered. - gsmtp",
		},
		code: 450, enhanced: "4.2.1", want: probes.ReasonThrottled,
	},
	{ // Gmail: support.google.com/a/answer/6140680 (SMTP relay service)
		lines: []string{"450 4.2.1 Peak SMTP relay limit exceeded for customer. This is a temporary error. - gsmtp"},
		code:  450, enhanced: "4.2.1", want: probes.ReasonThrottled,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{"451 4.3.0 Mail server temporarily rejected message. - gsmtp"},
		code:  451, enhanced: "4.3.0", want: probes.ReasonLocalError,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{"451 4.4.2 Timeout - closing connection. - gsmtp"},
		code:  451, enhanced: "4.4.2", want: probes.ReasonServiceUnavailable,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{"451 4.5.0 SMTP protocol violation, see RFC 2821. - gsmtp"},
		code:  451, enhanced: "4.5.0", want: probes.ReasonProtocol,
	},
	{ // Gmail: support.google.com/mail/?p=OverQuotaTemp
		lines: []string{
			"452-4.2.2 The recipient's inbox is out of storage space. Please direct the",
			"452 4.2.2 recipient to https://support.google.com/mail/?p=OverQuotaTemp - gsmtp",
		},
		code: 452, enhanced: "4.2.2", want: probes.ReasonMailboxFull,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{"452 4.2.2 The email account that you tried to reach is over quota. - gsmtp"},
		code:  452, enhanced: "4.2.2", want: probes.ReasonMailboxFull,
	},
	{ // Gmail: support.google.com/mail/?p=TooManyRecipientsError
		lines: []string{"452 4.5.3 Your message has too many recipients. - gsmtp"},
		code:  452, enhanced: "4.5.3", want: probes.ReasonPolicy,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{"454 4.5.0 SMTP protocol violation, no commands allowed to pipeline after STARTTLS, see RFC 3207. - gsmtp"},
		code:  454, enhanced: "4.5.0", want: probes.ReasonProtocol,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{"454 4.7.0 Cannot authenticate due to a temporary system problem. Try again later. - gsmtp"},
		code:  454, enhanced: "4.7.0", want: probes.ReasonAuthFailed,
	},
	{ // Gmail: support.google.com/mail/answer/7126229
		lines: []string{"454 4.7.0 Too many login attempts, please try again later. - gsmtp"},
		code:  454, enhanced: "4.7.0", want: probes.ReasonThrottled,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{"501 5.5.2 Syntax error, cannot decode response. - gsmtp"},
		code:  501, enhanced: "5.5.2", want: probes.ReasonProtocol,
	},
	{ // Gmail: support.google.com/mail/?p=helo
		lines: []string{"501 5.5.4 HELO/EHLO argument is invalid. - gsmtp"},
		code:  501, enhanced: "5.5.4", want: probes.ReasonProtocol,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{"502 5.5.1 Unrecognized command. - gsmtp"},
		code:  502, enhanced: "5.5.1", want: probes.ReasonProtocol,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{"503 5.5.1 Bad sequence of commands. - gsmtp"},
		code:  503, enhanced: "5.5.1", want: probes.ReasonProtocol,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{"504 5.7.4 Unrecognized authentication type. - gsmtp"},
		code:  504, enhanced: "5.7.4", want: probes.ReasonAuthFailed,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{
			"530-5.7.0 Must issue a STARTTLS command first. For more information, go to",
			"530 5.7.0  https://support.google.com/a/answer/3221692 - gsmtp",
		},
		code: 530, enhanced: "5.7.0", want: probes.ReasonTLSRequired,
	},
	{ // Gmail: support.google.com/mail/?p=WantAuthError
		lines: []string{
			"530-5.7.0 Authentication Required. For more information, go to",
			"530 5.7.0  https://support.google.com/mail/?p=WantAuthError - gsmtp",
		},
		code: 530, enhanced: "5.7.0", want: probes.ReasonAuthRequired,
	},
	{ // Gmail: support.google.com/mail/?p=InvalidSecondFactor
		lines: []string{
			"534-5.7.9 Application-specific password required. For more information, go to",
			"534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor - gsmtp",
		},
		code: 534, enhanced: "5.7.9", want: probes.ReasonAuthFailed,
	},
	{ // Gmail: support.google.com/mail/answer/78754
		lines: []string{
			"534-5.7.14 Please log in through your web browser and then try again.",
			"534 5.7.14  Learn more at https://support.google.com/mail/answer/78754 - gsmtp",
		},
		code: 534, enhanced: "5.7.14", want: probes.ReasonAuthFailed,
	},
	{ // Gmail: support.google.com/mail/?p=BadCredentials
		lines: []string{
			"535-5.7.8 Username and Password not accepted. For more information, go to",
			"535 5.7.8  https://support.google.com/mail/?p=BadCredentials - gsmtp",
		},
		code: 535, enhanced: "5.7.8", want: probes.ReasonAuthFailed,
	},
	{ // Gmail: support.google.com/mail/?p=NoSuchUser
		lines: []string{
			"550-5.1.1 The email account that you tried to reach does not exist. Please try",
			"550-5.1.1 double-checking the recipient's email address for typos or",
			"550-5.1.1 unnecessary spaces. For more information, go to",
			"550 5.1.1  https://support.google.com/mail/?p=NoSuchUser - gsmtp",
		},
		code: 550, enhanced: "5.1.1", want: probes.ReasonMailboxUnavailable,
	},
	{ // Gmail: support.google.com/mail/?p=DisabledUser
		lines: []string{
			"550-5.2.1 The email account that you tried to reach is inactive. For more",
			"550 5.2.1 information, go to https://support.google.com/mail/?p=DisabledUser - gsmtp",
		},
		code: 550, enhanced: "5.2.1", want: probes.ReasonMailboxUnavailable,
	},
	{ // Gmail: support.google.com/a/answer/166852 (sending limits)
		lines: []string{"550 5.4.5 Daily user sending limit exceeded. - gsmtp"},
		code:  550, enhanced: "5.4.5", want: probes.ReasonThrottled,
	},
	{ // Gmail: support.google.com/a/answer/6140680 (SMTP relay service)
		lines: []string{"550 5.4.5 Daily SMTP relay limit exceeded for user. - gsmtp"},
		code:  550, enhanced: "5.4.5", want: probes.ReasonThrottled,
	},
	{ // Gmail: support.google.com/mail/?p=UnsolicitedMessageError
		lines: []string{
			"550-5.7.1 Our system has detected that this message is likely unsolicited mail.",
			"550-5.7.1 To reduce the amount of spam sent to Gmail, this message has been",
			"550 5.7.1 blocked. - gsmtp",
		},
		code: 550, enhanced: "5.7.1", want: probes.ReasonPolicy,
	},
	{ // Gmail: support.google.com/mail/answer/188131
		lines: []string{
			"550-5.7.1 [192.0.2.25] Our system has detected that this message is likely",
			"550-5.7.1 suspicious due to the very low reputation of the sending IP address.",
			"550-5.7.1 To best protect our users from spam, the message has been blocked.",
			"550 5.7.1 - gsmtp",
		},
		code: 550, enhanced: "5.7.1", want: probes.ReasonReputation,
	},
	{ // Gmail: support.google.com/mail/answer/188131
		lines: []string{
			"421-4.7.0 [192.0.2.25] Our system has detected that this message is",
			"421-4.7.0 suspicious due to the nature of the content and/or the links within.",
			"421-4.7.0 To best protect our users from spam, the message has been blocked.",
			"421 4.7.0 - gsmtp",
		},
		code: 421, enhanced: "4.7.0", want: probes.ReasonPolicy,
	},
	{ // Gmail: support.google.com/mail/?p=RfcMessageNonCompliant
		lines: []string{
			"550-5.7.1 Messages missing a valid address in From: header, or having no From:",
			"550 5.7.1 header, are not accepted. - gsmtp",
		},
		code: 550, enhanced: "5.7.1", want: probes.ReasonPolicy,
	},
	{ // Gmail: support.google.com/mail/?p=NotAuthorizedError
		lines: []string{
			"550-5.7.1 The IP you're using to send mail is not authorized to send email",
			"550-5.7.1 directly to our servers. Please use the SMTP relay at your service",
			"550 5.7.1 provider instead. - gsmtp",
		},
		code: 550, enhanced: "5.7.1", want: probes.ReasonPolicy,
	},
	{ // Gmail: support.google.com/mail/answer/81126#ip-practices
		lines: []string{
			"550-5.7.25 The IP address sending this message does not have a PTR record setup,",
			"550-5.7.25 or the corresponding forward DNS entry does not point to the sending",
			"550 5.7.25 IP. As a policy, Gmail does not accept messages from IPs with missing PTR records. - gsmtp",
		},
		code: 550, enhanced: "5.7.25", want: probes.ReasonPolicy,
	},
	{ // Gmail: support.google.com/a/answer/3726730 (4.7.23 is Gmail's PTR code)
		lines: []string{
			"421-4.7.23 The sending IP address for this message doesn't have a PTR record, or",
			"421-4.7.23 the PTR record's forward DNS entry doesn't match the sending IP address.",
			"421 4.7.23 To protect users from spam, your email has been temporarily rate limited. - gsmtp",
		},
		code: 421, enhanced: "4.7.23", want: probes.ReasonPolicy,
	},
	{ // Gmail: support.google.com/mail/answer/81126#authentication
		lines: []string{
			"550-5.7.26 This mail has been blocked because the sender is unauthenticated.",
			"550-5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM.",
			"550-5.7.26",
			"550-5.7.26  Authentication results:",
			"550-5.7.26  DKIM = did not pass",
			"550-5.7.26  SPF [example.com] with ip: [192.0.2.25] = did not pass",
			"550-5.7.26",
			"550 5.7.26  For instructions on setting up authentication, go to https://support.google.com/mail/answer/81126#authentication - gsmtp",
		},
		code: 550, enhanced: "5.7.26", want: probes.ReasonDMARC,
	},
	{ // Gmail: support.google.com/mail/?p=DmarcRejection
		lines: []string{
			"550-5.7.26 Unauthenticated email from example.com is not accepted due to domain's",
			"550-5.7.26 DMARC policy. Please contact the administrator of example.com domain if",
			"550-5.7.26 this was a legitimate mail. To learn about the DMARC initiative, go to",
			"550 5.7.26  https://support.google.com/mail/?p=DmarcRejection - gsmtp",
		},
		code: 550, enhanced: "5.7.26", want: probes.ReasonDMARC,
	},
	{ // Gmail: support.google.com/mail/answer/81126#authentication (SPF -all)
		lines: []string{
			"550-5.7.26 The MAIL FROM domain [example.com] has an SPF record with a hard fail",
			"550-5.7.26 policy (-all) but it fails to pass SPF checks with the ip: [192.0.2.25].",
			"550 5.7.26 To best protect our users from spam and phishing, the message has been blocked. - gsmtp",
		},
		code: 550, enhanced: "5.7.26", want: probes.ReasonSPF,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{
			"421-4.7.27 Your email has been rate limited because SPF authentication didn't pass",
			"421-4.7.27 for this message. Gmail requires all bulk email senders to authenticate",
			"421 4.7.27 their email with SPF. Authentication results: SPF [example.com] with IP address: [192.0.2.25] = Did not pass. - gsmtp",
		},
		code: 421, enhanced: "4.7.27", want: probes.ReasonSPF,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{
			"421-4.7.30 Your email has been rate limited because DKIM authentication didn't",
			"421-4.7.30 pass for this message. Gmail requires all email bulk senders to",
			"421 4.7.30 authenticate their email with DKIM. Authentication results: DKIM = Did not pass. - gsmtp",
		},
		code: 421, enhanced: "4.7.30", want: probes.ReasonDKIM,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{
			"550-5.7.30 This mail has been blocked because DKIM does not pass. Gmail requires",
			"550-5.7.30 all large senders to authenticate with DKIM. Authentication results:",
			"550 5.7.30 DKIM = did not pass. - gsmtp",
		},
		code: 550, enhanced: "5.7.30", want: probes.ReasonDKIM,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{
			"421-4.7.32 Your email has been rate limited because the From: header (RFC5322) in",
			"421-4.7.32 this message isn't aligned with either the authenticated SPF or DKIM",
			"421 4.7.32 organizational domain. - gsmtp",
		},
		code: 421, enhanced: "4.7.32", want: probes.ReasonDMARC,
	},
	{ // Gmail: support.google.com/a/answer/3726730
		lines: []string{
			"421-4.7.40 Your email has been rate limited because the sending domain doesn't have",
			"421 4.7.40 a DMARC record, or the DMARC record doesn't specify a DMARC policy. - gsmtp",
		},
		code: 421, enhanced: "4.7.40", want: probes.ReasonDMARC,
	},
	{ // Gmail: support.google.com/mail/answer/81126#authentication
		lines: []string{
			"451-4.7.24 The SPF record of the sending domain has one or more suspicious",
			"451-4.7.24 entries. To protect our users from spam, mail sent from your IP address",
			"451 4.7.24 has been temporarily rate limited. - gsmtp",
		},
		code: 451, enhanced: "4.7.24", want: probes.ReasonSPF,
	},
	{ // Gmail: support.google.com/mail/?p=OverQuotaPerm
		lines: []string{"552 5.2.2 The email account that you tried to reach is over quota and inactive. - gsmtp"},
		code:  552, enhanced: "5.2.2", want: probes.ReasonMailboxFull,
	},
	{ // Gmail: support.google.com/mail/?p=MaxSizeError
		lines: []string{
			"552-5.2.3 Your message exceeded Google's message size limits. For more",
			"552 5.2.3 information, go to https://support.google.com/mail/?p=MaxSizeError - gsmtp",
		},
		code: 552, enhanced: "5.2.3", want: probes.ReasonMessageTooLarge,
	},
	{ // Gmail: support.google.com/mail/?p=BlockedMessage
		lines: []string{
			"552-5.7.0 This message was blocked because its content presents a potential",
			"552-5.7.0 security issue. Please visit",
			"552 5.7.0  https://support.google.com/mail/?p=BlockedMessage to review our message content and attachment content guidelines. - gsmtp",
		},
		code: 552, enhanced: "5.7.0", want: probes.ReasonPolicy,
	},
	{ // Gmail: support.google.com/mail/?p=BadRcptDomain
		lines: []string{
			"553-5.1.2 We weren't able to find the recipient domain. Please check for any",
			"553 5.1.2 spelling errors. - gsmtp",
		},
		code: 553, enhanced: "5.1.2", want: probes.ReasonMailboxUnavailable,
	},
	{ // Gmail: support.google.com/mail/?p=RfcMessageNonCompliant
		lines: []string{"554 5.6.0 Mail message is malformed. Not accepted. - gsmtp"},
		code:  554, enhanced: "5.6.0", want: probes.ReasonPolicy,
	},
	{ // Gmail: support.google.com/a/answer/6140680#maildenied
		lines: []string{
			"550-5.7.0 Mail relay denied [192.0.2.25]. Invalid credentials for relay for one of",
			"550 5.7.0 the domains in: example.com (as obtained from HELO and MAIL FROM). - gsmtp",
		},
		code: 550, enhanced: "5.7.0", want: probes.ReasonRelayDenied,
	},

	// --- Microsoft 365 / Exchange Online: learn.microsoft.com, "Email
	// non-delivery reports and SMTP errors in Exchange Online".
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-5-7-606-through-5-7-649
		lines: []string{"550 5.7.606 Access denied, banned sending IP [192.0.2.25]. To request removal from this list please visit https://sender.office.com/ and follow the directions. For more information please go to http://go.microsoft.com/fwlink/?LinkID=526655 AS(1430)"},
		code:  550, enhanced: "5.7.606", want: probes.ReasonReputation,
	},
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-451-4-7-500-699-asxxx
		lines: []string{"451 4.7.500 Server busy. Please try again later from [192.0.2.25]. (S77714) [BN8NAM12FT011.eop-nam12.prod.protection.outlook.com]"},
		code:  451, enhanced: "4.7.500", want: probes.ReasonThrottled,
	},
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-451-4-7-500-699-asxxx
		lines: []string{"451 4.7.550 Access denied, please try again later. For more information please go to http://go.microsoft.com/fwlink/?LinkId=526653 AS(7232)"},
		code:  451, enhanced: "4.7.550", want: probes.ReasonThrottled,
	},
	{ // Microsoft: Outlook.com deferral (postmaster.live.com), S775
		lines: []string{"451 4.7.650 The mail server [192.0.2.25] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://postmaster.live.com (S775) [DM6NAM12FT055.eop-nam12.prod.protection.outlook.com]"},
		code:  451, enhanced: "4.7.650", want: probes.ReasonReputation,
	},
	{ // Microsoft: Outlook.com block list (S3150), mail.live.com/mail/troubleshooting.aspx
		lines: []string{"550 5.7.1 Unfortunately, messages from [192.0.2.25] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. [BY2NAM01FT030.eop-nam01.prod.protection.outlook.com]"},
		code:  550, enhanced: "5.7.1", want: probes.ReasonReputation,
	},
	{ // Microsoft: Exchange Online Protection IP block list (AS3130)
		lines: []string{"550 5.7.1 Service unavailable, Client host [192.0.2.25] blocked using Spamhaus. To request removal from this list see https://www.spamhaus.org/query/ip/192.0.2.25 (AS3130). [AM4PEPF00027A6C.eurprd04.prod.outlook.com]"},
		code:  550, enhanced: "5.7.1", want: probes.ReasonReputation,
	},
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-5-7-513
		lines: []string{"550 5.7.513 Service unavailable, Client host [192.0.2.25] blocked by example.com using Customer Block list (AS16012607)"},
		code:  550, enhanced: "5.7.513", want: probes.ReasonReputation,
	},
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-550-5-7-511
		lines: []string{"550 5.7.511 Access denied, banned sender[192.0.2.25]. To request removal from this list, forward this message to delist@messaging.microsoft.com."},
		code:  550, enhanced: "5.7.511", want: probes.ReasonReputation,
	},
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-5-7-700-through-5-7-750
		lines: []string{"550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP."},
		code:  550, enhanced: "5.7.708", want: probes.ReasonReputation,
	},
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-550-5-1-10
		lines: []string{"550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"},
		code:  550, enhanced: "5.1.10", want: probes.ReasonMailboxUnavailable,
	},
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-550-5-4-1 (directory-based edge blocking)
		lines: []string{"550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [SN1NAM02FT0018.eop-nam02.prod.protection.outlook.com]"},
		code:  550, enhanced: "5.4.1", want: probes.ReasonMailboxUnavailable,
	},
	{ // Microsoft: Outlook.com, "Requested action not taken: mailbox unavailable"
		lines: []string{"550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). [AM5EUR03FT040.eop-EUR03.prod.protection.outlook.com]"},
		code:  550, enhanced: "5.5.0", want: probes.ReasonMailboxUnavailable,
	},
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-550-5-7-64
		lines: []string{"550 5.7.64 TenantAttribution; Relay Access Denied [DM5PR13MB1234.namprd13.prod.outlook.com]"},
		code:  550, enhanced: "5.7.64", want: probes.ReasonRelayDenied,
	},
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-550-5-7-54
		lines: []string{"550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain"},
		code:  550, enhanced: "5.7.54", want: probes.ReasonRelayDenied,
	},
	{ // Microsoft: Exchange Server, anonymous relay (learn.microsoft.com, "Allow anonymous relay")
		lines: []string{"550 5.7.1 Unable to relay"},
		code:  550, enhanced: "5.7.1", want: probes.ReasonRelayDenied,
	},
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-530-5-7-57
		lines: []string{"530 5.7.57 Client not authenticated to send mail. [SN4PR0501CA0123.namprd05.prod.outlook.com]"},
		code:  530, enhanced: "5.7.57", want: probes.ReasonAuthRequired,
	},
	{ // Microsoft: Exchange Server receive connector without anonymous access
		lines: []string{"530 5.7.1 Client was not authenticated"},
		code:  530, enhanced: "5.7.1", want: probes.ReasonAuthRequired,
	},
	{ // Microsoft: aka.ms/smtp_auth_disabled
		lines: []string{"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [SJ0PR03CA0123.namprd03.prod.outlook.com]"},
		code:  535, enhanced: "5.7.139", want: probes.ReasonAuthFailed,
	},
	{ // Microsoft: smtp.office365.com, bad credentials
		lines: []string{"535 5.7.3 Authentication unsuccessful [BL1PR13CA0123.namprd13.prod.outlook.com]"},
		code:  535, enhanced: "5.7.3", want: probes.ReasonAuthFailed,
	},
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-550-5-7-509
		lines: []string{"550 5.7.509 Access denied, sending domain [example.com] does not pass DMARC verification and has a DMARC policy of reject. [AM6EUR05FT012.eop-eur05.prod.protection.outlook.com]"},
		code:  550, enhanced: "5.7.509", want: probes.ReasonDMARC,
	},
	{ // Microsoft: go.microsoft.com/fwlink/p/?linkid=2319303 (5.7.515, 2025 sender requirements)
		lines: []string{"550 5.7.515 Access denied, sending domain [example.com] doesn't meet the required authentication level. The sender's domain in the 5322.From address doesn't meet the authentication requirements defined for the sender. To learn how to fix this see: https://go.microsoft.com/fwlink/p/?linkid=2319303"},
		code:  550, enhanced: "5.7.515", want: probes.ReasonDMARC,
	},
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-550-5-7-23
		lines: []string{"550 5.7.23 The message was rejected because of Sender Policy Framework violation"},
		code:  550, enhanced: "5.7.23", want: probes.ReasonSPF,
	},
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-450-4-7-26 (IPv6)
		lines: []string{"450 4.7.26 Access denied, a message sent over IPv6 [2001:db8::25] must pass either SPF or DKIM validation, this message is not signed"},
		code:  450, enhanced: "4.7.26", want: probes.ReasonDMARC,
	},
	{ // Microsoft: Exchange Online, recipient over quota
		lines: []string{"554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded"},
		code:  554, enhanced: "5.2.2", want: probes.ReasonMailboxFull,
	},
	{ // Microsoft: learn.microsoft.com, "Message size and recipient limits in Exchange Server"
		lines: []string{"552 5.3.4 Message size exceeds fixed maximum message size"},
		code:  552, enhanced: "5.3.4", want: probes.ReasonMessageTooLarge,
	},
	{ // Microsoft: Exchange Server receive connector MaxInboundConnection
		lines: []string{"421 4.3.2 The maximum number of concurrent server connections has exceeded a limit, closing transmission channel"},
		code:  421, enhanced: "4.3.2", want: probes.ReasonThrottled,
	},
	{ // Microsoft: learn.microsoft.com .../ndr/fix-error-code-5-7-520
		lines: []string{"550 5.7.520 Access denied, Your organization does not allow external forwarding. Please contact your administrator for further assistance. AS(7555)"},
		code:  550, enhanced: "5.7.520", want: probes.ReasonPolicy,
	},
	{ // Microsoft: Exchange Online outbound TLS requirement; 5.7.3 is not a 4xx code, so no enhanced code
		lines: []string{"451 5.7.3 STARTTLS is required to send mail [BN6PR1101CA0012.namprd11.prod.outlook.com]"},
		code:  451, enhanced: "", want: probes.ReasonTLSRequired,
	},
	{ // Microsoft: Exchange Server, DNS failure for the next hop
		lines: []string{"451 4.4.0 DNS query failed. The error was: DNS query failed with error: ErrorRetry"},
		code:  451, enhanced: "4.4.0", want: probes.ReasonServiceUnavailable,
	},
	{ // Microsoft: learn.microsoft.com, "Email non-delivery reports" (5.4.6 mail loop)
		lines: []string{"554 5.4.6 Hop count exceeded - possible mail loop"},
		code:  554, enhanced: "5.4.6", want: probes.ReasonOther,
	},

	// --- Yahoo / AOL: senders.yahooinc.com/smtp-error-codes.
	{ // Yahoo: senders.yahooinc.com/smtp-error-codes (TSS04)
		lines: []string{"421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"},
		code:  421, enhanced: "4.7.0", want: probes.ReasonThrottled,
	},
	{ // Yahoo: senders.yahooinc.com/smtp-error-codes (TS01)
		lines: []string{"421 4.7.0 [TS01] Messages from 192.0.2.25 temporarily deferred due to user complaints - 4.16.55.1; see https://help.yahoo.com/kb/postmaster/SLN3434.html"},
		code:  421, enhanced: "4.7.0", want: probes.ReasonThrottled,
	},
	{ // Yahoo: senders.yahooinc.com/smtp-error-codes (TSS09)
		lines: []string{"553 5.7.2 [TSS09] All messages from 192.0.2.25 will be permanently deferred; Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes"},
		code:  553, enhanced: "5.7.2", want: probes.ReasonReputation,
	},
	{ // Yahoo: senders.yahooinc.com/smtp-error-codes (BL21)
		lines: []string{"553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.25, because the ip is in Spamhaus's list; see http://postmaster.yahoo.com/550-bl23.html"},
		code:  553, enhanced: "5.7.1", want: probes.ReasonReputation,
	},
	{ // Yahoo: senders.yahooinc.com/smtp-error-codes (BL23)
		lines: []string{"553 5.7.1 [BL23] Connections not accepted from IP addresses on Spamhaus XBL; see http://postmaster.yahoo.com/errors/550-bl23.html [550]"},
		code:  553, enhanced: "5.7.1", want: probes.ReasonReputation,
	},
	{ // Yahoo: Spamhaus PBL listing
		lines: []string{"553 5.7.1 [BL21] Connections not accepted from IP addresses on Spamhaus PBL"},
		code:  553, enhanced: "5.7.1", want: probes.ReasonReputation,
	},
	{ // Yahoo: senders.yahooinc.com/smtp-error-codes
		lines: []string{"554 5.7.9 Message not accepted for policy reasons.  See https://postmaster.yahooinc.com/error-codes"},
		code:  554, enhanced: "5.7.9", want: probes.ReasonPolicy,
	},
	{ // Yahoo: senders.yahooinc.com/smtp-error-codes (PH01)
		lines: []string{"554 Message not allowed - [PH01] Email not accepted for policy reasons.  Please visit https://postmaster.yahooinc.com/error-codes"},
		code:  554, enhanced: "", want: probes.ReasonPolicy,
	},
	{ // Yahoo: senders.yahooinc.com/best-practices (2024 authentication requirement)
		lines: []string{"550 5.7.9 This mail has been blocked because the sender is unauthenticated. Yahoo requires all senders to authenticate with either SPF or DKIM."},
		code:  550, enhanced: "5.7.9", want: probes.ReasonDMARC,
	},
	{ // Yahoo: senders.yahooinc.com/smtp-error-codes
		lines: []string{"554 delivery error: dd This user doesn't have a yahoo.com account (someone@yahoo.com) [0] - mta1234.mail.bf1.yahoo.com"},
		code:  554, enhanced: "", want: probes.ReasonMailboxUnavailable,
	},
	{ // AOL: senders.yahooinc.com/smtp-error-codes
		lines: []string{"554 30 Sorry, your message to someone@aol.com cannot be delivered. This mailbox is disabled (554.30)."},
		code:  554, enhanced: "", want: probes.ReasonMailboxUnavailable,
	},
	{ // Yahoo: senders.yahooinc.com/smtp-error-codes
		lines: []string{"552 1 Requested mail action aborted, mailbox not found"},
		code:  552, enhanced: "", want: probes.ReasonMailboxUnavailable,
	},
	{ // Yahoo: senders.yahooinc.com/smtp-error-codes
		lines: []string{"421 Max message per connection reached, closing transmission channel"},
		code:  421, enhanced: "", want: probes.ReasonThrottled,
	},
	{ // Yahoo: senders.yahooinc.com/smtp-error-codes
		lines: []string{"450 User is receiving mail too quickly"},
		code:  450, enhanced: "", want: probes.ReasonThrottled,
	},
	{ // Yahoo: senders.yahooinc.com/error-codes#unresolvable-from-domain
		lines: []string{"451 Message temporarily deferred due to unresolvable RFC.5321 from domain. See https://senders.yahooinc.com/error-codes#unresolvable-from-domain"},
		code:  451, enhanced: "", want: probes.ReasonMailboxUnavailable,
	},
	{ // Yahoo: senders.yahooinc.com/smtp-error-codes
		lines: []string{"451 mta1234.mail.bf1.yahoo.com Resources temporarily unavailable. Please try again later [#4.16.1]."},
		code:  451, enhanced: "", want: probes.ReasonServiceUnavailable,
	},
	{ // Yahoo: senders.yahooinc.com/smtp-error-codes
		lines: []string{"550 relaying denied for <someone@yahoo.com>"},
		code:  550, enhanced: "", want: probes.ReasonRelayDenied,
	},
	{ // AOL/Yahoo: forward-confirmed reverse DNS check
		lines: []string{"450 4.7.25 Forward-confirmed reverse DNS failed"},
		code:  450, enhanced: "4.7.25", want: probes.ReasonPolicy,
	},

	// --- iCloud Mail: support.apple.com/en-us/102322 (postmaster information).
	{ // iCloud: support.apple.com/en-us/102322 (CS01)
		lines: []string{"554 5.7.1 [CS01] Message rejected due to local policy. Please visit https://support.apple.com/en-us/HT204137"},
		code:  554, enhanced: "5.7.1", want: probes.ReasonPolicy,
	},
	{ // iCloud: support.apple.com/en-us/102322
		lines: []string{"550 5.7.1 Mail from IP 192.0.2.25 was rejected due to listing in Spamhaus SBL. For details please see http://www.spamhaus.org/query/bl?ip=192.0.2.25"},
		code:  550, enhanced: "5.7.1", want: probes.ReasonReputation,
	},
	{ // iCloud: support.apple.com/en-us/102322
		lines: []string{"421 4.7.1 Messages to someone@icloud.com deferred due to excessive volume. Try again later - https://support.apple.com/en-us/HT204137"},
		code:  421, enhanced: "4.7.1", want: probes.ReasonThrottled,
	},
	{ // iCloud: support.apple.com/en-us/102322
		lines: []string{"552 5.2.2 <someone@icloud.com>: user is over quota"},
		code:  552, enhanced: "5.2.2", want: probes.ReasonMailboxFull,
	},
	{ // iCloud: support.apple.com/en-us/102322
		lines: []string{"550 5.1.1 <someone@icloud.com>: inactive email address"},
		code:  550, enhanced: "5.1.1", want: probes.ReasonMailboxUnavailable,
	},
	{ // iCloud: support.apple.com/en-us/102322
		lines: []string{"550 5.1.6 recipient no longer on server: someone@icloud.com"},
		code:  550, enhanced: "5.1.6", want: probes.ReasonMailboxUnavailable,
	},
	{ // iCloud: support.apple.com/en-us/102322
		lines: []string{"554 5.7.1 Your message was rejected due to example.com's DMARC policy. See https://support.apple.com/en-us/HT204137 for"},
		code:  554, enhanced: "5.7.1", want: probes.ReasonDMARC,
	},
	{ // iCloud: support.apple.com/en-us/102322 (HME1)
		lines: []string{"554 5.7.1 [HME1] This message was blocked for failing both SPF and DKIM authentication checks. See https://support.apple.com/en-us/HT204137 for mailing best practices"},
		code:  554, enhanced: "5.7.1", want: probes.ReasonDMARC,
	},
	{ // iCloud (Proofpoint gateway): support.apple.com/en-us/102322
		lines: []string{"550 5.7.0 Blocked - see https://support.proofpoint.com/dnsbl-lookup.cgi?ip=192.0.2.25"},
		code:  550, enhanced: "5.7.0", want: probes.ReasonReputation,
	},
	{ // iCloud: support.apple.com/en-us/102322
		lines: []string{"554 5.7.1 <someone@icloud.com>: Relay access denied"},
		code:  554, enhanced: "5.7.1", want: probes.ReasonRelayDenied,
	},

	// --- Postfix defaults (src/smtpd/smtpd.c, smtpd_check.c, postscreen).
	{ // Postfix: smtpd_check.c, reject_rbl_client default reply
		lines: []string{"554 5.7.1 Service unavailable; Client host [192.0.2.25] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.25"},
		code:  554, enhanced: "5.7.1", want: probes.ReasonReputation,
	},
	{ // Postfix: smtpd_check.c, reject_rhsbl_sender default reply
		lines: []string{"554 5.7.1 Service unavailable; Sender address [someone@example.net] blocked using dbl.spamhaus.org; https://www.spamhaus.org/query/domain/example.net"},
		code:  554, enhanced: "5.7.1", want: probes.ReasonReputation,
	},
	{ // Postfix: postscreen.c, DNSBL rejection
		lines: []string{"550 5.7.1 Service unavailable; client [192.0.2.25] blocked using zen.spamhaus.org"},
		code:  550, enhanced: "5.7.1", want: probes.ReasonReputation,
	},
	{ // Postfix: smtpd_check.c, reject_unlisted_recipient (virtual_mailbox_maps)
		lines: []string{"550 5.1.1 <someone@example.com>: Recipient address rejected: User unknown in virtual mailbox table"},
		code:  550, enhanced: "5.1.1", want: probes.ReasonMailboxUnavailable,
	},
	{ // Postfix: smtpd_check.c, reject_unlisted_recipient (local_recipient_maps)
		lines: []string{"550 5.1.1 <someone@example.com>: Recipient address rejected: User unknown in local recipient table"},
		code:  550, enhanced: "5.1.1", want: probes.ReasonMailboxUnavailable,
	},
	{ // Postfix: smtpd_check.c, reject_unverified_recipient while probing
		lines: []string{"450 4.1.1 <someone@example.com>: Recipient address rejected: unverified address: Address verification in progress"},
		code:  450, enhanced: "4.1.1", want: probes.ReasonMailboxUnavailable,
	},
	{ // Postfix: smtpd_check.c, reject_unknown_sender_domain
		lines: []string{"450 4.1.8 <someone@example.net>: Sender address rejected: Domain not found"},
		code:  450, enhanced: "4.1.8", want: probes.ReasonMailboxUnavailable,
	},
	{ // Postfix: smtpd_check.c, reject_unauth_destination
		lines: []string{"554 5.7.1 <someone@example.org>: Relay access denied"},
		code:  554, enhanced: "5.7.1", want: probes.ReasonRelayDenied,
	},
	{ // Postfix: smtpd_check.c, defer_unauth_destination
		lines: []string{"454 4.7.1 <someone@example.org>: Relay access denied"},
		code:  454, enhanced: "4.7.1", want: probes.ReasonRelayDenied,
	},
	{ // Postfix: smtpd_check.c, reject_unknown_reverse_client_hostname
		lines: []string{"450 4.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.25]"},
		code:  450, enhanced: "4.7.1", want: probes.ReasonPolicy,
	},
	{ // Postfix: smtpd_check.c, check_sender_access REJECT
		lines: []string{"554 5.7.1 <someone@example.com>: Sender address rejected: Access denied"},
		code:  554, enhanced: "5.7.1", want: probes.ReasonPolicy,
	},
	{ // Postfix: smtpd_check.c, reject_sender_login_mismatch
		lines: []string{"553 5.7.1 <someone@example.com>: Sender address rejected: not logged in"},
		code:  553, enhanced: "5.7.1", want: probes.ReasonAuthRequired,
	},
	{ // Postfix: smtpd_check.c, reject_non_fqdn_helo_hostname
		lines: []string{"504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname"},
		code:  504, enhanced: "5.5.2", want: probes.ReasonProtocol,
	},
	{ // Postfix: smtpd.c, smtpd_tls_security_level=encrypt
		lines: []string{"530 5.7.0 Must issue a STARTTLS command first"},
		code:  530, enhanced: "5.7.0", want: probes.ReasonTLSRequired,
	},
	{ // Postfix: smtpd.c, STARTTLS without a usable TLS context
		lines: []string{"454 4.7.0 TLS not available due to local problem"},
		code:  454, enhanced: "4.7.0", want: probes.ReasonSTARTTLSUnavailable,
	},
	{ // Postfix: smtpd_sasl_glue.c
		lines: []string{"535 5.7.8 Error: authentication failed: authentication failure"},
		code:  535, enhanced: "5.7.8", want: probes.ReasonAuthFailed,
	},
	{ // Postfix: smtpd_sasl_proto.c, AUTH without smtpd_sasl_auth_enable
		lines: []string{"503 5.5.1 Error: authentication not enabled"},
		code:  503, enhanced: "5.5.1", want: probes.ReasonAuthFailed,
	},
	{ // Postfix: smtpd_check.c, message_size_limit
		lines: []string{"552 5.3.4 Message size exceeds fixed limit"},
		code:  552, enhanced: "5.3.4", want: probes.ReasonMessageTooLarge,
	},
	{ // Postfix: smtpd_check.c, queue_minfree
		lines: []string{"452 4.3.1 Insufficient system storage"},
		code:  452, enhanced: "4.3.1", want: probes.ReasonInsufficientStorage,
	},
	{ // Postfix: smtpd.c, cleanup write failure
		lines: []string{"451 4.3.0 Error: queue file write error"},
		code:  451, enhanced: "4.3.0", want: probes.ReasonLocalError,
	},
	{ // Postfix: smtpd_check.c, lookup table failure
		lines: []string{"451 4.3.0 <someone@example.com>: Temporary lookup failure"},
		code:  451, enhanced: "4.3.0", want: probes.ReasonLocalError,
	},
	{ // Postfix: smtpd_check.c, configuration error
		lines: []string{"451 4.3.5 Server configuration error"},
		code:  451, enhanced: "4.3.5", want: probes.ReasonLocalError,
	},
	{ // Postfix: smtpd.c, smtpd_client_connection_count_limit (anvil)
		lines: []string{"421 4.7.0 mail.example.com Error: too many connections from 192.0.2.25"},
		code:  421, enhanced: "4.7.0", want: probes.ReasonThrottled,
	},
	{ // Postfix: smtpd.c, smtpd_client_message_rate_limit (anvil)
		lines: []string{"450 4.7.1 Error: too much mail from 192.0.2.25"},
		code:  450, enhanced: "4.7.1", want: probes.ReasonThrottled,
	},
	{ // Postfix: smtpd.c, smtpd_client_recipient_rate_limit (anvil)
		lines: []string{"450 4.7.1 Error: too many recipients from 192.0.2.25"},
		code:  450, enhanced: "4.7.1", want: probes.ReasonThrottled,
	},
	{ // Postfix: smtpd.c, smtpd_recipient_limit
		lines: []string{"452 4.5.3 Error: too many recipients"},
		code:  452, enhanced: "4.5.3", want: probes.ReasonPolicy,
	},
	{ // Postfix: smtpd.c, smtpd_hard_error_limit
		lines: []string{"421 4.7.0 mail.example.com Error: too many errors"},
		code:  421, enhanced: "4.7.0", want: probes.ReasonProtocol,
	},
	{ // Postfix: smtpd.c, RCPT before MAIL
		lines: []string{"503 5.5.1 Error: need MAIL command"},
		code:  503, enhanced: "5.5.1", want: probes.ReasonProtocol,
	},
	{ // Postfix: smtpd.c, unknown verb
		lines: []string{"502 5.5.2 Error: command not recognized"},
		code:  502, enhanced: "5.5.2", want: probes.ReasonProtocol,
	},
	{ // Postfix: smtpd.c, unparsable RCPT TO address
		lines: []string{"501 5.1.3 Bad recipient address syntax"},
		code:  501, enhanced: "5.1.3", want: probes.ReasonProtocol,
	},
	{ // Postfix: smtpd.c, DATA after all recipients were rejected
		lines: []string{"554 5.5.1 Error: no valid recipients"},
		code:  554, enhanced: "5.5.1", want: probes.ReasonProtocol,
	},
	{ // Postfix: smtpd.c, unknown MAIL FROM parameter
		lines: []string{"555 5.5.4 Unsupported option: FOO=BAR"},
		code:  555, enhanced: "5.5.4", want: probes.ReasonProtocol,
	},
	{ // Postfix: postscreen.c, all smtpd processes busy
		lines: []string{"421 4.3.2 All server ports are busy"},
		code:  421, enhanced: "4.3.2", want: probes.ReasonServiceUnavailable,
	},
	{ // Postfix: postscreen.c, deep-protocol test pending
		lines: []string{"450 4.3.2 Service currently unavailable"},
		code:  450, enhanced: "4.3.2", want: probes.ReasonServiceUnavailable,
	},

	// --- postgrey (postgrey.schweikert.ch) and other greylisters.
	{ // postgrey: default --greylist-text
		lines: []string{"450 4.2.0 <someone@example.com>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html"},
		code:  450, enhanced: "4.2.0", want: probes.ReasonGreylisted,
	},
	{ // postgrey: older default text (isg.ee.ethz.ch)
		lines: []string{"450 4.7.1 <someone@example.com>: Recipient address rejected: Greylisted for 300 seconds (see http://isg.ee.ethz.ch/tools/postgrey/help/example.com.html)"},
		code:  450, enhanced: "4.7.1", want: probes.ReasonGreylisted,
	},
	{ // milter-greylist: default reply
		lines: []string{"451 4.7.1 Greylisting in action, please come back in 00:05:00"},
		code:  451, enhanced: "4.7.1", want: probes.ReasonGreylisted,
	},
	{ // Greylisting milters and policy daemons: the bare deferral
		lines: []string{"451 4.7.1 Please try again later"},
		code:  451, enhanced: "4.7.1", want: probes.ReasonGreylisted,
	},
	{ // OpenBSD spamd(8): greylisting deferral
		lines: []string{"451 Temporary failure, please try again later."},
		code:  451, enhanced: "", want: probes.ReasonGreylisted,
	},

	// --- Exim defaults (exim.org/exim-html-current/doc/html/spec_html).
	{ // Exim: router failure
		lines: []string{"550 Unrouteable address"},
		code:  550, enhanced: "", want: probes.ReasonMailboxUnavailable,
	},
	{ // Exim: sender verification callout failure
		lines: []string{
			"550-Verification failed for <someone@example.net>",
			"550-Unrouteable address",
			"550 Sender verify failed",
		},
		code: 550, enhanced: "", want: probes.ReasonMailboxUnavailable,
	},
	{ // Exim: ACL "defer" default
		lines: []string{"451 Temporary local problem - please try later"},
		code:  451, enhanced: "", want: probes.ReasonLocalError,
	},
	{ // Exim: default ACL, relaying
		lines: []string{"550 relay not permitted"},
		code:  550, enhanced: "", want: probes.ReasonRelayDenied,
	},
	{ // Exim: ACL "deny" default
		lines: []string{"550 Administrative prohibition"},
		code:  550, enhanced: "", want: probes.ReasonPolicy,
	},
	{ // Exim: smtp_enforce_sync
		lines: []string{"554 SMTP synchronization error"},
		code:  554, enhanced: "", want: probes.ReasonProtocol,
	},
	{ // Exim: smtp_accept_max_per_host
		lines: []string{"421 Too many concurrent SMTP connections from this IP address; please try again later."},
		code:  421, enhanced: "", want: probes.ReasonThrottled,
	},
	{ // Exim: check_spool_space
		lines: []string{"452 Space shortage, please try later."},
		code:  452, enhanced: "", want: probes.ReasonInsufficientStorage,
	},
	{ // Exim: dnslists default message
		lines: []string{"550 Rejected because 192.0.2.25 is in a black list at zen.spamhaus.org"},
		code:  550, enhanced: "", want: probes.ReasonReputation,
	},
	{ // Exim: message_size_limit
		lines: []string{"552 Message size exceeds maximum permitted"},
		code:  552, enhanced: "", want: probes.ReasonMessageTooLarge,
	},
	{ // Exim (cPanel): unknown local part
		lines: []string{"550 No Such User Here"},
		code:  550, enhanced: "", want: probes.ReasonMailboxUnavailable,
	},

	// --- Sendmail defaults (sendmail/srvrsmtp.c, cf/m4/proto.m4).
	{ // Sendmail: local delivery, unknown user
		lines: []string{"550 5.1.1 <someone@example.com>... User unknown"},
		code:  550, enhanced: "5.1.1", want: probes.ReasonMailboxUnavailable,
	},
	{ // Sendmail: proto.m4, relaying check
		lines: []string{"550 5.7.1 <someone@example.org>... Relaying denied"},
		code:  550, enhanced: "5.7.1", want: probes.ReasonRelayDenied,
	},
	{ // Sendmail: proto.m4, unresolvable sender domain (permanent)
		lines: []string{"553 5.1.8 <someone@example.net>... Domain of sender address someone@example.net does not exist"},
		code:  553, enhanced: "5.1.8", want: probes.ReasonMailboxUnavailable,
	},
	{ // Sendmail: proto.m4, unresolvable sender domain (temporary)
		lines: []string{"451 4.1.8 Domain of sender address someone@example.net does not resolve"},
		code:  451, enhanced: "4.1.8", want: probes.ReasonMailboxUnavailable,
	},
	{ // Sendmail: srvrsmtp.c, MinFreeBlocks
		lines: []string{"452 4.4.5 Insufficient disk space; try again later"},
		code:  452, enhanced: "4.4.5", want: probes.ReasonInsufficientStorage,
	},
	{ // Sendmail: srvrsmtp.c, shutdown in progress
		lines: []string{"421 4.3.2 Service shutting down"},
		code:  421, enhanced: "4.3.2", want: probes.ReasonServiceUnavailable,
	},
	{ // Sendmail: FEATURE(ratecontrol)
		lines: []string{"421 4.3.2 Connection rate limit exceeded."},
		code:  421, enhanced: "4.3.2", want: probes.ReasonThrottled,
	},
	{ // Sendmail: FEATURE(conncontrol)
		lines: []string{"421 4.3.2 Too many open connections."},
		code:  421, enhanced: "4.3.2", want: probes.ReasonThrottled,
	},
	{ // Sendmail: FEATURE(dnsbl) default message
		lines: []string{"550 5.7.1 Rejected: 192.0.2.25 listed at zen.spamhaus.org"},
		code:  550, enhanced: "5.7.1", want: probes.ReasonReputation,
	},
	{ // Sendmail: MaxMessageSize
		lines: []string{"552 5.2.3 Message size exceeds maximum value"},
		code:  552, enhanced: "5.2.3", want: probes.ReasonMessageTooLarge,
	},
	{ // Sendmail: MaxRcptsPerMessage
		lines: []string{"452 4.5.3 Too many recipients"},
		code:  452, enhanced: "4.5.3", want: probes.ReasonPolicy,
	},
	{ // Sendmail: AUTH required by access map
		lines: []string{"530 5.7.0 Authentication required"},
		code:  530, enhanced: "5.7.0", want: probes.ReasonAuthRequired,
	},
	{ // Sendmail: srvrsmtp.c, unknown command
		lines: []string{`500 5.5.1 Command unrecognized: "FOO"`},
		code:  500, enhanced: "5.5.1", want: probes.ReasonProtocol,
	},
	{ // Sendmail: srvrsmtp.c, STARTTLS refused by a server without TLS
		lines: []string{`500 5.5.1 Command unrecognized: "STARTTLS"`},
		code:  500, enhanced: "5.5.1", want: probes.ReasonSTARTTLSUnavailable,
	},

	// --- qmail-smtpd (qmail-smtpd.c): enhanced codes only as "(#x.y.z)".
	{ // qmail: qmail-smtpd.c, rcpthosts check
		lines: []string{"553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"},
		code:  553, enhanced: "", want: probes.ReasonRelayDenied,
	},
	{ // qmail: qmail-smtpd.c, databytes
		lines: []string{"552 sorry, that message size exceeds my databytes limit (#5.3.4)"},
		code:  552, enhanced: "", want: probes.ReasonMessageTooLarge,
	},
	{ // qmail: qmail-smtpd.c, Received-header loop detection
		lines: []string{"554 too many hops, this message is looping (#5.4.6)"},
		code:  554, enhanced: "", want: probes.ReasonOther,
	},
	{ // qmail: qmail-smtpd.c, qmail-queue failure
		lines: []string{"451 qq temporary problem (#4.3.0)"},
		code:  451, enhanced: "", want: probes.ReasonLocalError,
	},
	{ // qmail: qmail-smtpd.c, RCPT before MAIL
		lines: []string{"503 MAIL first (#5.5.1)"},
		code:  503, enhanced: "", want: probes.ReasonProtocol,
	},
	{ // vpopmail chkuser: unknown recipient
		lines: []string{"550 5.1.1 sorry, no mailbox here by that name (#5.1.1 - chkuser)"},
		code:  550, enhanced: "5.1.1", want: probes.ReasonMailboxUnavailable,
	},

	// --- Amazon SES: docs.aws.amazon.com/ses/latest/dg/troubleshoot-smtp.html
	{ // Amazon SES: SMTP interface, sending quota
		lines: []string{"454 Throttling failure: Maximum sending rate exceeded."},
		code:  454, enhanced: "", want: probes.ReasonThrottled,
	},
	{ // Amazon SES: SMTP interface, daily quota
		lines: []string{"454 Throttling failure: Daily message quota exceeded."},
		code:  454, enhanced: "", want: probes.ReasonThrottled,
	},
	{ // Amazon SES: SMTP interface, bad SMTP credentials
		lines: []string{"535 Authentication Credentials Invalid"},
		code:  535, enhanced: "", want: probes.ReasonAuthFailed,
	},
	{ // Amazon SES: SMTP interface, plain-text session
		lines: []string{"530 Must issue a STARTTLS command first"},
		code:  530, enhanced: "", want: probes.ReasonTLSRequired,
	},

	// --- Blocklist operators and gateways.
	{ // Barracuda: barracudacentral.org, BRBL rejection through Postfix
		lines: []string{"554 Service unavailable; Client host [192.0.2.25] blocked using Barracuda Reputation; http://www.barracudanetworks.com/reputation/?r=1&ip=192.0.2.25"},
		code:  554, enhanced: "", want: probes.ReasonReputation,
	},
	{ // SpamCop: spamcop.net/bl.shtml, SCBL rejection through Postfix
		lines: []string{"550 5.7.1 Service unavailable; Client host [192.0.2.25] blocked using bl.spamcop.net; Blocked - see https://www.spamcop.net/bl.shtml?192.0.2.25"},
		code:  550, enhanced: "5.7.1", want: probes.ReasonReputation,
	},
	{ // Proofpoint: ipcheck.proofpoint.com
		lines: []string{"554 5.7.1 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.25"},
		code:  554, enhanced: "5.7.1", want: probes.ReasonReputation,
	},
	{ // Cisco Secure Email (IronPort): default SBRS rejection
		lines: []string{"554 Your access to this mail system has been rejected due to the sending MTA's poor reputation. If you believe that this failure is in error, please contact the intended recipient via alternate means."},
		code:  554, enhanced: "", want: probes.ReasonReputation,
	},
	{ // Trend Micro Email Reputation Service
		lines: []string{"550 5.7.1 Mail from 192.0.2.25 has been blocked by Trend Micro Email Reputation Service."},
		code:  550, enhanced: "5.7.1", want: probes.ReasonReputation,
	},
	{ // Comcast: postmaster.comcast.net/smtp-error-codes.php#BL000001
		lines: []string{"554 resimta-po-01v.sys.comcast.net comcast 192.0.2.25 found on one or more DNSBLs, see http://postmaster.comcast.net/smtp-error-codes.php#BL000001"},
		code:  554, enhanced: "", want: probes.ReasonReputation,
	},
	{ // Mimecast: community.mimecast.com/docs/DOC-1369
		lines: []string{"451 Open relay not allowed - https://community.mimecast.com/docs/DOC-1369#451"},
		code:  451, enhanced: "", want: probes.ReasonRelayDenied,
	},
	{ // Mimecast: community.mimecast.com/docs/DOC-1369
		lines: []string{"550 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550"},
		code:  550, enhanced: "", want: probes.ReasonMailboxUnavailable,
	},
	{ // Mimecast: community.mimecast.com/docs/DOC-1369
		lines: []string{"550 Rejected by header based Anti-Spoofing policy: someone@example.com - https://community.mimecast.com/docs/DOC-1369#550"},
		code:  550, enhanced: "", want: probes.ReasonPolicy,
	},

	// --- RFC 5321 §4.2.2 / RFC 3207 default texts, as many servers send them.
	{ // RFC 5321 §4.2.2
		lines: []string{"421 mx.example.com Service not available, closing transmission channel"},
		code:  421, enhanced: "", want: probes.ReasonServiceUnavailable,
	},
	{ // RFC 5321 §4.2.2
		lines: []string{"450 Requested mail action not taken: mailbox unavailable"},
		code:  450, enhanced: "", want: probes.ReasonMailboxBusy,
	},
	{ // RFC 3463 §3.3 (4.2.1 mailbox disabled, not accepting messages)
		lines: []string{"450 4.2.1 <someone@example.com>: Mailbox temporarily disabled"},
		code:  450, enhanced: "4.2.1", want: probes.ReasonMailboxBusy,
	},
	{ // RFC 5321 §4.2.2
		lines: []string{"451 Requested action aborted: local error in processing"},
		code:  451, enhanced: "", want: probes.ReasonLocalError,
	},
	{ // RFC 5321 §4.2.2
		lines: []string{"452 Requested action not taken: insufficient system storage"},
		code:  452, enhanced: "", want: probes.ReasonInsufficientStorage,
	},
	{ // RFC 3207 §4
		lines: []string{"454 TLS not available due to temporary reason"},
		code:  454, enhanced: "", want: probes.ReasonSTARTTLSUnavailable,
	},
	{ // RFC 5321 §4.2.3 (455, server unable to accommodate parameters)
		lines: []string{"455 Server unable to accommodate parameters"},
		code:  455, enhanced: "", want: probes.ReasonOther,
	},
	{ // RFC 5321 §4.2.2
		lines: []string{"500 Syntax error, command unrecognized"},
		code:  500, enhanced: "", want: probes.ReasonProtocol,
	},
	{ // RFC 5321 §4.2.2
		lines: []string{"550 Requested action not taken: mailbox unavailable"},
		code:  550, enhanced: "", want: probes.ReasonMailboxUnavailable,
	},
	{ // RFC 5321 §4.2.2
		lines: []string{"552 Requested mail action aborted: exceeded storage allocation"},
		code:  552, enhanced: "", want: probes.ReasonMailboxFull,
	},

	// --- Positive replies.
	{ // Postfix: greeting
		lines: []string{"220 mx.example.com ESMTP Postfix"},
		code:  220, enhanced: "", want: probes.ReasonOK,
	},
	{ // Postfix: EHLO response
		lines: []string{
			"250-mx.example.com",
			"250-PIPELINING",
			"250-SIZE 10240000",
			"250-STARTTLS",
			"250-ENHANCEDSTATUSCODES",
			"250 8BITMIME",
		},
		code: 250, enhanced: "", want: probes.ReasonOK,
	},
	{ // Gmail: RCPT accepted
		lines: []string{"250 2.1.5 OK a1-20020a05600c000000b004123456789si1234567wmq.1 - gsmtp"},
		code:  250, enhanced: "2.1.5", want: probes.ReasonOK,
	},
	{ // RFC 5321 §4.2.2: DATA go-ahead
		lines: []string{"354 End data with <CR><LF>.<CR><LF>"},
		code:  354, enhanced: "", want: probes.ReasonOK,
	},
	{ // RFC 4954: AUTH challenge
		lines: []string{"334 VXNlcm5hbWU6"},
		code:  334, enhanced: "", want: probes.ReasonOK,
	},
}

func TestClassify_RealWorld(t *testing.T) { checkCorpus(t, realWorldReplies) }

// checkCorpus feeds each row through the real parser, so that the enhanced
// code extraction and the transcript callback are checked with the reason.
func checkCorpus(t *testing.T, rows []classifyCase) {
	t.Helper()
	for _, tc := range rows {
		t.Run(probes.Truncate(tc.lines[0], 60), func(t *testing.T) {
			rep, seen := parseRawReply(t, tc.lines)
			if rep.Code != tc.code {
				t.Errorf("code = %d, want %d", rep.Code, tc.code)
			}
			if rep.EnhancedCode != tc.enhanced {
				t.Errorf("enhanced code = %q, want %q", rep.EnhancedCode, tc.enhanced)
			}
			if rep.Reason != tc.want {
				t.Errorf("reason = %q, want %q\ntext: %s", rep.Reason, tc.want, rep.Text())
			}
			if !slices.Equal(seen, tc.lines) {
				t.Errorf("transcript saw %q, want %q", seen, tc.lines)
			}
		})
	}
}

// TestClassify_CorpusIsComplete keeps the corpus honest: every row states
// what it expects, and every reason a reply can carry appears at least once.
func TestClassify_CorpusIsComplete(t *testing.T) {
	seen := map[probes.Reason]int{}
	rows := 0
	for i, tc := range realWorldReplies {
		if tc.code == 0 {
			t.Errorf("row %d (%q) has no expected code", i, tc.lines)
			continue
		}
		rows++
		seen[tc.want]++
	}
	if rows < 90 {
		t.Errorf("corpus has %d rows, want at least 90", rows)
	}
	replyReasons := []probes.Reason{
		probes.ReasonOK, probes.ReasonProtocol, probes.ReasonSTARTTLSUnavailable, probes.ReasonTLSRequired,
		probes.ReasonAuthRequired, probes.ReasonAuthFailed, probes.ReasonServiceUnavailable,
		probes.ReasonThrottled, probes.ReasonGreylisted, probes.ReasonMailboxBusy, probes.ReasonLocalError,
		probes.ReasonInsufficientStorage, probes.ReasonMailboxUnavailable, probes.ReasonMailboxFull,
		probes.ReasonMessageTooLarge, probes.ReasonRelayDenied, probes.ReasonSPF, probes.ReasonDKIM,
		probes.ReasonDMARC, probes.ReasonReputation, probes.ReasonPolicy, probes.ReasonOther,
	}
	for _, r := range replyReasons {
		if seen[r] == 0 {
			t.Errorf("no corpus row expects %q", r)
		}
	}
}

// TestClassify_Precedence pins the decisions where two signals disagree.
func TestClassify_Precedence(t *testing.T) {
	tests := []struct {
		name     string
		code     int
		enhanced string
		text     string
		want     probes.Reason
	}{
		{"blocklist text beats generic 5.7.1", 550, "5.7.1", "Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", probes.ReasonReputation},
		{"greylist text beats 4.2.0 mailbox status", 450, "4.2.0", "Recipient address rejected: Greylisted", probes.ReasonGreylisted},
		{"rate text beats 4.2.1 mailbox status", 450, "4.2.1", "The user you are trying to contact is receiving mail too quickly.", probes.ReasonThrottled},
		{"rate text beats 4.3.2 system status", 421, "4.3.2", "Connection rate limit exceeded.", probes.ReasonThrottled},
		{"relay text beats auth wording", 550, "5.7.1", "Relaying denied. Proper authentication required.", probes.ReasonRelayDenied},
		{"5.7.26 without a mechanism named is DMARC", 550, "5.7.26", "Multiple authentication checks failed", probes.ReasonDMARC},
		{"5.7.23 without a mechanism named is SPF", 550, "5.7.23", "Message rejected", probes.ReasonSPF},
		{"5.7.21 without a mechanism named is DKIM", 550, "5.7.21", "Message rejected", probes.ReasonDKIM},
		{"5.7.9 at 534 is a weak mechanism", 534, "5.7.9", "Authentication mechanism is too weak", probes.ReasonAuthFailed},
		{"4.7.28 naming a DKIM domain is still a flood deferral", 421, "4.7.28", "unusual rate of unsolicited mail originating from your DKIM domain", probes.ReasonThrottled},
		{"sending quota is a rate limit, not a full mailbox", 550, "5.4.5", "Daily sending quota exceeded", probes.ReasonThrottled},
		{"mailbox size limit is a full mailbox, not a big message", 552, "", "Mailbox size limit exceeded", probes.ReasonMailboxFull},
		{"service unavailable wording at 5xx is not an outage", 554, "", "Service unavailable", probes.ReasonPolicy},
		{"451 4.3.0 is a local error", 451, "4.3.0", "", probes.ReasonLocalError},
		{"421 4.3.0 is an outage", 421, "4.3.0", "", probes.ReasonServiceUnavailable},
		{"bare 421", 421, "", "mx.example.com closing connection", probes.ReasonServiceUnavailable},
		{"greylisting needs 450/451", 421, "4.7.1", "Please try again later", probes.ReasonServiceUnavailable},
		{"temporary unknown user stays mailbox_unavailable", 450, "4.1.1", "mailbox unavailable", probes.ReasonMailboxUnavailable},
		{"temporary full mailbox by code alone", 452, "4.2.2", "", probes.ReasonMailboxFull},
		{"bare 530", 530, "", "", probes.ReasonAuthRequired},
		{"bare 538", 538, "5.7.11", "Encryption required for requested authentication mechanism", probes.ReasonTLSRequired},
		{"bare 454", 454, "", "", probes.ReasonOther},
		{"bare 552", 552, "", "", probes.ReasonMailboxFull},
		{"bare 554", 554, "", "", probes.ReasonPolicy},
		{"bare 5.0.0 refusal", 550, "5.0.0", "Access denied", probes.ReasonPolicy},
		{"5.3.x at 5xx falls back to the code", 554, "5.3.0", "", probes.ReasonPolicy},
		{"unknown 5xx code", 559, "", "", probes.ReasonOther},
		{"case does not matter", 554, "5.7.1", "BLOCKED USING ZEN.SPAMHAUS.ORG", probes.ReasonReputation},
		{"extra whitespace does not matter", 550, "5.7.1", "Relay   access\tdenied", probes.ReasonRelayDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := probes.Classify(tt.code, tt.enhanced, tt.text); got != tt.want {
				t.Errorf("Classify(%d, %q, %q) = %q, want %q", tt.code, tt.enhanced, tt.text, got, tt.want)
			}
		})
	}
}

// TestClassify_Phrasings covers wording variants seen in bounces from many
// smaller providers and filters (as collected by bounce classifiers such as
// sisimai), so that the rules stay general rather than fitted to the corpus.
// The codes are typical for each wording; the wording is what is tested.
func TestClassify_Phrasings(t *testing.T) {
	tests := []struct {
		code     int
		enhanced string
		text     string
		want     probes.Reason
	}{
		{550, "", "Address not present in directory", probes.ReasonMailboxUnavailable},
		{550, "", "Recipient address rejected: invalid-recipient", probes.ReasonMailboxUnavailable},
		{550, "", "is not a known user", probes.ReasonMailboxUnavailable},
		{550, "", "recipient not exist", probes.ReasonMailboxUnavailable},
		{550, "", "Mailbox unavailable or access denied", probes.ReasonMailboxUnavailable},
		{550, "", "Recipient address rejected: not listed in public Name & Address Book", probes.ReasonMailboxUnavailable},
		{550, "5.1.1", "<a@example.com>: Recipient address rejected: not listed in Domino Directory", probes.ReasonMailboxUnavailable},
		{550, "", "Recipient address rejected: unknown domain name", probes.ReasonMailboxUnavailable},
		{553, "", "Recipient domain must exist", probes.ReasonMailboxUnavailable},
		{550, "", "#5.1.0 Address rejected a@example.com", probes.ReasonMailboxUnavailable},
		{550, "5.7.27", "Sender address has null MX", probes.ReasonMailboxUnavailable},
		{550, "", "Mailbox exceeds allowed size", probes.ReasonMailboxFull},
		{552, "", "Mailbox would exceed maximum allowed storage", probes.ReasonMailboxFull},
		{452, "", "User has too many messages on the server", probes.ReasonMailboxFull},
		{550, "", "user has exceeded quota, bouncing mail", probes.ReasonMailboxFull},
		{550, "5.7.1", "Email quota exceeded.", probes.ReasonMailboxFull},
		{550, "", "Message exceeds maximum allowed size", probes.ReasonMessageTooLarge},
		{554, "5.3.4", "Message too big for system", probes.ReasonMessageTooLarge},
		{550, "5.7.1", "Your IP address 192.0.2.1 is listed in the RBL", probes.ReasonReputation},
		{554, "", "Sorry! your IP address 192.0.2.1 is blocked by RBL", probes.ReasonReputation},
		{550, "", "dynamic/zombied/spam IPs blocked", probes.ReasonReputation},
		{550, "", "We do not accept mail from dynamic IPs", probes.ReasonReputation},
		{554, "5.7.1", "Not currently accepting mail from your ip", probes.ReasonReputation},
		{421, "", "Too many spams from your IP (192.0.2.1), please visit http://postmaster.free.fr/", probes.ReasonReputation},
		{550, "", "Your network is temporary blacklisted", probes.ReasonReputation},
		{554, "5.7.1", "Sender domain listed at dbl.spamhaus.org", probes.ReasonReputation},
		{550, "", "Mail refused - 192.0.2.1 - See http://www.dnsbl.manitu.net/lookup.php?value=192.0.2.1", probes.ReasonReputation},
		{451, "4.7.1", "IP temporarily blacklisted - https://community.mimecast.com/docs/DOC-1369#451", probes.ReasonReputation},
		{421, "4.7.0", "Too many connections from your host.", probes.ReasonThrottled},
		{421, "", "Too many SMTP sessions for this host", probes.ReasonThrottled},
		{451, "", "has exceeded the max emails per hour (200/200 (100%)) allowed. Message discarded.", probes.ReasonThrottled},
		{421, "", "All available IPs are at maximum connection limit", probes.ReasonThrottled},
		{451, "4.7.1", "Please try again slower", probes.ReasonThrottled},
		{451, "4.7.1", "Mailbox rate limit reached, please try again later", probes.ReasonThrottled},
		{421, "4.7.0", "[GL01] Message from (192.0.2.1) temporarily deferred - 4.16.50. Please refer to https://postmaster.yahooinc.com/error-codes", probes.ReasonThrottled},
		{550, "", "we don't handle mail for example.org", probes.ReasonRelayDenied},
		{550, "", "This system is not configured to relay mail from <a@example.com> to <b@example.org> for 192.0.2.1", probes.ReasonRelayDenied},
		{550, "5.7.1", "<a@example.com>... Relaying denied. IP name lookup failed [192.0.2.1]", probes.ReasonRelayDenied},
		{550, "5.7.1", "Unauthenticated senders not allowed", probes.ReasonAuthRequired},
		{550, "", "SMTP AUTH is required for message submission on port 587", probes.ReasonAuthRequired},
		{550, "5.7.133", "RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required; Delivery restriction check failed as sender not authenticated", probes.ReasonPolicy},
		{432, "4.7.12", "A password transition is needed", probes.ReasonAuthFailed},
		{421, "4.7.66", "TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to support TLS 1.2.", probes.ReasonTLSRequired},
		{550, "5.7.1", "Sender denied by SPF", probes.ReasonSPF},
		{550, "", "Please see http://www.openspf.net/Why?s=mfrom;id=a%40example.com;ip=192.0.2.1;r=mx", probes.ReasonSPF},
		{550, "5.7.20", "No passing DKIM signature found", probes.ReasonDKIM},
		{450, "", "4.7.1 You dont seem to have a reverse dns entry. Come back later. You are greylisted for 20 minutes.", probes.ReasonGreylisted},
		{451, "", "Greylisted by SQLgrey, try again in 5 minutes", probes.ReasonGreylisted},
		{451, "4.7.1", "Try again later", probes.ReasonGreylisted},
		{554, "5.7.1", "This message has been identified as spam", probes.ReasonPolicy},
		{554, "", "Message filtered. Please see the FAQs section on spam", probes.ReasonPolicy},
		{550, "", "5.7.1 Rejected - bulk email", probes.ReasonPolicy},
		{554, "", "rejecting banned content", probes.ReasonPolicy},
		{550, "5.7.1", "Message contains a virus", probes.ReasonPolicy},
		{421, "4.7.0", "Too many protocol errors (6) on this connection, closing transmission channel.", probes.ReasonProtocol},
		{452, "4.3.1", "Insufficient system resources (UsedDiskSpace[C:\\Program Files\\Microsoft\\Exchange Server\\V15\\TransportRoles\\data\\Queue])", probes.ReasonInsufficientStorage},
		{451, "", "Mail system configuration error", probes.ReasonLocalError},
		{421, "", "Timeout waiting for data from client.", probes.ReasonServiceUnavailable},
		{451, "", "Internal resource temporarily unavailable - https://community.mimecast.com/docs/DOC-1369#451", probes.ReasonServiceUnavailable},
	}
	for _, tt := range tests {
		if got := probes.Classify(tt.code, tt.enhanced, tt.text); got != tt.want {
			t.Errorf("Classify(%d, %q, %q) = %q, want %q", tt.code, tt.enhanced, tt.text, got, tt.want)
		}
	}
}

// TestClassify_WrappedPhrase: a phrase broken across lines of a multi-line
// reply still matches, although every line repeats the enhanced code.
func TestClassify_WrappedPhrase(t *testing.T) {
	rep, _ := parseRawReply(t, []string{
		"450-4.2.1 The user you are trying to contact is receiving mail too",
		"450 4.2.1 quickly. Please resend your message at a later time. - gsmtp",
	})
	if rep.Reason != probes.ReasonThrottled {
		t.Errorf("reason = %q, want throttled (text %q)", rep.Reason, rep.Text())
	}
	rep, _ = parseRawReply(t, []string{
		"550-5.7.1 Service unavailable; Client host [192.0.2.25] blocked",
		"550 5.7.1 using zen.spamhaus.org",
	})
	if got := probes.Classify(rep.Code, "", "blocked 5.7.1 using"); got == probes.ReasonReputation {
		t.Fatalf("control: an unwrapped enhanced code should break the phrase, got %q", got)
	}
	if rep.Reason != probes.ReasonReputation {
		t.Errorf("reason = %q, want reputation (text %q)", rep.Reason, rep.Text())
	}
}

// TestClassify_LongTextIsBounded: only the start of a huge reply is read, so
// a hostile server cannot make classification expensive.
func TestClassify_LongTextIsBounded(t *testing.T) {
	filler := strings.Repeat("lorem ipsum ", 1000)
	if got := probes.Classify(550, "", "blocked using zen.spamhaus.org "+filler); got != probes.ReasonReputation {
		t.Errorf("signal at the start: got %q, want reputation", got)
	}
	if got := probes.Classify(550, "", filler+"blocked using zen.spamhaus.org"); got != probes.ReasonMailboxUnavailable {
		t.Errorf("signal past the bound: got %q, want the code's mailbox_unavailable", got)
	}
}

func TestClassify_CodeRanges(t *testing.T) {
	for _, code := range []int{200, 220, 250, 299, 334, 354, 399} {
		if got := probes.Classify(code, "5.7.1", "blocked using zen.spamhaus.org"); got != probes.ReasonOK {
			t.Errorf("Classify(%d, ...) = %q, want ok whatever the text", code, got)
		}
	}
	for _, code := range []int{-1, 0, 199, 600, 999} {
		if got := probes.Classify(code, "", ""); got != probes.ReasonProtocol {
			t.Errorf("Classify(%d, ...) = %q, want protocol for an impossible code", code, got)
		}
	}
}

func TestReadReply_MultiLine(t *testing.T) {
	raw := "250-mx.example.com Hello [192.0.2.25]\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n221 2.0.0 Bye\r\n"
	br := bufio.NewReader(strings.NewReader(raw))
	var seen []string
	rep, err := readReply(br, func(l string) { seen = append(seen, l) })
	if err != nil {
		t.Fatal(err)
	}
	wantLines := []string{"mx.example.com Hello [192.0.2.25]", "SIZE 52428800", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS"}
	if rep.Code != 250 || rep.Reason != probes.ReasonOK || rep.EnhancedCode != "" {
		t.Errorf("got code %d reason %q enhanced %q, want 250 ok \"\"", rep.Code, rep.Reason, rep.EnhancedCode)
	}
	if !slices.Equal(rep.Lines, wantLines) {
		t.Errorf("lines = %q, want %q", rep.Lines, wantLines)
	}
	if want := strings.Join(wantLines, " "); rep.Text() != want {
		t.Errorf("Text() = %q, want %q", rep.Text(), want)
	}
	if len(seen) != 5 || seen[0] != "250-mx.example.com Hello [192.0.2.25]" || seen[4] != "250 STARTTLS" {
		t.Errorf("transcript = %q, want the five raw lines", seen)
	}

	// The next reply on the same reader is untouched by the first.
	next, err := readReply(br, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if next.Code != 221 || next.EnhancedCode != "2.0.0" || !slices.Equal(next.Lines, []string{"2.0.0 Bye"}) {
		t.Errorf("second reply = %+v", next)
	}
}

func TestReadReply_EnhancedOnLastLineOnly(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		code     int
		enhanced string
	}{
		{"last line only", "550-Verification failed for <a@example.net>\r\n550-Unrouteable address\r\n550 5.1.1 Sender verify failed\r\n", 550, "5.1.1"},
		{"middle line only", "550-Rejected\r\n550-5.7.1 blocked\r\n550 see the FAQ\r\n", 550, "5.7.1"},
		{"first line wins", "550-5.7.1 first\r\n550 5.1.1 second\r\n", 550, "5.7.1"},
		{"class mismatch ignored", "451 5.7.3 STARTTLS is required to send mail\r\n", 451, ""},
		{"mismatch skipped for a later match", "451-5.7.3 wrong class\r\n451 4.7.1 right class\r\n", 451, "4.7.1"},
		{"3xx never has one", "354 2.0.0 go ahead\r\n", 354, ""},
		{"code only", "250\r\n", 250, ""},
		{"not at the start", "550 see 5.1.1 for details\r\n", 550, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := readReply(bufio.NewReader(strings.NewReader(tt.raw)), func(string) {})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Code != tt.code || rep.EnhancedCode != tt.enhanced {
				t.Errorf("got %d %q, want %d %q", rep.Code, rep.EnhancedCode, tt.code, tt.enhanced)
			}
		})
	}
}

func TestReadReply_Errors(t *testing.T) {
	longLine := "250 " + strings.Repeat("x", maxReplyLineBytes+10) + "\r\n"
	tooMany := strings.Repeat("250-x\r\n", maxReplyLines+5) + "250 x\r\n"
	tests := []struct {
		name        string
		raw         string
		protocolErr bool   // a *ProtocolError, else an EOF
		msg         string // part of the error text
		seen        int    // raw lines the transcript saw
		lastSeen    string // the last of them, when it is known exactly
	}{
		{"bare LF", "250 ok\n", true, "bare LF", 1, "250 ok"},
		{"bare LF mid-reply", "250-a\r\n250 b\n", true, "bare LF", 2, "250 b"},
		{"garbage", "hello world\r\n", true, "does not start with a reply code", 1, "hello world"},
		{"short line", "25\r\n", true, "short reply line", 1, "25"},
		{"empty line", "\r\n", true, "short reply line", 1, ""},
		{"code out of range", "199 x\r\n", true, "does not start with a reply code", 1, "199 x"},
		{"second digit out of range", "260 x\r\n", true, "does not start with a reply code", 1, "260 x"},
		{"bad separator", "250_x\r\n", true, "malformed reply line", 1, "250_x"},
		{"four digits", "2500 x\r\n", true, "malformed reply line", 1, "2500 x"},
		{"code change mid-reply", "250-a\r\n251 b\r\n", true, "changed from 250 to 251", 2, "251 b"},
		{"too long line", longLine, true, "too long", 1, ""},
		{"too many lines", tooMany, true, "longer than", maxReplyLines, "250-x"},
		{"EOF before anything", "", false, "", 0, ""},
		{"EOF mid-line", "250 o", false, "", 1, "250 o"},
		{"EOF mid-reply", "250-a\r\n250-b\r\n", false, "", 2, "250-b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []string
			_, err := readReply(bufio.NewReader(strings.NewReader(tt.raw)), func(l string) { seen = append(seen, l) })
			if err == nil {
				t.Fatal("no error")
			}
			var pe *ProtocolError
			if tt.protocolErr {
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v (%T), want *ProtocolError", err, err)
				}
				if !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("err = %q, want it to mention %q", err, tt.msg)
				}
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("err = %v, want io.EOF or io.ErrUnexpectedEOF", err)
			}
			if len(seen) != tt.seen {
				t.Fatalf("transcript has %d lines, want %d", len(seen), tt.seen)
			}
			if tt.lastSeen != "" && seen[len(seen)-1] != tt.lastSeen {
				t.Errorf("transcript ends with %q, want %q", seen[len(seen)-1], tt.lastSeen)
			}
			for _, l := range seen {
				if len(l) > maxReplyLineBytes {
					t.Errorf("transcript kept a %d-byte line; over-long lines must be cut", len(l))
				}
			}
		})
	}
}

func TestReply_ClassAndTemporary(t *testing.T) {
	tests := []struct {
		code      int
		class     string
		positive  bool
		temporary bool
	}{
		{220, "2xx", true, false},
		{250, "2xx", true, false},
		{354, "3xx", true, false},
		{421, "4xx", false, true},
		{452, "4xx", false, true},
		{499, "4xx", false, true},
		{500, "5xx", false, false},
		{554, "5xx", false, false},
		{599, "5xx", false, false},
		{0, "", false, false},
		{99, "", false, false},
		{600, "", false, false},
	}
	for _, tt := range tests {
		r := probes.Reply{Code: tt.code}
		if got := r.Class(); got != tt.class {
			t.Errorf("Reply{Code: %d}.Class() = %q, want %q", tt.code, got, tt.class)
		}
		if got := r.Positive(); got != tt.positive {
			t.Errorf("Reply{Code: %d}.Positive() = %v, want %v", tt.code, got, tt.positive)
		}
		if got := r.Temporary(); got != tt.temporary {
			t.Errorf("Reply{Code: %d}.Temporary() = %v, want %v", tt.code, got, tt.temporary)
		}
	}

	// The class decides temporariness, not the reason: a full mailbox is
	// temporary at 452 and permanent at 552.
	soft, _ := parseRawReply(t, []string{"452 4.2.2 Mailbox full"})
	hard, _ := parseRawReply(t, []string{"552 5.2.2 Mailbox full"})
	if soft.Reason != probes.ReasonMailboxFull || hard.Reason != probes.ReasonMailboxFull {
		t.Errorf("reasons = %q, %q, want mailbox_full for both", soft.Reason, hard.Reason)
	}
	if !soft.Temporary() || hard.Temporary() {
		t.Errorf("Temporary() = %v, %v, want true for 452 and false for 552", soft.Temporary(), hard.Temporary())
	}
}

func TestLeadingEnhancedCode(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"5.7.26 Unauthenticated email", "5.7.26", true},
		{"4.2.1 The user", "4.2.1", true},
		{"2.0.0 Ok", "2.0.0", true},
		{"5.1.1", "5.1.1", true},
		{"5.7.606 Access denied", "5.7.606", true},
		{"5.123.456 x", "5.123.456", true},
		{"  4.7.0\tdeferred", "4.7.0", true},
		{"5.7.1\tx", "5.7.1", true},
		{"", "", false},
		{"5.1", "", false},
		{"5.1.", "", false},
		{"5..1 x", "", false},
		{"5.1.1x", "", false},
		{"5.1.1.", "", false},
		{"5.1.1234 x", "", false},
		{"5.1234.1 x", "", false},
		{"3.1.1 x", "", false},
		{"1.2.3 x", "", false},
		{"50.1.1 x", "", false},
		{"a5.1.1", "", false},
		{"Sender verify failed 5.1.1", "", false},
	}
	for _, tt := range tests {
		got, ok := probes.LeadingEnhancedCode(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("probes.LeadingEnhancedCode(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
