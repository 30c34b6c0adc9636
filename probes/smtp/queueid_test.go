package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"context"
	"testing"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// TestQueueID holds the final DATA replies of real MTAs as they appear on
// the wire, each with where its wording comes from. A reply in no known
// form must give no id: a word taken from it at random would send an
// operator searching the server's logs for something that is not there.
func TestQueueID(t *testing.T) {
	for _, tc := range []struct {
		source string
		reply  []string // the reply's lines, code included
		want   string
	}{
		// Postfix src/smtpd/smtpd.c: smtpd_chat_reply(state, "250 Ok: queued as %s",
		// state->queue_id); the enhanced code comes from smtpd_chat_reply.
		{"Postfix short queue id", []string{"250 2.0.0 Ok: queued as 7F94E1C0299"}, "7F94E1C0299"},
		{"Postfix long queue id (enable_long_queue_ids)", []string{"250 2.0.0 Ok: queued as 4XyZ1k2n3Hz9"}, "4XyZ1k2n3Hz9"},
		{"Postfix without ENHANCEDSTATUSCODES", []string{"250 Ok: queued as 3B1C2D4E5F"}, "3B1C2D4E5F"},

		// Exim src/receive.c: smtp_printf("250 OK id=%s\r\n", message_id),
		// and with CHUNKING a chunk line before it.
		{"Exim before 4.97 (6-6-2 id)", []string{"250 OK id=1tQzJm-0004aB-2x"}, "1tQzJm-0004aB-2x"},
		{"Exim 4.97 and later (6-11-4 id)", []string{"250 OK id=1sfKdn-00000000Bxy-2TnL"}, "1sfKdn-00000000Bxy-2TnL"},
		{"Exim after BDAT", []string{"250- 1024 byte chunk, total 1030", "250 OK id=1tQzJm-0004aB-2x"}, "1tQzJm-0004aB-2x"},

		// Sendmail srvrsmtp.c: message("250 2.0.0 %s Message accepted for
		// delivery", id); queue.c assign_queueid: seven characters of
		// QueueIdChars, then the pid as %05d.
		{"Sendmail", []string{"250 2.0.0 6B4DOZ35018647 Message accepted for delivery"}, "6B4DOZ35018647"},

		// OpenSMTPD usr.sbin/smtpd/smtp_session.c: "250 %s %08x Message
		// accepted for delivery" with esc_code(ESC_STATUS_OK, ...), and
		// "250 %s: %08x ..." in the 5.x and 6.0 series.
		{"OpenSMTPD", []string{"250 2.0.0 3b1a4cd7 Message accepted for delivery"}, "3b1a4cd7"},
		{"OpenSMTPD 5.x/6.0", []string{"250 2.0.0: 0c2d8f3e Message accepted for delivery"}, "0c2d8f3e"},
		{"OpenSMTPD 5.3", []string{"250 7f3e21ab Message accepted for delivery"}, "7f3e21ab"},

		// Haraka connection.js: 'Message Queued (' + transaction.uuid + ')',
		// the uuid being the connection's and the transaction's number.
		{"Haraka", []string{"250 Message Queued (566747CE-9C4C-4F47-8E7F-3A0B7D5A1C2E.1)"}, "566747CE-9C4C-4F47-8E7F-3A0B7D5A1C2E.1"},

		// Microsoft Exchange 2010 and later, and Exchange Online: the
		// Message-ID echoed, then [InternalId=N, Hostname=H]; these are
		// replies as Postfix logged them (status=sent (...)).
		{"Exchange 2010", []string{"250 2.6.0 <20111025103822.7F94E1C0299@ASTNAGIOS> [InternalId=274498] Queued mail for delivery"}, "274498"},
		{"Exchange Online", []string{"250 2.6.0 <39ae3efa-2283-44e5-8733-80226f6fea73@mtasv.net> [InternalId=7619272024915, Hostname=SY4P282MB1257.AUSP282.PROD.OUTLOOK.COM] 48435 bytes in 0.160, 294.858 KB/sec Queued mail for delivery"}, "7619272024915"},
		// Microsoft's "Use Telnet to test SMTP communication" page: the
		// Message-ID is the client's, not a queue id.
		{"Exchange without InternalId", []string{"250 2.6.0 <0b6a5e1f2c3d4e5f@mail1.fabrikam.com> Queued mail for delivery"}, ""},
		{"Hotmail", []string{"250 <SNT0-MC3-F1964xSNUX00142e45@SNT0-MC3-F19.Snt0.hotmail.com> Queued mail for delivery"}, ""},

		// Gmail: "OK", the Unix time, the id, "- gsmtp".
		{"Gmail", []string{"250 2.0.0 OK  1644855633 l11si9233120wms.107 - gsmtp"}, "l11si9233120wms.107"},
		{"Gmail, id with a dash", []string{"250 2.0.0 OK  1763692895 d75a77b69052e-4ee48d19aacsi14375621cf.66 - gsmtp"}, "d75a77b69052e-4ee48d19aacsi14375621cf.66"},
		{"Gmail, as SendGrid documents it", []string{"250 2.0.0 OK 1376056636 i3si9508927obz.16 - gsmtp"}, "i3si9508927obz.16"},

		// Dovecot src/lmtp/lmtp-local.c: "<%s> %s Saved" with the session
		// id, the transaction id (base64) or "%s:%u" after the first
		// recipient.
		{"Dovecot LMTP", []string{"250 2.0.0 <b@example.test> 8Gk5Li1AdVxDXAAAVEXs4g Saved"}, "8Gk5Li1AdVxDXAAAVEXs4g"},
		{"Dovecot LMTP, second recipient", []string{"250 2.0.0 <c@example.test> 8Gk5Li1+dVxDXAAAVE/s4g:2 Saved"}, "8Gk5Li1+dVxDXAAAVE/s4g:2"},

		// Replies with no id.
		{"aiosmtpd smtp.py default (status = '250 OK')", []string{"250 OK"}, ""},
		{"Postfix-like server with no id", []string{"250 2.0.0 Ok: queued"}, ""},
		{"generic handler wording, no id", []string{"250 Message accepted for delivery"}, ""},
		{"enhanced code only before the wording", []string{"250 2.0.0 Message accepted for delivery"}, ""},
		{"a word before the wording is not an id", []string{"250 2.0.0 OK Message accepted for delivery"}, ""},
		{"Gmail wording without an id", []string{"250 2.0.0 OK - gsmtp"}, ""},
		{"Dovecot wording without a session id", []string{"250 2.0.0 <b@example.test> Saved"}, ""},
		{"an id= that is not Exim's", []string{"250 2.0.0 Ok: accepted, trace id=abc"}, ""},
	} {
		t.Run(tc.source, func(t *testing.T) {
			lines := make([]string, len(tc.reply))
			for i, l := range tc.reply {
				lines[i] = l[len("250 "):]
			}
			rep := probes.NewReply(250, lines)
			if got := queueID(rep.Text()); got != tc.want {
				t.Errorf("queueID(%q) = %q, want %q", rep.Text(), got, tc.want)
			}
		})
	}
}

// TestRun_QueueIDOfReply: the id of the reply to the message reaches the
// result, and a reply without one leaves queue_id empty.
func TestRun_QueueIDOfReply(t *testing.T) {
	for dot, want := range map[string]string{
		"250 2.0.0 6B4DOZ35018647 Message accepted for delivery": "6B4DOZ35018647",
		"250 OK": "",
	} {
		srv := probestest.NewScriptServer(t, probestest.Dialog{Replies: map[string]string{"DOT": dot}}.Serve)
		m := dialogModule()
		m.SMTP.Send = true
		r := Probe(context.Background(), srv.Addr, m, nil)
		requireSuccess(t, r)
		if r.SMTP.QueueID != want {
			t.Errorf("reply %q: queue id %q, want %q", dot, r.SMTP.QueueID, want)
		}
	}
}
