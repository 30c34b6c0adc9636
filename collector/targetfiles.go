package collector

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
)

// Targets makes the running configuration out of the configuration file:
// its targets and those of its target_files, less the targets of other
// shards. Whenever that changes (a reload, a target file that changed) it
// becomes SafeConfig's configuration, which the handlers read, and is
// handed to apply (the scheduler's Apply), in that order and one at a
// time.
type Targets struct {
	sc     *SafeConfig
	shard  config.Shard
	apply  func(*config.Config)
	logger log.Logger

	mu    sync.Mutex
	file  *config.Config // the configuration file as last loaded
	files config.TargetFiles

	fileCount prometheus.Gauge
	failing   prometheus.Gauge
	shardInfo prometheus.Gauge
}

// NewTargets returns the Targets of sc's file for shard; call Reload to
// load it.
func NewTargets(sc *SafeConfig, shard config.Shard, apply func(*config.Config), logger log.Logger) *Targets {
	if shard.Count == 0 {
		shard = config.Shard{Index: 0, Count: 1}
	}
	return &Targets{
		sc: sc, shard: shard, apply: apply, logger: logger,
		fileCount: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smtp_exporter_target_files",
			Help: "Files that the globs of target_files match.",
		}),
		failing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smtp_exporter_target_files_failing",
			Help: "Target files that cannot be used as they are (unreadable, not YAML, a bad or clashing target): each keeps its last good targets; the log says why.",
		}),
		shardInfo: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "smtp_exporter_shard_info",
			Help:        "The shard of the targets this exporter probes (--targets.shard): those whose name's hashmod by count is index, as Prometheus's hashmod relabelling computes it.",
			ConstLabels: prometheus.Labels{"index": strconv.FormatUint(shard.Index, 10), "count": strconv.FormatUint(shard.Count, 10)},
		}),
	}
}

// Collectors returns the target files' and the shard's metrics.
func (t *Targets) Collectors() []prometheus.Collector {
	t.shardInfo.Set(1)
	return []prometheus.Collector{t.fileCount, t.failing, t.shardInfo}
}

// Reload loads the configuration file and reads every target file again.
// A bad configuration file is an error and changes nothing; a bad target
// file is not: it keeps its last good targets, and is logged and counted.
func (t *Targets) Reload() (*config.Config, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	file, err := config.LoadFile(t.sc.file)
	if err != nil {
		t.sc.reloadOK.Set(0)
		return nil, err
	}
	t.file = file
	t.files.Scan(file.TargetFiles, true)
	cfg := t.build()
	t.sc.set(cfg, true)
	t.apply(cfg)
	return cfg, nil
}

// Refresh reads the target files that changed since the last look, if
// any did, and applies the result.
func (t *Targets) Refresh() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.file == nil || !t.files.Scan(t.file.TargetFiles, false) {
		return
	}
	cfg := t.build()
	t.sc.set(cfg, false)
	t.apply(cfg)
	level.Info(t.logger).Log("msg", "Target files changed", "files", t.files.Files(), "targets", len(cfg.Targets))
}

// Watch looks for changed target files every interval until ctx is done;
// an interval of 0 (or less) looks only at reloads.
func (t *Targets) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		<-ctx.Done()
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.Refresh()
		}
	}
}

func (t *Targets) build() *config.Config {
	cfg, errs := t.files.Build(t.file)
	for _, err := range errs {
		var fe *config.TargetFileError
		if errors.As(err, &fe) {
			level.Error(t.logger).Log("msg", "Error in target file, keeping its last good targets", "file", fe.File, "kept", fe.Kept, "err", fe.Err)
		}
	}
	t.failing.Set(float64(len(errs)))
	t.fileCount.Set(float64(t.files.Files()))
	return t.shard.Filter(cfg)
}

// set makes cfg the running configuration; fromFile says that the
// configuration file was just (re)loaded, which the reload metrics report.
func (sc *SafeConfig) set(cfg *config.Config, fromFile bool) {
	sc.mu.Lock()
	sc.cfg = cfg
	sc.mu.Unlock()
	if fromFile {
		sc.reloadOK.Set(1)
		sc.reloadTime.Set(float64(time.Now().UnixNano()) / 1e9)
	}
}
