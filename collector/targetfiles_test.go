package collector

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
)

const targetsTestConfig = `modules:
  mx:
    smtp: {tls: none}
targets:
  - {name: main, address: "mx.example.net:25", module: mx}
target_files: ["targets.d/*.yml"]
`

// targetsEnv is a Targets over a configuration in a temporary directory;
// applied records what it hands the scheduler.
type targetsEnv struct {
	t       *testing.T
	dir     string
	sc      *SafeConfig
	targets *Targets
	logs    bytes.Buffer
	applied []*config.Config
}

func newTargetsEnv(t *testing.T, shard config.Shard) *targetsEnv {
	t.Helper()
	e := &targetsEnv{t: t, dir: t.TempDir()}
	if err := os.Mkdir(filepath.Join(e.dir, "targets.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(targetsTestConfig)
	e.sc = NewSafeConfig(filepath.Join(e.dir, "smtp_exporter.yml"))
	e.targets = NewTargets(e.sc, shard, func(c *config.Config) { e.applied = append(e.applied, c) }, log.NewLogfmtLogger(&e.logs))
	return e
}

func (e *targetsEnv) writeConfig(content string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, "smtp_exporter.yml"), []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *targetsEnv) writeTargets(name string, names ...string) {
	e.t.Helper()
	var sb strings.Builder
	for _, n := range names {
		fmt.Fprintf(&sb, "- {name: %s, address: '%s.example.net:25', module: mx}\n", n, n)
	}
	e.writeFile(name, sb.String())
}

func (e *targetsEnv) writeFile(name, content string) {
	e.t.Helper()
	tmp := filepath.Join(e.dir, ".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.dir, "targets.d", name)); err != nil {
		e.t.Fatal(err)
	}
}

func names(cfg *config.Config) []string {
	var out []string
	for _, t := range cfg.Targets {
		out = append(out, t.Name)
	}
	return out
}

// wantRunning checks what the scheduler was last given and what the
// handlers read (SafeConfig): the same configuration, with these targets
// in any order.
func (e *targetsEnv) wantRunning(applies int, want ...string) {
	e.t.Helper()
	if len(e.applied) != applies {
		e.t.Fatalf("applied %d times, want %d", len(e.applied), applies)
	}
	last := e.applied[len(e.applied)-1]
	if last != e.sc.Get() {
		e.t.Error("the scheduler and the handlers run different configurations")
	}
	got := names(last)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		e.t.Errorf("running targets %v, want %v", got, want)
	}
}

// The running exporter follows its target files without a reload; a bad
// file keeps its last good targets and shows in the failing gauge and the
// log; a bad configuration file keeps the running configuration.
func TestTargets_FollowFiles(t *testing.T) {
	e := newTargetsEnv(t, config.Shard{})
	e.writeTargets("a.yml", "a1")
	if _, err := e.targets.Reload(); err != nil {
		t.Fatal(err)
	}
	e.wantRunning(1, "main", "a1")
	if got := testutil.ToFloat64(e.sc.reloadOK); got != 1 {
		t.Errorf("reload successful = %v, want 1", got)
	}

	e.targets.Refresh()
	e.wantRunning(1, "main", "a1") // nothing changed: nothing applied

	e.writeTargets("b.yml", "b1")
	e.targets.Refresh()
	e.wantRunning(2, "main", "a1", "b1")
	if got := testutil.ToFloat64(e.targets.fileCount); got != 2 {
		t.Errorf("target files = %v, want 2", got)
	}

	e.writeFile("a.yml", "- {name: a2, address: 'a2.example.net:25', module: nosuch}\n")
	e.targets.Refresh()
	e.wantRunning(3, "main", "a1", "b1")
	if got := testutil.ToFloat64(e.targets.failing); got != 1 {
		t.Errorf("failing target files = %v, want 1", got)
	}
	if log := e.logs.String(); !strings.Contains(log, "a.yml:1: [0].module: unknown module") || !strings.Contains(log, "kept=1") {
		t.Errorf("the log does not say which file, line and field failed, and what was kept:\n%s", log)
	}

	e.writeTargets("a.yml", "a2")
	e.targets.Refresh()
	e.wantRunning(4, "main", "b1", "a2")
	if got := testutil.ToFloat64(e.targets.failing); got != 0 {
		t.Errorf("failing target files = %v after the fix, want 0", got)
	}

	// A bad configuration file changes nothing, target files included.
	e.writeConfig("modules: {}\n")
	if _, err := e.targets.Reload(); err == nil {
		t.Fatal("Reload of a bad configuration file succeeded")
	}
	e.wantRunning(4, "main", "b1", "a2")
	if got := testutil.ToFloat64(e.sc.reloadOK); got != 0 {
		t.Errorf("reload successful = %v, want 0", got)
	}
	e.writeTargets("c.yml", "c1")
	e.targets.Refresh()
	e.wantRunning(5, "main", "b1", "a2", "c1")
}

// A shard keeps its part of every source of targets, and says which it
// is in a metric.
func TestTargets_Shard(t *testing.T) {
	shard := config.Shard{Index: 2, Count: 3}
	e := newTargetsEnv(t, shard)
	var all []string
	for i := range 60 {
		all = append(all, fmt.Sprintf("t%d", i))
	}
	e.writeTargets("a.yml", all...)
	cfg, err := e.targets.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Targets); n == 0 || n >= 61 {
		t.Fatalf("shard 2/3 has %d of 61 targets", n)
	}
	for _, tg := range cfg.Targets {
		if config.HashMod(tg.Name, 3) != 2 {
			t.Errorf("shard 2/3 probes %s, of shard %d", tg.Name, config.HashMod(tg.Name, 3))
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.targets.Collectors()...)
	want := `# HELP smtp_exporter_shard_info The shard of the targets this exporter probes (--targets.shard): those whose name's hashmod by count is index, as Prometheus's hashmod relabelling computes it.
# TYPE smtp_exporter_shard_info gauge
smtp_exporter_shard_info{count="3",index="2"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "smtp_exporter_shard_info"); err != nil {
		t.Error(err)
	}
}

// Watch looks again every interval, until its context ends.
func TestTargets_Watch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newTargetsEnv(t, config.Shard{})
		if _, err := e.targets.Reload(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); e.targets.Watch(ctx, 5*time.Second) }()
		e.writeTargets("a.yml", "a1")
		time.Sleep(4 * time.Second)
		synctest.Wait()
		e.wantRunning(1, "main")
		time.Sleep(time.Second)
		synctest.Wait()
		e.wantRunning(2, "main", "a1")
		cancel()
		<-done
	})
}
