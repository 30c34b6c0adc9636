package probestest

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

func sendWithNetSMTP(c *smtp.Client, from string, to []string, body string) error {
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, body); err != nil {
		return err
	}
	return w.Close()
}

const testBody = "From: probe@example.test\r\nTo: sink@example.test\r\nSubject: probe\r\n\r\nhello\r\n"

func TestDialog_FullSendWithSTARTTLS(t *testing.T) {
	ca := NewCA(t)
	s := NewScriptServer(t, Dialog{TLS: ServerTLSConfig(ca.Valid(t, "script.test"))}.Serve)

	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("probe.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not advertised")
	}
	if err := c.StartTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "script.test"}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS still advertised after the upgrade")
	}
	if state, ok := c.TLSConnectionState(); !ok || !state.HandshakeComplete {
		t.Fatal("connection is not TLS after STARTTLS")
	}
	if err := sendWithNetSMTP(c, "probe@example.test", []string{"sink@example.test"}, testBody); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}

	want := []string{
		"EHLO probe.test", "STARTTLS", "EHLO probe.test",
		"MAIL FROM:<probe@example.test> BODY=8BITMIME SMTPUTF8", "RCPT TO:<sink@example.test>", "DATA",
		"From: probe@example.test", "To: sink@example.test", "Subject: probe", "", "hello", ".",
		"QUIT",
	}
	if got := s.Received(); !slices.Equal(got, want) {
		t.Errorf("Received() =\n%q\nwant\n%q", got, want)
	}
}

