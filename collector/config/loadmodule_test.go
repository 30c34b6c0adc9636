package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// oneShotConfig has three modules: mx, needing nothing; submission, whose
// password file is missing; posture, a domain module whose MX sessions use
// tlsmx, whose CA file is missing.
const oneShotConfig = `modules:
  mx:
    smtp: {tls: none}
  submission:
    smtp:
      auth: {username: monitor@example.test, password_file: secrets/submission.password}
  tlsmx:
    smtp:
      tls_config: {ca_file: secrets/ca.pem}
  posture:
    prober: domain
    domain: {mx_module: tlsmx}
targets:
  - {name: sub, address: "192.0.2.1:587", module: submission}
  - {name: mx, address: "192.0.2.1:25", module: mx}
`

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "smtp_exporter.yml")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestLoadFileForModule: a one-shot probe of a module needs that module's
// files only; the others' missing files are warnings with file, line and
// field, where LoadFile (--config.check, serve) refuses them.
func TestLoadFileForModule(t *testing.T) {
	file := writeConfig(t, oneShotConfig)
	if _, err := LoadFile(file); err == nil {
		t.Fatal("LoadFile accepted a missing password file")
	}

	cfg, warnings, err := LoadFileForModule(file, "mx")
	if err != nil {
		t.Fatalf("LoadFileForModule(mx): %v", err)
	}
	if m := cfg.Modules["mx"]; m == nil || m.SMTP.TLS != "none" {
		t.Errorf("module mx = %+v, want it loaded with its settings", m)
	}
	if len(cfg.Targets) != 2 {
		t.Errorf("%d targets, want 2", len(cfg.Targets))
	}
	var got []string
	for _, w := range warnings {
		got = append(got, w.Error())
	}
	dir := filepath.Dir(file)
	want := []string{
		file + ":6: modules.submission.smtp.auth.password_file: stat " + filepath.Join(dir, "secrets/submission.password") + ": no such file or directory",
		file + ":9: modules.tlsmx.smtp.tls_config.ca_file: stat " + filepath.Join(dir, "secrets/ca.pem") + ": no such file or directory",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The module's own files, and its MX module's, are required.
	for _, tt := range []struct{ module, field string }{
		{"submission", "modules.submission.smtp.auth.password_file"},
		{"tlsmx", "modules.tlsmx.smtp.tls_config.ca_file"},
		{"posture", "modules.tlsmx.smtp.tls_config.ca_file"},
	} {
		if _, _, err := LoadFileForModule(file, tt.module); err == nil || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("LoadFileForModule(%s) = %v, want the error of %s", tt.module, err, tt.field)
		}
	}
}

// TestLoadFileForModule_OtherMistakes: only files that cannot be read are
// forgiven; another module's wrong setting is the mistake it always was.
func TestLoadFileForModule_OtherMistakes(t *testing.T) {
	file := writeConfig(t, "modules:\n  mx: {smtp: {tls: none}}\n  bad: {smtp: {tls: ssl}}\n")
	if _, _, err := LoadFileForModule(file, "mx"); err == nil || !strings.Contains(err.Error(), "modules.bad.smtp.tls") {
		t.Errorf("LoadFileForModule = %v, want the error of modules.bad.smtp.tls", err)
	}
	dir := t.TempDir()
	file = writeConfig(t, "modules:\n  mx: {smtp: {tls: none}}\n  sub:\n    smtp:\n      auth: {username: u, password_file: "+dir+"}\n")
	if _, _, err := LoadFileForModule(file, "mx"); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("LoadFileForModule = %v, want the error of a directory as password_file", err)
	}
}
