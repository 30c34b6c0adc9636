package probes

import (
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// A probe logs every transcript line at debug. Where the exporter's level
// drops them anyway, building each line's key-value slice through the
// logger's contexts (the caller's keys, the level's) cost /probe about 1.5%
// of its CPU, for nothing. The caller who knows its level marks the logger
// with WithoutDebug; probers take their debug logger from DebugLogger, which
// is nil for a marked logger, and skip the line.

// noDebug is a logger whose debug lines go nowhere.
type noDebug struct{ log.Logger }

// WithoutDebug marks l as dropping debug lines (the exporter's level is
// above debug), so that probers do not build them.
func WithoutDebug(l log.Logger) log.Logger {
	if l == nil {
		return nil
	}
	if _, ok := l.(noDebug); ok {
		return l
	}
	return noDebug{l}
}

// LoggerWith is log.With keeping WithoutDebug's mark.
func LoggerWith(l log.Logger, keyvals ...any) log.Logger {
	if nd, ok := l.(noDebug); ok {
		return noDebug{log.With(nd.Logger, keyvals...)}
	}
	return log.With(l, keyvals...)
}

// DebugLogger is l at level debug, or nil when l is nil or marked by
// WithoutDebug: a prober logs a debug line only when it is not nil.
func DebugLogger(l log.Logger) log.Logger {
	if l == nil {
		return nil
	}
	if _, ok := l.(noDebug); ok {
		return nil
	}
	return level.Debug(l)
}
