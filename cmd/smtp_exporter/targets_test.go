package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smtp-exporter/smtp_exporter/collector/config"
)

// targetList is a target file of the names, on closed ports.
func targetList(t *testing.T, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "- {name: %s, address: %q, module: mx, interval: 1s}\n", n, closedPortAddr(t))
	}
	return b.String()
}

// inShard counts the names shard keeps.
func inShard(shard config.Shard, names ...string) int {
	n := 0
	for _, name := range names {
		if shard.Keeps(name) {
			n++
		}
	}
	return n
}

// The running exporter follows its target files without a reload and
// probes only its shard of all the targets; /metrics and /config say
// which shard, and a broken file keeps its last good targets.
func TestServe_TargetFilesAndShard(t *testing.T) {
	bin := exporterBinary(t)
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "targets.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	var first, second []string
	for i := range 20 {
		first = append(first, fmt.Sprintf("a%d", i))
		second = append(second, fmt.Sprintf("b%d", i))
	}
	shard := config.Shard{Index: 1, Count: 2}
	writeTestFile(t, filepath.Join(dir, "targets.d"), "a.yml", targetList(t, first...))
	configFile := writeTestFile(t, dir, "smtp_exporter.yml", minimalConfig(t, "main")+"target_files: [targets.d/*.yml]\n")
	p := startExporter(t, bin, "--config.file="+configFile, "--targets.shard="+shard.String(), "--targets.refresh-interval=100ms")
	client := newTestClient(t, nil)
	gauge := func(name string) float64 {
		v, _ := scrapeMetrics(t, client, p.url("/metrics")).value(name, nil)
		return v
	}

	want := inShard(shard, append(first, "main")...)
	if got := gauge("smtp_exporter_targets"); int(got) != want {
		t.Errorf("smtp_exporter_targets = %v, want the %d of shard %s", got, want, shard)
	}
	if _, ok := scrapeMetrics(t, client, p.url("/metrics")).value("smtp_exporter_shard_info", map[string]string{"index": "1", "count": "2"}); !ok {
		t.Error("no smtp_exporter_shard_info{index=\"1\",count=\"2\"}")
	}
	if _, body := httpGet(t, client, p.url("/config")); !strings.HasPrefix(body, "# Shard 1/2 (--targets.shard)") {
		t.Errorf("/config does not say which shard:\n%.300s", body)
	}

	// A new file: applied without a reload.
	writeTestFile(t, filepath.Join(dir, "targets.d"), "b.yml", targetList(t, second...))
	want += inShard(shard, second...)
	eventually(t, 10*time.Second, func() (bool, string) {
		return int(gauge("smtp_exporter_targets")) == want, fmt.Sprintf("smtp_exporter_targets %d", want)
	})

	// Broken: its last good targets stay, and the failing gauge and the
	// log say so.
	writeTestFile(t, filepath.Join(dir, "targets.d"), "b.yml", "- {name: b0, address: [}\n")
	eventually(t, 10*time.Second, func() (bool, string) {
		return gauge("smtp_exporter_target_files_failing") == 1, "smtp_exporter_target_files_failing 1"
	})
	if got := gauge("smtp_exporter_targets"); int(got) != want {
		t.Errorf("smtp_exporter_targets = %v with b.yml broken, want its last good targets kept (%d)", got, want)
	}
	if logs := p.logs.String(); !strings.Contains(logs, "Error in target file, keeping its last good targets") || !strings.Contains(logs, "b.yml:1") {
		t.Errorf("the log does not name the broken file and line")
	}
}

// --config.check reads the target files too.
func TestServe_ConfigCheckTargetFiles(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, dir, "good.yml", "- {name: a, address: 'a.example.net:25', module: mx}\n")
	configFile := writeTestFile(t, dir, "smtp_exporter.yml", minimalConfig(t)+"target_files: ['*s.yml', 'good.yml']\n")
	if code, _, stderr := runMain(t, "--config.file="+configFile, "--config.check"); code != 0 {
		t.Fatalf("exit %d with good target files, want 0:\n%s", code, stderr)
	}
	writeTestFile(t, dir, "zs.yml", "- {name: a, address: 'b.example.net:25', module: mx}\n")
	code, _, stderr := runMain(t, "--config.file="+configFile, "--config.check")
	if code != 1 || !strings.Contains(stderr, `zs.yml:1: [0].name: duplicate target name \"a\" (also `) {
		t.Errorf("exit %d with a clashing target file, want 1 and the clash located:\n%s", code, stderr)
	}
}

func TestServe_ShardFlag(t *testing.T) {
	for _, bad := range []string{"3/3", "1", "x/2"} {
		if code, _, stderr := runMain(t, "--config.file=../../examples/quickstart.yml", "--targets.shard="+bad, "--config.check"); code != 2 || !strings.Contains(stderr, "shard") {
			t.Errorf("--targets.shard=%s: exit %d, want 2 and a message:\n%s", bad, code, stderr)
		}
	}
}
