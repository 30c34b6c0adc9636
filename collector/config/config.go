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
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"go.yaml.in/yaml/v3"
)

// Defaults and limits for target settings; README.md documents them.
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
	// TargetFiles are globs of files that hold more targets (targetfiles.go).
	TargetFiles []string `yaml:"target_files,omitempty" json:"target_files,omitempty"`
	// Shard is the replica's part of the targets, from --targets.shard;
	// not a key of the file (shard.go).
	Shard Shard `yaml:"-" json:"-"`
}

// Target is one scheduled probe.
type Target struct {
	Name     string        `yaml:"name" json:"name"`
	Address  string        `yaml:"address" json:"address"`
	Module   string        `yaml:"module" json:"module"`
	Interval time.Duration `yaml:"interval,omitempty" json:"interval"`
	// Timeout overrides the module's timeout for this target; loading
	// sets it to the module's when the file does not.
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// IPProtocol is set on the runs a target of an ip_protocol both module
	// expands to: the one family this run uses. Not a key of the file.
	IPProtocol string `yaml:"-" json:"ip_protocol,omitempty"`
	// pinned is the module pinned to IPProtocol, nil for other targets.
	pinned *probes.Module
}

// ModuleOf is the module t runs with: its module, or, for a run expanded
// from an ip_protocol both module, that module pinned to the run's family.
func (c *Config) ModuleOf(t *Target) *probes.Module {
	if t.pinned != nil {
		return t.pinned
	}
	return c.Modules[t.Module]
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

// LoadFileForModule loads the configuration for a one-shot probe of the
// module name. It is LoadFile, but for one difference: a file that another
// module names and that is missing or unreadable (a secret that exists
// only where the exporter runs) is returned as a warning, not an error, and
// that module is not checked further. The module's own files, and those of
// the module its MX sessions use (domain.mx_module), are required as ever.
func LoadFileForModule(path, name string) (*Config, []*ConfigError, error) {
	b, err := readLimited(path, MaxConfigFileSize)
	if err != nil {
		return nil, nil, err
	}
	o := &loadOptions{module: name}
	cfg, err := parse(b, path, o)
	return cfg, o.warnings, err
}

// loadOptions relax the loading of a configuration for a one-shot probe of
// module; the zero value is the loading of LoadFile and Parse.
type loadOptions struct {
	module   string
	warnings []*ConfigError
}

// lenient reports whether a missing file of the module name is a warning:
// only for a one-shot probe, and only when the probe's module needs
// nothing from name.
func (o *loadOptions) lenient(name string, modules map[string]*probes.Module) bool {
	if o == nil || o.module == "" || name == o.module {
		return false
	}
	m := modules[o.module]
	return m == nil || m.Prober != probes.ProberDomain || m.Domain.MXModule != name
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
//
// The document is parsed into a node tree and checked against the Go types
// before it is decoded, so that each mistake is found at its node, which
// knows its line; the same walk indexes the lines of the fields for the
// errors of validation.
func Parse(data []byte, file string) (*Config, error) {
	return parse(data, file, nil)
}

func parse(data []byte, file string, o *loadOptions) (*Config, error) {
	root, err := readDocument(data, file)
	if err != nil {
		return nil, err
	}
	cfg := &Config{}
	c := newChecker()
	if err := c.check(root, reflect.TypeOf(cfg), ""); err != nil {
		err.File = file
		return nil, err
	}
	if len(root.Content) > 0 {
		// The check leaves nothing for the library to refuse but what it
		// guards against on its own, such as a document of aliases that
		// would expand beyond reason.
		if err := root.Decode(cfg); err != nil {
			return nil, &ConfigError{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		}
	}
	err = cfg.validate(filepath.Dir(file), o)
	if o != nil {
		for _, w := range o.warnings {
			w.File, w.Line = file, c.lineOf(w.Field)
		}
	}
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.File = file
			ce.Line = c.lineOf(ce.Field)
		}
		return nil, err
	}
	return cfg, nil
}

// readDocument parses the one YAML document of a file into a node tree.
func readDocument(data []byte, file string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	// An empty file decodes to io.EOF; let it reach validation, which says
	// what is missing.
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, syntaxError(file, data, err)
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
	return &root, nil
}

// emptyDocument reports a document with no content but comments.
func emptyDocument(doc *yaml.Node) bool {
	return len(doc.Content) == 0 || len(doc.Content) == 1 && doc.Content[0].Tag == "!!null"
}

// validate fills defaults, resolves relative paths against dir and checks
// the configuration. It is the one place defaults are filled, each module's
// by its SetDefaults and each target's by Target.SetDefaults, so that
// whatever reads a loaded configuration (scheduler, handlers, /config) sees
// every setting as it applies.
func (c *Config) validate(dir string, o *loadOptions) error {
	if len(c.Modules) == 0 {
		return &ConfigError{Field: "modules", Msg: "at least one module is required"}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Modules)) {
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
			ce := moduleError(name, err)
			if o.lenient(name, c.Modules) && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)) {
				o.warnings = append(o.warnings, ce)
				continue
			}
			return ce
		}
	}
	// A domain module may name another module for its MX sessions: known
	// only once every module has its defaults.
	get := func(name string) (*probes.Module, bool) { m, ok := c.Modules[name]; return m, ok && m != nil }
	for _, name := range slices.Sorted(maps.Keys(c.Modules)) {
		if err := c.Modules[name].ResolveMXModule(get); err != nil {
			return moduleError(name, err)
		}
	}
	seen := map[string]int{}
	expanded := make([]*Target, 0, len(c.Targets))
	pinned := map[string]*probes.Module{}
	for i, t := range c.Targets {
		path := fmt.Sprintf("targets[%d]", i)
		runs, err := c.checkTarget(path, t, pinned, func(name string) string {
			if j, dup := seen[name]; dup {
				return fmt.Sprintf("targets[%d]", j)
			}
			seen[name] = i
			return ""
		})
		if err != nil {
			return err
		}
		expanded = append(expanded, runs...)
	}
	c.Targets = expanded
	return c.checkTargetFiles(dir)
}

