package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	sloggokit "github.com/tjhop/slog-gokit"
)

type logFlags struct {
	level  *string
	format *string
}

func addLogFlags(app *kingpin.Application) *logFlags {
	return &logFlags{
		level:  app.Flag("log.level", "Only log messages with the given severity or above.").Default("info").Enum("debug", "info", "warn", "error"),
		format: app.Flag("log.format", "Output format of log messages.").Default("logfmt").Enum("logfmt", "json"),
	}
}

// logger builds the one go-kit logger everything writes through. It has no
// ts or caller: see withTimestamp and slogLogger.
func (f *logFlags) logger(w io.Writer) (log.Logger, error) {
	var l log.Logger
	sw := log.NewSyncWriter(w)
	switch *f.format {
	case "json":
		l = log.NewJSONLogger(sw)
	case "logfmt":
		l = log.NewLogfmtLogger(sw)
	default:
		return nil, fmt.Errorf("unknown log format %q", *f.format)
	}
	l = level.NewFilter(l, level.Allow(level.ParseDefault(*f.level, level.InfoValue())))
	return l, nil
}

// slogLogger hands exporter-toolkit a *slog.Logger that writes through the
// same go-kit logger, so there is one log stream in one format. slog records
// carry their own time and source, so base must not add ts or caller.
func slogLogger(base log.Logger, lvl string) *slog.Logger {
	var sl slog.Level
	switch lvl {
	case "debug":
		sl = slog.LevelDebug
	case "warn":
		sl = slog.LevelWarn
	case "error":
		sl = slog.LevelError
	default:
		sl = slog.LevelInfo
	}
	return slog.New(sloggokit.NewGoKitHandler(base, sl))
}

// withTimestamp is the logger for the exporter's own messages. Its time
// key is "time", as in the slog records exporter-toolkit writes, so every
// line of the one stream is read the same way.
//
// The level filter comes again before the time and the caller: a probe
// logs each line of its transcript at debug, and working out the time and
// the caller of lines the filter then drops cost each probe about 7% of
// its CPU (issue 11). The caller is two frames deeper for it: every line
// goes through a level helper (level.Info(logger).Log), whose context
// sits above the filter.
func withTimestamp(base log.Logger, lvl string) log.Logger {
	l := log.With(base, "time", log.DefaultTimestampUTC, "caller", log.Caller(5))
	return level.NewFilter(l, level.Allow(level.ParseDefault(lvl, level.InfoValue())))
}
