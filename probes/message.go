package probes

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/prometheus/common/config"
)

// MessageConfig shapes the test message the send leg delivers: headers and
// a body of the module's own, so that a content filter's path (GTUBE) or
// the DKIM signing of a realistic message can be tested. Zero is the
// prober's generated message.
type MessageConfig struct {
	// Headers are added to the message, or replace the prober's From, To,
	// Subject, Content-Type and MIME-Version.
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Body and BodyFile (at most one) replace the generated body.
	Body     string `yaml:"body,omitempty" json:"body,omitempty"`
	BodyFile string `yaml:"body_file,omitempty" json:"body_file,omitempty"`
	// fileBody is BodyFile's content, read by Validate: at load, as a
	// TLS file is, so that a run never fails on it.
	fileBody string `yaml:"-" json:"-"`
}

// Header is one header field of the test message.
type Header struct{ Name, Value string }

// MaxMessageBody is the most a module's body may hold: a monitor sends
// little, and every run sends it again.
const MaxMessageBody = 64 << 10

// maxLineOctets is RFC 5322's limit on a line, CRLF not counted (§2.1.1).
const maxLineOctets = 998

// proberHeaders are the headers the prober writes and a module cannot,
// each with the reason.
var proberHeaders = map[string]string{
	"Message-ID":            "it carries the probe's token, by which the message is found, matched to its bounces and cleaned up",
	"X-SMTP-Exporter-Probe": "it carries the probe's token, by which the message is found, matched to its bounces and cleaned up",
	"Date":                  "it is the moment of sending, new at every run",
	"Auto-Submitted":        "it marks the message as automated (RFC 3834), so that no system auto-replies to a monitor",
}

// validate checks the message settings at field and reads body_file.
func (mc *MessageConfig) validate(field string) error {
	// Sorted, so that a file with several mistakes always reports the same.
	names := slices.Sorted(maps.Keys(mc.Headers))
	seen := map[string]string{}
	for _, name := range names {
		f := field + ".headers." + name
		if !isFieldName(name) {
			return fieldErr(f, "header name %q is not an RFC 5322 field name: want printable US-ASCII without spaces or \":\"", name)
		}
		for own, why := range proberHeaders {
			if strings.EqualFold(name, own) {
				return fieldErr(f, "%s is the prober's own and cannot be set: %s", own, why)
			}
		}
		if prev, dup := seen[strings.ToLower(name)]; dup {
			return fieldErr(f, "set twice, as %q and %q (header names are case-insensitive)", prev, name)
		}
		seen[strings.ToLower(name)] = name
		if err := checkHeaderValue(name, mc.Headers[name]); err != nil {
			return fieldErr(f, "%v", err)
		}
	}
	if mc.BodyFile == "" {
		if err := checkBody(mc.Body); err != nil {
			return fieldErr(field+".body", "%v", err)
		}
		return nil
	}
	f := field + ".body_file"
	if mc.Body != "" {
		return fieldErr(f, "set body or body_file, not both")
	}
	body, err := readBodyFile(f, mc.BodyFile)
	if err != nil {
		return err
	}
	if err := checkBody(body); err != nil {
		return fieldErr(f, "%v", err)
	}
	mc.fileBody = body
	return nil
}

// isFieldName reports an RFC 5322 field-name: one or more printable
// US-ASCII characters but ":" (§3.6.8).
func isFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return s != ""
}

// checkHeaderValue refuses what would break the header out of its line
// or the message out of 7-bit SMTP.
func checkHeaderValue(name, v string) error {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\r' || c == '\n' || c == 0:
			return fmt.Errorf("must not contain CR, LF or NUL, found %U at byte %d: it would end the header and start another", rune(c), i)
		case c >= 0x80:
			return fmt.Errorf("must be US-ASCII, found byte 0x%02X at byte %d: write other text as an RFC 2047 encoded-word", c, i)
		case (c < 0x20 && c != '\t') || c == 0x7f:
			return fmt.Errorf("must not contain control characters other than tab, found %U at byte %d", rune(c), i)
		}
	}
	if n := len(name) + len(": ") + len(v); n > maxLineOctets {
		return fmt.Errorf("the header line is %d octets, over RFC 5322's limit of %d", n, maxLineOctets)
	}
	return nil
}

// checkBody refuses a body that plain 7-bit SMTP cannot carry as it is.
func checkBody(b string) error {
	if len(b) > MaxMessageBody {
		return fmt.Errorf("is %d bytes, over the limit of 64 KiB (a monitor sends little)", len(b))
	}
	line, start := 1, 0
	for i := 0; i <= len(b); i++ {
		if i < len(b) {
			switch c := b[i]; {
			case c >= 0x80:
				return fmt.Errorf("must be US-ASCII, found byte 0x%02X at byte %d (an 8-bit body needs 8BITMIME, which the probe does not support)", c, i)
			case c == 0:
				return fmt.Errorf("must not contain NUL, found at byte %d", i)
			case c == '\r' && (i+1 == len(b) || b[i+1] != '\n'):
				return fmt.Errorf("has a CR without LF at byte %d: end lines with LF or CRLF", i)
			case c != '\n':
				continue
			}
		}
		n := i - start
		if n > 0 && b[i-1] == '\r' {
			n--
		}
		if n > maxLineOctets {
			return fmt.Errorf("line %d is %d octets, over RFC 5322's limit of %d", line, n, maxLineOctets)
		}
		line, start = line+1, i+1
	}
	return nil
}

// readBodyFile reads a body file, no more of it than a body may hold.
func readBodyFile(field, path string) (string, error) {
	if err := checkReadableFile(field, path); err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fieldErr(field, "%v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxMessageBody+1))
	if err != nil {
		return "", fieldErr(field, "%v", err)
	}
	if len(b) > MaxMessageBody {
		size := int64(len(b))
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		return "", fieldErr(field, "is %d bytes, over the limit of 64 KiB (a monitor sends little)", size)
	}
	return string(b), nil
}

func (mc *MessageConfig) setDirectory(dir string) {
	mc.BodyFile = config.JoinDir(dir, mc.BodyFile)
}

// ApplyHeaders returns the prober's headers own with the module's
// overrides applied in place, then the module's other headers sorted by
// name, for a message that is the same at every run. A header of the
// prober's own that the module may not set (proberHeaders) is left out.
func (mc *MessageConfig) ApplyHeaders(own []Header) []Header {
	out := slices.Clone(own)
	var extra []Header
	for _, name := range slices.Sorted(maps.Keys(mc.Headers)) {
		i := slices.IndexFunc(out, func(h Header) bool { return strings.EqualFold(h.Name, name) })
		switch {
		case i < 0:
			extra = append(extra, Header{name, mc.Headers[name]})
		case proberHeaders[out[i].Name] == "":
			out[i].Value = mc.Headers[name]
		}
	}
	return append(out, extra...)
}

// CustomBody is the module's body with CRLF line ends, the last line
// ended too, and whether the module has one.
func (mc *MessageConfig) CustomBody() (string, bool) {
	b := mc.Body
	if mc.BodyFile != "" {
		b = mc.fileBody
	} else if b == "" {
		return "", false
	}
	b = strings.ReplaceAll(strings.ReplaceAll(b, "\r\n", "\n"), "\n", "\r\n")
	if b != "" && !strings.HasSuffix(b, "\r\n") {
		b += "\r\n"
	}
	return b, true
}
