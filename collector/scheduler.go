package collector

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// ProbeFunc runs one probe; probes.Run in production, a fake in tests.
type ProbeFunc func(ctx context.Context, target string, m probes.Module, logger log.Logger) *probes.Result

// Backoff limits: a target that is throttled, greylisted or unavailable
// waits twice as long each time, at most maxBackoff times its interval.
const maxBackoff = 8

// Scheduler runs every configured target on its interval.
type Scheduler struct {
	probe   ProbeFunc
	logger  log.Logger
	store   *Store
	metrics *runMetrics
	history *History
	sem     chan struct{}

	// schedCtx stops scheduling; probeCtx stops probes in flight, later,
	// so that shutdown lets running probes finish and QUIT.
	schedCtx, probeCtx    context.Context
	stopSched, stopProbes context.CancelFunc
	wg                    sync.WaitGroup

	mu    sync.Mutex
	cfg   *Config
	loops map[string]*loop
}

// loop is one target's schedule and the state that survives reloads.
type loop struct {
	name, module string
	cancel       context.CancelFunc
	// run serialises scheduled and on-demand runs: a target never
	// overlaps itself.
	run      sync.Mutex
	lastSend time.Time
	backoff  int
}

// NewScheduler returns a scheduler running at most concurrency probes at
// once. Register its metrics with Collectors.
func NewScheduler(probe ProbeFunc, concurrency int, store *Store, history *History, logger log.Logger) *Scheduler {
	if concurrency < 1 {
		concurrency = 1
	}
	s := &Scheduler{
		probe:   probe,
		logger:  logger,
		store:   store,
		metrics: newRunMetrics(),
		history: history,
		sem:     make(chan struct{}, concurrency),
		loops:   map[string]*loop{},
	}
	s.schedCtx, s.stopSched = context.WithCancel(context.Background())
	s.probeCtx, s.stopProbes = context.WithCancel(context.Background())
	return s
}

// Collectors returns the scheduler's across-runs metrics.
func (s *Scheduler) Collectors() []prometheus.Collector { return s.metrics.collectors() }

// Apply switches to cfg: targets that are new (or whose module changed)
// start, removed ones stop and lose their series; the others keep their
// counters, histograms, schedule and send rate limit.
func (s *Scheduler) Apply(cfg *Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
	want := map[string]*Target{}
	for _, t := range cfg.Targets {
		want[t.Name] = t
	}
	for name, l := range s.loops {
		if t, ok := want[name]; ok && t.Module == l.module {
			continue
		}
		l.cancel()
		delete(s.loops, name)
		s.metrics.forget(name)
		s.store.Delete(name)
	}
	for _, t := range cfg.Targets {
		if _, ok := s.loops[t.Name]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(s.schedCtx)
		l := &loop{name: t.Name, module: t.Module, cancel: cancel, backoff: 1}
		s.loops[t.Name] = l
		s.metrics.backoff.WithLabelValues(t.Name, t.Module).Set(1)
		s.wg.Add(1)
		go s.runLoop(ctx, l, t.Interval)
	}
	s.metrics.targets.Set(float64(len(cfg.Targets)))
}

// current returns the target's settings and module in the running config,
// or nil once the target is gone or this loop was replaced.
func (s *Scheduler) current(l *loop) (*Target, *probes.Module) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loops[l.name] != l || s.cfg == nil {
		return nil, nil
	}
	for _, t := range s.cfg.Targets {
		if t.Name == l.name {
			return t, s.cfg.Modules[t.Module]
		}
	}
	return nil, nil
}

// offset spreads first runs over the interval by a stable hash of the
// name, so a restart does not fire every probe at once and the same
// target keeps its slot across restarts.
func offset(name string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(interval))
}

func (s *Scheduler) runLoop(ctx context.Context, l *loop, interval time.Duration) {
	defer s.wg.Done()
	next := time.Now().Add(offset(l.name, interval))
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		// Both cases of the selects above may be ready at once and select
		// picks at random: a stopped loop must not start a probe.
		t, m := s.current(l)
		if t == nil || ctx.Err() != nil {
			<-s.sem
			return
		}
		lag := time.Since(next)
		res, used, skipped := s.runOnce(s.probeCtx, l, t, m, s.logger)
		<-s.sem
		s.record(l, t, used, res, lag, skipped)
		// Keep the cadence from the plan, not from when the run ended;
		// a run that is already late starts at once.
		next = next.Add(t.Interval * time.Duration(l.backoff))
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
		} else {
			next = time.Now()
			timer.Reset(0)
		}
	}
}

