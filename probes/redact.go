package probes

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MinFragment is the length from which a piece of a secret counts: a run of
// that many bytes from any form of a secret is replaced wherever it occurs,
// alone or inside other text. A secret shorter than that is replaced only
// where it stands as a word of its own: replacing every "a" of a one-letter
// test password would make the whole dialog unreadable.
const MinFragment = 6

// Redactor removes secrets from text a server sent (or an error built from
// it) before the text reaches any output. A server sees the credential and
// may send it back in any shape: whole or in pieces, escaped as Go (%q) or
// JSON would escape it, or re-encoded as base64 at any alignment. So the
// Redactor replaces every run of MinFragment or more bytes that is a piece
// of any such form, and it looks at the text both as it is and as the
// escaping outputs (Go quoting, JSON, logfmt) will render it.
//
// The zero Redactor redacts nothing, and does so without allocating: most
// probes have no secret. It is not safe for concurrent use.
type Redactor struct {
	// grams holds every MinFragment-byte window of every form of every
	// secret, packed into an integer.
	grams map[uint64]struct{}
	// words are the short secrets and short forms, replaced as words only.
	words []string
}

// b64Alphabets are the base64 alphabets a server may re-encode a secret in.
// Padding only follows characters that depend on the bytes after the
// secret, so the unpadded encodings cover the padded ones.
var b64Alphabets = []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding}

// Add registers a secret (a password or a token): the secret itself, its
// escaped forms and its base64 forms at every alignment.
func (r *Redactor) Add(secret string) {
	if secret == "" {
		return
	}
	r.addForm(secret)
	for _, f := range escapedForms(secret) {
		r.addForm(f)
	}
	for _, enc := range b64Alphabets {
		r.addWholeBase64(enc, []byte(secret))
		if len(secret) < MinFragment {
			// The aligned forms of a short secret are a few characters,
			// which would be replaced wherever they stand as words.
			continue
		}
		for align := 0; align < 3; align++ {
			r.addForm(alignedBase64(enc, secret, align))
		}
	}
}

// AddResponse registers a SASL response as the client sent it: its base64,
// and the other base64 forms a server could echo it in. Its raw form is
// left alone, as it holds the user name, which is no secret and appears in
// MAIL FROM and many replies; the secret inside it is registered by Add.
func (r *Redactor) AddResponse(resp []byte) {
	for _, enc := range b64Alphabets {
		r.addWholeBase64(enc, resp)
	}
}

func (r *Redactor) addWholeBase64(enc *base64.Encoding, b []byte) {
	r.addForm(enc.EncodeToString(b))
	r.addForm(enc.WithPadding(base64.StdPadding).EncodeToString(b))
}

// addForm registers one form of a secret: by its windows when it is long
// enough, else as a word.
func (r *Redactor) addForm(f string) {
	if len(f) < MinFragment {
		if f != "" && !slices.Contains(r.words, f) {
			r.words = append(r.words, f)
		}
		return
	}
	if r.grams == nil {
		r.grams = make(map[uint64]struct{})
	}
	for i := 0; i+MinFragment <= len(f); i++ {
		r.grams[gramKey(f[i:i+MinFragment])] = struct{}{}
	}
}

func gramKey(s string) uint64 {
	var k uint64
	for i := MinFragment - 1; i >= 0; i-- {
		k = k<<8 | uint64(foldCase(s[i]))
	}
	return k
}

