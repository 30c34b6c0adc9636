package probestest

import (
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"go.uber.org/goleak"
)

// dialNetSMTP names the server mx.probestest, since net/smtp's PlainAuth
// insists that name matches the one the auth was made for.
func dialNetSMTP(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "mx.probestest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wantSMTPError(t *testing.T, err error, code int, msg string) {
	t.Helper()
	var tpErr *textproto.Error
	if !errors.As(err, &tpErr) || tpErr.Code != code || tpErr.Msg != msg {
		t.Fatalf("error = %v, want %d %q", err, code, msg)
	}
}

func TestServer_STARTTLSAuthPlainSend(t *testing.T) {
	ca := NewCA(t)
	cert := ca.Valid(t, "mx.probestest")
	s := NewServer(t, ServerOptions{TLS: &cert, Users: map[string]string{"alice": "s3cret"}})

	c := dialNetSMTP(t, s.Addr)
	if err := c.Hello("probe.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH advertised before STARTTLS")
	}
	if err := c.StartTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "mx.probestest"}); err != nil {
		t.Fatal(err)
	}
	if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN CRAM-MD5" {
		t.Errorf("AUTH after STARTTLS = %v %q, want PLAIN LOGIN CRAM-MD5", ok, mechs)
	}
	if err := c.Auth(smtp.PlainAuth("", "alice", "s3cret", "mx.probestest")); err != nil {
		t.Fatal(err)
	}
	if err := sendWithNetSMTP(c, "alice@example.test", []string{"sink@example.test"}, testBody); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}

	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "alice@example.test" || !slices.Equal(m.To, []string{"sink@example.test"}) ||
		string(m.Data) != testBody || m.AuthUser != "alice" || m.Mechanism != "PLAIN" {
		t.Errorf("message = %+v", m)
	}
	if got := s.AuthAttempts(); !slices.Equal(got, []string{"PLAIN alice ok"}) {
		t.Errorf("AuthAttempts() = %q", got)
	}
}

func TestServer_AuthWrongPassword(t *testing.T) {
	ca := NewCA(t)
	cert := ca.Valid(t, "mx.probestest")
	s := NewServer(t, ServerOptions{TLS: &cert, Users: map[string]string{"alice": "s3cret"}})
	c := dialNetSMTP(t, s.Addr)
	if err := c.StartTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "mx.probestest"}); err != nil {
		t.Fatal(err)
	}
	err := c.Auth(smtp.PlainAuth("", "alice", "wrong", "mx.probestest"))
	wantSMTPError(t, err, 535, "5.7.8 Authentication failed")
	if got := s.AuthAttempts(); !slices.Equal(got, []string{"PLAIN alice fail"}) {
		t.Errorf("AuthAttempts() = %q", got)
	}
}

// TestServer_AuthRefusedWithoutTLS pins go-smtp's behaviour on plaintext:
// AUTH is not advertised and is refused with 523 5.7.10 rather than the
// 538 5.7.11 of RFC 4954 or Postfix's 530 5.7.0.
func TestServer_AuthRefusedWithoutTLS(t *testing.T) {
	cert := NewCA(t).Valid(t)
	s := NewServer(t, ServerOptions{TLS: &cert, Users: map[string]string{"alice": "s3cret"}})
	c := dialRaw(t, s.Addr)
	c.expectReply(220, "mx.probestest ESMTP Service Ready")
	ehlo := c.expect("EHLO probe.test", 250, "Hello probe.test")
	if strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("EHLO = %q, want STARTTLS and no AUTH", ehlo)
	}
	c.expect("AUTH PLAIN "+b64("\x00alice\x00s3cret"), 523, "5.7.10 TLS is required")
	if got := s.AuthAttempts(); len(got) != 0 {
		t.Errorf("AuthAttempts() = %q, want none", got)
	}
}

func TestServer_AllowInsecureAuth(t *testing.T) {
	s := NewServer(t, ServerOptions{AllowInsecureAuth: true, Users: map[string]string{"alice": "s3cret"}})
	c := dialRaw(t, s.Addr)
	c.expectReply(220, "")
	if ehlo := c.expect("EHLO probe.test", 250, ""); !strings.Contains(ehlo, "\nAUTH PLAIN LOGIN CRAM-MD5\n") {
		t.Errorf("EHLO = %q, want AUTH in the clear", ehlo)
	}
	c.expect("AUTH PLAIN "+b64("\x00alice\x00s3cret"), 235, "2.0.0 Authentication succeeded")
	c.expect("AUTH PLAIN "+b64("\x00alice\x00s3cret"), 503, "5.5.1 Already authenticated")
}

