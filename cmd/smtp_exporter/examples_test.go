package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes/probestest"
)

// examplesDir is the repository's examples/ as seen from this package.
const examplesDir = "../../examples"

// prometheusExamples are the files of examples/ that Prometheus reads, not
// the exporter; examples/examples_test.go checks them with promtool.
var prometheusExamples = []string{"alerts.yml", "prometheus.yml"}

// localExamples are the examples for a server `make postfix-start` starts,
// with the files of it they name (relative to examples/); they load only
// once it has been started. The test lays out those files as the server
// would, with a CA of its own, and checks the example in that tree.
var localExamples = map[string][]string{
	"local.yml": {"../.e2e/tls/ca.crt"},
}

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
			if needs, ok := localExamples[name]; ok {
				file = localTree(t, file, needs)
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

// localTree copies the example at path into examples/ of a temporary tree
// and creates there the files it needs (CA certificates), as `make
// postfix-start` does in the repository; it returns the copy's path.
func localTree(t *testing.T, path string, needs []string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "examples")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ca := probestest.NewCA(t)
	for _, name := range needs {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, ca.CertPEM, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copied := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(copied, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return copied
}

// TestExamples_LocalMatchesPostfixScript keeps examples/local.yml on the
// ports scripts/postfix.sh listens on by default, and README.md's "Try it
// locally" on the recipients and replies the script configures.
func TestExamples_LocalMatchesPostfixScript(t *testing.T) {
	script, err := os.ReadFile("../../scripts/postfix.sh")
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]bool{}
	for _, m := range regexp.MustCompile(`SMTP_EXPORTER_POSTFIX_\w*PORT:-(\d+)`).FindAllStringSubmatch(string(script), -1) {
		ports[m[1]] = true
	}
	if len(ports) != 4 {
		t.Fatalf("found default ports %v in scripts/postfix.sh, want 4", ports)
	}
	cfg, err := config.LoadFile(localTree(t, filepath.Join(examplesDir, "local.yml"), localExamples["local.yml"]))
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range cfg.Targets {
		if _, port, _ := net.SplitHostPort(tg.Address); !ports[port] {
			t.Errorf("local.yml: target %s at %s, not a port of scripts/postfix.sh (%v)", tg.Name, tg.Address, ports)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*(\w+)@\$DOMAIN (\d{3} \d\.\d\.\d)`).FindAllStringSubmatch(string(script), -1) {
		rcpt, reply := m[1]+"@example.test", m[2]
		if !regexp.MustCompile(regexp.QuoteMeta(rcpt) + "`?[^\n]*" + regexp.QuoteMeta(reply)).Match(readme) {
			t.Errorf("README.md does not show that %s answers %s, as scripts/postfix.sh configures", rcpt, reply)
		}
	}
}
