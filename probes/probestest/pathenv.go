package probestest

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// PathEnv returns the keys of a real-component path a project script
// started (scripts/mailpath.sh, scripts/domainpath.sh): those of the file
// PREFIX+"ENV" names, and the variables named PREFIX* from the environment
// (as `make` exports DIR/env) for keys the file does not set. The path is there when required
// is set; without it the test fails under SMTP_EXPORTER_E2E=1 (a missing
// component is a failure in CI) and is skipped otherwise.
func PathEnv(t testing.TB, prefix, required, script string) map[string]string {
	t.Helper()
	env := map[string]string{}
	if path := os.Getenv(prefix + "ENV"); path != "" {
		f, err := os.Open(path)
		if err != nil {
			t.Fatalf("%sENV: %v", prefix, err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
				env[k] = v
			}
		}
	}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, prefix) {
			if _, set := env[k]; !set {
				env[k] = v
			}
		}
	}
	if env[required] == "" {
		if os.Getenv("SMTP_EXPORTER_E2E") == "1" {
			t.Fatalf("SMTP_EXPORTER_E2E=1 but no %s path: run `%s start DIR` and export DIR/env (or set %sENV=DIR/env)", script, script, prefix)
		}
		t.Skipf("no %s path; set SMTP_EXPORTER_E2E=1 to require it", script)
	}
	return env
}
