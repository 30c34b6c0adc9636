package probes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validMessageModule is a module that sends, with mc as its message.
func validMessageModule(mc MessageConfig) Module {
	m := Module{SMTP: SMTPModule{MailFrom: "m@example.net", RcptTo: []string{"r@example.net"}, Send: true, Message: mc}}
	m.SetDefaults()
	return m
}

func TestMessageConfig_Validate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := write("big", strings.Repeat(strings.Repeat("x", 63)+"\n", 1025))
	latin := write("latin", "Gr\xfc\xdfe\n")
	tests := []struct {
		name      string
		mc        MessageConfig
		wantField string
		wantMsg   string
	}{
		{"space in header name", MessageConfig{Headers: map[string]string{"X Bad": "v"}},
			"smtp.message.headers.X Bad", `header name "X Bad" is not an RFC 5322 field name: want printable US-ASCII without spaces or ":"`},
		{"colon in header name", MessageConfig{Headers: map[string]string{"X-A:b": "v"}},
			"smtp.message.headers.X-A:b", `header name "X-A:b" is not an RFC 5322 field name: want printable US-ASCII without spaces or ":"`},
		{"empty header name", MessageConfig{Headers: map[string]string{"": "v"}},
			"smtp.message.headers.", `header name "" is not an RFC 5322 field name: want printable US-ASCII without spaces or ":"`},
		{"non-ASCII header name", MessageConfig{Headers: map[string]string{"X-Grüße": "v"}},
			"smtp.message.headers.X-Grüße", `header name "X-Grüße" is not an RFC 5322 field name: want printable US-ASCII without spaces or ":"`},
		{"Message-ID", MessageConfig{Headers: map[string]string{"Message-ID": "<a@b>"}},
			"smtp.message.headers.Message-ID", "Message-ID is the prober's own and cannot be set: it carries the probe's token, by which the message is found, matched to its bounces and cleaned up"},
		{"token header, other case", MessageConfig{Headers: map[string]string{"x-smtp-exporter-probe": "t"}},
			"smtp.message.headers.x-smtp-exporter-probe", "X-SMTP-Exporter-Probe is the prober's own and cannot be set: it carries the probe's token, by which the message is found, matched to its bounces and cleaned up"},
		{"Date", MessageConfig{Headers: map[string]string{"Date": "Mon, 1 Jan 2024 00:00:00 +0000"}},
			"smtp.message.headers.Date", "Date is the prober's own and cannot be set: it is the moment of sending, new at every run"},
		{"Auto-Submitted", MessageConfig{Headers: map[string]string{"Auto-Submitted": "no"}},
			"smtp.message.headers.Auto-Submitted", "Auto-Submitted is the prober's own and cannot be set: it marks the message as automated (RFC 3834), so that no system auto-replies to a monitor"},
		{"same name twice", MessageConfig{Headers: map[string]string{"Subject": "a", "subject": "b"}},
			"smtp.message.headers.subject", `set twice, as "Subject" and "subject" (header names are case-insensitive)`},
		{"CR LF in value", MessageConfig{Headers: map[string]string{"X-A": "v\r\nBcc: victim@example.org"}},
			"smtp.message.headers.X-A", "must not contain CR, LF or NUL, found U+000D at byte 1: it would end the header and start another"},
		{"NUL in value", MessageConfig{Headers: map[string]string{"X-A": "v\x00"}},
			"smtp.message.headers.X-A", "must not contain CR, LF or NUL, found U+0000 at byte 1: it would end the header and start another"},
		{"control character in value", MessageConfig{Headers: map[string]string{"X-A": "v\x1b[0m"}},
			"smtp.message.headers.X-A", "must not contain control characters other than tab, found U+001B at byte 1"},
		{"non-ASCII value", MessageConfig{Headers: map[string]string{"Subject": "Grüße"}},
			"smtp.message.headers.Subject", "must be US-ASCII, found byte 0xC3 at byte 2: write other text as an RFC 2047 encoded-word"},
		{"header line too long", MessageConfig{Headers: map[string]string{"X-Long": strings.Repeat("a", 991)}},
			"smtp.message.headers.X-Long", "the header line is 999 octets, over RFC 5322's limit of 998"},
		{"body and body_file", MessageConfig{Body: "a\n", BodyFile: latin},
			"smtp.message.body_file", "set body or body_file, not both"},
		{"8-bit body", MessageConfig{Body: "Gr\u00fc\u00dfe\n"},
			"smtp.message.body", "must be US-ASCII, found byte 0xC3 at byte 2 (an 8-bit body needs 8BITMIME, which the probe does not support)"},
		{"NUL in body", MessageConfig{Body: "a\x00b"},
			"smtp.message.body", "must not contain NUL, found at byte 1"},
		{"bare CR in body", MessageConfig{Body: "a\rb\n"},
			"smtp.message.body", "has a CR without LF at byte 1: end lines with LF or CRLF"},
		{"body line too long", MessageConfig{Body: "short\r\n" + strings.Repeat("b", 999) + "\r\nshort\n"},
			"smtp.message.body", "line 2 is 999 octets, over RFC 5322's limit of 998"},
		{"last body line too long", MessageConfig{Body: strings.Repeat("b", 999)},
			"smtp.message.body", "line 1 is 999 octets, over RFC 5322's limit of 998"},
		{"body too large", MessageConfig{Body: strings.Repeat(strings.Repeat("x", 63)+"\n", 1025)},
			"smtp.message.body", "is 65600 bytes, over the limit of 64 KiB (a monitor sends little)"},
		{"body_file too large", MessageConfig{BodyFile: big},
			"smtp.message.body_file", "is 65600 bytes, over the limit of 64 KiB (a monitor sends little)"},
		{"8-bit body_file", MessageConfig{BodyFile: latin},
			"smtp.message.body_file", "must be US-ASCII, found byte 0xFC at byte 2 (an 8-bit body needs 8BITMIME, which the probe does not support)"},
		{"missing body_file", MessageConfig{BodyFile: filepath.Join(dir, "none")},
			"smtp.message.body_file", "stat " + filepath.Join(dir, "none") + ": no such file or directory"},
		{"body_file is a directory", MessageConfig{BodyFile: dir},
			"smtp.message.body_file", dir + " is a directory, not a file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validMessageModule(tt.mc)
			err := m.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want a FieldError %s: %s", err, tt.wantField, tt.wantMsg)
			}
			if fe.Field != tt.wantField || fe.Msg != tt.wantMsg {
				t.Errorf("Validate() = %q\nwant          %q", err, tt.wantField+": "+tt.wantMsg)
			}
		})
	}
}

