package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that any document either loads, with every default
// filled in, or fails with a ConfigError: the walk over the nodes must not
// panic on a shape the Go types do not expect.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("modules:\n  base: &b {timeout: 5s}\n  mx: {<<: *b, smtp: {tls: none}}\ntargets:\n  - {name: a, address: x, module: mx}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Relative paths resolve against testdata, so that no file outside
		// it is looked at.
		cfg, err := Parse(data, "testdata/fuzz.yml")
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is %T, want *ConfigError", err, err)
			}
			return
		}
		for name, m := range cfg.Modules {
			if m == nil || m.Timeout <= 0 || m.Prober == "" {
				t.Fatalf("module %q without its defaults: %+v", name, m)
			}
		}
		for _, tg := range cfg.Targets {
			if tg.Interval < MinInterval || tg.Timeout <= 0 || tg.Timeout > tg.Interval {
				t.Fatalf("target %q: interval %s timeout %s", tg.Name, tg.Interval, tg.Timeout)
			}
		}
	})
}