func TestServer_AuthLOGIN(t *testing.T) {
	s := NewServer(t, ServerOptions{AllowInsecureAuth: true, Users: map[string]string{"alice": "s3cret"}})
	c := dialRaw(t, s.Addr)
	c.expectReply(220, "")
	c.expect("EHLO probe.test", 250, "")
	c.expect("AUTH LOGIN", 334, "VXNlcm5hbWU6")
	c.expect(b64("alice"), 334, "UGFzc3dvcmQ6")
	c.expect(b64("wrong"), 535, "5.7.8")
	c.expect("AUTH LOGIN "+b64("alice"), 334, "UGFzc3dvcmQ6")
	c.expect(b64("s3cret"), 235, "2.0.0")
	if got := s.AuthAttempts(); !slices.Equal(got, []string{"LOGIN alice fail", "LOGIN alice ok"}) {
		t.Errorf("AuthAttempts() = %q", got)
	}
}

func TestServer_AuthMalformedResponse(t *testing.T) {
	s := NewServer(t, ServerOptions{AllowInsecureAuth: true, Users: map[string]string{"alice": "s3cret"}})
	c := dialRaw(t, s.Addr)
	c.expectReply(220, "")
	c.expect("EHLO probe.test", 250, "")
	c.expect("AUTH PLAIN "+b64("no separators"), 535, "5.7.8")
	c.expect("AUTH PLAIN !!!", 454, "4.7.0 Invalid base64 data")
	c.expect("AUTH DIGEST-MD5", 504, "5.7.4 Unsupported authentication mechanism")
	if got := s.AuthAttempts(); !slices.Equal(got, []string{"PLAIN - fail"}) {
		t.Errorf("AuthAttempts() = %q", got)
	}
}

var cramChallenge = regexp.MustCompile(`^<[0-9]+\.[0-9]+@mx\.probestest>$`)

func TestServer_CRAMMD5(t *testing.T) {
	tests := []struct {
		name, password string
		wantCode       int
		wantMsg        string
		wantAttempt    string
	}{
		{"Success", "s3cret", 235, "2.0.0 Authentication succeeded", "CRAM-MD5 alice ok"},
		{"WrongPassword", "wrong", 535, "5.7.8 Authentication failed", "CRAM-MD5 alice fail"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServer(t, ServerOptions{AllowInsecureAuth: true, Users: map[string]string{"alice": "s3cret"}})
			c := dialRaw(t, s.Addr)
			c.expectReply(220, "")
			c.expect("EHLO probe.test", 250, "")
			challenge := unb64(t, c.expect("AUTH CRAM-MD5", 334, ""))
			if !cramChallenge.MatchString(challenge) {
				t.Errorf("challenge %q is not <digits.digits@domain>", challenge)
			}
			digest := CRAMMD5Digest(tc.password, []byte(challenge))
			c.expect(b64("alice "+hex.EncodeToString(digest)), tc.wantCode, tc.wantMsg)
			if got := s.AuthAttempts(); !slices.Equal(got, []string{tc.wantAttempt}) {
				t.Errorf("AuthAttempts() = %q", got)
			}
		})
	}
}

func TestCRAMMD5Digest_RFC2195Example(t *testing.T) {
	got := hex.EncodeToString(CRAMMD5Digest("tanstaaftanstaaf", []byte("<1896.697170952@postoffice.reston.mci.net>")))
	if want := "b913a602c7eda7a495b4e6e7334d3890"; got != want {
		t.Errorf("digest = %s, want %s", got, want)
	}
}