// runOnce runs one probe of t under the target's no-overlap lock, applying
// its timeout and the send rate limit; it returns the result, the module
// actually used and whether a due send was skipped.
func (s *Scheduler) runOnce(ctx context.Context, l *loop, t *Target, m *probes.Module, logger log.Logger) (*probes.Result, *probes.Module, bool) {
	l.run.Lock()
	defer l.run.Unlock()
	used := *m
	if t.Timeout > 0 {
		used.Timeout = t.Timeout
	}
	skipped := used.SMTP.Send && !l.lastSend.IsZero() && time.Since(l.lastSend) < used.SMTP.MinSendInterval
	if skipped {
		used.SMTP.Send = false
	}
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	res := s.probe(ctx, t.Address, used, log.With(logger, "target", t.Name, "module", t.Module))
	res.Target, res.Module = t.Name, t.Module
	if res.Phase(probes.PhaseData) != nil {
		l.lastSend = res.Start
	}
	return res, &used, skipped
}

// record publishes a scheduled result: store, counters, backoff, history
// and one log line per failure. skipped counts a send the rate limit held
// back.
func (s *Scheduler) record(l *loop, t *Target, m *probes.Module, res *probes.Result, lag time.Duration, skipped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loops[l.name] != l {
		// Removed or replaced by a reload while running: publishing
		// would resurrect series that the reload deleted.
		return
	}
	s.store.Set(StoreEntry{Target: t, Module: m, Result: res})
	s.metrics.observe(t, res)
	if skipped {
		s.metrics.sendSkipped.WithLabelValues(t.Name, t.Module).Inc()
	}
	s.metrics.lag.WithLabelValues(t.Name, t.Module).Set(lag.Seconds())
	switch {
	case res.Success:
		l.backoff = 1
	case res.Reason == probes.ReasonThrottled, res.Reason == probes.ReasonServiceUnavailable, res.Reason == probes.ReasonGreylisted:
		l.backoff = min(max(l.backoff*2, 2), maxBackoff)
	}
	s.metrics.backoff.WithLabelValues(t.Name, t.Module).Set(float64(l.backoff))
	s.history.Add("schedule", res)
	logResult(s.logger, t.Name, t.Module, res)
}

// logResult logs a failed probe once at warn with everything needed to act
// on it, and a success at debug.
func logResult(logger log.Logger, target, module string, res *probes.Result) {
	if res.Success {
		level.Debug(logger).Log("msg", "Probe succeeded", "target", target, "module", module, "duration_seconds", res.Duration.Seconds())
		return
	}
	level.Warn(logger).Log("msg", "Probe failed", "target", target, "module", module,
		"phase", res.FailedPhase, "reason", res.Reason, "temporary", res.Temporary,
		"code", res.Code, "enhanced_code", res.EnhancedCode, "reply", res.ReplyText, "err", res.Err)
}

// RunNow probes a configured target on demand (/probe?target=NAME). It
// shares the target's no-overlap lock, send rate limit and the global
// concurrency limit, but not its counters: those belong to the schedule.
// timeout, when positive, shortens the probe's timeout (the scrape's own
// deadline); logger receives the probe's own log lines. ok is false for an
// unknown target or once shutdown has begun.
func (s *Scheduler) RunNow(ctx context.Context, name string, timeout time.Duration, logger log.Logger) (res *probes.Result, used *probes.Module, ok bool) {
	s.mu.Lock()
	l := s.loops[name]
	if l == nil || s.schedCtx.Err() != nil {
		s.mu.Unlock()
		return nil, nil, false
	}
	// Added under the lock that Shutdown takes to stop scheduling, so
	// Shutdown's Wait never races with this Add.
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	if logger == nil {
		logger = s.logger
	}
	t, m := s.current(l)
	if t == nil {
		return nil, nil, false
	}
	tt := *t
	if limit := effectiveTimeout(&tt, m); timeout > 0 && timeout < limit {
		tt.Timeout = timeout
	}
	// Shutdown cancels on-demand probes as it does scheduled ones.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.probeCtx, cancel)()
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		// No slot before the scrape gave up: the probe runs with the
		// expired context and reports the timeout like any other.
	}
	res, used, _ = s.runOnce(ctx, l, &tt, m, logger)
	s.history.Add("probe", res)
	return res, used, true
}

func effectiveTimeout(t *Target, m *probes.Module) time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return m.Timeout
}

// Shutdown stops scheduling, waits up to grace for probes in flight to
// finish (and QUIT), then cancels the rest and waits for them to end.
func (s *Scheduler) Shutdown(grace time.Duration) {
	s.mu.Lock()
	s.stopSched()
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		level.Warn(s.logger).Log("msg", "Probes still running after the shutdown grace period, cancelling them", "grace", grace)
		s.stopProbes()
		<-done
	}
	s.stopProbes()
}
