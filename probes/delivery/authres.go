package delivery

import (
	"bufio"
	"io"
	"net/mail"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/authres"
)

// maxHeaderBytes bounds a header read from a mailbox: real ones stay well
// under 64 KiB, and a hostile one must not cost more than this to parse.
const maxHeaderBytes = 256 << 10

// ReadHeader reads a message's header (the bytes up to the first blank
// line; a body after it is not read) in field order, at most
// maxHeaderBytes of it. A malformed line ends the header there: what came
// before it is returned with the error.
func ReadHeader(r io.Reader) (message.Header, error) {
	h, err := textproto.ReadHeader(bufio.NewReader(io.LimitReader(r, maxHeaderBytes)))
	return message.Header{Header: h}, err
}

// AuthResult is one authentication method's verdict as a metric label
// value: the RFC 8601 §2.7 result values (RFC 7208 §2.6 adds softfail),
// and "other" for whatever else a verifier writes.
type AuthResult string

// The results a verdict can take.
const (
	AuthPass      AuthResult = "pass"
	AuthFail      AuthResult = "fail"
	AuthSoftFail  AuthResult = "softfail"
	AuthNeutral   AuthResult = "neutral"
	AuthNone      AuthResult = "none"
	AuthTempError AuthResult = "temperror"
	AuthPermError AuthResult = "permerror"
	AuthPolicy    AuthResult = "policy"
	AuthOther     AuthResult = "other"
)

// AllAuthResults lists every AuthResult, for pre-declared series and tests.
var AllAuthResults = []AuthResult{
	AuthPass, AuthFail, AuthSoftFail, AuthNeutral, AuthNone,
	AuthTempError, AuthPermError, AuthPolicy, AuthOther,
}

// authResultOf maps a verifier's word to the fixed set. RFC 5451 had
// "hardfail" as a synonym of fail; Microsoft 365 writes dmarc=bestguesspass
// when the domain publishes no DMARC record ("Anti-spam message headers",
// learn.microsoft.com), which is none as far as the domain's policy goes.
func authResultOf(v authres.ResultValue) AuthResult {
	switch r := AuthResult(strings.ToLower(string(v))); r {
	case AuthPass, AuthFail, AuthSoftFail, AuthNeutral, AuthNone,
		AuthTempError, AuthPermError, AuthPolicy:
		return r
	case "hardfail":
		return AuthFail
	case "bestguesspass":
		return AuthNone
	}
	return AuthOther
}

// DKIMSignature is one DKIM result of the trusted headers.
type DKIMSignature struct {
	Domain string     `json:"domain"`
	Result AuthResult `json:"result"`
}

// AuthFacts is what the receiving side's verifier said of a message.
type AuthFacts struct {
	// Found: a trusted Authentication-Results header was there. Without
	// one every result is none (the verifier did not run, or authserv_id
	// names another one), or empty when no header is trusted at all.
	Found bool       `json:"found"`
	SPF   AuthResult `json:"spf"`
	DKIM  AuthResult `json:"dkim"`
	DMARC AuthResult `json:"dmarc"`
	// DKIMDomain is the signing domain (header.d, else the domain of
	// header.i) of the signature DKIM's result comes from.
	DKIMDomain string          `json:"dkim_domain,omitempty"`
	Signatures []DKIMSignature `json:"dkim_signatures,omitempty"`
	// Malformed: a trusted header did not parse whole; what parsed before
	// the fault still counts.
	Malformed bool `json:"malformed,omitempty"`
}

// maxAuthHeaders bounds the trusted headers read, and maxSignatures the
// DKIM results kept: a message is signed a handful of times at most.
const (
	maxAuthHeaders = 16
	maxSignatures  = 16
)

// AuthTrust names the Authentication-Results headers that are the
// receiving side's own: those with authserv-id ID, or, with WithoutID,
// the one with no authserv-id at all. Never both (the module's validation
// refuses it); the zero AuthTrust trusts no header.
type AuthTrust struct {
	ID        string
	WithoutID bool
}