func TestServer_XOAUTH2(t *testing.T) {
	opts := ServerOptions{AllowInsecureAuth: true, Tokens: map[string]string{"alice@example.test": "ya29.good"}}

	t.Run("Success", func(t *testing.T) {
		s := NewServer(t, opts)
		c := dialRaw(t, s.Addr)
		c.expectReply(220, "")
		if ehlo := c.expect("EHLO probe.test", 250, ""); !strings.Contains(ehlo, "AUTH XOAUTH2 OAUTHBEARER") {
			t.Errorf("EHLO = %q, want AUTH XOAUTH2 OAUTHBEARER", ehlo)
		}
		ir := string(XOAuth2InitialResponse("alice@example.test", "ya29.good"))
		c.expect("AUTH XOAUTH2 "+b64(ir), 235, "2.0.0")
		if got := s.AuthAttempts(); !slices.Equal(got, []string{"XOAUTH2 alice@example.test ok"}) {
			t.Errorf("AuthAttempts() = %q", got)
		}
	})

	t.Run("SuccessWithoutInitialResponse", func(t *testing.T) {
		s := NewServer(t, opts)
		c := dialRaw(t, s.Addr)
		c.expectReply(220, "")
		c.expect("EHLO probe.test", 250, "")
		c.expect("AUTH XOAUTH2", 334, "")
		c.expect(b64(string(XOAuth2InitialResponse("alice@example.test", "ya29.good"))), 235, "2.0.0")
	})

	t.Run("Failure", func(t *testing.T) {
		s := NewServer(t, opts)
		c := dialRaw(t, s.Addr)
		c.expectReply(220, "")
		c.expect("EHLO probe.test", 250, "")
		ir := string(XOAuth2InitialResponse("alice@example.test", "ya29.expired"))
		errJSON := unb64(t, c.expect("AUTH XOAUTH2 "+b64(ir), 334, ""))
		var status struct{ Status, Schemes, Scope string }
		if err := json.Unmarshal([]byte(errJSON), &status); err != nil || status.Status != "401" {
			t.Errorf("error challenge %q, want JSON with status 401", errJSON)
		}
		c.expect("", 535, "5.7.8 Authentication failed")
		if got := s.AuthAttempts(); !slices.Equal(got, []string{"XOAUTH2 alice@example.test fail"}) {
			t.Errorf("AuthAttempts() = %q", got)
		}
		// The session must still be usable after a failed exchange.
		c.expect("NOOP", 250, "")
	})
}

func TestServer_OAUTHBEARER(t *testing.T) {
	opts := ServerOptions{AllowInsecureAuth: true, Tokens: map[string]string{"alice": "tok-good"}}
	initial := func(user, token string) string {
		_, ir, _ := sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: user, Token: token, Host: "mx.probestest", Port: 25}).Start()
		return b64(string(ir))
	}

	t.Run("Success", func(t *testing.T) {
		s := NewServer(t, opts)
		c := dialRaw(t, s.Addr)
		c.expectReply(220, "")
		c.expect("EHLO probe.test", 250, "")
		c.expect("AUTH OAUTHBEARER "+initial("alice", "tok-good"), 235, "2.0.0")
		if got := s.AuthAttempts(); !slices.Equal(got, []string{"OAUTHBEARER alice ok"}) {
			t.Errorf("AuthAttempts() = %q", got)
		}
	})

	// RFC 7628 §3.2.3: the error challenge is acknowledged with "\x01".
	// The empty line XOAUTH2 clients send is refused, so that a probe
	// sending it cannot pass against this server.
	for _, tc := range []struct {
		name, ack string
		code      int
		text      string
	}{
		{"FailureAckCtrlA", b64("\x01"), 535, "5.7.8 Authentication failed"},
		{"FailureAckEmpty", "", 501, "5.5.2 "},
		{"FailureAckOther", b64("x"), 501, "5.5.2 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServer(t, opts)
			c := dialRaw(t, s.Addr)
			c.expectReply(220, "")
			c.expect("EHLO probe.test", 250, "")
			errJSON := unb64(t, c.expect("AUTH OAUTHBEARER "+initial("", "tok-bad"), 334, ""))
			if !strings.Contains(errJSON, `"invalid_token"`) {
				t.Errorf("error challenge %q, want invalid_token", errJSON)
			}
			c.expect(tc.ack, tc.code, tc.text)
			if got := s.AuthAttempts(); !slices.Equal(got, []string{"OAUTHBEARER - fail"}) {
				t.Errorf("AuthAttempts() = %q", got)
			}
			c.expect("NOOP", 250, "")
		})
	}
}

