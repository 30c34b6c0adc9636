package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const targetFilesConfig = `modules:
  mx:
    smtp: {tls: none}
  other:
    smtp: {tls: none}
targets:
  - {name: main, address: "mx.example.net:25", module: mx}
target_files: ["targets.d/*.yml", "targets.d/*.json"]
`

// targetFilesEnv is a configuration in a temporary directory, its target
// files beside it in targets.d.
type targetFilesEnv struct {
	t   *testing.T
	dir string
	cfg *Config
	tf  TargetFiles
}

func newTargetFilesEnv(t *testing.T, config string) *targetFilesEnv {
	t.Helper()
	e := &targetFilesEnv{t: t, dir: t.TempDir()}
	if err := os.Mkdir(filepath.Join(e.dir, "targets.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.load(config)
	return e
}

func (e *targetFilesEnv) load(config string) {
	e.t.Helper()
	path := filepath.Join(e.dir, "smtp_exporter.yml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		e.t.Fatal(err)
	}
	cfg, err := LoadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	e.cfg = cfg
}

// write replaces a target file by renaming a new one over it, as the
// README advises: a reader never sees it half written.
func (e *targetFilesEnv) write(name, content string) {
	e.t.Helper()
	path := filepath.Join(e.dir, "targets.d", name)
	tmp := filepath.Join(e.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		e.t.Fatal(err)
	}
}

func (e *targetFilesEnv) remove(name string) {
	e.t.Helper()
	if err := os.Remove(filepath.Join(e.dir, "targets.d", name)); err != nil {
		e.t.Fatal(err)
	}
}

// build scans (reporting whether it saw a change) and returns the target
// names and the failing files' errors.
func (e *targetFilesEnv) build(force bool) (changed bool, names []string, errs []error) {
	changed = e.tf.Scan(e.cfg.TargetFiles, force)
	cfg, errs := e.tf.Build(e.cfg)
	for _, t := range cfg.Targets {
		names = append(names, t.Name)
	}
	return changed, names, errs
}

func (e *targetFilesEnv) want(names ...string) {
	e.t.Helper()
	_, got, errs := e.build(false)
	if !slices.Equal(got, names) {
		e.t.Errorf("targets %v, want %v (file errors: %v)", got, names, errs)
	}
}

func targetsYAML(names ...string) string {
	var sb strings.Builder
	for _, n := range names {
		fmt.Fprintf(&sb, "- name: %s\n  address: %s.example.net:25\n  module: mx\n", n, n)
	}
	return sb.String()
}

// The life of target files: each step is what the running exporter sees
// at its next check, without a reload.
func TestTargetFiles_Lifecycle(t *testing.T) {
	e := newTargetFilesEnv(t, targetFilesConfig)
	e.want("main")

	// Add.
	e.write("a.yml", targetsYAML("a1", "a2"))
	e.want("main", "a1", "a2")

	// Nothing changed: nothing to do.
	if changed, _, _ := e.build(false); changed {
		t.Error("Scan reports a change when no file changed")
	}

	// Change.
	e.write("a.yml", targetsYAML("a1", "a3"))
	e.want("main", "a1", "a3")

	// Break: the last good targets stay, and the error says where.
	e.write("a.yml", targetsYAML("a1", "a4")+"- name: a5\n  address: a5.example.net:25\n  module: nosuch\n")
	changed, names, errs := e.build(false)
	if !changed || !slices.Equal(names, []string{"main", "a1", "a3"}) {
		t.Errorf("after breaking a.yml: changed %v, targets %v; want the last good main, a1, a3", changed, names)
	}
	var fe *TargetFileError
	if len(errs) != 1 || !errors.As(errs[0], &fe) || fe.Kept != 2 {
		t.Fatalf("errors %v, want one TargetFileError that kept 2 targets", errs)
	}
	if msg := errs[0].Error(); !strings.Contains(msg, "a.yml:9: [2].module: unknown module \"nosuch\"") {
		t.Errorf("error %q does not name file, line and field", msg)
	}

	// A syntax error too.
	e.write("a.yml", "- name: [unclosed\n")
	if _, names, errs := e.build(false); !slices.Equal(names, []string{"main", "a1", "a3"}) || len(errs) != 1 {
		t.Errorf("after a syntax error: targets %v, errors %v; want main, a1, a3 and one error", names, errs)
	}

	// Fix.
	e.write("a.yml", targetsYAML("a1", "a4"))
	_, names, errs = e.build(false)
	if !slices.Equal(names, []string{"main", "a1", "a4"}) || len(errs) != 0 {
		t.Errorf("after the fix: targets %v, errors %v; want main, a1, a4 and none", names, errs)
	}

	// A new file the glob matches, in JSON.
	e.write("b.json", `[{"name": "b1", "address": "b1.example.net:25", "module": "other", "interval": "2m"}]`)
	e.want("main", "a1", "a4", "b1")

	// Delete: its targets go.
	e.remove("a.yml")
	e.want("main", "b1")
	e.remove("b.json")
	e.want("main")
}

// A file's targets are checked as the configuration file's are, and get
// the same defaults.
func TestTargetFiles_DefaultsAndChecks(t *testing.T) {
	e := newTargetFilesEnv(t, targetFilesConfig)
	e.write("a.yml", "- {name: a, address: 'a.example.net:25', module: mx}\n")
	e.tf.Scan(e.cfg.TargetFiles, false)
	cfg, errs := e.tf.Build(e.cfg)
	if len(errs) != 0 || len(cfg.Targets) != 2 {
		t.Fatalf("targets %v, errors %v", cfg.Targets, errs)
	}
	if got := cfg.Targets[1]; got.Interval != DefaultInterval || got.Timeout != e.cfg.Modules["mx"].Timeout {
		t.Errorf("a file's target has interval %s and timeout %s, want the defaults", got.Interval, got.Timeout)
	}
	for content, want := range map[string]string{
		"- {name: a, address: 'a.example.net:25', module: mx, color: red}\n": `a.yml:1: [0].color: unknown field "color"`,
		"targets:\n  - {name: a}\n": "a.yml:1: want a list of targets",
		"- {name: a, module: mx}\n": "a.yml:1: [0].address: required",
		"- {name: a, address: 'a.example.net:25', module: mx, interval: 1s, timeout: 5s}\n":                            "a.yml:1: [0].timeout: timeout 5s exceeds interval 1s",
		"- {name: a, address: 'a.example.net:25', module: mx}\n- {name: a, address: 'b.example.net:25', module: mx}\n": `a.yml:2: [1].name: duplicate target name "a" (also /`,
		"- {name: a, address: 'a.example.net:25', module: mx}\n---\n- {name: b}\n":                                     "more than one YAML document",
	} {
		e := newTargetFilesEnv(t, targetFilesConfig)
		e.write("a.yml", content)
		_, names, errs := e.build(false)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), want) || len(names) != 1 {
			t.Errorf("a.yml %q: targets %v, errors %v; want only main and an error with %q", content, names, errs, want)
		}
	}
	// An empty file is an empty list, as is a file of comments.
	for _, content := range []string{"", "# none yet\n", "[]\n"} {
		e := newTargetFilesEnv(t, targetFilesConfig)
		e.write("a.yml", content)
		if _, names, errs := e.build(false); len(errs) != 0 || len(names) != 1 {
			t.Errorf("a.yml %q: targets %v, errors %v; want main and no error", content, names, errs)
		}
	}
}