// ParseAuthResults reads the verdicts of the Authentication-Results
// headers (RFC 8601) that the receiving side wrote, as trust names them.
// With the zero trust no header counts: Found is false and the results
// are empty (unknown), not none, since nothing was asked.
//
// Which headers are trusted. Anyone can write an Authentication-Results
// header into a message, with any authserv-id. RFC 8601 §5 has the
// receiving border MTA remove (or rename) those that carry its own
// authserv-id before adding its own, and §7.1 tells consumers to trust
// only headers with an authserv-id they know. Beyond that:
//
//   - only headers whose authserv-id is trust.ID count (case does not
//     matter); a configured id that starts with a dot matches the hosts
//     under it, for providers that name the MX that verified
//     (".messagingengine.com" matches Fastmail's "mx3.messagingengine.com");
//   - only those above the first Received: field below the topmost such
//     header: a verifier writes its results as the message enters, before
//     the next hop down was recorded, so a header below that Received:
//     was in the message before it reached the receiver, whatever it
//     claims;
//   - Microsoft 365 writes its header with no authserv-id at all
//     ("Authentication-Results: spf=pass (sender IP is ...) ..."); such a
//     header counts only with trust.WithoutID, and then a named one
//     never does. The rule of the Received: field above applies to it
//     as to a named one.
//
// Within the trusted headers, the topmost result of each method wins, so
// that a forged header the receiver failed to strip cannot override the
// receiver's own verdict. What no rule can catch: a receiver that wrote no
// header of its own and also failed to strip a forged one with its id
// right under its own trace fields; RFC 8601 §5 makes stripping its duty.
//
// DKIM may have several signatures. DKIM is pass when a signature whose
// domain aligns with the From domain (relaxed: equal, or one a subdomain
// of the other) passes; else the first aligned signature's result; with
// no aligned signature at all, none: the From domain did not sign, however
// others did (Signatures lists them). Without a From domain to align with,
// every signature counts as aligned.
func ParseAuthResults(h message.Header, trust AuthTrust) AuthFacts {
	if trust == (AuthTrust{}) {
		return AuthFacts{}
	}
	facts := AuthFacts{SPF: AuthNone, DKIM: AuthNone, DMARC: AuthNone}
	var spf, dmarc AuthResult
	var sigs []DKIMSignature
	n := 0
fields:
	for f := h.Fields(); f.Next(); {
		switch strings.ToLower(f.Key()) {
		case "received":
			if n > 0 {
				break fields
			}
		case "authentication-results":
			id, results, err := parseAuthResultsField(f.Value())
			if !trust.matches(id) {
				continue
			}
			facts.Found = true
			facts.Malformed = facts.Malformed || err != nil
			for _, r := range results {
				switch r := r.(type) {
				case *authres.SPFResult:
					if spf == "" {
						spf = authResultOf(r.Value)
					}
				case *authres.DMARCResult:
					if dmarc == "" {
						dmarc = authResultOf(r.Value)
					}
				case *authres.DKIMResult:
					if len(sigs) < maxSignatures {
						sigs = append(sigs, DKIMSignature{Domain: dkimDomain(r), Result: authResultOf(r.Value)})
					}
				}
			}
			if n++; n == maxAuthHeaders {
				break fields
			}
		}
	}
	if spf != "" {
		facts.SPF = spf
	}
	if dmarc != "" {
		facts.DMARC = dmarc
	}
	facts.Signatures = sigs
	facts.DKIM, facts.DKIMDomain = dkimVerdict(sigs, fromDomain(h))
	return facts
}

// parseAuthResultsField parses one header's value with authres.Parse,
// after removing what that parser does not expect: comments (which may
// hold ";", as OpenDKIM's "(2048-bit key; unprotected)"), semicolons
// inside quoted strings, and a missing authserv-id (Microsoft 365's form),
// reported as "".
func parseAuthResultsField(v string) (string, []authres.Result, error) {
	v = stripComments(v)
	first, _, _ := strings.Cut(v, ";")
	if strings.Contains(first, "=") {
		_, results, err := authres.Parse("-; " + v)
		return "", results, err
	}
	return authres.Parse(v)
}

// stripComments removes RFC 5322 comments, nested ones too, outside
// quoted strings, and turns ";" inside quoted strings into ",", so that a
// parser splitting on ";" splits only between results.
func stripComments(v string) string {
	var b strings.Builder
	b.Grow(len(v))
	depth, quoted := 0, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && (quoted || depth > 0):
			// A quoted pair: the next byte is literal.
			if depth == 0 {
				b.WriteByte(c)
				if i+1 < len(v) {
					b.WriteByte(v[i+1])
				}
			}
			i++
		case quoted:
			if c == '"' {
				quoted = false
			}
			if c == ';' {
				c = ','
			}
			b.WriteByte(c)
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
			if depth == 0 {
				b.WriteByte(' ')
			}
		case depth > 0:
		case c == '"':
			quoted = true
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (t AuthTrust) matches(id string) bool {
	id = strings.ToLower(strings.Trim(id, `"`))
	want := strings.ToLower(t.ID)
	if id == "" {
		return t.WithoutID
	}
	if want == "" {
		return false
	}
	if strings.HasPrefix(want, ".") {
		return strings.HasSuffix(id, want) || id == want[1:]
	}
	return id == want
}

func dkimDomain(r *authres.DKIMResult) string {
	d := strings.Trim(r.Domain, `"`)
	if d == "" {
		i := strings.Trim(r.Identifier, `"`)
		d = i[strings.LastIndexByte(i, '@')+1:]
	}
	return strings.ToLower(d)
}

// dkimVerdict applies the rule ParseAuthResults documents.
func dkimVerdict(sigs []DKIMSignature, from string) (AuthResult, string) {
	var first *DKIMSignature
	for i := range sigs {
		s := &sigs[i]
		if from != "" && !aligned(s.Domain, from) {
			continue
		}
		if s.Result == AuthPass {
			return AuthPass, s.Domain
		}
		if first == nil {
			first = s
		}
	}
	if first != nil {
		return first.Result, first.Domain
	}
	return AuthNone, ""
}

// aligned is DMARC's relaxed alignment without the public suffix list:
// equal domains, or one a subdomain of the other. Without the list,
// "co.uk" would align with "example.co.uk"; a signature for a public
// suffix does not happen in practice.
func aligned(d, from string) bool {
	return d != "" && (d == from || strings.HasSuffix(from, "."+d) || strings.HasSuffix(d, "."+from))
}

// fromDomain is the domain of the header's From address, lower case, or ""
// when there is none or it does not parse.
func fromDomain(h message.Header) string {
	v := h.Get("From")
	if a, err := mail.ParseAddress(v); err == nil {
		v = a.Address
	} else if i := strings.LastIndexByte(v, '<'); i >= 0 {
		v, _, _ = strings.Cut(v[i+1:], ">")
	}
	at := strings.LastIndexByte(v, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(v[at+1:]))
}