func TestServer_RcptErrors(t *testing.T) {
	s := NewServer(t, ServerOptions{RcptErrors: map[string]*gosmtp.SMTPError{
		"nobody@example.test": {Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "User unknown"},
		"busy@example.test":   {Code: 450, EnhancedCode: gosmtp.EnhancedCodeNotSet, Message: "Mailbox busy"},
	}})
	c := dialNetSMTP(t, s.Addr)
	if err := c.Mail("probe@example.test"); err != nil {
		t.Fatal(err)
	}
	wantSMTPError(t, c.Rcpt("nobody@example.test"), 550, "5.1.1 User unknown")
	// go-smtp fills in X.0.0 when the error has no enhanced code.
	wantSMTPError(t, c.Rcpt("busy@example.test"), 450, "4.0.0 Mailbox busy")
	if err := c.Rcpt("sink@example.test"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(testBody))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if msgs := s.Messages(); len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"sink@example.test"}) {
		t.Errorf("Messages() = %+v, want one to sink@example.test", msgs)
	}
}

func TestServer_MailAndDataErrors(t *testing.T) {
	t.Run("DataError", func(t *testing.T) {
		s := NewServer(t, ServerOptions{DataError: &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: "Spam detected"}})
		c := dialNetSMTP(t, s.Addr)
		wantSMTPError(t, sendWithNetSMTP(c, "probe@example.test", []string{"sink@example.test"}, testBody), 554, "5.7.1 Spam detected")
		if msgs := s.Messages(); len(msgs) != 0 {
			t.Errorf("rejected message was recorded: %+v", msgs)
		}
	})
	t.Run("MailError", func(t *testing.T) {
		s := NewServer(t, ServerOptions{MailError: &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: "Sender rejected"}})
		c := dialNetSMTP(t, s.Addr)
		wantSMTPError(t, c.Mail("probe@example.test"), 550, "5.7.1 Sender rejected")
		if err := c.Noop(); err != nil {
			t.Errorf("connection unusable after a 5xx: %v", err)
		}
	})
	t.Run("MaxMessageBytes", func(t *testing.T) {
		s := NewServer(t, ServerOptions{MaxMessageBytes: 64})
		c := dialNetSMTP(t, s.Addr)
		if ok, size := c.Extension("SIZE"); !ok || size != "64" {
			t.Errorf("SIZE = %v %q, want 64", ok, size)
		}
		err := sendWithNetSMTP(c, "probe@example.test", []string{"sink@example.test"}, testBody+strings.Repeat("x", 100)+"\r\n")
		wantSMTPError(t, err, 552, "5.3.4 Maximum message size exceeded")
	})
	t.Run("RequireTLS", func(t *testing.T) {
		cert := NewCA(t).Valid(t)
		s := NewServer(t, ServerOptions{TLS: &cert, RequireTLS: true})
		c := dialNetSMTP(t, s.Addr)
		wantSMTPError(t, c.Mail("probe@example.test"), 530, "5.7.0 Must issue a STARTTLS command first")
	})
	t.Run("RequireAuth", func(t *testing.T) {
		s := NewServer(t, ServerOptions{RequireAuth: true, AllowInsecureAuth: true, Users: map[string]string{"alice": "s3cret"}})
		c := dialNetSMTP(t, s.Addr)
		wantSMTPError(t, c.Mail("probe@example.test"), 530, "5.7.0 Authentication required")
	})
}

func TestServer_421ClosesConnection(t *testing.T) {
	shuttingDown := &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 2}, Message: "Shutting down"}
	tests := []struct {
		name  string
		opts  ServerOptions
		steps []string
	}{
		{"Mail", ServerOptions{MailError: shuttingDown}, []string{"MAIL FROM:<a@example.test>"}},
		{"Rcpt", ServerOptions{RcptErrors: map[string]*gosmtp.SMTPError{"b@example.test": shuttingDown}},
			[]string{"MAIL FROM:<a@example.test>", "RCPT TO:<b@example.test>"}},
		{"Data", ServerOptions{DataError: shuttingDown},
			[]string{"MAIL FROM:<a@example.test>", "RCPT TO:<b@example.test>", "DATA", "body\r\n."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert := NewCA(t).Valid(t, "mx.probestest")
			tc.opts.TLS = &cert
			s := NewServer(t, tc.opts)
			c := dialRaw(t, s.Addr)
			c.expectReply(220, "")
			c.expect("EHLO probe.test", 250, "")
			// Over TLS too, since the hang-up has to find the TCP
			// connection beneath go-smtp's *tls.Conn.
			c.startTLS(&tls.Config{InsecureSkipVerify: true})
			c.expect("EHLO probe.test", 250, "")
			for _, line := range tc.steps {
				c.send(line)
				if code, msg := c.reply(); code == 421 {
					if msg != "4.3.2 Shutting down" {
						t.Fatalf("421 reply %q", msg)
					}
					break
				}
			}
			if _, _, err := c.text.ReadResponse(0); !errors.Is(err, io.EOF) {
				t.Fatalf("after 421: %v, want EOF", err)
			}
		})
	}
}

