package probestest

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Credential is what a hostile AUTH server learnt from a client's SASL
// responses: a real server sees the credential, so a hostile one can echo
// it in any form it likes.
type Credential struct {
	Mechanism string
	User      string
	// Secret is the password, or the token of a bearer mechanism.
	Secret string
	// Response is the decoded client response that carried Secret.
	Response []byte
}

// HostileAuthMechanisms are the mechanisms whose secret crosses the wire,
// and which a HostileAuthServer therefore learns and can echo.
var HostileAuthMechanisms = []string{"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"}

// HostileAuthServer speaks just enough SMTP to reach AUTH, runs the
// mechanism far enough to learn the credential and then hands the
// connection to an answer that tries to make the client leak it.
type HostileAuthServer struct {
	*ScriptServer

	mu     sync.Mutex
	learnt []Credential
}

// Learnt returns every credential the server learnt, so that a test can
// prove that its hostile answer was given the real secret to echo.
func (s *HostileAuthServer) Learnt() []Credential {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Credential(nil), s.learnt...)
}

// NewAuthScriptServer greets, advertises AUTH with mechs and hands every
// AUTH command's argument to auth; any other command gets 250, QUIT 221.
func NewAuthScriptServer(t testing.TB, mechs string, auth func(c *Conn, arg string)) *ScriptServer {
	return NewScriptServer(t, func(c *Conn) {
		c.Send("220 auth.test ESMTP")
		for {
			line, err := c.ReadLine()
			if err != nil {
				return
			}
			verb, arg, _ := strings.Cut(line, " ")
			switch strings.ToUpper(verb) {
			case "EHLO":
				c.Send("250-auth.test", "250 AUTH "+mechs)
			case "AUTH":
				auth(c, arg)
			case "QUIT":
				c.Send("221 2.0.0 Bye")
				return
			default:
				c.Send("250 2.0.0 Ok")
			}
		}
	})
}

// NewHostileAuthServer advertises AUTH mech; after the client has sent its
// credential, answer takes over the exchange (it sends the reply to AUTH
// and may read and answer more).
func NewHostileAuthServer(t testing.TB, mech string, answer func(c *Conn, cred Credential)) *HostileAuthServer {
	s := &HostileAuthServer{}
	s.ScriptServer = NewAuthScriptServer(t, mech, func(c *Conn, arg string) {
		cred, ok := learnCredential(c, arg)
		if !ok {
			c.Send("501 5.5.4 Cannot decode the response")
			return
		}
		s.mu.Lock()
		s.learnt = append(s.learnt, cred)
		s.mu.Unlock()
		answer(c, cred)
	})
	return s
}

// learnCredential runs the server's side of the mechanism named in arg (the
// AUTH command's argument) up to the response that carries the secret.
func learnCredential(c *Conn, arg string) (Credential, bool) {
	mech, ir, hasIR := strings.Cut(arg, " ")
	mech = strings.ToUpper(mech)
	cred := Credential{Mechanism: mech}
	// next is the client's next response: the initial one if it sent one,
	// else the answer to prompt.
	next := func(prompt string) ([]byte, bool) {
		if hasIR {
			hasIR = false
			if ir == "=" {
				return []byte{}, true
			}
			b, err := base64.StdEncoding.DecodeString(ir)
			return b, err == nil
		}
		c.Send("334 " + base64.StdEncoding.EncodeToString([]byte(prompt)))
		line, err := c.ReadLine()
		if err != nil {
			return nil, false
		}
		b, err := base64.StdEncoding.DecodeString(line)
		return b, err == nil
	}
	switch mech {
	case "PLAIN":
		resp, ok := next("")
		parts := strings.Split(string(resp), "\x00")
		if !ok || len(parts) != 3 {
			return cred, false
		}
		cred.User, cred.Secret, cred.Response = parts[1], parts[2], resp
	case "LOGIN":
		user, ok := next("Username:")
		if !ok {
			return cred, false
		}
		pass, ok := next("Password:")
		if !ok {
			return cred, false
		}
		cred.User, cred.Secret, cred.Response = string(user), string(pass), pass
	case "XOAUTH2", "OAUTHBEARER":
		resp, ok := next("")
		if !ok {
			return cred, false
		}
		for _, field := range strings.Split(string(resp), "\x01") {
			key, value, _ := strings.Cut(field, "=")
			switch {
			case key == "user":
				cred.User = value
			case key == "auth":
				_, cred.Secret, _ = strings.Cut(value, " ")
			case strings.HasPrefix(field, "n,a="):
				cred.User = strings.TrimSuffix(strings.TrimPrefix(field, "n,a="), ",")
			}
		}
		cred.Response = resp
		if cred.Secret == "" {
			return cred, false
		}
	default:
		return cred, false
	}
	return cred, true
}

