package config

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/smtp-exporter/smtp_exporter/probes"

	"go.yaml.in/yaml/v3"
)

// checkTargetFiles resolves the globs of target_files against dir, the
// configuration file's directory, and checks their syntax. A glob that
// matches nothing is no error: the files may come later.
func (c *Config) checkTargetFiles(dir string) error {
	for i, g := range c.TargetFiles {
		field := fmt.Sprintf("target_files[%d]", i)
		if g == "" {
			return &ConfigError{Field: field, Msg: "empty glob"}
		}
		if !filepath.IsAbs(g) {
			g = filepath.Join(dir, g)
		}
		if _, err := filepath.Match(g, ""); err != nil {
			return &ConfigError{Field: field, Msg: fmt.Sprintf("bad glob %q: %v", g, err)}
		}
		c.TargetFiles[i] = g
	}
	return nil
}

// TargetFiles follows the files that target_files matches, as
// Prometheus's file_sd does: each file a YAML (or JSON) list of targets
// with the keys of the configuration file's targets. Scan notices what
// changed, Build joins the files' targets to the configuration file's. A
// file that cannot be used as it is (unreadable, not YAML, a bad or
// clashing target) keeps the targets it last held that were good.
//
// A TargetFiles is not safe for concurrent use.
type TargetFiles struct {
	files map[string]*targetFile
}

type targetFile struct {
	stat os.FileInfo
	// read is the file as last read, or nil when readErr says why it
	// could not be parsed; good is what it last held that Build accepted.
	// They are the same pointer while the file holds what was accepted.
	read, good *fileTargets
	readErr    error
}

// fileTargets is a file's targets as written, before defaults.
type fileTargets struct {
	targets []*Target
	lines   *checker // the line of each field, for errors
	sum     [sha256.Size]byte
}

// TargetFileError is a target file that cannot be used as it is: its
// last good targets, Kept of them, are probed instead.
type TargetFileError struct {
	File string
	Kept int
	Err  error
}

func (e *TargetFileError) Error() string { return e.Err.Error() }
func (e *TargetFileError) Unwrap() error { return e.Err }

// Files is the number of files the globs matched at the last Scan.
func (tf *TargetFiles) Files() int { return len(tf.files) }

// Scan matches the globs and reads the files that are new or whose size,
// modification time or identity changed (every file when force is set,
// for a reload). It reports whether anything changed: a file came, went
// or holds something else. Files that no longer match are forgotten,
// their targets with them.
func (tf *TargetFiles) Scan(globs []string, force bool) bool {
	if tf.files == nil {
		tf.files = map[string]*targetFile{}
	}
	matched := map[string]os.FileInfo{}
	for _, g := range globs {
		paths, _ := filepath.Glob(g) // the syntax was checked at load
		for _, p := range paths {
			if _, dup := matched[p]; dup {
				continue
			}
			// A name that vanished since the glob, or a dangling link,
			// is gone; a directory is no target file.
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				matched[p] = fi
			}
		}
	}
	changed := false
	for p := range tf.files {
		if _, ok := matched[p]; !ok {
			delete(tf.files, p)
			changed = true
		}
	}
	for p, fi := range matched {
		f := tf.files[p]
		if f == nil {
			f = &targetFile{}
			tf.files[p] = f
		} else if !force && sameStat(f.stat, fi) {
			continue
		}
		f.stat = fi
		if f.reread(p) {
			changed = true
		}
	}
	return changed
}

// sameStat reports a file that has not visibly changed. Editors and
// Kubernetes ConfigMap volumes replace a file by renaming another over
// it: that one is a different file even with the same size and time.
func sameStat(a, b os.FileInfo) bool {
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && os.SameFile(a, b)
}

// reread reads the file and reports whether what it holds changed.
func (f *targetFile) reread(path string) bool {
	data, err := readLimited(path, MaxConfigFileSize)
	if err != nil {
		f.read, f.readErr = nil, err
		return true
	}
	sum := sha256.Sum256(data)
	if f.read != nil && f.read.sum == sum {
		return false
	}
	if f.good != nil && f.good.sum == sum {
		// Back to what was accepted (a fix undone, a reload): it keeps
		// its standing against files that changed since.
		f.read, f.readErr = f.good, nil
		return true
	}
	f.read, f.readErr = parseTargetFile(data, path)
	if f.read != nil {
		f.read.sum = sum
	}
	return true
}

var targetListType = reflect.TypeFor[[]*Target]()

