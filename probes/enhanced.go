package probes

import "strings"

// The RFC 3463 grammar of an enhanced status code, "class.subject.detail",
// in one place: the reply parser, the classifier and the metric labels
// each read it with their own rule for what may follow it.

// enhancedCodeLen returns the length of the enhanced code at the start of
// s (class 2, 4 or 5; subject and detail of 1 to 3 digits), or 0 when s
// does not start with one. A fourth digit makes it no code at all.
func enhancedCodeLen(s string) int {
	if len(s) < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.' {
		return 0
	}
	i := 2
	for part := 0; part < 2; part++ {
		start := i
		for i < len(s) && i-start < 4 && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if n := i - start; n < 1 || n > 3 {
			return 0
		}
		if part == 0 {
			if i >= len(s) || s[i] != '.' {
				return 0
			}
			i++
		}
	}
	return i
}

// LeadingEnhancedCode returns the enhanced code that starts s (after
// blanks) and stands as a word of its own, as servers put it after the
// reply code.
func LeadingEnhancedCode(s string) (string, bool) {
	s = strings.TrimLeft(s, " \t")
	n := enhancedCodeLen(s)
	if n == 0 || n < len(s) && s[n] != ' ' && s[n] != '\t' {
		return "", false
	}
	return s[:n], true
}

// embeddedEnhancedCode returns the first enhanced code in text marked
// with '#', as qmail and its descendants put it at the end ("... rcpthosts
// (#5.7.1)"), whose class matches the reply code's, or "". The '#' is
// required: bare dotted triples also occur inside IP addresses and
// version numbers.
func embeddedEnhancedCode(code int, text string) string {
	class := byte('0' + code/100)
	for i := strings.IndexByte(text, '#'); i >= 0; {
		rest := text[i+1:]
		if n := enhancedCodeLen(rest); n > 0 && rest[0] == class && (n == len(rest) || !isWordByte(rest[n])) {
			return rest[:n]
		}
		j := strings.IndexByte(rest, '#')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return ""
}

// ValidEnhancedCode reports whether s is exactly an enhanced code whose
// subject is one RFC 3463 defines (0 to 7): the form a metric label may
// take. The parser accepts wider subjects, which servers do send, but a
// label must come from a fixed set.
func ValidEnhancedCode(s string) bool {
	return enhancedCodeLen(s) == len(s) && len(s) >= 5 && s[3] == '.' && s[2] <= '7'
}
