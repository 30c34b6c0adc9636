package probestest

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mechanism names go-sasl does not define.
const (
	CRAMMD5 = "CRAM-MD5"
	XOAuth2 = "XOAUTH2"
)

var errMalformedResponse = errors.New("probestest: malformed SASL response")

// NewLoginServer implements the server side of the obsolete but still common
// LOGIN mechanism (draft-murchison-sasl-login), which go-sasl only ships as
// a client. The username may come as the initial response.
func NewLoginServer(auth func(user, password string) error) sasl.Server {
	return &loginServer{auth: auth}
}

type loginServer struct {
	auth     func(user, password string) error
	step     int
	username string
}

func (s *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch s.step {
	case 0:
		if response == nil {
			s.step = 1
			return []byte("Username:"), false, nil
		}
		s.username = string(response)
		s.step = 2
		return []byte("Password:"), false, nil
	case 1:
		s.username = string(response)
		s.step = 2
		return []byte("Password:"), false, nil
	case 2:
		s.step = 3
		return nil, true, s.auth(s.username, string(response))
	default:
		return nil, true, sasl.ErrUnexpectedClientResponse
	}
}

// NewCRAMMD5Server implements CRAM-MD5 (RFC 2195): the server sends a unique
// "<random.timestamp@domain>" challenge and the client answers
// "user hex(HMAC-MD5(password, challenge))". auth receives the user and a
// check that tells whether a candidate password produced the digest, since
// the password itself never crosses the wire.
func NewCRAMMD5Server(domain string, auth func(user string, check func(password string) bool) error) sasl.Server {
	return &cramMD5Server{domain: domain, auth: auth}
}

type cramMD5Server struct {
	domain    string
	auth      func(user string, check func(password string) bool) error
	challenge []byte
	done      bool
}

func (s *cramMD5Server) Next(response []byte) ([]byte, bool, error) {
	if s.done {
		return nil, true, sasl.ErrUnexpectedClientResponse
	}
	if s.challenge == nil {
		if len(response) > 0 {
			return nil, true, errors.New("probestest: CRAM-MD5 takes no initial response")
		}
		s.challenge = []byte(fmt.Sprintf("<%s.%d@%s>", randomDigits(), time.Now().Unix(), s.domain))
		return s.challenge, false, nil
	}
	s.done = true
	sep := bytes.LastIndexByte(response, ' ')
	if sep < 0 {
		return nil, true, errMalformedResponse
	}
	user := string(response[:sep])
	digest, err := hex.DecodeString(string(response[sep+1:]))
	if err != nil {
		return nil, true, errMalformedResponse
	}
	check := func(password string) bool {
		return hmac.Equal(digest, CRAMMD5Digest(password, s.challenge))
	}
	return nil, true, s.auth(user, check)
}

// CRAMMD5Digest is HMAC-MD5 keyed with the password over the challenge, the
// value a CRAM-MD5 client sends in hex.
func CRAMMD5Digest(password string, challenge []byte) []byte {
	mac := hmac.New(md5.New, []byte(password))
	mac.Write(challenge)
	return mac.Sum(nil)
}

func randomDigits() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return "0"
	}
	return n.String()
}

// XOAuth2InitialResponse is the (unencoded) client response Google and
// Microsoft document for XOAUTH2.
func XOAuth2InitialResponse(user, token string) []byte {
	return []byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01")
}

// NewXOAuth2Server implements XOAUTH2 as Gmail and Outlook do: on rejected
// credentials it sends a 334 challenge with a JSON error, waits for the
// client's (empty) acknowledgement, and only then fails the exchange.
func NewXOAuth2Server(auth func(user, token string) error) sasl.Server {
	return &xoauth2Server{auth: auth}
}

type xoauth2Server struct {
	auth    func(user, token string) error
	done    bool
	failErr error
}

func (s *xoauth2Server) Next(response []byte) ([]byte, bool, error) {
	if s.failErr != nil {
		return nil, true, s.failErr
	}
	if s.done {
		return nil, true, sasl.ErrUnexpectedClientResponse
	}
	if response == nil {
		return []byte{}, false, nil
	}
	s.done = true
	user, token, err := parseXOAuth2(response)
	if err != nil {
		return nil, true, err
	}
	if err := s.auth(user, token); err != nil {
		s.failErr = err
		blob, _ := json.Marshal(map[string]string{
			"status":  "401",
			"schemes": "bearer",
			"scope":   "https://mail.google.com/",
		})
		return blob, false, nil
	}
	return nil, true, nil
}

func parseXOAuth2(response []byte) (user, token string, err error) {
	for _, field := range strings.Split(string(response), "\x01") {
		key, value, _ := strings.Cut(field, "=")
		switch key {
		case "user":
			user = value
		case "auth":
			scheme, tok, ok := strings.Cut(value, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return "", "", errMalformedResponse
			}
			token = tok
		}
	}
	if user == "" || token == "" {
		return "", "", errMalformedResponse
	}
	return user, token, nil
}

// newOAuthBearerServer adapts go-sasl's OAUTHBEARER server, whose check of
// the client's acknowledgement of an error challenge lets almost anything
// through and panics on an empty line. The acknowledgement must be the
// single %x01 of RFC 7628 §3.2.3; anything else, the empty line XOAUTH2
// clients send included, gets errBadOAuthBearerAck, so that a client using
// the wrong one fails against this server as it would against a strict one.
// user is the gs2 authzid, empty when the client sent none.
func newOAuthBearerServer(auth func(user, token string) error) sasl.Server {
	inner := sasl.NewOAuthBearerServer(func(opts sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
		if auth(opts.Username, opts.Token) != nil {
			return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
		}
		return nil
	})
	return &oauthBearerServer{inner: inner}
}

var errBadOAuthBearerAck = &smtp.SMTPError{
	Code:         501,
	EnhancedCode: smtp.EnhancedCode{5, 5, 2},
	Message:      "OAUTHBEARER error challenge must be acknowledged with %x01",
}

type oauthBearerServer struct {
	inner      sasl.Server
	challenged bool // an error challenge was sent: only the acknowledgement may follow
}

func (s *oauthBearerServer) Next(response []byte) ([]byte, bool, error) {
	if s.challenged && !bytes.Equal(response, []byte{0x01}) {
		return nil, true, errBadOAuthBearerAck
	}
	challenge, done, err := s.inner.Next(response)
	// The only challenge after a client response is the error report.
	s.challenged = response != nil && !done && err == nil
	return challenge, done, err
}