// moduleError is err, a check's of the module name, as a ConfigError on
// the field at fault.
func moduleError(name string, err error) *ConfigError {
	var fe *probes.FieldError
	if errors.As(err, &fe) {
		return &ConfigError{Field: "modules." + name + "." + fe.Field, Msg: fe.Msg}
	}
	return &ConfigError{Field: "modules." + name, Msg: err.Error()}
}

// checkTarget checks the target t at path against the modules, fills its
// defaults and returns its runs (t itself, or one per family for a module
// with ip_protocol both; pinned holds the pinned modules made so far).
// seen returns where else a run's name is, or "" to claim the name.
func (c *Config) checkTarget(path string, t *Target, pinned map[string]*probes.Module, seen func(name string) string) ([]*Target, error) {
	if t == nil {
		return nil, &ConfigError{Field: path, Msg: "empty target"}
	}
	switch {
	case t.Name == "":
		return nil, &ConfigError{Field: path + ".name", Msg: "required"}
	case t.Address == "":
		return nil, &ConfigError{Field: path + ".address", Msg: "required"}
	case t.Module == "":
		return nil, &ConfigError{Field: path + ".module", Msg: "required"}
	}
	// The name is the target label's value.
	if err := probes.CheckText(t.Name); err != nil {
		return nil, &ConfigError{Field: path + ".name", Msg: err.Error()}
	}
	m, ok := c.Modules[t.Module]
	if !ok {
		return nil, &ConfigError{Field: path + ".module", Msg: fmt.Sprintf("unknown module %q (have: %s)", t.Module, strings.Join(slices.Sorted(maps.Keys(c.Modules)), ", "))}
	}
	host, _, err := probes.SplitTarget(t.Address, m)
	if err != nil {
		return nil, &ConfigError{Field: path + ".address", Msg: err.Error()}
	}
	if err := t.setDefaultsAndCheck(path, m); err != nil {
		return nil, err
	}
	runs, err := expandFamilies(t, m, host, pinned)
	if err != nil {
		return nil, &ConfigError{Field: path + ".address", Msg: err.Error()}
	}
	for _, run := range runs {
		if other := seen(run.Name); other != "" {
			return nil, &ConfigError{Field: path + ".name", Msg: fmt.Sprintf("duplicate target name %q (also %s)", run.Name, other)}
		}
	}
	return runs, nil
}

