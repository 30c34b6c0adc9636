package domain

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// minRSABits: RFC 8301 §3.2, verifiers must not accept smaller RSA keys.
const minRSABits = 1024

// DKIMFacts is what the DKIM check learned about the keys of the
// module's selectors.
type DKIMFacts struct {
	Check Check     `json:"check"`
	Keys  []DKIMKey `json:"keys"`
}

// DKIMKey is one selector's key record.
type DKIMKey struct {
	Selector string `json:"selector"`
	Check    Check  `json:"check"`
	// KeyType is k= ("rsa" when absent) and Bits the RSA modulus length
	// (256 for ed25519), for a key that parsed.
	KeyType string `json:"key_type,omitempty"`
	Bits    int    `json:"bits,omitempty"`
	// Revoked: p= is empty (RFC 6376 §3.6.1).
	Revoked bool `json:"revoked"`
	// Testing: t=y, the domain is testing DKIM.
	Testing bool `json:"testing"`
}

// CheckDKIM checks the key of each selector at
// <selector>._domainkey.<domain>: present, parseable, not revoked, an
// RSA key of at least 1024 bits or an Ed25519 key (RFC 8463). Several
// records at one name must all be valid, as a verifier may use any.
// go-msgauth parses keys only inside its verifier, so the record is
// parsed here, per RFC 6376 §3.6.1.
func CheckDKIM(ctx context.Context, r *Resolver, domain string, selectors []string) *DKIMFacts {
	facts := &DKIMFacts{Check: pass(NameDKIM)}
	var failed, errored []string
	var firstErr error
	for _, sel := range selectors {
		key := checkDKIMKey(ctx, r, domain, sel)
		facts.Keys = append(facts.Keys, key)
		switch key.Check.Result {
		case ResultFail:
			failed = append(failed, sel+": "+key.Check.Detail)
		case ResultError:
			errored = append(errored, sel+": "+key.Check.Detail)
			if firstErr == nil {
				firstErr = key.Check.Err
			}
		}
	}
	switch {
	case len(failed) > 0:
		facts.Check = fail(NameDKIM, ReasonDKIMKeyInvalid, strings.Join(failed, "; "))
	case len(errored) > 0:
		facts.Check = dnsError(NameDKIM, firstErr)
		facts.Check.Detail = strings.Join(errored, "; ")
	}
	return facts
}

func checkDKIMKey(ctx context.Context, r *Resolver, domain, selector string) DKIMKey {
	key := DKIMKey{Selector: selector}
	txts, _, err := r.TXT(ctx, selector+"._domainkey."+domain)
	switch {
	case err != nil && !IsNotFound(err):
		key.Check = dnsError(NameDKIM, err)
		return key
	case len(txts) == 0:
		key.Check = fail(NameDKIM, ReasonDKIMKeyInvalid, "no key record")
		return key
	}
	for _, txt := range txts {
		info, err := parseDKIMKey(txt)
		if info != nil {
			key.KeyType, key.Bits, key.Revoked, key.Testing = info.keyType, info.bits, info.revoked, info.testing
		}
		if err != nil {
			key.Check = fail(NameDKIM, ReasonDKIMKeyInvalid, err.Error())
			return key
		}
	}
	key.Check = pass(NameDKIM)
	return key
}

// dkimKeyInfo is what a key record says.
type dkimKeyInfo struct {
	keyType string
	bits    int
	revoked bool
	testing bool
}

