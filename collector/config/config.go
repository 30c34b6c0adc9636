// Package config reads the exporter's configuration file: the probe
// modules and the targets probed on schedule. It depends on probes and the
// YAML library only, so that a command that just needs a module (the probe
// subcommand) does not pull in the scheduler and the HTTP handlers.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
	"go.yaml.in/yaml/v3"
)

// Defaults for target settings; README.md documents them.
const (
	DefaultInterval = 60 * time.Second
	MinInterval     = time.Second
	// MaxConfigFileSize bounds what LoadFile reads: far beyond any real
	// configuration (100,000 targets take about 10 MiB), and small enough
	// that a wrong file (a log, a disk image) cannot exhaust memory.
	MaxConfigFileSize = 16 << 20
)

// Config is the whole configuration file: probe modules and the targets
// probed on schedule.
type Config struct {
	Modules map[string]*probes.Module `yaml:"modules" json:"modules"`
	Targets []*Target                 `yaml:"targets,omitempty" json:"targets"`
}

// Target is one scheduled probe.
type Target struct {
	Name     string        `yaml:"name" json:"name"`
	Address  string        `yaml:"address" json:"address"`
	Module   string        `yaml:"module" json:"module"`
	Interval time.Duration `yaml:"interval,omitempty" json:"interval"`
	// Timeout overrides the module's timeout for this target.
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// ConfigError is a problem in the configuration file, located by line and
// by the dotted path of the field.
type ConfigError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	if e.Field != "" {
		// A key may hold control characters, which the message must not
		// pass on to a terminal or a log line.
		field := e.Field
		if probes.CheckText(field) != nil {
			field = strings.Trim(strconv.Quote(field), `"`)
		}
		b.WriteString(": " + field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// LoadFile reads and validates the configuration file, refusing one over
// MaxConfigFileSize.
func LoadFile(path string) (*Config, error) {
	b, err := readLimited(path, MaxConfigFileSize)
	if err != nil {
		return nil, err
	}
	return Parse(b, path)
}

// readLimited reads a file of at most limit bytes. The size it states is
// checked first, then the read is bounded as well: a pipe or a device
// states none, and a file may grow.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tooLarge := &ConfigError{File: path, Msg: fmt.Sprintf("larger than %d MiB, the limit for a configuration file", limit>>20)}
	if fi, err := f.Stat(); err == nil && fi.Size() > limit {
		return nil, tooLarge
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, tooLarge
	}
	return b, nil
}

// Parse decodes a configuration strictly (unknown keys are errors), fills
// defaults and validates it; errors name file, line and field.
func Parse(data []byte, file string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(file, data, err)
	}
	lines := fieldLines(&root, reflect.TypeOf(Config{}))
	cfg := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF; let it reach validation, which says
	// what is missing.
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(file, err, &lines)
	}
	// A second document would be silently ignored: a concatenated or
	// templated file gone wrong, which must not half-apply.
	// Empty documents (a trailing "---", common in generated files) are
	// harmless.
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || !emptyDocument(&extra) {
			return nil, &ConfigError{File: file, Line: extra.Line, Msg: "more than one YAML document (---); put everything in one"}
		}
	}
	if err := cfg.validate(filepath.Dir(file)); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.File = file
			ce.Line = lines.lineOf(ce.Field)
		}
		return nil, err
	}
	return cfg, nil
}

// emptyDocument reports a document with no content but comments.
func emptyDocument(doc *yaml.Node) bool {
	return len(doc.Content) == 0 || len(doc.Content) == 1 && doc.Content[0].Tag == "!!null"
}

