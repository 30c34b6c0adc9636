package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkParse_10kTargets measures a reload of a large file, which the
// node walk must not make much slower than the YAML decoding itself.
func BenchmarkParse_10kTargets(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("modules:\n  mx:\n    smtp: {tls: none}\ntargets:\n")
	for i := range 10000 {
		fmt.Fprintf(&sb, "  - name: t%d\n    address: mx%d.example.net:25\n    module: mx\n    interval: 2m\n", i, i)
	}
	data := []byte(sb.String())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, "big.yml"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTargetFiles_10kTargets measures loading 10,000 targets from
// ten target files, as at start or when every file changed: read, parse,
// check and join to the configuration file's. It must stay well under a
// second.
func BenchmarkTargetFiles_10kTargets(b *testing.B) {
	dir := b.TempDir()
	for f := range 10 {
		var sb strings.Builder
		for i := range 1000 {
			fmt.Fprintf(&sb, "- name: t%d-%d\n  address: mx%d.example.net:25\n  module: mx\n  interval: 2m\n", f, i, i)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("t%d.yml", f)), []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	cfg, err := Parse([]byte("modules:\n  mx:\n    smtp: {tls: none}\ntarget_files: ['*.yml']\n"), filepath.Join(dir, "smtp_exporter.conf"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var tf TargetFiles
		tf.Scan(cfg.TargetFiles, true)
		out, errs := tf.Build(cfg)
		if len(errs) != 0 || len(out.Targets) != 10000 {
			b.Fatalf("%d targets, errors %v", len(out.Targets), errs)
		}
	}
}