// A name is unique across the configuration file and every target file;
// the error names both places, and the file that came with the clash is
// the one refused.
func TestTargetFiles_NamesUnique(t *testing.T) {
	e := newTargetFilesEnv(t, targetFilesConfig)
	e.write("z.yml", targetsYAML("z1", "shared"))
	e.want("main", "z1", "shared")

	// a.yml sorts first, but z.yml had the name.
	e.write("a.yml", targetsYAML("a1", "shared"))
	_, names, errs := e.build(false)
	if !slices.Equal(names, []string{"main", "z1", "shared"}) {
		t.Errorf("targets %v, want a.yml refused whole and z.yml kept", names)
	}
	zPath := filepath.Join(e.dir, "targets.d", "z.yml")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `a.yml:4: [1].name: duplicate target name "shared" (also `+zPath+`:4)`) {
		t.Errorf("errors %v, want a.yml's clash with z.yml, both located", errs)
	}
	// A reload re-reads every file; the standing is kept.
	if _, names, _ := e.build(true); !slices.Equal(names, []string{"main", "z1", "shared"}) {
		t.Errorf("after a forced re-read: targets %v, want z.yml's shared kept", names)
	}

	// The configuration file's name clashes with a file's.
	e.write("a.yml", targetsYAML("main"))
	_, _, errs = e.build(false)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `duplicate target name "main" (also targets[0] in the configuration file)`) {
		t.Errorf("errors %v, want a.yml's clash with the configuration file's target", errs)
	}
}