// parseTargetFile decodes a target file strictly, as Parse does the
// configuration file. An empty file is an empty list.
func parseTargetFile(data []byte, file string) (*fileTargets, error) {
	root, err := readDocument(data, file)
	if err != nil {
		return nil, err
	}
	ft := &fileTargets{lines: newChecker()}
	if len(root.Content) == 0 || emptyDocument(root) {
		return ft, nil
	}
	if n := root.Content[0]; n.Kind == yaml.MappingNode {
		return nil, &ConfigError{File: file, Line: n.Line, Msg: "want a list of targets, each with name, address and module; got a mapping"}
	}
	if cerr := ft.lines.check(root, targetListType, ""); cerr != nil {
		cerr.File = file
		return nil, cerr
	}
	if err := root.Decode(&ft.targets); err != nil {
		return nil, &ConfigError{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	// Only the lines are needed from now on.
	ft.lines.checked, ft.lines.fields = nil, nil
	return ft, nil
}

// origin is where a target was defined, for the message of a clash.
type origin struct {
	file  string
	index int
	from  *fileTargets // nil for the configuration file
}

func (o origin) String() string {
	if o.from == nil {
		return fmt.Sprintf("targets[%d] in %s", o.index, o.file)
	}
	return fmt.Sprintf("%s:%d", o.file, o.from.lines.lineOf(fmt.Sprintf("[%d].name", o.index)))
}

// Build returns cfg with the targets of the files after its own, each
// checked as the configuration file's are (against cfg's modules, defaults
// filled) and each name unique across cfg and every file. A file whose
// new content fails, or clashes with a name defined elsewhere, keeps the
// targets it last held that were good and still are; it is returned as a
// *TargetFileError, one per failing file, in path order.
//
// Names defined first stay: the configuration file's, then those of files
// that did not change since the last Build, then the changed files' in
// path order. A file edited to repeat a name elsewhere is the one refused,
// not the one that had the name.
func (tf *TargetFiles) Build(cfg *Config) (*Config, []error) {
	out := *cfg
	total := len(cfg.Targets)
	for _, f := range tf.files {
		if f.good != nil {
			total += len(f.good.targets)
		}
	}
	out.Targets = make([]*Target, len(cfg.Targets), total)
	copy(out.Targets, cfg.Targets)
	seen := make(map[string]origin, total)
	for i, t := range cfg.Targets {
		seen[t.Name] = origin{file: "the configuration file", index: i}
	}
	b := &builder{cfg: cfg, out: &out, seen: seen, problems: map[string]*TargetFileError{}, pinned: map[string]*probes.Module{}}

	paths := slices.Sorted(maps.Keys(tf.files))
	var changed []string
	for _, p := range paths {
		f := tf.files[p]
		if f.read != nil && f.read != f.good {
			changed = append(changed, p)
			continue
		}
		if f.readErr != nil {
			b.fail(p, f.readErr)
		}
		b.keepGood(p, f.good)
	}
	for _, p := range changed {
		f := tf.files[p]
		if err := b.accept(p, f.read); err != nil {
			b.fail(p, err)
			b.keepGood(p, f.good)
			continue
		}
		f.good = f.read
	}
	var errs []error
	for _, p := range paths {
		if e := b.problems[p]; e != nil {
			errs = append(errs, e)
		}
	}
	return &out, errs
}

type builder struct {
	cfg      *Config
	out      *Config
	seen     map[string]origin
	problems map[string]*TargetFileError
	// pinned holds the modules pinned to one family for the runs of
	// ip_protocol both targets, one per module and family.
	pinned map[string]*probes.Module
}

func (b *builder) fail(path string, err error) {
	if b.problems[path] == nil {
		b.problems[path] = &TargetFileError{File: path, Err: err}
	}
}

// check checks one target of a file, as the configuration file's are,
// and returns its runs with their defaults (one per family for a module
// with ip_protocol both); seen says where else a name is.
func (b *builder) check(path string, ft *fileTargets, i int, seen func(name string) string) ([]*Target, error) {
	field := fmt.Sprintf("[%d]", i)
	var t *Target
	if raw := ft.targets[i]; raw != nil {
		c := *raw
		t = &c
	}
	runs, err := b.cfg.checkTarget(field, t, b.pinned, seen)
	if err != nil {
		if ce, ok := err.(*ConfigError); ok {
			ce.File = path
			ce.Line = ft.lines.lineOf(ce.Field)
		}
		return nil, err
	}
	return runs, nil
}

// accept adds every target of ft, or none: the first problem is returned.
func (b *builder) accept(path string, ft *fileTargets) error {
	local := make(map[string]int, len(ft.targets))
	targets := make([]*Target, 0, len(ft.targets))
	index := make([]int, 0, len(ft.targets))
	for i := range ft.targets {
		runs, err := b.check(path, ft, i, func(name string) string {
			if o, ok := b.seen[name]; ok {
				return o.String()
			}
			if j, ok := local[name]; ok {
				return origin{file: path, index: j, from: ft}.String()
			}
			local[name] = i
			return ""
		})
		if err != nil {
			return err
		}
		for _, run := range runs {
			targets = append(targets, run)
			index = append(index, i)
		}
	}
	for k, t := range targets {
		b.seen[t.Name] = origin{file: path, index: index[k], from: ft}
	}
	b.out.Targets = append(b.out.Targets, targets...)
	return nil
}

// keepGood adds the targets of ft, a file's last good content, that are
// still good: a reload may have removed a module one uses, or another
// file taken a name. The first such problem is the file's, unless it has
// one already.
func (b *builder) keepGood(path string, ft *fileTargets) {
	if ft == nil {
		return
	}
	kept := 0
	for i := range ft.targets {
		runs, err := b.check(path, ft, i, func(name string) string {
			if o, ok := b.seen[name]; ok {
				return o.String()
			}
			return ""
		})
		if err != nil {
			b.fail(path, err)
			continue
		}
		for _, t := range runs {
			b.seen[t.Name] = origin{file: path, index: i, from: ft}
			b.out.Targets = append(b.out.Targets, t)
		}
		kept++
	}
	if e := b.problems[path]; e != nil {
		e.Kept = kept
	}
}
