package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-sasl"
)

// auth runs the SASL exchange (RFC 4954). Every client response is a
// credential or derived from one, so the transcript shows none of them,
// nor the server's 334 challenges.
func (s *session) auth(pr *probes.PhaseResult) error {
	a := s.m.SMTP.Auth
	if !s.tlsOn && !s.m.SMTP.AllowInsecureAuth {
		return &stepError{probes.ReasonAuthFailed, "refusing AUTH over a connection without TLS (set allow_insecure_auth to permit it)"}
	}
	offered := strings.Fields(strings.ToUpper(s.ext["AUTH"]))
	if len(offered) == 0 {
		return noAuthOffered(s.tlsOn, s.ext)
	}
	if !slices.Contains(offered, a.Mechanism) {
		return &stepError{probes.ReasonAuthFailed, fmt.Sprintf("server does not offer AUTH %s (offers: %s)", a.Mechanism, strings.Join(offered, " "))}
	}
	secret := s.secret
	if !s.haveSecret {
		var err error
		if secret, err = a.Secret(); err != nil {
			return &stepError{probes.ReasonOther, "reading credential: " + err.Error()}
		}
		s.red.Add(secret)
	}
	client := saslClient(a.Mechanism, a.Username, secret)
	mech, ir, err := client.Start()
	if err != nil {
		return &stepError{probes.ReasonAuthFailed, err.Error()}
	}
	line := "AUTH " + mech
	if ir != nil {
		// RFC 4954: "=" stands for an empty initial response.
		enc := "="
		if len(ir) > 0 {
			enc = base64.StdEncoding.EncodeToString(ir)
			s.red.AddResponse(ir)
		}
		if err := s.cmd(line+" "+enc, line+" "+probes.Redacted); err != nil {
			return err
		}
	} else if err := s.cmd(line, ""); err != nil {
		return err
	}
	for challenges := 1; ; challenges++ {
		rep, text, err := s.readReply(pr)
		if err != nil {
			return err
		}
		if rep.Code != 334 {
			return s.judge(probes.PhaseAuth, "AUTH "+mech, rep, 235)
		}
		if limit := maxChallenges[mech]; challenges > limit {
			return s.cancelAuth(pr, fmt.Sprintf("server sent more than %d AUTH challenges for %s", limit, mech))
		}
		challenge, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
		if err != nil {
			return s.cancelAuth(pr, "AUTH challenge is not base64")
		}
		resp, err := client.Next(challenge)
		if err != nil {
			ack, ok := errorAcks[mech]
			if !ok {
				return s.cancelAuth(pr, "unexpected AUTH challenge")
			}
			// The challenge was the server's error report: acknowledge
			// it to get the final reply.
			if err := s.cmd(ack, probes.Redacted); err != nil {
				return err
			}
			continue
		}
		s.red.AddResponse(resp)
		if err := s.cmd(base64.StdEncoding.EncodeToString(resp), probes.Redacted); err != nil {
			return err
		}
	}
}

// noAuthOffered explains an EHLO without any AUTH mechanism, which must not
// read like a rejected password. Before TLS, a server that offers STARTTLS
// usually keeps AUTH for after it (Postfix's smtpd_tls_auth_only, Exim's
// default, Dovecot submission): what is missing is TLS, so tls_required,
// as for RFC 4954's 538. Otherwise the port takes no logins at all. That is
// not auth_required (nothing asks for a login) nor protocol (nothing broke
// the dialog's rules); like a mechanism the server does not offer it stays
// auth_failed, the reason an alert on "cannot log in" watches, with code 0
// and its own wording.
func noAuthOffered(tlsOn bool, ext map[string]string) error {
	if _, starttls := ext["STARTTLS"]; starttls && !tlsOn {
		return &stepError{probes.ReasonTLSRequired, "server offers no AUTH before TLS (it offers STARTTLS): use tls: starttls"}
	}
	return &stepError{probes.ReasonAuthFailed, "server offers no AUTH at all (mechanisms offered: none): this port takes no logins"}
}

// maxChallenges bounds the 334 challenges each mechanism takes, so that a
// server answering 334 forever cannot make the probe resend the password
// thousands of times: PLAIN one (the empty challenge a server without
// initial response support sends), LOGIN its two prompts, CRAM-MD5 its
// challenge, the bearer mechanisms their error report.
var maxChallenges = map[string]int{
	"PLAIN":       1,
	"LOGIN":       2,
	"CRAM-MD5":    1,
	"XOAUTH2":     1,
	"OAUTHBEARER": 1,
}

// errorAcks answer a bearer mechanism's error challenge, after which the
// server sends its final reply: XOAUTH2 wants an empty response (as Google
// and Microsoft document it), OAUTHBEARER a single %x01 (RFC 7628 §3.2.3).
var errorAcks = map[string]string{
	"XOAUTH2":     "",
	"OAUTHBEARER": base64.StdEncoding.EncodeToString([]byte{0x01}),
}

// cancelAuth ends the exchange with "*" (RFC 4954 §4) and reads the
// server's answer, normally 501, so that QUIT does not take it for its own.
func (s *session) cancelAuth(pr *probes.PhaseResult, why string) error {
	if err := s.cmd("*", ""); err != nil {
		return err
	}
	// A 334 to it leaves the stream broken (replied).
	if _, err := s.read(pr); err != nil {
		return err
	}
	return &ProtocolError{Msg: why}
}

func saslClient(mech, user, secret string) sasl.Client {
	switch mech {
	case "LOGIN":
		return &loginClient{user: user, pass: secret}
	case "CRAM-MD5":
		return &cramMD5Client{user: user, pass: secret}
	case "XOAUTH2":
		return &xoauth2Client{user: user, token: secret}
	case "OAUTHBEARER":
		return sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: user, Token: secret})
	}
	return sasl.NewPlainClient("", user, secret)
}

// loginClient answers the LOGIN mechanism's prompts by their meaning:
// go-sasl's client only knows "Password:", but servers without initial
// response support prompt "Username:" first.
type loginClient struct{ user, pass string }

func (c *loginClient) Start() (string, []byte, error) { return "LOGIN", nil, nil }

func (c *loginClient) Next(ch []byte) ([]byte, error) {
	prompt := strings.ToLower(string(ch))
	switch {
	case strings.HasPrefix(prompt, "user"):
		return []byte(c.user), nil
	case strings.HasPrefix(prompt, "pass"):
		return []byte(c.pass), nil
	}
	return nil, sasl.ErrUnexpectedServerChallenge
}

// cramMD5Client implements RFC 2195, which go-sasl does not.
type cramMD5Client struct{ user, pass string }

func (c *cramMD5Client) Start() (string, []byte, error) { return "CRAM-MD5", nil, nil }

func (c *cramMD5Client) Next(ch []byte) ([]byte, error) {
	mac := hmac.New(md5.New, []byte(c.pass))
	mac.Write(ch)
	return []byte(c.user + " " + hex.EncodeToString(mac.Sum(nil))), nil
}

// xoauth2Client implements Google's and Microsoft's XOAUTH2, which go-sasl
// does not. A 334 after the initial response carries a JSON error.
type xoauth2Client struct{ user, token string }

func (c *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", probes.XOAuth2Response(c.user, c.token), nil
}

func (c *xoauth2Client) Next(ch []byte) ([]byte, error) {
	return nil, errors.New("XOAUTH2 error: " + string(ch))
}