func TestMessageConfig_ValidateGood(t *testing.T) {
	body := filepath.Join(t.TempDir(), "body.txt")
	if err := os.WriteFile(body, []byte("From a file.\n.dot\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, mc := range map[string]MessageConfig{
		"none": {},
		"overrides": {Headers: map[string]string{
			"from": "Monitor <monitor@example.org>", "To": "Postmaster <postmaster@example.net>",
			"Subject": "Weekly report", "Content-Type": "text/plain; charset=us-ascii; format=flowed", "MIME-Version": "1.0",
		}},
		"extra headers": {Headers: map[string]string{"X-Tab": "a\tb", "X-Empty": "", "List-Unsubscribe": "<mailto:u@example.org>"}},
		"longest line":  {Headers: map[string]string{"X-Long": strings.Repeat("a", 990)}, Body: strings.Repeat("b", 998) + "\n"},
		"CRLF body":     {Body: "one\r\ntwo\r\n"},
		"largest body":  {Body: strings.Repeat(strings.Repeat("x", 63)+"\n", 1024)},
		"body_file":     {BodyFile: body},
	} {
		t.Run(name, func(t *testing.T) {
			m := validMessageModule(mc)
			if err := m.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

// TestMessageConfig_BodyFile: the file is read at load (Validate), relative
// to the configuration's directory; a change to it afterwards does not
// reach the message until the next load.
func TestMessageConfig_BodyFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "body.txt"), []byte("line one\nline two"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := validMessageModule(MessageConfig{BodyFile: "body.txt"})
	m.SetDirectory(dir)
	if want := filepath.Join(dir, "body.txt"); m.SMTP.Message.BodyFile != want {
		t.Errorf("BodyFile = %q, want %q", m.SMTP.Message.BodyFile, want)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "body.txt"), []byte("changed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, ok := m.SMTP.Message.CustomBody()
	if want := "line one\r\nline two\r\n"; !ok || got != want {
		t.Errorf("CustomBody() = %q, %t, want %q, true", got, ok, want)
	}
}

func TestMessageConfig_CustomBody(t *testing.T) {
	for _, tc := range []struct {
		mc   MessageConfig
		want string
		ok   bool
	}{
		{MessageConfig{}, "", false},
		{MessageConfig{Headers: map[string]string{"X-A": "1"}}, "", false},
		{MessageConfig{Body: "a\nb\r\n\n.\nc"}, "a\r\nb\r\n\r\n.\r\nc\r\n", true},
		{MessageConfig{Body: "one line\n"}, "one line\r\n", true},
	} {
		got, ok := tc.mc.CustomBody()
		if got != tc.want || ok != tc.ok {
			t.Errorf("%+v: CustomBody() = %q, %t, want %q, %t", tc.mc, got, ok, tc.want, tc.ok)
		}
	}
}

// TestMessageConfig_ApplyHeaders: overrides keep the prober's header in its
// place and spelling; the others follow, sorted by name, whatever the
// map's order.
func TestMessageConfig_ApplyHeaders(t *testing.T) {
	own := []Header{{"Date", "d"}, {"From", "<m@example.net>"}, {"To", "<r@example.net>"}, {"Message-ID", "<id@example.net>"},
		{"Subject", "probe"}, {"X-SMTP-Exporter-Probe", "id"}, {"Content-Type", "text/plain; charset=us-ascii"}}
	mc := MessageConfig{Headers: map[string]string{
		"X-Mailer": "m", "from": "Monitor <m@example.org>", "Reply-To": "<r@example.org>", "Subject": "Report", "Cc": "<c@example.org>",
		// Refused by Validate; kept out all the same.
		"message-id": "<forged@example.org>",
	}}
	want := []Header{{"Date", "d"}, {"From", "Monitor <m@example.org>"}, {"To", "<r@example.net>"}, {"Message-ID", "<id@example.net>"},
		{"Subject", "Report"}, {"X-SMTP-Exporter-Probe", "id"}, {"Content-Type", "text/plain; charset=us-ascii"},
		{"Cc", "<c@example.org>"}, {"Reply-To", "<r@example.org>"}, {"X-Mailer", "m"}}
	for range 5 {
		got := mc.ApplyHeaders(own)
		if len(got) != len(want) {
			t.Fatalf("ApplyHeaders() = %q\nwant %q", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("ApplyHeaders() = %q\nwant %q", got, want)
			}
		}
	}
	if own[1].Value != "<m@example.net>" {
		t.Errorf("ApplyHeaders changed its argument: %q", own)
	}
}