// AuthLeak is one way of answering AUTH that tries to make the client put
// the credential into its output.
type AuthLeak struct {
	Name   string
	Answer func(c *Conn, cred Credential)
}

// AuthLeaks are the answers the security audit of issue 7 used, and more
// of their kind: the secret echoed in a line that is no reply, in an
// over-long line, split over the lines of one reply, escaped, and
// re-encoded as base64 at every alignment.
func AuthLeaks() []AuthLeak {
	b64 := base64.StdEncoding.EncodeToString
	return []AuthLeak{
		{"not a reply", func(c *Conn, cred Credential) {
			c.Send("XX" + cred.Secret + " bad " + b64([]byte(cred.Secret)))
		}},
		// A line over the client's cap is cut for display: the secret
		// sits where the cut (64 bytes in) would split it.
		{"over-long reply, secret across the display cut", func(c *Conn, cred Credential) {
			c.Send("535 5.7.8 " + strings.Repeat("-", 44) + cred.Secret + strings.Repeat("x", 5000))
		}},
		{"over-long reply, secret first", func(c *Conn, cred Credential) {
			c.Send("535 " + cred.Secret + " " + strings.Repeat("x", 5000))
		}},
		{"over-long line that is no reply", func(c *Conn, cred Credential) {
			c.Send("XX" + strings.Repeat(" ", 52) + cred.Secret + strings.Repeat(" ", 5000))
		}},
		{"one half on each line of a 535", func(c *Conn, cred Credential) {
			h := len(cred.Secret) / 2
			c.Send("535-5.7.8 Authentication failed for "+cred.Secret[:h], "535 5.7.8 "+cred.Secret[h:])
		}},
		{"four characters on each line of a 535", func(c *Conn, cred Credential) {
			var lines []string
			for s := cred.Secret; s != ""; {
				n := min(4, len(s))
				lines = append(lines, "535-"+s[:n])
				s = s[n:]
			}
			lines = append(lines, "535 5.7.8 Authentication failed")
			c.Send(lines...)
		}},
		{"Go-quoted", func(c *Conn, cred Credential) {
			c.Send("535 5.7.8 bad password " + strconv.Quote(cred.Secret))
		}},
		{"JSON-escaped", func(c *Conn, cred Credential) {
			js, _ := json.Marshal(map[string]string{"password": cred.Secret})
			c.Send("535 5.7.8 " + string(js))
		}},
		{"base64 of the PLAIN response", func(c *Conn, cred Credential) {
			c.Send("535 5.7.8 " + b64([]byte("\x00"+cred.User+"\x00"+cred.Secret)))
		}},
		{"base64 of the response as sent", func(c *Conn, cred Credential) {
			c.Send("535 5.7.8 " + b64(cred.Response))
		}},
		{"base64 at alignment 0", base64Leak(0, base64.StdEncoding)},
		{"base64 at alignment 1", base64Leak(1, base64.StdEncoding)},
		{"base64 at alignment 2", base64Leak(2, base64.StdEncoding)},
		{"URL-safe base64 at alignment 1", base64Leak(1, base64.RawURLEncoding)},
		{"URL-safe base64 at alignment 2", base64Leak(2, base64.URLEncoding)},
		{"334 echo, then a 535 echo", func(c *Conn, cred Credential) {
			c.Send("334 " + b64([]byte(cred.Secret)))
			if _, err := c.ReadLine(); err != nil {
				return
			}
			c.Send("535 5.7.8 Authentication failed for " + cred.Secret)
		}},
		{"echo in the reply after a successful AUTH", func(c *Conn, cred Credential) {
			c.Send("235 2.7.0 Authentication successful")
			if _, err := c.ReadLine(); err != nil {
				return
			}
			c.Send("250-2.1.0 Sender ok, and your password is "+cred.Secret,
				"250 2.1.0 or, re-encoded, "+b64([]byte(cred.Secret)))
		}},
	}
}

// base64Leak answers with a base64 run that decodes to text holding the
// secret at the given offset (mod 3) from a group boundary.
func base64Leak(align int, enc *base64.Encoding) func(c *Conn, cred Credential) {
	return func(c *Conn, cred Credential) {
		text := strings.Repeat("?", align) + "<<" + cred.Secret + ">> is wrong"
		// "<<" is 2 bytes: add one so that align is the secret's offset.
		text = "?" + text
		c.Send("535 5.7.8 " + enc.EncodeToString([]byte(text)))
	}
}