func TestDialog_ReplyOverride(t *testing.T) {
	dmarc := "550 5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC policy"
	tests := []struct {
		verb, reply string
		wantCode    int
		wantMsg     string
	}{
		{"MAIL", "451 4.7.1 Please try again later", 451, "4.7.1 Please try again later"},
		{"RCPT", dmarc, 550, strings.TrimPrefix(dmarc, "550 ")},
		{"RCPT", "550-5.7.1 first line\r\n550 5.7.1 second line", 550, "5.7.1 first line\n5.7.1 second line"},
		{"DATA", "554 5.5.1 No valid recipients", 554, "5.5.1 No valid recipients"},
		{"DOT", "552 5.3.4 Message size exceeds fixed limit", 552, "5.3.4 Message size exceeds fixed limit"},
	}
	for _, tc := range tests {
		t.Run(tc.verb, func(t *testing.T) {
			s := NewScriptServer(t, Dialog{Replies: map[string]string{tc.verb: tc.reply}}.Serve)
			c, err := smtp.Dial(s.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = sendWithNetSMTP(c, "probe@example.test", []string{"sink@example.test"}, testBody)
			var tpErr *textproto.Error
			if !errors.As(err, &tpErr) || tpErr.Code != tc.wantCode || tpErr.Msg != tc.wantMsg {
				t.Fatalf("send error = %v, want %d %q", err, tc.wantCode, tc.wantMsg)
			}
			// The dialog must go on after a non-421 rejection.
			if err := c.Reset(); err != nil {
				t.Fatalf("RSET after rejection: %v", err)
			}
		})
	}
}

func TestDialog_421ClosesConnection(t *testing.T) {
	for _, verb := range []string{"BANNER", "EHLO", "MAIL", "DOT"} {
		t.Run(verb, func(t *testing.T) {
			d := Dialog{Replies: map[string]string{verb: "421 4.3.2 Service shutting down"}}
			if verb == "BANNER" {
				d = Dialog{Banner: "421 4.3.2 Service shutting down"}
			}
			s := NewScriptServer(t, d.Serve)
			c := dialRaw(t, s.Addr)
			steps := []struct {
				verb, line string
				code       int
			}{
				{"BANNER", "", 220}, {"EHLO", "EHLO probe.test", 250}, {"MAIL", "MAIL FROM:<a@example.test>", 250},
				{"RCPT", "RCPT TO:<b@example.test>", 250}, {"DATA", "DATA", 354}, {"DOT", "body\r\n.", 250},
			}
			for _, st := range steps {
				if st.line != "" {
					c.send(st.line)
				}
				if st.verb == verb {
					c.expectReply(421, "4.3.2")
					break
				}
				c.expectReply(st.code, "")
			}
			if _, _, err := c.text.ReadResponse(0); !errors.Is(err, io.EOF) {
				t.Fatalf("after 421: %v, want EOF", err)
			}
		})
	}
}

func TestDialog_AuthLOGINAndPLAIN(t *testing.T) {
	d := Dialog{EHLO: []string{"250-script.test", "250 AUTH PLAIN LOGIN"}}
	s := NewScriptServer(t, d.Serve)

	c := dialRaw(t, s.Addr)
	c.expectReply(220, "")
	c.expect("EHLO probe.test", 250, "script.test\nAUTH PLAIN LOGIN")
	c.expect("AUTH LOGIN", 334, "VXNlcm5hbWU6")
	c.expect(b64("alice"), 334, "UGFzc3dvcmQ6")
	c.expect(b64("secret"), 235, "2.7.0")
	c.expect("QUIT", 221, "")

	// net/smtp only sends PLAIN in the clear to localhost.
	conn, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	client, err := smtp.NewClient(conn, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Auth(smtp.PlainAuth("", "alice", "secret", "localhost")); err != nil {
		t.Fatalf("AUTH PLAIN: %v", err)
	}
}

func TestDialog_AuthRejected(t *testing.T) {
	s := NewScriptServer(t, Dialog{Replies: map[string]string{"AUTH": "535 5.7.8 Error: authentication failed"}}.Serve)
	c := dialRaw(t, s.Addr)
	c.expectReply(220, "")
	c.expect("AUTH LOGIN "+b64("alice"), 334, "UGFzc3dvcmQ6")
	c.expect(b64("wrong"), 535, "5.7.8")
	c.expect("AUTH PLAIN "+b64("\x00alice\x00wrong"), 535, "5.7.8")
	challenge := c.expect("AUTH CRAM-MD5", 334, "")
	if got := unb64(t, challenge); !strings.HasPrefix(got, "<") || !strings.HasSuffix(got, "@script.test>") {
		t.Errorf("CRAM-MD5 challenge %q is not an RFC 2195 msg-id", got)
	}
	c.expect("*", 501, "5.7.0")
}

func TestDialog_DefaultReplies(t *testing.T) {
	s := NewScriptServer(t, Dialog{}.Serve)
	c := dialRaw(t, s.Addr)
	c.expectReply(220, "script.test ESMTP probestest")
	ehlo := c.expect("EHLO probe.test", 250, "script.test")
	if strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("STARTTLS advertised without TLS: %q", ehlo)
	}
	c.expect("HELO probe.test", 250, "script.test")
	c.expect("NOOP", 250, "2.0.0")
	c.expect("RSET", 250, "2.0.0")
	c.expect("STARTTLS", 502, "5.5.2")
	c.expect("VRFY root", 502, "5.5.2")
	c.expect("QUIT", 221, "2.0.0")
}

func TestDialog_STARTTLSRefused(t *testing.T) {
	cfg := ServerTLSConfig(NewCA(t).Valid(t, "script.test"))
	s := NewScriptServer(t, Dialog{TLS: cfg, Replies: map[string]string{"STARTTLS": "454 4.7.0 TLS not available due to local problem"}}.Serve)
	c := dialRaw(t, s.Addr)
	c.expectReply(220, "")
	c.expect("EHLO probe.test", 250, "")
	c.expect("STARTTLS", 454, "4.7.0")
	// Still plaintext, and still offering STARTTLS.
	if ehlo := c.expect("EHLO probe.test", 250, ""); !strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("EHLO after refused STARTTLS = %q", ehlo)
	}
}
