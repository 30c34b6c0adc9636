// Package mixin renders the smtp_exporter monitoring mixin (the jsonnet
// in this directory) into the files the examples ship:
// examples/alerts.yml and examples/grafana/smtp_exporter.json.
//
// The jsonnet is evaluated with go-jsonnet, so rendering needs no tool
// beyond Go. Rules are written by a small emitter of its own rather than
// a YAML library, to keep the file as people read it: the mixin's hidden
// header::, section:: and comment:: fields become YAML comments,
// expressions literal blocks, descriptions folded lines.
package mixin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-jsonnet"
	"go.yaml.in/yaml/v3"
)

// The rendered files, relative to the repository's root.
const (
	AlertsFile    = "examples/alerts.yml"
	DashboardFile = "examples/grafana/smtp_exporter.json"
)

// extract turns the mixin into plain data for the emitter: the hidden
// comment fields become visible, and every rule's fields are listed in the
// order they are written.
const extract = `
local m = (import 'mixin.libsonnet') + { _config+:: std.extVar('config') };
local hidden(o, f) = if std.objectHasAll(o, f) then o[f] else '';
{
  header: m.prometheusAlerts.header,
  groups: [
    {
      name: g.name,
      rules: [
        {
          section: hidden(r, 'section'),
          comment: hidden(r, 'comment'),
          descriptionLines: hidden(r, 'descriptionLines'),
          rule: r,
        }
        for r in g.rules
      ],
    }
    for g in m.prometheusAlerts.groups
  ],
  dashboards: m.grafanaDashboards,
}
`

// generatedNote opens the rendered alerts.yml.
const generatedNote = "Generated from mixin/ by `make mixin`: edit mixin/alerts.libsonnet, not this file.\n"

type rendered struct {
	Header string `json:"header"`
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Section string `json:"section"`
			Comment string `json:"comment"`
			// DescriptionLines is the description as written, before
			// folding: the rendered file keeps its lines.
			DescriptionLines string          `json:"descriptionLines"`
			Rule             json.RawMessage `json:"rule"`
		} `json:"rules"`
	} `json:"groups"`
	Dashboards map[string]json.RawMessage `json:"dashboards"`
}

type rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// Render evaluates the mixin in dir and returns the rendered files by
// their path relative to the repository's root. config, a jsonnet object
// or "", overrides settings of config.libsonnet.
func Render(dir, config string) (map[string][]byte, error) {
	if config == "" {
		config = "{}"
	}
	vm := jsonnet.MakeVM()
	vm.ExtCode("config", config)
	vm.Importer(&jsonnet.FileImporter{JPaths: []string{dir}})
	out, err := vm.EvaluateAnonymousSnippet(filepath.Join(dir, "render.jsonnet"), extract)
	if err != nil {
		return nil, err
	}
	var r rendered
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("the mixin's output: %w", err)
	}
	alerts, err := emitAlerts(&r)
	if err != nil {
		return nil, err
	}
	dash, ok := r.Dashboards["smtp_exporter.json"]
	if !ok || len(r.Dashboards) != 1 {
		return nil, fmt.Errorf("grafanaDashboards: want smtp_exporter.json alone, have %d dashboards", len(r.Dashboards))
	}
	var compact, indented bytes.Buffer
	if err := json.Compact(&compact, dash); err != nil {
		return nil, err
	}
	if err := json.Indent(&indented, compact.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	indented.WriteByte('\n')
	return map[string][]byte{AlertsFile: alerts, DashboardFile: indented.Bytes()}, nil
}