// A reload that removes a module keeps the files' other targets and
// reports the file.
func TestTargetFiles_ReloadChecksAgain(t *testing.T) {
	e := newTargetFilesEnv(t, targetFilesConfig)
	e.write("a.yml", targetsYAML("a1")+"- {name: a2, address: 'a2.example.net:25', module: other}\n")
	e.want("main", "a1", "a2")
	e.load(strings.Replace(targetFilesConfig, "  other:\n    smtp: {tls: none}\n", "", 1))
	_, names, errs := e.build(true)
	if !slices.Equal(names, []string{"main", "a1"}) {
		t.Errorf("targets %v, want a2 (of the removed module) dropped and a1 kept", names)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `[1].module: unknown module "other"`) {
		t.Errorf("errors %v, want a.yml's unknown module", errs)
	}
}

// An edit in place, as an editor without atomic saves makes it, is seen
// too.
func TestTargetFiles_InPlaceEdit(t *testing.T) {
	e := newTargetFilesEnv(t, targetFilesConfig)
	path := filepath.Join(e.dir, "targets.d", "a.yml")
	if err := os.WriteFile(path, []byte(targetsYAML("a1")), 0o644); err != nil {
		t.Fatal(err)
	}
	e.want("main", "a1")
	if err := os.WriteFile(path, []byte(targetsYAML("a1", "a2")), 0o644); err != nil {
		t.Fatal(err)
	}
	e.want("main", "a1", "a2")
}

func TestTargetFiles_BadGlob(t *testing.T) {
	_, err := Parse([]byte("modules: {mx: {smtp: {tls: none}}}\ntarget_files: ['[']\n"), "x.yml")
	if err == nil || !strings.Contains(err.Error(), "x.yml:2: target_files[0]: bad glob") {
		t.Errorf("error %v, want the bad glob located", err)
	}
	cfg, err := Parse([]byte("modules: {mx: {smtp: {tls: none}}}\ntarget_files: ['t/*.yml', '/abs/*.yml']\n"), "/etc/smtp/x.yml")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/etc/smtp/t/*.yml", "/abs/*.yml"}; !slices.Equal(cfg.TargetFiles, want) {
		t.Errorf("target_files resolve to %v, want %v (relative to the configuration file)", cfg.TargetFiles, want)
	}
}

// A file's target of an ip_protocol both module runs once per family, as
// the configuration file's do, each run pinned to its family.
func TestTargetFiles_BothFamiliesExpand(t *testing.T) {
	const both = `modules:
  dual:
    ip_protocol: both
    smtp: {tls: none}
  single:
    smtp: {tls: none}
targets: []
target_files: ["targets.d/*.yml"]
`
	e := newTargetFilesEnv(t, both)
	e.write("a.yml", "- {name: mx1, address: 'mx1.example.net:25', module: dual}\n")
	e.tf.Scan(e.cfg.TargetFiles, false)
	cfg, errs := e.tf.Build(e.cfg)
	if len(errs) != 0 || len(cfg.Targets) != 2 {
		t.Fatalf("targets %v, errors %v; want mx1/ip4 and mx1/ip6", cfg.Targets, errs)
	}
	for i, family := range []string{"ip4", "ip6"} {
		tg := cfg.Targets[i]
		if tg.Name != "mx1/"+family || cfg.ModuleOf(tg).IPProtocol != family {
			t.Errorf("run %d = %s with ip_protocol %s, want mx1/%s pinned to it", i, tg.Name, cfg.ModuleOf(tg).IPProtocol, family)
		}
	}
	e.write("a.yml", "- {name: mx1, address: 'mx1.example.net:25', module: dual}\n- {name: mx1/ip6, address: 'mx2.example.net:25', module: single}\n")
	e.tf.Scan(e.cfg.TargetFiles, false)
	if _, errs := e.tf.Build(e.cfg); len(errs) != 1 || !strings.Contains(errs[0].Error(), `duplicate target name "mx1/ip6"`) {
		t.Errorf("a clash with an expanded name: errors %v, want a duplicate name", errs)
	}
}