func TestServer_ImplicitTLS(t *testing.T) {
	ca := NewCA(t)
	cert := ca.Valid(t, "mx.probestest")
	s := NewServer(t, ServerOptions{TLS: &cert, ImplicitTLS: true, Users: map[string]string{"alice": "s3cret"}})
	conn, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "mx.probestest"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "mx.probestest")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS advertised on an implicit-TLS connection")
	}
	if err := c.Auth(smtp.PlainAuth("", "alice", "s3cret", "mx.probestest")); err != nil {
		t.Fatal(err)
	}
	if err := sendWithNetSMTP(c, "alice@example.test", []string{"sink@example.test"}, testBody); err != nil {
		t.Fatal(err)
	}
	if msgs := s.Messages(); len(msgs) != 1 || msgs[0].AuthUser != "alice" {
		t.Errorf("Messages() = %+v", msgs)
	}
}

func TestServer_STARTTLSDropsSession(t *testing.T) {
	ca := NewCA(t)
	cert := ca.Valid(t, "mx.probestest")
	s := NewServer(t, ServerOptions{TLS: &cert})
	c := dialRaw(t, s.Addr)
	c.expectReply(220, "")
	c.expect("EHLO probe.test", 250, "")
	c.expect("MAIL FROM:<a@example.test>", 250, "2.0.0 Roger")
	c.startTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "mx.probestest"})
	// RFC 3207 §4.2: the client must greet again and restart the envelope.
	c.expect("MAIL FROM:<a@example.test>", 502, "5.5.1 Please introduce yourself first.")
	if ehlo := c.expect("EHLO probe.test", 250, ""); strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("STARTTLS advertised again after the upgrade: %q", ehlo)
	}
	c.expect("MAIL FROM:<a@example.test>", 250, "")
}

func TestServer_LMTPPerRecipientReplies(t *testing.T) {
	s := NewServer(t, ServerOptions{LMTP: true, LMTPDataErrors: map[string]*gosmtp.SMTPError{
		"full@example.test": {Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"},
	}})
	c := dialRaw(t, s.Addr)
	c.expectReply(220, "mx.probestest LMTP Service Ready")
	c.expect("EHLO probe.test", 500, "5.5.1 This is a LMTP server, use LHLO")
	c.expect("LHLO probe.test", 250, "Hello probe.test")
	c.expect("MAIL FROM:<probe@example.test>", 250, "")
	c.expect("RCPT TO:<sink@example.test>", 250, "")
	c.expect("RCPT TO:<full@example.test>", 250, "")
	c.expect("DATA", 354, "")
	c.send("Subject: lmtp\r\n\r\nhello\r\n.")
	c.expectReply(250, "2.0.0 <sink@example.test> OK: queued")
	c.expectReply(452, "4.2.2 <full@example.test> Mailbox full")

	msgs := s.Messages()
	if len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"sink@example.test"}) || string(msgs[0].Data) != "Subject: lmtp\r\n\r\nhello\r\n" {
		t.Errorf("Messages() = %+v, want one delivered to sink@example.test", msgs)
	}
}

// TestServer_CleanupLeavesNoGoroutines leaves a client mid-DATA and another
// mid-TLS-handshake, the states most likely to strand a go-smtp goroutine.
func TestServer_CleanupLeavesNoGoroutines(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	var clients []net.Conn
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
	})
	t.Run("server", func(t *testing.T) {
		cert := NewCA(t).Valid(t)
		s := NewServer(t, ServerOptions{TLS: &cert, LMTP: true})
		for _, script := range [][]string{
			{"LHLO probe.test", "MAIL FROM:<a@example.test>", "RCPT TO:<b@example.test>", "DATA"},
			{"LHLO probe.test", "STARTTLS"},
		} {
			conn, err := net.Dial("tcp", s.Addr)
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, conn)
			c := &rawClient{t: t, conn: conn, text: textproto.NewConn(conn)}
			c.expectReply(220, "")
			for _, line := range script {
				c.send(line)
				code, _ := c.reply()
				if code >= 400 {
					t.Fatalf("%s: %d", line, code)
				}
			}
		}
	})
	goleak.VerifyNone(t, ignore)
}
