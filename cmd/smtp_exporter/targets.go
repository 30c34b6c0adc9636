package main

import (
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
)

// targetFlags choose which targets this exporter probes: its shard of
// them, and how often target_files are looked at.
type targetFlags struct {
	shard   config.Shard
	refresh *time.Duration
}

func addTargetFlags(cmd *kingpin.CmdClause) *targetFlags {
	f := &targetFlags{}
	cmd.Flag("targets.shard", "Probe only the scheduled targets whose name's hashmod COUNT is INDEX (0 ≤ INDEX < COUNT), as Prometheus's hashmod relabelling computes it, so that COUNT replicas with the same configuration split its targets. /probe?module= (ad hoc) is not sharded.").PlaceHolder("INDEX/COUNT").SetValue(&f.shard)
	f.refresh = cmd.Flag("targets.refresh-interval", "How often the files of target_files are checked for changes (size, time, identity); a change applies without a reload.").Default("5s").Duration()
	return f
}

// check reads the target files of cfg as the running exporter would and
// logs what fails; it reports whether all are good.
func (f *targetFlags) check(cfg *config.Config, logger log.Logger) bool {
	var files config.TargetFiles
	files.Scan(cfg.TargetFiles, true)
	all, errs := files.Build(cfg)
	for _, err := range errs {
		level.Error(logger).Log("msg", "Target file is invalid", "err", err)
	}
	level.Info(logger).Log("msg", "Target files", "files", files.Files(), "targets", len(all.Targets), "shard", f.shard.String(), "shard_targets", len(f.shard.Filter(all).Targets))
	return len(errs) == 0
}