// foldCase makes grams match whatever the ASCII case: servers lower-case
// what they take for names (a DKIM domain, a host, a header value), and a
// secret echoed as such must not slip through. Over-redacting a base64 run
// that differs only in case is the cheaper mistake.
func foldCase(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// escapedForms are the secret as the output encodings write it inside
// quotes: Go's %q (and %+q), JSON with and without HTML escaping, logfmt.
func escapedForms(s string) []string {
	var forms []string
	for _, esc := range escapers {
		var b []byte
		for i := 0; i < len(s); {
			_, size := utf8.DecodeRuneInString(s[i:])
			b = esc(b, s[i:i+size])
			i += size
		}
		forms = append(forms, string(b))
	}
	q := strconv.QuoteToASCII(s)
	return append(forms, q[1:len(q)-1])
}

// alignedBase64 is the part of the base64 of secret, placed align bytes
// after a group boundary, that depends on the secret's bytes alone: the
// characters at either end that mix in neighbouring bytes are dropped.
func alignedBase64(enc *base64.Encoding, secret string, align int) string {
	b := make([]byte, align+len(secret))
	copy(b[align:], secret)
	e := enc.EncodeToString(b)
	return e[(8*align+5)/6 : (8*align+8*len(secret))/6]
}

// Empty reports whether no secret was added: then nothing needs redacting.
func (r *Redactor) Empty() bool {
	return r == nil || len(r.grams) == 0 && len(r.words) == 0
}

// Redact returns s with every fragment of a registered secret replaced by
// "<redacted>" (overlapping and adjacent fragments by one), and every short
// secret standing as a word.
func (r *Redactor) Redact(s string) string {
	if r.Empty() {
		return s
	}
	out := r.replaceWords(applySpans(s, r.spans(s, nil)))
	if out != s {
		out = r.settle(out)
	}
	return out
}

// settle redacts what a redaction itself completed. The marker renders
// escaped in JSON as \u003credacted\u003e, and its last letter can finish
// a fragment with the text after it: "<redacted>cr3t!" shows as
// "\u003ecr3t!", which holds "ecr3t!". The new span starts at the marker's
// ">", so the two markers it leaves ("<redacted<redacted>") are folded into
// one. A few rounds settle it; the redaction never grows the text's
// secret-bearing bytes, only replaces them.
func (r *Redactor) settle(s string) string {
	for range 3 {
		sp := r.spans(s, nil)
		if len(sp) == 0 {
			break
		}
		s = strings.ReplaceAll(applySpans(s, sp), Redacted[:len(Redacted)-1]+Redacted, Redacted)
	}
	return s
}

// RedactLines redacts the lines of one multi-line message, such as an SMTP
// reply, each as Redact does. A secret split over line ends is caught too:
// the lines' texts are also looked at joined, without a separator and with
// a space (as a reply's text is shown), and a fragment found across a line
// end is removed from each line it touches. textStart tells where a line's
// text starts (after an SMTP reply code, say); nil means at 0. Only
// redacted lines should be joined for display.
func (r *Redactor) RedactLines(lines []string, textStart func(string) int) []string {
	if r.Empty() {
		return lines
	}
	spans := make([][]span, len(lines))
	for i, l := range lines {
		spans[i] = r.spans(l, nil)
	}
	if len(lines) > 1 && len(r.grams) > 0 {
		// Line i's text is at [at[i]+ts[i], at[i]+len(lines[i])) of the
		// joined text.
		at, ts := make([]int, len(lines)), make([]int, len(lines))
		for _, sep := range []string{"", " "} {
			var b strings.Builder
			for i, l := range lines {
				if i > 0 {
					b.WriteString(sep)
				}
				if textStart != nil {
					ts[i] = textStart(l)
				}
				at[i] = b.Len() - ts[i]
				b.WriteString(l[ts[i]:])
			}
			for _, sp := range r.spans(b.String(), nil) {
				for i, l := range lines {
					lo, hi := max(sp.start, at[i]+ts[i])-at[i], min(sp.end, at[i]+len(l))-at[i]
					if lo < hi {
						spans[i] = append(spans[i], span{lo, hi})
					}
				}
			}
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = r.replaceWords(applySpans(l, mergeSpans(spans[i])))
		if out[i] != l {
			out[i] = r.settle(out[i])
		}
	}
	return out
}

func (r *Redactor) replaceWords(s string) string {
	for _, w := range r.words {
		if strings.Contains(s, w) {
			s = replaceWords(s, w, Redacted)
		}
	}
	return s
}

// span is a byte range [start, end) to redact.
type span struct{ start, end int }

// spans appends to dst the ranges of s that hold a fragment, in order and
// merged, either as s is or as an escaping output renders it.
func (r *Redactor) spans(s string, dst []span) []span {
	if len(r.grams) == 0 {
		return dst
	}
	dst = r.scan(s, dst)
	if !needsRendering(s) {
		return dst
	}
	// An escape can complete a fragment: in JSON "<" becomes \u003c, so
	// "<r3t!x" renders as "...cr3t!x". Match the renderings as well and
	// redact the bytes that produced each match.
	for _, esc := range escapers {
		out, from := render(s, esc)
		for _, sp := range r.scan(string(out), nil) {
			last := from[sp.end-1]
			_, size := utf8.DecodeRuneInString(s[last:])
			dst = append(dst, span{from[sp.start], last + size})
		}
	}
	return mergeSpans(dst)
}

// scan appends the merged ranges of s whose every byte lies in a window
// that is a registered gram.
func (r *Redactor) scan(s string, dst []span) []span {
	var k uint64
	for i := 0; i < len(s); i++ {
		k = k>>8 | uint64(foldCase(s[i]))<<(8*(MinFragment-1))
		if i < MinFragment-1 {
			continue
		}
		if _, ok := r.grams[k]; !ok {
			continue
		}
		start := i + 1 - MinFragment
		if n := len(dst); n > 0 && start <= dst[n-1].end {
			dst[n-1].end = i + 1
		} else {
			dst = append(dst, span{start, i + 1})
		}
	}
	return dst
}

func mergeSpans(sp []span) []span {
	if len(sp) < 2 {
		return sp
	}
	slices.SortFunc(sp, func(a, b span) int { return a.start - b.start })
	out := sp[:1]
	for _, s := range sp[1:] {
		if last := &out[len(out)-1]; s.start <= last.end {
			last.end = max(last.end, s.end)
		} else {
			out = append(out, s)
		}
	}
	return out
}

func applySpans(s string, sp []span) string {
	if len(sp) == 0 {
		return s
	}
	var b strings.Builder
	prev := 0
	for _, x := range sp {
		b.WriteString(s[prev:x.start])
		b.WriteString(Redacted)
		prev = x.end
	}
	b.WriteString(s[prev:])
	return b.String()
}

// replaceWords replaces old in s where neither neighbour is a letter or a
// digit.
func replaceWords(s, old, repl string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, old)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(old)
		if (i == 0 || !isWordByte(s[i-1])) && (end == len(s) || !isWordByte(s[end])) {
			b.WriteString(s[:i] + repl)
		} else {
			b.WriteString(s[:end])
		}
		s = s[end:]
	}
}

func isWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// needsRendering reports whether some output escapes a byte of s.
func needsRendering(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return true
		}
	}
	return false
}

// An escaper appends one character (a rune, or one byte of invalid UTF-8)
// as an output writes it inside a quoted string.
type escaper func(dst []byte, char string) []byte

// escapers are the outputs that escape what they write: Go's %q (errors
// quote the lines they report), JSON as encoding/json writes it with and
// without HTML escaping (/probe?debug=true, /history, --output=json), and
// logfmt (the logs).
var escapers = []escaper{escapeGo, escapeJSONHTML, escapeJSON, escapeLogfmt}

func escapeGo(dst []byte, c string) []byte {
	if len(c) == 1 && c[0] >= 0x20 && c[0] < 0x7f && c[0] != '"' && c[0] != '\\' {
		return append(dst, c...)
	}
	n := len(dst)
	dst = strconv.AppendQuote(dst, c)
	copy(dst[n:], dst[n+1:len(dst)-1])
	return dst[:len(dst)-2]
}

// jsonStyle is an escaping in the style of JSON strings.
type jsonStyle struct {
	short string // each control character with a one-letter escape, then the letter
	html  bool   // escape <, > and &
	del   bool   // escape DEL
	// lineSep escapes U+2028 and U+2029; else the valid U+FFFD is
	// escaped, like an invalid byte.
	lineSep bool
}

var (
	jsonHTMLStyle  = jsonStyle{short: "\bb\ff\nn\rr\tt", html: true, lineSep: true}
	jsonPlainStyle = jsonStyle{short: "\bb\ff\nn\rr\tt", lineSep: true}
	logfmtStyle    = jsonStyle{short: "\nn\rr\tt", del: true}
)

// escapeJSONHTML and escapeJSON escape as encoding/json does, escapeLogfmt
// as go-logfmt does in a quoted value.
func escapeJSONHTML(dst []byte, c string) []byte { return jsonHTMLStyle.escape(dst, c) }
func escapeJSON(dst []byte, c string) []byte     { return jsonPlainStyle.escape(dst, c) }
func escapeLogfmt(dst []byte, c string) []byte   { return logfmtStyle.escape(dst, c) }

const lowerHex = "0123456789abcdef"

func (st jsonStyle) escape(dst []byte, c string) []byte {
	r, size := utf8.DecodeRuneInString(c)
	switch {
	case size == 1 && (r == '"' || r == '\\'):
		return append(dst, '\\', c[0])
	case size == 1 && r < 0x20 && strings.ContainsRune(st.short, r):
		i := strings.IndexRune(st.short, r)
		return append(dst, '\\', st.short[i+1])
	case size == 1 && (r < 0x20 || st.del && r == 0x7f || st.html && (r == '<' || r == '>' || r == '&')):
		return append(dst, '\\', 'u', '0', '0', lowerHex[r>>4], lowerHex[r&0xf])
	case r == utf8.RuneError && (size == 1 || !st.lineSep):
		return append(dst, `\ufffd`...)
	case st.lineSep && (r == '\u2028' || r == '\u2029'):
		return append(dst, '\\', 'u', '2', '0', '2', lowerHex[r&0xf])
	}
	return append(dst, c...)
}

// render writes s as esc does, and for each output byte the offset in s of
// the character it came from.
func render(s string, esc escaper) (out []byte, from []int) {
	out = make([]byte, 0, len(s)+16)
	from = make([]int, 0, len(s)+16)
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		n := len(out)
		out = esc(out, s[i:i+size])
		for range len(out) - n {
			from = append(from, i)
		}
		i += size
	}
	return out, from
}