// parseDKIMKey parses a DKIM key record (RFC 6376 §3.6.1) and judges it
// usable for email. The info is returned with an error when the record
// parsed far enough to tell the key type.
func parseDKIMKey(txt string) (*dkimKeyInfo, error) {
	tags, err := parseTagList(txt)
	if err != nil {
		return nil, err
	}
	if v, ok := tags.get("v"); ok && (tags.names[0] != "v" || v != "DKIM1") {
		return nil, errors.New(`v= must come first and be "DKIM1"`)
	}
	info := &dkimKeyInfo{keyType: "rsa"}
	if k, ok := tags.get("k"); ok {
		info.keyType = k
	}
	if t, ok := tags.get("t"); ok {
		for _, flag := range strings.Split(t, ":") {
			info.testing = info.testing || strings.TrimSpace(flag) == "y"
		}
	}
	if s, ok := tags.get("s"); ok && !listHas(s, "*", "email") {
		return info, fmt.Errorf("s=%s: not a key for email", s)
	}
	if h, ok := tags.get("h"); ok && !listHas(h, "sha256") {
		return info, fmt.Errorf("h=%s: no sha256 (RFC 8301 forbids sha1)", h)
	}
	p, ok := tags.get("p")
	if !ok {
		return info, errors.New("no p= tag")
	}
	p = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, p)
	if p == "" {
		info.revoked = true
		return info, errors.New("key revoked (empty p=)")
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return info, fmt.Errorf("p= is not base64: %v", err)
	}
	switch info.keyType {
	case "rsa":
		return info, checkRSAKey(der, info)
	case "ed25519":
		if len(der) != ed25519.PublicKeySize {
			return info, fmt.Errorf("ed25519 key of %d bytes, want %d", len(der), ed25519.PublicKeySize)
		}
		info.bits = 256
		return info, nil
	}
	return info, fmt.Errorf("unknown key type k=%s", info.keyType)
}

// checkRSAKey parses an RSA key as SubjectPublicKeyInfo, as RFC 6376
// says, or as a bare PKCS#1 key, which some publish and verifiers accept.
func checkRSAKey(der []byte, info *dkimKeyInfo) error {
	var pub *rsa.PublicKey
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("k=rsa but p= holds a %T", k)
		}
		pub = rk
	} else if rk, err2 := x509.ParsePKCS1PublicKey(der); err2 == nil {
		pub = rk
	} else {
		return fmt.Errorf("p= is not an RSA public key: %v", err)
	}
	info.bits = pub.N.BitLen()
	if info.bits < minRSABits {
		return fmt.Errorf("RSA key of %d bits, below %d (RFC 8301)", info.bits, minRSABits)
	}
	return nil
}

// listHas reports whether a colon-separated list holds one of want.
func listHas(list string, want ...string) bool {
	for _, item := range strings.Split(list, ":") {
		for _, w := range want {
			if strings.EqualFold(strings.TrimSpace(item), w) {
				return true
			}
		}
	}
	return false
}

// tagList is a parsed DKIM tag list, names in order.
type tagList struct {
	names  []string
	values map[string]string
}

func (t tagList) get(name string) (string, bool) {
	v, ok := t.values[name]
	return v, ok
}

// parseTagList parses RFC 6376 §3.2's tag-list: tag=value pairs
// separated by ";", names ALPHA *(ALPHA / DIGIT / "_"), values of
// %x21-3A / %x3C-7E and inner whitespace; a duplicate name makes the
// whole list invalid.
func parseTagList(s string) (tagList, error) {
	tags := tagList{values: map[string]string{}}
	for _, spec := range strings.Split(s, ";") {
		if strings.TrimSpace(spec) == "" {
			continue
		}
		name, value, ok := strings.Cut(spec, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !isTagName(name) {
			return tags, fmt.Errorf("malformed tag %q", strings.TrimSpace(spec))
		}
		for i := 0; i < len(value); i++ {
			c := value[i]
			if (c < 0x21 || c > 0x7e) && c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				return tags, fmt.Errorf("tag %s: invalid character %q", name, c)
			}
		}
		if _, dup := tags.values[name]; dup {
			return tags, fmt.Errorf("tag %s given twice", name)
		}
		tags.names = append(tags.names, name)
		tags.values[name] = value
	}
	if len(tags.names) == 0 {
		return tags, errors.New("empty record")
	}
	return tags, nil
}

func isTagName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAlpha(s[i]) && !isDigit(s[i]) && s[i] != '_' {
			return false
		}
	}
	return true
}
