package domain

import (
	"strings"
	"testing"
)

// FuzzMTASTSPolicy feeds the same bytes to the policy parser and to the
// TXT record parser, both of which read what a domain publishes: neither
// may panic, and what they accept must satisfy RFC 8461's constraints.
func FuzzMTASTSPolicy(f *testing.F) {
	for _, seed := range []string{
		goodPolicy,
		strings.ReplaceAll(goodPolicy, "\r\n", "\n"),
		"version: STSv1\nmode: none\nmax_age: 31557600\n",
		"version: STSv1\nmode: testing\nmx: *.example.com\nmx: a.example\nmax_age: 0\next.1: x y\n",
		"version: STSv1\r\nmode: enforce\r\nmx: mail.*.example.com\r\nmax_age: 9999999999\r\n",
		"version:STSv1\n\n\nmode:\tenforce\nmx:*.\nmax_age:1",
		"v=STSv1; id=20160831085700Z;",
		"v=STSv1 ; id=abc ; ext=1;",
		"v=STSv1;;id=x",
		"\xff\xfe: \x00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if p, err := ParsePolicy([]byte(in)); err == nil {
			checkPolicy(t, p)
		}
		id, err := ParseSTSRecord(in)
		if err == nil && !isSTSID(id) {
			t.Errorf("ParseSTSRecord(%q) accepted id %q", in, id)
		}
		if _, found, err := SelectSTSRecord([]string{in}); found != isSTSRecord(in) || (err == nil) != (!found || id != "") {
			t.Errorf("SelectSTSRecord(%q) = found %v, err %v; ParseSTSRecord id %q", in, found, err, id)
		}
	})
}

func checkPolicy(t *testing.T, p *Policy) {
	t.Helper()
	if p.Version != "STSv1" {
		t.Errorf("accepted version %q", p.Version)
	}
	if p.Mode != ModeEnforce && p.Mode != ModeTesting && p.Mode != ModeNone {
		t.Errorf("accepted mode %q", p.Mode)
	}
	if p.MaxAge < 0 || p.MaxAge > MaxAgeLimit {
		t.Errorf("accepted max_age %d", p.MaxAge)
	}
	if p.Mode != ModeNone && len(p.MX) == 0 {
		t.Errorf("accepted mode %s without mx", p.Mode)
	}
	for _, pattern := range p.MX {
		if !ValidMXPattern(pattern) {
			t.Errorf("accepted mx pattern %q", pattern)
		}
		// Every pattern covers some host: itself, or one label in front.
		host := strings.Replace(pattern, "*", "x", 1)
		if !p.Matches(host) || !p.Matches(strings.ToUpper(host)+".") {
			t.Errorf("pattern %q does not match %q", pattern, host)
		}
		if strings.HasPrefix(pattern, "*.") && MatchMXPattern(pattern, "a."+host) {
			t.Errorf("pattern %q matches two labels in %q", pattern, "a."+host)
		}
	}
}