// validate fills defaults, resolves relative paths against dir and checks
// the configuration.
func (c *Config) validate(dir string) error {
	if len(c.Modules) == 0 {
		return &ConfigError{Field: "modules", Msg: "at least one module is required"}
	}
	for _, name := range sortedKeys(c.Modules) {
		// The module name is a label value on every series of its targets.
		if err := probes.CheckText(name); err != nil {
			return &ConfigError{Field: "modules." + name, Msg: "module name " + err.Error()}
		}
		m := c.Modules[name]
		if m == nil {
			m = &probes.Module{}
			c.Modules[name] = m
		}
		m.SetDefaults()
		m.SetDirectory(dir)
		if err := m.Validate(); err != nil {
			var fe *probes.FieldError
			if errors.As(err, &fe) {
				return &ConfigError{Field: "modules." + name + "." + fe.Field, Msg: fe.Msg}
			}
			return &ConfigError{Field: "modules." + name, Msg: err.Error()}
		}
		// Build the TLS configuration now: an unreadable CA file or a bad
		// client key is the operator's to fix, not a failing probe's.
		if m.SMTP.TLS != probes.TLSNone {
			if _, err := promconfig.NewTLSConfig(&m.SMTP.TLSConfig); err != nil {
				return &ConfigError{Field: "modules." + name + ".smtp.tls_config", Msg: err.Error()}
			}
		}
	}
	seen := map[string]int{}
	for i, t := range c.Targets {
		path := fmt.Sprintf("targets[%d]", i)
		if t == nil {
			return &ConfigError{Field: path, Msg: "empty target"}
		}
		switch {
		case t.Name == "":
			return &ConfigError{Field: path + ".name", Msg: "required"}
		case t.Address == "":
			return &ConfigError{Field: path + ".address", Msg: "required"}
		case t.Module == "":
			return &ConfigError{Field: path + ".module", Msg: "required"}
		}
		// The name is the target label's value.
		if err := probes.CheckText(t.Name); err != nil {
			return &ConfigError{Field: path + ".name", Msg: err.Error()}
		}
		if j, dup := seen[t.Name]; dup {
			return &ConfigError{Field: path + ".name", Msg: fmt.Sprintf("duplicate target name %q (also targets[%d])", t.Name, j)}
		}
		seen[t.Name] = i
		m, ok := c.Modules[t.Module]
		if !ok {
			return &ConfigError{Field: path + ".module", Msg: fmt.Sprintf("unknown module %q (have: %s)", t.Module, strings.Join(sortedKeys(c.Modules), ", "))}
		}
		if _, _, err := probes.SplitTarget(t.Address, m); err != nil {
			return &ConfigError{Field: path + ".address", Msg: err.Error()}
		}
		intervalName := "interval"
		if t.Interval == 0 {
			t.Interval = DefaultInterval
			intervalName = "default interval"
		}
		if t.Interval < MinInterval {
			return &ConfigError{Field: path + ".interval", Msg: fmt.Sprintf("must be at least %s, got %s", MinInterval, t.Interval)}
		}
		if t.Timeout < 0 {
			return &ConfigError{Field: path + ".timeout", Msg: fmt.Sprintf("must be positive, got %s", t.Timeout)}
		}
		if t.Timeout > t.Interval {
			return &ConfigError{Field: path + ".timeout", Msg: fmt.Sprintf("timeout %s exceeds %s %s: runs would overlap", t.Timeout, intervalName, t.Interval)}
		}
		if t.Timeout == 0 && m.Timeout > t.Interval {
			return &ConfigError{Field: path + ".interval", Msg: fmt.Sprintf("module %q timeout %s exceeds %s %s: runs would overlap (set a longer interval or a shorter per-target timeout)", t.Module, m.Timeout, intervalName, t.Interval)}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lineIndex maps dotted field paths ("modules.x.smtp.tls", "targets[2].name")
// to the line of their key, and the lines of YAML errors back to paths.
type lineIndex struct {
	byPath  map[string]int
	entries []indexEntry // in document order
}

// indexEntry is one mapping value (key set) or sequence element (key nil),
// with the Go type it decodes into ("" when unknown).
type indexEntry struct {
	path       string
	key, value *yaml.Node
	goType     reflect.Type
}

func (l lineIndex) lineOf(path string) int {
	for p := path; p != ""; {
		if n, ok := l.byPath[p]; ok {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// keyAt is the path of the key name on line, or of the first key on the
// line when name is empty.
func (l lineIndex) keyAt(line int, name string) (string, bool) {
	for _, e := range l.entries {
		if e.key != nil && e.key.Line == line && (name == "" || e.key.Value == name) {
			return e.path, true
		}
	}
	return "", false
}

// valueAt finds the node a type error is about: the value on line with the
// given short tag and value prefix, decoding into goType. Nested flow
// collections can start on one line, so the Go type picks among them. A
// type that decodes itself names another type in its errors (config.Secret
// says "config.plain", config.TLSVersion "string"); then the innermost
// candidate is the one at fault, its containers having decoded.
func (l lineIndex) valueAt(line int, tag, prefix, goType string) (*indexEntry, bool) {
	var found *indexEntry
	for i, e := range l.entries {
		if e.value.Line != line || e.value.ShortTag() != tag || !strings.HasPrefix(e.value.Value, prefix) {
			continue
		}
		if typeName(e.goType) == goType {
			return &l.entries[i], true
		}
		found = &l.entries[i]
	}
	return found, found != nil
}

// fieldLines indexes the document's keys and values; t is the Go type the
// document decodes into, followed along so that entries know theirs.
func fieldLines(root *yaml.Node, t reflect.Type) lineIndex {
	idx := lineIndex{byPath: map[string]int{}}
	var walk func(n *yaml.Node, path string, t reflect.Type)
	walk = func(n *yaml.Node, path string, t reflect.Type) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, t)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				vt := keyType(t, k.Value)
				idx.byPath[p] = k.Line
				idx.entries = append(idx.entries, indexEntry{path: p, key: k, value: v, goType: vt})
				walk(v, p, vt)
			}
		case yaml.SequenceNode:
			var et reflect.Type
			if t != nil && t.Kind() == reflect.Slice {
				et = deref(t.Elem())
			}
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				idx.byPath[p] = c.Line
				idx.entries = append(idx.entries, indexEntry{path: p, value: c, goType: et})
				walk(c, p, et)
			}
		}
	}
	walk(root, "", deref(t))
	return idx
}

// keyType is the type a mapping key's value decodes into, pointers
// dereferenced as the YAML library does, or nil when unknown.
func keyType(t reflect.Type, key string) reflect.Type {
	if t == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Map:
		return deref(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if name == key {
				return deref(f.Type)
			}
		}
	}
	return nil
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func typeName(t reflect.Type) string {
	if t == nil {
		return ""
	}
	return t.String()
}

var (
	yamlLineRe     = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownFieldRe = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	// The YAML library shortens values longer than ten bytes to seven and
	// "...", and leaves them out for mappings and lists.
	cannotUnmarshalRe = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*?)(\\.\\.\\.)?`)? into (\\S+)$")
)

// syntaxError reports a YAML syntax error at the line it is on. The YAML
// library names the line where the enclosing block starts, counted from
// zero, which points above the mistake; the first prefix of the file that
// fails the same way ends on the line that holds it.
func syntaxError(file string, data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	ce := &ConfigError{File: file, Msg: msg}
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		ce.Line, _ = strconv.Atoi(m[1])
		ce.Msg = m[2]
	}
	// The library's line is never past the mistake, and a prefix of the
	// file that contains the mistake fails with the same message: binary
	// search for the shortest such prefix. (A linear scan re-parses the
	// file once per line: minutes for a large file, during a reload.)
	lines := bytes.SplitAfter(data, []byte("\n"))
	sameError := func(n int) bool {
		var node yaml.Node
		perr := yaml.Unmarshal(bytes.Join(lines[:n], nil), &node)
		if perr == nil {
			return false
		}
		pmsg := strings.TrimPrefix(perr.Error(), "yaml: ")
		if m := yamlLineRe.FindStringSubmatch(pmsg); m != nil {
			pmsg = m[2]
		}
		return pmsg == ce.Msg
	}
	lo, hi := min(max(ce.Line, 1), len(lines)), len(lines)
	if !sameError(hi) {
		return ce
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if sameError(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	ce.Line = hi
	return ce
}

// yamlError rewrites the YAML library's decoding errors into ConfigErrors
// naming the field, in words an operator reads without knowing Go types.
func yamlError(file string, err error, lines *lineIndex) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			return &ConfigError{File: file, Line: n, Msg: m[2]}
		}
		return &ConfigError{File: file, Msg: msg}
	}
	// Report the first problem: one precise message beats a list.
	msg := strings.TrimSpace(te.Errors[0])
	ce := &ConfigError{File: file, Msg: msg}
	m := yamlLineRe.FindStringSubmatch(msg)
	if m == nil {
		return ce
	}
	ce.Line, _ = strconv.Atoi(m[1])
	ce.Msg = m[2]
	if u := unknownFieldRe.FindStringSubmatch(ce.Msg); u != nil {
		ce.Field, _ = lines.keyAt(ce.Line, u[1])
		ce.Msg = fmt.Sprintf("unknown field %q", u[1])
		return ce
	}
	if u := cannotUnmarshalRe.FindStringSubmatch(ce.Msg); u != nil {
		tag, value, goType := u[1], u[2], u[4]
		var target reflect.Type
		if e, ok := lines.valueAt(ce.Line, tag, value, goType); ok {
			ce.Field, value, target = e.path, e.value.Value, e.goType
		} else {
			ce.Field, _ = lines.keyAt(ce.Line, "")
		}
		ce.Msg = typeMessage(tag, value, goType, target)
		return ce
	}
	ce.Field, _ = lines.keyAt(ce.Line, "")
	return ce
}

// typeMessage says what a setting wants and what it got. goType is the
// type the YAML library names, target the setting's own Go type when known.
func typeMessage(tag, value, goType string, target reflect.Type) string {
	got := map[string]string{
		"!!str": "a string", "!!int": "an integer", "!!float": "a number", "!!bool": "a boolean",
		"!!null": "null", "!!map": "a mapping", "!!seq": "a list", "!!timestamp": "a timestamp",
	}[tag]
	if got == "" {
		got = tag
	}
	switch tag {
	case "!!map", "!!seq", "!!null":
	case "!!str":
		got = fmt.Sprintf("%s %q", got, value)
	default:
		got += " " + value
	}
	if goType == "time.Duration" {
		if value == "" {
			return "want a duration such as 15s or 1m30s, got " + got
		}
		return fmt.Sprintf("invalid duration %q: want a number with a unit (ms, s, m or h), e.g. 15s or 1m30s", value)
	}
	return fmt.Sprintf("want %s, got %s", wantOf(goType, target), got)
}

// wantOf names what a value of goType is written as. A named type (one of
// ours, or config.Secret) is written as what it is made of.
func wantOf(goType string, target reflect.Type) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a mapping"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case goType == "string":
		return "a string"
	}
	kind := reflect.Invalid
	if target != nil {
		kind = target.Kind()
	}
	switch kind {
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	}
	if strings.Contains(goType, ".") {
		return "a mapping"
	}
	return goType
}
