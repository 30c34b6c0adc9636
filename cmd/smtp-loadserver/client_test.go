package main

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	body := []byte(`# HELP smtp_exporter_scheduler_lag_seconds How late.
# TYPE smtp_exporter_scheduler_lag_seconds gauge
smtp_exporter_scheduler_lag_seconds{module="mx",target="t1"} 0.5
smtp_exporter_scheduler_lag_seconds{module="mx",target="t2"} 0.001
smtp_exporter_scheduler_lag_seconds{module="mx",target="t3"} 7
probe_smtp_runs_total{module="mx",target="t1"} 3
probe_smtp_runs_total{module="mx",target="t2"} 4
probe_smtp_failures_total{module="mx",phase="banner",reason="timeout",target="t3"} 2
probe_success{module="mx",target="t1"} 1
probe_success{module="mx",target="t2"} 1
probe_success{module="mx",target="t3"} 0

smtp_exporter_targets 3
`)
	s := summarize(body)
	if s.Samples != 10 {
		t.Errorf("samples = %d, want 10", s.Samples)
	}
	if s.Runs != 7 || s.Failures != 2 || s.Success != 2 || s.Failed != 1 {
		t.Errorf("runs %v failures %v success %d failed %d, want 7 2 2 1", s.Runs, s.Failures, s.Success, s.Failed)
	}
	slices.Sort(s.Lags)
	if got := quantile(s.Lags, 0.99); got != 7 {
		t.Errorf("lag p99 = %v, want 7", got)
	}
	if got := quantile(s.Lags, 0.5); got != 0.5 {
		t.Errorf("lag p50 = %v, want 0.5", got)
	}
}

func TestQuantile(t *testing.T) {
	v := make([]float64, 1000)
	for i := range v {
		v[i] = float64(i + 1)
	}
	if got := quantile(v, 0.99); got != 990 {
		t.Errorf("p99 of 1..1000 = %v, want 990", got)
	}
	if got := quantile(nil, 0.99); !math.IsNaN(got) {
		t.Errorf("p99 of nothing = %v, want NaN", got)
	}
}

func TestPacedDialogs(t *testing.T) {
	var calls atomic.Int32
	if err := pacedDialogs(context.Background(), 5, time.Millisecond, func() error {
		calls.Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 5 {
		t.Errorf("%d dialogs, want 5", calls.Load())
	}

	boom := errors.New("boom")
	err := pacedDialogs(context.Background(), 3, time.Millisecond, func() error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want one wrapping %v", err, boom)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := pacedDialogs(ctx, 3, time.Hour, func() error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: error %v, want context.Canceled", err)
	}
}