func emitAlerts(r *rendered) ([]byte, error) {
	var b bytes.Buffer
	writeComment(&b, "", generatedNote+"\n"+r.Header)
	b.WriteString("\ngroups:\n")
	for gi, g := range r.Groups {
		if gi > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "  - name: %s\n    rules:\n", plain(g.Name))
		for i, rr := range g.Rules {
			var ru rule
			dec := json.NewDecoder(bytes.NewReader(rr.Rule))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ru); err != nil {
				return nil, fmt.Errorf("group %s, rule %d: %w", g.Name, i, err)
			}
			if ru.Alert == "" || ru.Expr == "" {
				return nil, fmt.Errorf("group %s, rule %d: no alert or expr", g.Name, i)
			}
			if i > 0 {
				b.WriteString("\n")
			}
			if rr.Section != "" {
				b.WriteString("      ")
				writeComment(&b, "      ", rr.Section)
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "      - alert: %s\n", plain(ru.Alert))
			if rr.Comment != "" {
				b.WriteString("        ")
				writeComment(&b, "        ", rr.Comment)
			}
			b.WriteString("        expr: ")
			writeExpr(&b, "          ", ru.Expr)
			if ru.For != "" {
				fmt.Fprintf(&b, "        for: %s\n", plain(ru.For))
			}
			if len(ru.Labels) > 0 {
				b.WriteString("        labels:\n")
				for _, k := range sortedKeys(ru.Labels) {
					fmt.Fprintf(&b, "          %s: %s\n", k, plain(ru.Labels[k]))
				}
			}
			if len(ru.Annotations) > 0 {
				b.WriteString("        annotations:\n")
				for _, k := range annotationOrder(ru.Annotations) {
					v := ru.Annotations[k]
					if k == "description" {
						fmt.Fprintf(&b, "          %s: >-\n", k)
						if err := writeFolded(&b, "            ", v, rr.DescriptionLines); err != nil {
							return nil, fmt.Errorf("%s: description: %w", ru.Alert, err)
						}
						continue
					}
					fmt.Fprintf(&b, "          %s: %s\n", k, quoted(v))
				}
			}
		}
	}
	if err := checkRoundTrip(b.Bytes(), r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// checkRoundTrip parses the emitted YAML back and compares it with the
// mixin's rules, so that a quirk of the emitter (a fold YAML reads
// differently) fails the rendering instead of changing an alert.
func checkRoundTrip(out []byte, r *rendered) error {
	var back struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(out, &back); err != nil {
		return fmt.Errorf("the rendered rules do not parse: %w", err)
	}
	if len(back.Groups) != len(r.Groups) {
		return fmt.Errorf("rendered %d groups, want %d", len(back.Groups), len(r.Groups))
	}
	for gi, g := range r.Groups {
		if back.Groups[gi].Name != g.Name || len(back.Groups[gi].Rules) != len(g.Rules) {
			return fmt.Errorf("group %s: rendered differently", g.Name)
		}
		for i, rr := range g.Rules {
			var want rule
			if err := json.Unmarshal(rr.Rule, &want); err != nil {
				return err
			}
			w, _ := json.Marshal(want)
			got, _ := json.Marshal(back.Groups[gi].Rules[i])
			if !bytes.Equal(w, got) {
				return fmt.Errorf("rule %s reads back differently:\n got %s\nwant %s", want.Alert, got, w)
			}
		}
	}
	return nil
}

func writeComment(b *bytes.Buffer, indent, text string) {
	for i, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if i > 0 {
			b.WriteString(indent)
		}
		if l == "" {
			b.WriteString("#\n")
		} else {
			b.WriteString("# " + l + "\n")
		}
	}
}

func writeExpr(b *bytes.Buffer, indent, expr string) {
	if !strings.Contains(expr, "\n") {
		b.WriteString(plain(expr) + "\n")
		return
	}
	b.WriteString("|")
	if !strings.HasSuffix(expr, "\n") {
		b.WriteString("-")
	}
	b.WriteString("\n")
	for _, l := range strings.Split(strings.TrimSuffix(expr, "\n"), "\n") {
		if l == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString(indent + l + "\n")
	}
}

// foldWidth is the longest line writeFolded aims for, indentation included.
const foldWidth = 120

// writeFolded writes s as the lines of a folded block scalar: the lines
// it was folded from when they fold to s, else broken at single spaces
// between words (YAML reads each break back as one space; a line starting
// with a space would be read literally).
func writeFolded(b *bytes.Buffer, indent, s, lines string) error {
	if s == "" || strings.ContainsAny(s, "\n\t") || s[0] == ' ' || strings.HasSuffix(s, " ") {
		return fmt.Errorf("cannot fold %q", s)
	}
	if ls := strings.Split(strings.TrimSuffix(lines, "\n"), "\n"); strings.Join(ls, " ") == s {
		for _, l := range ls {
			if l == "" || l[0] == ' ' || strings.HasSuffix(l, " ") {
				return fmt.Errorf("cannot fold line %q", l)
			}
			b.WriteString(indent + l + "\n")
		}
		return nil
	}
	var line string
	for _, w := range splitFoldable(s) {
		if line != "" && len(indent)+len(line)+1+len(w) > foldWidth {
			b.WriteString(indent + line + "\n")
			line = w
			continue
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	b.WriteString(indent + line + "\n")
	return nil
}

// splitFoldable splits s at the single spaces a fold may break at; runs
// of spaces stay inside a word.
func splitFoldable(s string) []string {
	var words []string
	start := 0
	for i := 1; i < len(s)-1; i++ {
		if s[i] == ' ' && s[i-1] != ' ' && s[i+1] != ' ' {
			words = append(words, s[start:i])
			start = i + 1
		}
	}
	return append(words, s[start:])
}

// plain returns s as a plain scalar when YAML reads it back unchanged,
// else double-quoted.
func plain(s string) string {
	var back string
	if s != "" && !strings.ContainsAny(s[:1], "-?:,[]{}#&*!|>'\"%@` ") &&
		!strings.Contains(s, ": ") && !strings.Contains(s, " #") &&
		yaml.Unmarshal([]byte("v: "+s), &struct {
			V *string `yaml:"v"`
		}{&back}) == nil && back == s {
		return s
	}
	return quoted(s)
}

func quoted(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func sortedKeys(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// annotationOrder is summary, description, runbook_url, then the rest in
// name order.
func annotationOrder(m map[string]string) []string {
	var out []string
	for _, k := range []string{"summary", "description", "runbook_url"} {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	for _, k := range sortedKeys(m) {
		if k != "summary" && k != "description" && k != "runbook_url" {
			out = append(out, k)
		}
	}
	return out
}
