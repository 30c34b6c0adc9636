package probestest

import (
	"crypto/tls"
	"encoding/base64"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// rawClient drives a server line by line, for dialogs net/smtp cannot
// express (LMTP, SASL exchanges, malformed input).
type rawClient struct {
	t    testing.TB
	conn net.Conn
	text *textproto.Conn
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return newRawClient(t, conn)
}

func newRawClient(t testing.TB, conn net.Conn) *rawClient {
	t.Cleanup(func() { conn.Close() })
	// A deadline turns a server bug that stalls the dialog into a test
	// failure instead of a hung test binary.
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{t: t, conn: conn, text: textproto.NewConn(conn)}
}

func (c *rawClient) send(line string) {
	c.t.Helper()
	if err := c.text.PrintfLine("%s", line); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

// reply reads one (possibly multi-line) reply; the message keeps the
// enhanced code and joins lines with "\n", as textproto does.
func (c *rawClient) reply() (int, string) {
	c.t.Helper()
	code, msg, err := c.text.ReadResponse(0)
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	return code, msg
}

// expect sends line and checks
// that the reply has wantCode and its message starts with wantPrefix.
func (c *rawClient) expect(line string, wantCode int, wantPrefix string) string {
	c.t.Helper()
	c.send(line)
	return c.expectReply(wantCode, wantPrefix)
}

func (c *rawClient) expectReply(wantCode int, wantPrefix string) string {
	c.t.Helper()
	code, msg := c.reply()
	if code != wantCode || !strings.HasPrefix(msg, wantPrefix) {
		c.t.Fatalf("got reply %d %q, want %d %q...", code, msg, wantCode, wantPrefix)
	}
	return msg
}

func (c *rawClient) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.expect("STARTTLS", 220, "")
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.text = textproto.NewConn(tc)
}

func b64(s string) string {
	return base64.StdEncoding.EncodeToString([]byte(s))
}

func unb64(t testing.TB, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decode base64 %q: %v", s, err)
	}
	return string(b)
}
