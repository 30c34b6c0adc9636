// Package collector runs probes on schedule and turns their results into
// Prometheus metrics. This file reads the configuration file.
package collector

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/smtp-exporter/smtp_exporter/probes"
	"go.yaml.in/yaml/v3"
)

// Defaults for target settings; README.md documents them.
const (
	DefaultInterval = 60 * time.Second
	MinInterval     = time.Second
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
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// LoadFile reads and validates the configuration file.
func LoadFile(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b, path)
}

// Parse decodes a configuration strictly (unknown keys are errors), fills
// defaults and validates it; errors name file, line and field.
func Parse(data []byte, file string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, err, nil)
	}
	lines := fieldLines(&root)
	cfg := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF; let it reach validation, which says
	// what is missing.
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(file, err, &lines)
	}
	if err := cfg.validate(); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.File = file
			ce.Line = lines.lineOf(ce.Field)
		}
		return nil, err
	}
	return cfg, nil
}

func (c *Config) validate() error {
	if len(c.Modules) == 0 {
		return &ConfigError{Field: "modules", Msg: "at least one module is required"}
	}
	for _, name := range sortedKeys(c.Modules) {
		m := c.Modules[name]
		if m == nil {
			m = &probes.Module{}
			c.Modules[name] = m
		}
		m.SetDefaults()
		if err := m.Validate(); err != nil {
			var fe *probes.FieldError
			if errors.As(err, &fe) {
				return &ConfigError{Field: "modules." + name + "." + fe.Field, Msg: fe.Msg}
			}
			return &ConfigError{Field: "modules." + name, Msg: err.Error()}
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
		if j, dup := seen[t.Name]; dup {
			return &ConfigError{Field: path + ".name", Msg: fmt.Sprintf("duplicate target name %q (also targets[%d])", t.Name, j)}
		}
		seen[t.Name] = i
		m, ok := c.Modules[t.Module]
		if !ok {
			return &ConfigError{Field: path + ".module", Msg: fmt.Sprintf("unknown module %q", t.Module)}
		}
		if t.Interval == 0 {
			t.Interval = DefaultInterval
		}
		if t.Interval < MinInterval {
			return &ConfigError{Field: path + ".interval", Msg: fmt.Sprintf("must be at least %s, got %s", MinInterval, t.Interval)}
		}
		if t.Timeout < 0 {
			return &ConfigError{Field: path + ".timeout", Msg: fmt.Sprintf("must be positive, got %s", t.Timeout)}
		}
		timeout := t.Timeout
		field := path + ".timeout"
		if timeout == 0 {
			timeout, field = m.Timeout, path+".interval"
		}
		if timeout > t.Interval {
			return &ConfigError{Field: field, Msg: fmt.Sprintf("timeout %s exceeds interval %s: runs would overlap", timeout, t.Interval)}
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
// to the line of their key, and lines back to paths.
type lineIndex struct {
	byPath map[string]int
	byLine map[int]string
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

func fieldLines(root *yaml.Node) lineIndex {
	idx := lineIndex{byPath: map[string]int{}, byLine: map[int]string{}}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				idx.byPath[p] = k.Line
				if _, ok := idx.byLine[k.Line]; !ok {
					idx.byLine[k.Line] = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				idx.byPath[p] = c.Line
				walk(c, p)
			}
		}
	}
	walk(root, "")
	return idx
}

var yamlLineRe = regexp.MustCompile(`^line (\d+): (.*)$`)

// yamlError rewrites the YAML library's errors into ConfigErrors, naming
// the field at the reported line when the index knows it.
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
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		ce.Line, _ = strconv.Atoi(m[1])
		ce.Msg = m[2]
		if lines != nil {
			ce.Field = lines.byLine[ce.Line]
		}
	}
	if f, ok := strings.CutPrefix(ce.Msg, "field "); ok {
		if name, _, ok := strings.Cut(f, " not found"); ok {
			ce.Msg = fmt.Sprintf("unknown field %q", name)
		}
	}
	return ce
}