// expandFamilies returns the runs of target t of module m (host is its
// address's host): t itself, or, when m has ip_protocol both, one run per
// family, named NAME/ip4 and NAME/ip6 and pinned to it. The family goes in
// the name, so that every series keeps the same label set and the two
// results of one host are told apart by the target label alone. pinned
// holds the pinned modules made so far, one per module and family.
func expandFamilies(t *Target, m *probes.Module, host string, pinned map[string]*probes.Module) ([]*Target, error) {
	if m.IPProtocol != probes.IPProtocolBoth {
		return []*Target{t}, nil
	}
	if net.ParseIP(host) != nil {
		return nil, fmt.Errorf("%s is an address of one family; module %q has ip_protocol both, which probes a name once over each: name the host, or use a module with ip_protocol ip4 or ip6", host, t.Module)
	}
	runs := make([]*Target, 0, 2)
	for _, family := range []string{probes.IPProtocol4, probes.IPProtocol6} {
		key := t.Module + "\x00" + family
		if pinned[key] == nil {
			pinned[key] = m.PinnedTo(family)
		}
		run := *t
		run.Name = t.Name + "/" + family
		run.IPProtocol = family
		run.pinned = pinned[key]
		runs = append(runs, &run)
	}
	return runs, nil
}

// SetDefaults fills the target's unset settings: the interval, and the
// timeout, which is its module's m (defaults set). With this the scheduler
// reads a target's settings as they are, without a rule of its own.
func (t *Target) SetDefaults(m *probes.Module) {
	if t.Interval == 0 {
		t.Interval = DefaultInterval
	}
	if t.Timeout == 0 {
		t.Timeout = m.Timeout
	}
}

// setDefaultsAndCheck fills the target's defaults and checks its schedule.
// A message names a setting the file left out as the default it got, and
// blames the setting that was written.
func (t *Target) setDefaultsAndCheck(path string, m *probes.Module) error {
	written := *t
	t.SetDefaults(m)
	intervalName := "interval"
	if written.Interval == 0 {
		intervalName = "default interval"
	}
	switch {
	case t.Interval < MinInterval:
		return &ConfigError{Field: path + ".interval", Msg: fmt.Sprintf("must be at least %s, got %s", MinInterval, t.Interval)}
	case t.Timeout < 0:
		return &ConfigError{Field: path + ".timeout", Msg: fmt.Sprintf("must be positive, got %s", t.Timeout)}
	case t.Timeout <= t.Interval:
		return nil
	case written.Timeout != 0:
		return &ConfigError{Field: path + ".timeout", Msg: fmt.Sprintf("timeout %s exceeds %s %s: runs would overlap", t.Timeout, intervalName, t.Interval)}
	}
	return &ConfigError{Field: path + ".interval", Msg: fmt.Sprintf("module %q timeout %s exceeds %s %s: runs would overlap (set a longer interval or a shorter per-target timeout)", t.Module, t.Timeout, intervalName, t.Interval)}
}

// lineOf is the line of the field at path, or of its closest ancestor in
// the document (a required field that is missing has no line of its own).
func (c *checker) lineOf(path string) int {
	for p := path; p != ""; {
		if n, ok := c.lines[p]; ok {
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

var yamlLineRe = regexp.MustCompile(`^line (\d+): (.*)$`)

// syntaxError reports a YAML syntax error at the line it is on. A syntax
// error has no node to take a line from: the library's "yaml: line N:
// what" is all there is, and this is the one place that reads an error's
// text. N is where the enclosing block starts, which can be far above the
// mistake; a prefix of the file that holds the mistake fails with the same
// message, so the shortest such prefix ends on the mistake's line.
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
