package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// fuzzAuthMechanisms are the mechanisms the fuzzed server offers; the
// first fuzz argument picks one.
var fuzzAuthMechanisms = []string{"PLAIN", "LOGIN", "XOAUTH2"}

// expandSecretForms turns a fuzz script into what the server sends: 0xff
// followed by a selector byte stands for a form of secret, so that the
// fuzzer mixes the secret, pieces of it, escaped and base64 forms into
// arbitrary replies.
func expandSecretForms(script []byte, user, secret string) []byte {
	n := len(secret)
	piece := func(a, b byte) string {
		start := int(a) % n
		return secret[start:min(n, start+1+int(b)%n)]
	}
	js, _ := json.Marshal(secret)
	var out []byte
	for i := 0; i < len(script); i++ {
		if script[i] != 0xff || i+1 >= len(script) {
			out = append(out, script[i])
			continue
		}
		sel := script[i+1]
		i++
		var a, b byte
		if i+2 < len(script) {
			a, b = script[i+1], script[i+2]
		}
		switch sel % 10 {
		case 0:
			out = append(out, secret...)
		case 1:
			q := strconv.Quote(secret)
			out = append(out, q[1:len(q)-1]...)
		case 2:
			out = append(out, js[1:len(js)-1]...)
		case 3:
			out = base64.StdEncoding.AppendEncode(out, []byte(secret))
		case 4:
			out = base64.StdEncoding.AppendEncode(out, []byte("\x00"+user+"\x00"+secret))
		case 5:
			out = base64.URLEncoding.AppendEncode(out, []byte("??"+secret))
		case 6:
			out = append(out, piece(a, b)...)
			i += 2
		case 7:
			prefix := strings.Repeat("x", int(sel/10)%3)
			out = base64.StdEncoding.AppendEncode(out, []byte(prefix+piece(a, b)))
			i += 2
		case 8:
			out = base64.RawURLEncoding.AppendEncode(out, []byte("x"+secret))
		case 9:
			q := strconv.Quote(piece(a, b))
			out = append(out, q[1:len(q)-1]...)
			i += 2
		}
	}
	return out
}

// FuzzAuthReplies runs a probe against a server whose every byte after
// AUTH comes from the fuzzer, secret forms mixed in, and checks that no
// fragment of the secret reaches any output.
func FuzzAuthReplies(f *testing.F) {
	long := strings.Repeat("x", 5000)
	for _, seed := range []struct {
		mech   uint8
		script string
	}{
		// Issue 7, leak 1: a line that is no reply.
		{0, "XX\xff\x00 bad \xff\x03\r\n"},
		{1, "XX\xff\x00 bad \xff\x03\r\n"},
		// Leak 2: an over-long line, the secret across the display cut.
		{0, "535 5.7.8 " + strings.Repeat("-", 44) + "\xff\x00" + long + "\r\n"},
		{2, "XX" + strings.Repeat(" ", 52) + "\xff\x00" + long + "\r\n"},
		// Leak 3: one half of the secret on each line of a 535.
		{0, "535-5.7.8 failed for \xff\x06\x00\x0a\r\n535 \xff\x06\x0b\x15\r\n"},
		{1, "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n535-\xff\x06\x00\x03\r\n535-\xff\x06\x04\x03\r\n535 \xff\x06\x08\x03\r\n"},
		// Leak 4: LOGIN answered with the base64 of a PLAIN response,
		// and base64 runs at each alignment, std and URL-safe.
		{1, "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n535 5.7.8 \xff\x04\r\n"},
		{1, "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n535 \xff\x07\x00\x15 \xff\x11\x00\x15 \xff\x1b\x00\x15\r\n"},
		{1, "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n535 \xff\x05 \xff\x08\r\n"},
		// Escaped forms, and what comes right after a successful AUTH.
		{0, "535 \"\xff\x01\" {\"p\":\"\xff\x02\"} \xff\x09\x03\x07\r\n"},
		{2, "235 ok\r\n250 \xff\x00\r\n250-<\xff\x06\x0e\x04\r\n250 \xff\x06\x13\x05\r\n"},
	} {
		f.Add(seed.mech, []byte(seed.script))
	}

	var (
		mu      sync.Mutex
		payload []byte
	)
	serve := func(c *probestest.Conn, _ string) {
		mu.Lock()
		p := payload
		mu.Unlock()
		c.SendRaw(p)
		// End of the server's side: the probe reads the payload, then
		// EOF, instead of waiting for its timeout.
		if tc, ok := c.NetConn().(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		for {
			if _, err := c.ReadLine(); err != nil {
				return
			}
		}
	}
	// Each exec leaves a connection in TIME_WAIT for a minute, and a
	// local port can be reused only towards another address: rotating
	// over a few servers keeps a long run from running out of ports.
	var addrs []string
	for range 8 {
		addrs = append(addrs, probestest.NewAuthScriptServer(f, strings.Join(fuzzAuthMechanisms, " "), serve).Addr)
	}
	var execs int

	f.Fuzz(func(t *testing.T, mech uint8, script []byte) {
		m := hostileAuthModule(fuzzAuthMechanisms[int(mech)%len(fuzzAuthMechanisms)], hostileSecret)
		m.Timeout = 5 * time.Second
		mu.Lock()
		payload = expandSecretForms(script, redactUser, hostileSecret)
		mu.Unlock()
		var logs bytes.Buffer
		execs++
		res := Probe(context.Background(), addrs[execs%len(addrs)], m, redactDebugLogger(&logs))
		if res.Phase(probes.PhaseAuth) == nil {
			t.Fatalf("probe never got to AUTH: %s (%v)", res.Reason, res.Err)
		}
		if res.Reason == probes.ReasonTimeout {
			t.Fatalf("probe timed out (%v): the server's EOF should end it", res.Err)
		}
		assertNoSecretFragments(t, hostileSecret, resultSurfaces(t, res, logs.String())...)
		if t.Failed() {
			logHostileTranscript(t, res)
		}
	})
}
