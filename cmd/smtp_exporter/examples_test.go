package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// examplesDir is the repository's examples/ as seen from this package.
const examplesDir = "../../examples"

// prometheusExamples are the files of examples/ that Prometheus reads, not
// the exporter; examples/examples_test.go checks them with promtool.
var prometheusExamples = []string{"alerts.yml", "prometheus.yml"}

// TestExamples_ConfigCheck runs `smtp_exporter --config.file=examples/X.yml
// --config.check` on every exporter configuration in examples/, as shipped
// and from another directory than the file's, the way a user copying the
// README's command does: each must check clean with no file created for it
// (the secret files it names are the placeholders shipped beside it, found
// relative to the configuration).
func TestExamples_ConfigCheck(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, file := range files {
		name := filepath.Base(file)
		if slices.Contains(prometheusExamples, name) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if !hasModules(t, file) {
				t.Fatalf("%s has no modules: an exporter configuration, or add it to prometheusExamples", file)
			}
			code, _, stderr := runMain(t, "--config.file="+file, "--config.check")
			if code != 0 {
				t.Errorf("smtp_exporter --config.file=%s --config.check: exit %d, want 0; stderr:\n%s", file, code, stderr)
			}
		})
		checked++
	}
	if checked < 5 {
		t.Errorf("checked %d example configurations in %s, want every one of them (at least 5)", checked, examplesDir)
	}
}

// hasModules reports whether the YAML file at path has a top-level modules
// key, as every exporter configuration must.
func hasModules(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	_, ok := doc["modules"]
	return ok
}
