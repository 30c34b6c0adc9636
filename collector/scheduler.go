package collector

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// ProbeFunc runs one probe: the prober registry's dispatch in production,
// a fake in tests.
type ProbeFunc = probes.ProbeFunc

// Backoff limits: a target that is throttled, greylisted or unavailable
// waits twice as long each time, at most maxBackoff times its interval.
const maxBackoff = 8

// answerSlack is how long past the scrape's timeout an on-demand probe may
// still run: the probe's own timeout, which names the phase it was in,
// normally ends it first; this deadline bounds the wait for the target's
// lock and a slot, and a probe that started late.
const answerSlack = 100 * time.Millisecond

// Why RunNow or RunAdhoc did not return a result; the /probe handler maps
// each to an HTTP status.
var (
	ErrUnknownTarget = errors.New("unknown target")
	// ErrBusy: the target's lock or a probe slot was not free before the
	// deadline; the probe did not start.
	ErrBusy = errors.New("busy")
	// ErrShuttingDown: shutdown had begun before the probe started, or
	// cancelled it, so there is no result to report.
	ErrShuttingDown = errors.New("the exporter is shutting down")
	// ErrAbandoned: the caller went away while the probe ran.
	ErrAbandoned = errors.New("the request was cancelled before the probe ended")
	// ErrUnpinnedCredentials: an ad hoc probe would send the module's AUTH
	// credentials to whatever server the caller names.
	ErrUnpinnedCredentials = errors.New("ad hoc probes with a module that authenticates need TLS verified against its smtp.tls_config.server_name " +
		"(set, with insecure_skip_verify off), so that its credentials only go to the server it names")
)

// DefaultConcurrency is the default of --probe.concurrency, the probes of
// one concurrency class running at once. A probe waiting on a slow server
// (postscreen holds the greeting 6 s or more) costs a descriptor and a few
// KiB, not CPU: 10,000 such targets every minute keep about 1,000 waiting
// at once. What needs CPU, the TLS handshake, has a limit of its own
// (handshakesPerCPU).
const DefaultConcurrency = 2048

// handshakesPerCPU times GOMAXPROCS is the default number of TLS
// handshakes computing at once (probes.Limiter): enough to keep every CPU
// busy, few enough that a burst of handshakes finishes in turn rather than
// all slowly, past their timeouts. A handshake holds none while it waits
// for the server.
const handshakesPerCPU = 2

// Scheduler runs every configured target on its interval.
//
// An idle target costs no goroutine: one dispatcher keeps every target's
// next run in a timer heap (queue) and starts a goroutine for a run when it
// comes due; the run puts its target back in the heap when it ends.
type Scheduler struct {
	probe   ProbeFunc
	logger  log.Logger
	store   *Store
	metrics *runMetrics
	history *History
	// slots are the probe slots, one pool of --probe.concurrency per
	// concurrency class (probes.Module.ConcurrencyClass), made when a
	// class is first needed: a prober that waits minutes must not keep a
	// one-second dialog from starting.
	concurrency int
	slotsMu     sync.Mutex
	slots       map[string]chanLock
	// handshakes bounds the TLS handshakes computing at once, over every
	// class; probers take it from the context (probes.WithLimiter).
	handshakes *probes.Limiter

	// schedCtx stops scheduling; probeCtx stops probes in flight, later,
	// so that shutdown lets running probes finish and QUIT.
	schedCtx, probeCtx    context.Context
	stopSched, stopProbes context.CancelFunc
	wg                    sync.WaitGroup

	// applyMu serialises Apply, the only writer of cfg, targets and
	// loops: it compares a new configuration with the running one without
	// mu, so that runs (current) go on meanwhile, and the plan still holds
	// when it takes mu to swap it in.
	applyMu sync.Mutex

	mu          sync.Mutex
	cfg         *config.Config
	targets     map[string]*config.Target // cfg's targets by name
	loops       map[string]*loop
	dispatching bool // the dispatcher runs (and is counted in wg)

	// qmu guards queue and the loops' queue fields. It may be taken
	// before mu, never while holding it.
	qmu   sync.Mutex
	queue queue
	// wake tells the dispatcher that the queue's head changed.
	wake chan struct{}

	// testHookPlanned runs in Apply between planning and swapping.
	testHookPlanned func()
}

// loop is one target's schedule and the state that survives reloads.
type loop struct {
	name, module string
	// run serialises scheduled and on-demand runs: a target never
	// overlaps itself. A 1-buffered channel rather than a mutex, so that
	// an on-demand run can stop waiting when its scrape gives up. It is
	// always taken before a probe slot, never while holding one: a run
	// waiting for its target must not keep a slot from others.
	run chanLock
	// lastSend is guarded by run; backoff by Scheduler.mu.
	lastSend time.Time
	backoff  int

	// Guarded by Scheduler.qmu. next is when the next (or current) run
	// is planned; index is the loop's place in the queue, -1 while it
	// runs or once it stopped.
	next  time.Time
	index int
	// stopped: a reload removed the loop; it is never queued again.
	stopped bool
	// replan: a reload changed the target's address, interval or timeout
	// while it ran, so the run that ends plans afresh.
	replan bool
	// cancelRun ends the waits (target lock, slot) of the run in
	// progress, when a reload removes the loop.
	cancelRun context.CancelFunc
}

func newLoop(name, module string) *loop {
	return &loop{name: name, module: module, backoff: 1, run: make(chanLock, 1), index: -1}
}

// queue is a min-heap of loops by their next run (container/heap).
type queue []*loop

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].next.Before(q[j].next) }
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *queue) Push(x any) {
	l := x.(*loop)
	l.index = len(*q)
	*q = append(*q, l)
}

func (q *queue) Pop() any {
	old := *q
	l := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	l.index = -1
	return l
}

// chanLock is a lock of cap holders that a waiter can give up on when its
// context ends, as a sync.Mutex cannot.
type chanLock chan struct{}

func (c chanLock) lock(ctx context.Context) error {
	select {
	case c <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c chanLock) unlock() { <-c }

// NewScheduler returns a scheduler running at most concurrency probes at
// once. Register its metrics with Collectors.
func NewScheduler(probe ProbeFunc, concurrency int, store *Store, history *History, logger log.Logger) *Scheduler {
	if concurrency < 1 {
		concurrency = 1
	}
	s := &Scheduler{
		probe:       probe,
		logger:      logger,
		store:       store,
		metrics:     newRunMetrics(),
		history:     history,
		concurrency: concurrency,
		slots:       map[string]chanLock{},
		handshakes:  probes.NewLimiter(runtime.GOMAXPROCS(0) * handshakesPerCPU),
		loops:       map[string]*loop{},
		wake:        make(chan struct{}, 1),
	}
	s.schedCtx, s.stopSched = context.WithCancel(context.Background())
	s.probeCtx, s.stopProbes = context.WithCancel(context.Background())
	return s
}

// LimitHandshakes sets how many TLS handshakes may compute at once, over
// every concurrency class (default: GOMAXPROCS×handshakesPerCPU). Call it
// before Apply.
func (s *Scheduler) LimitHandshakes(n int) { s.handshakes = probes.NewLimiter(n) }

// Collectors returns the scheduler's across-runs metrics.
func (s *Scheduler) Collectors() []prometheus.Collector { return s.metrics.collectors() }

// Apply switches to cfg: targets that are new (or whose module changed)
// start, removed ones stop and lose their series; the others keep their
// counters, histograms and send rate limit, and their schedule unless their
// address, interval or timeout changed: those are planned afresh, without
// backoff, as at start.
//
// Its cost is linear in the targets, and the scheduler's lock is held only
// to swap the plan in: a reload of a large file does not hold up runs.
//
// After Shutdown has begun Apply does nothing: a loop started then would
// race Shutdown's wait, and dropped series would be missing from the last
// scrapes.
func (s *Scheduler) Apply(cfg *config.Config) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	p := s.plan(cfg)
	if s.testHookPlanned != nil {
		s.testHookPlanned()
	}
	s.mu.Lock()
	if s.schedCtx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.cfg, s.targets = cfg, p.want
	for _, l := range p.stop {
		delete(s.loops, l.name)
	}
	for _, n := range p.start {
		s.loops[n.loop.name] = n.loop
	}
	if len(p.start) > 0 && !s.dispatching {
		// Under mu, so that Shutdown's Wait comes after this Add.
		s.dispatching = true
		s.wg.Add(1)
		go s.dispatch()
	}
	s.mu.Unlock()

	// A stopped loop no longer records (record checks that it is still
	// the target's loop), and new loops are not queued yet: the series
	// can go now, before a replaced target's new loop makes its own.
	for _, l := range p.stop {
		s.metrics.forget(l.name)
		s.store.Delete(l.name)
	}
	for _, n := range p.start {
		s.metrics.backoff.WithLabelValues(n.loop.name, n.loop.module).Set(1)
	}
	s.requeueAll(p)
	s.metrics.targets.Set(float64(len(cfg.Targets)))
}

// requeueAll takes Apply's plan to the queue: stopped loops leave it (and
// a run of theirs stops waiting), replanned ones are planned afresh, new
// ones are planned at their offsets.
func (s *Scheduler) requeueAll(p applyPlan) {
	now := time.Now()
	s.qmu.Lock()
	for _, l := range p.stop {
		l.stopped = true
		if l.index >= 0 {
			heap.Remove(&s.queue, l.index)
		}
		if l.cancelRun != nil {
			l.cancelRun()
		}
	}
	for _, l := range p.replan {
		if l.index < 0 {
			// Running: the run plans afresh when it ends.
			l.replan = true
			continue
		}
		// The old plan may be an interval of an hour away, or backed off
		// against the old address: start afresh, spread as at start.
		// lastSend stays, so the send rate limit holds.
		t := p.want[l.name]
		s.setBackoff(l, t, 1)
		l.next = now.Add(offset(l.name, t.Interval))
		heap.Fix(&s.queue, l.index)
	}
	if len(p.start) > len(s.queue) {
		// At start, or when most targets are new: one heapify, linear.
		for _, n := range p.start {
			n.loop.next = now.Add(offset(n.loop.name, n.interval))
			n.loop.index = len(s.queue)
			s.queue = append(s.queue, n.loop)
		}
		heap.Init(&s.queue)
	} else {
		for _, n := range p.start {
			n.loop.next = now.Add(offset(n.loop.name, n.interval))
			heap.Push(&s.queue, n.loop)
		}
	}
	s.qmu.Unlock()
	if len(p.stop)+len(p.replan)+len(p.start) > 0 {
		s.wakeDispatcher()
	}
}

// applyPlan is what Apply changes: loops to stop, to start and to replan.
type applyPlan struct {
	want   map[string]*config.Target
	stop   []*loop
	replan []*loop
	start  []newLoopPlan
}

type newLoopPlan struct {
	loop     *loop
	interval time.Duration
}

// plan compares cfg with the running configuration, in time linear in
// their targets. The caller holds applyMu, so that s.targets and s.loops,
// which only Apply writes, can be read without mu.
func (s *Scheduler) plan(cfg *config.Config) applyPlan {
	p := applyPlan{want: make(map[string]*config.Target, len(cfg.Targets))}
	kept := 0
	for _, t := range cfg.Targets {
		p.want[t.Name] = t
		if l, ok := s.loops[t.Name]; ok && l.module == t.Module {
			kept++
			if o := s.targets[t.Name]; o != nil && (o.Address != t.Address || o.Interval != t.Interval || o.Timeout != t.Timeout) {
				p.replan = append(p.replan, l)
			}
			continue
		}
		p.start = append(p.start, newLoopPlan{loop: newLoop(t.Name, t.Module), interval: t.Interval})
	}
	if kept == len(s.loops) {
		return p
	}
	for name, l := range s.loops {
		if t, ok := p.want[name]; !ok || t.Module != l.module {
			p.stop = append(p.stop, l)
		}
	}
	return p
}

// current returns the target's settings and module in the running config,
// or nil once the target is gone or this loop was replaced.
func (s *Scheduler) current(l *loop) (*config.Target, *probes.Module) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.targets[l.name]
	if s.loops[l.name] != l || t == nil {
		return nil, nil
	}
	return t, s.cfg.ModuleOf(t)
}

// offset spreads first runs over the interval by a stable hash of the
// name, so a restart does not fire every probe at once and the same
// target keeps its slot across restarts.
func offset(name string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(interval))
}

// dispatch starts each target's run when it comes due, until shutdown.
func (s *Scheduler) dispatch() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.qmu.Lock()
		now := time.Now()
		for len(s.queue) > 0 && !s.queue[0].next.After(now) {
			l := heap.Pop(&s.queue).(*loop)
			ctx, cancel := context.WithCancel(s.schedCtx)
			l.cancelRun = cancel
			// The dispatcher's own count keeps wg above zero: this Add
			// never races Shutdown's Wait.
			s.wg.Add(1)
			go s.runDue(ctx, cancel, l)
		}
		due := len(s.queue) > 0
		var wait time.Duration
		if due {
			wait = s.queue[0].next.Sub(now)
		}
		s.qmu.Unlock()
		var fire <-chan time.Time
		if due {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-s.schedCtx.Done():
			return
		case <-s.wake:
		case <-fire:
		}
	}
}

// wakeDispatcher tells the dispatcher to look at the queue's head again.
func (s *Scheduler) wakeDispatcher() {
	select {
	case s.wake <- struct{}{}:
	default: // already told
	}
}

// runDue runs l's due run, then queues its next one.
func (s *Scheduler) runDue(ctx context.Context, cancel context.CancelFunc, l *loop) {
	defer s.wg.Done()
	defer cancel()
	t := s.runPlanned(ctx, l)
	s.qmu.Lock()
	defer s.qmu.Unlock()
	l.cancelRun = nil
	if t == nil || l.stopped || s.schedCtx.Err() != nil {
		return
	}
	now := time.Now()
	if l.replan {
		l.replan = false
		if t, _ = s.current(l); t == nil {
			return
		}
		s.setBackoff(l, t, 1)
		l.next = now.Add(offset(l.name, t.Interval))
	} else {
		// Keep the cadence from the plan, not from when the run ended;
		// a run that is already late starts at once.
		s.mu.Lock()
		backoff := l.backoff
		s.mu.Unlock()
		if l.next = l.next.Add(t.Interval * time.Duration(backoff)); l.next.Before(now) {
			l.next = now
		}
	}
	heap.Push(&s.queue, l)
	if l.index == 0 {
		s.wakeDispatcher()
	}
}

// runPlanned runs the probe l is due for, once it holds the target's lock
// and a slot, and records it. It returns the target's settings it ran
// with, or nil when the loop stopped or shutdown began before the run
// started.
func (s *Scheduler) runPlanned(ctx context.Context, l *loop) *config.Target {
	if l.run.lock(ctx) != nil {
		return nil
	}
	_, m := s.current(l)
	if m == nil {
		l.run.unlock()
		return nil
	}
	slots := s.slotsOf(m)
	if slots.lock(ctx) != nil {
		l.run.unlock()
		return nil
	}
	// Both cases of the selects in lock may be ready at once and select
	// picks at random: a stopped loop must not start a probe. A reload
	// while waiting may have changed the module: this run takes it, in
	// the slot it waited for.
	t, m := s.current(l)
	if t == nil || ctx.Err() != nil {
		slots.unlock()
		l.run.unlock()
		return nil
	}
	// l.next is not written while the loop runs (it is out of the queue).
	lag := time.Since(l.next)
	res, _, skipped := s.runOnce(s.probeCtx, l, t, m, s.logger)
	slots.unlock()
	l.run.unlock()
	if s.probeCtx.Err() != nil || errors.Is(res.Err, context.Canceled) {
		// Cut short by shutdown: the result says nothing about the
		// server, and counting it would report a timeout that never
		// happened.
		level.Info(s.logger).Log("msg", "Probe cancelled by shutdown, not recorded", "target", t.Name, "module", t.Module)
	} else {
		s.record(l, t, res, lag, skipped)
	}
	return t
}

// runOnce runs one probe of t, applying its timeout and the send rate
// limit; the caller holds l's lock. It returns the result, the module as
// configured (with t's timeout), which the debug page shows, and whether a
// due send was skipped.
func (s *Scheduler) runOnce(ctx context.Context, l *loop, t *config.Target, m *probes.Module, logger log.Logger) (*probes.Result, *probes.Module, bool) {
	configured := *m
	if t.Timeout > 0 {
		configured.Timeout = t.Timeout
	}
	used := configured
	skipped := used.SendsMail() && !l.lastSend.IsZero() && time.Since(l.lastSend) < used.MinSendInterval()
	if skipped {
		used = used.WithoutSend()
	}
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	ctx = probes.WithLimiter(probes.WithProgress(ctx, func(event string) { s.pending(l, t, event) }), s.handshakes)
	res := s.probe(ctx, t.Address, used, probes.LoggerWith(logger, "target", t.Name, "module", t.Module))
	res.Target, res.Module = t.Name, t.Module
	if skipped {
		// Say so where an operator reads the run: the DATA phase is 0
		// because of the exporter, not the server.
		res.Transcript = append(res.Transcript, probes.TranscriptLine{Offset: res.Duration, Dir: probes.DirInfo,
			Text: fmt.Sprintf("no message sent: the last one went %s ago, min_send_interval is %s",
				time.Since(l.lastSend).Round(time.Second), used.MinSendInterval())})
	}
	if res.AttemptedSend() {
		l.lastSend = res.Start
	}
	return res, &configured, skipped
}

// pending sets the target's pending-message gauge as its run reports,
// unless a reload removed l meanwhile (the gauge would come back after
// the reload deleted it).
func (s *Scheduler) pending(l *loop, t *config.Target, event string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loops[l.name] != l {
		return
	}
	g := s.metrics.pending.WithLabelValues(t.Name, t.Module)
	switch event {
	case probes.EventAwaiting:
		g.Set(1)
	case probes.EventSettled:
		g.Set(0)
	}
}

// record publishes a scheduled result: store, counters, backoff, history
// and one log line per failure.
func (s *Scheduler) record(l *loop, t *config.Target, res *probes.Result, lag time.Duration, skipped bool) {
	// One compact copy for the store and the history, made outside the
	// scheduler's lock.
	kept := compactResult(res)
	if !s.publish(l, t, res, kept, lag, skipped) {
		return
	}
	// Outside the scheduler's lock: a slow log writer must not hold up
	// other targets' runs.
	s.history.addCompact("schedule", kept)
	logResult(s.logger, t.Name, t.Module, res)
}

// publish sets the result's series (the counters from res, the gauges from
// kept, its compact copy) and l's backoff, unless a reload removed or
// replaced l while it ran: publishing would resurrect series that the
// reload deleted. It reports whether it published.
func (s *Scheduler) publish(l *loop, t *config.Target, res, kept *probes.Result, lag time.Duration, skipped bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loops[l.name] != l {
		return false
	}
	s.store.setCompact(StoreEntry{Target: t, Result: res}, kept)
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
	return true
}

// setBackoff sets l's backoff factor and its gauge, unless a reload removed
// or replaced l (its series must stay deleted).
func (s *Scheduler) setBackoff(l *loop, t *config.Target, factor int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loops[l.name] != l {
		return
	}
	l.backoff = factor
	s.metrics.backoff.WithLabelValues(t.Name, t.Module).Set(float64(factor))
}

// logResult logs a failed probe once at warn with everything needed to act
// on it, and a success at debug.
func logResult(logger log.Logger, target, module string, res *probes.Result) {
	if res.Success {
		if d := probes.DebugLogger(logger); d != nil {
			d.Log("msg", "Probe succeeded", "target", target, "module", module, "duration_seconds", res.Duration.Seconds())
		}
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
// deadline) and bounds the wait for the target's lock and a slot, so that
// RunNow never answers after the scrape has given up: it returns ErrBusy
// instead. logger receives the probe's own log lines. The other errors are
// ErrUnknownTarget and ErrShuttingDown. The module returned is the one
// configured, with the timeout used.
func (s *Scheduler) RunNow(ctx context.Context, name string, timeout time.Duration, logger log.Logger) (*probes.Result, *probes.Module, error) {
	if err := s.track(); err != nil {
		return nil, nil, err
	}
	defer s.wg.Done()
	s.mu.Lock()
	l := s.loops[name]
	s.mu.Unlock()
	if l == nil {
		return nil, nil, ErrUnknownTarget
	}
	t, m := s.current(l)
	if t == nil {
		return nil, nil, ErrUnknownTarget
	}
	if logger == nil {
		logger = s.logger
	}
	tt := *t
	if limit := effectiveTimeout(&tt, m); timeout > 0 && timeout < limit {
		tt.Timeout = timeout
	}
	caller := ctx
	ctx, wait, cancel := s.onDemandContexts(ctx, timeout)
	defer cancel()
	if l.run.lock(wait) != nil {
		return nil, nil, s.notStarted(fmt.Errorf("%w: target %q is being probed by the schedule or another request; try again", ErrBusy, name))
	}
	defer l.run.unlock()
	slots := s.slotsOf(m)
	if slots.lock(wait) != nil {
		return nil, nil, s.notStarted(s.slotsBusy(m))
	}
	defer slots.unlock()
	res, configured, _ := s.runOnce(ctx, l, &tt, m, logger)
	if err := s.onDemandDone(caller, res); err != nil {
		return nil, nil, err
	}
	return res, configured, nil
}

// RunAdhoc probes an address that is not a configured target with a named
// module (/probe?module=M&target=host:port, with --probe.allow-adhoc). It
// takes a slot of the global concurrency limit, counts as in flight and is
// waited for and cancelled by Shutdown like any probe; timeout and the
// errors are RunNow's. It never sends mail: anyone who reaches /probe may
// name the address, and no target's send rate limit covers it. A module
// with AUTH is refused (ErrUnpinnedCredentials) unless credentialsPinned.
// The module returned is the one used, without sending.
func (s *Scheduler) RunAdhoc(ctx context.Context, address, moduleName string, m *probes.Module, timeout time.Duration, logger log.Logger) (*probes.Result, *probes.Module, error) {
	if !m.CredentialsPinned() {
		return nil, nil, fmt.Errorf("module %q: %w", moduleName, ErrUnpinnedCredentials)
	}
	if err := s.track(); err != nil {
		return nil, nil, err
	}
	defer s.wg.Done()
	if logger == nil {
		logger = s.logger
	}
	used := m.WithoutSend()
	if timeout > 0 && timeout < used.Timeout {
		used.Timeout = timeout
	}
	caller := ctx
	ctx, wait, cancel := s.onDemandContexts(ctx, timeout)
	defer cancel()
	slots := s.slotsOf(m)
	if slots.lock(wait) != nil {
		return nil, nil, s.notStarted(s.slotsBusy(m))
	}
	defer slots.unlock()
	s.metrics.inFlight.Inc()
	res := s.probe(probes.WithLimiter(ctx, s.handshakes), address, used, probes.LoggerWith(logger, "target", address, "module", moduleName))
	s.metrics.inFlight.Dec()
	res.Target, res.Module = address, moduleName
	if err := s.onDemandDone(caller, res); err != nil {
		return nil, nil, err
	}
	return res, &used, nil
}

// onDemandDone keeps an on-demand result in the history, unless shutdown
// or the caller cut the probe short: a scrape that went away (Prometheus
// gave up, a browser tab closed) has no one to read its result, and its
// "timeout" would only mislead whoever reads /history.
func (s *Scheduler) onDemandDone(caller context.Context, res *probes.Result) error {
	switch {
	case s.probeCtx.Err() != nil:
		return ErrShuttingDown
	case caller.Err() != nil && errors.Is(res.Err, context.Canceled):
		return ErrAbandoned
	}
	s.history.Add("probe", res)
	return nil
}

// track counts an on-demand probe in Shutdown's wait, or refuses it once
// shutdown has begun. The Add happens under the lock that Shutdown takes
// to stop scheduling, so Shutdown's Wait never races with it. The caller
// calls s.wg.Done when it returns.
func (s *Scheduler) track() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.schedCtx.Err() != nil {
		return ErrShuttingDown
	}
	s.wg.Add(1)
	return nil
}

// onDemandContexts returns the context an on-demand probe runs in and the
// one it waits for its target and a slot in. The first ends with parent,
// at the scrape's timeout plus answerSlack (when timeout is positive) and
// when shutdown cancels probes; the second also when shutdown begins, so
// that a probe not yet started never starts.
func (s *Scheduler) onDemandContexts(parent context.Context, timeout time.Duration) (run, wait context.Context, cancel func()) {
	var cancelRun context.CancelFunc
	if timeout > 0 {
		run, cancelRun = context.WithTimeout(parent, timeout+answerSlack)
	} else {
		run, cancelRun = context.WithCancel(parent)
	}
	stopRun := context.AfterFunc(s.probeCtx, cancelRun)
	wait, cancelWait := context.WithCancel(run)
	stopWait := context.AfterFunc(s.schedCtx, cancelWait)
	return run, wait, func() {
		stopWait()
		stopRun()
		cancelWait()
		cancelRun()
	}
}

// notStarted is err, or ErrShuttingDown when shutdown is why the wait
// ended.
func (s *Scheduler) notStarted(err error) error {
	if s.schedCtx.Err() != nil {
		return ErrShuttingDown
	}
	return err
}

// slotsOf returns the pool of probe slots of m's concurrency class.
func (s *Scheduler) slotsOf(m *probes.Module) chanLock {
	class := m.ConcurrencyClass()
	s.slotsMu.Lock()
	defer s.slotsMu.Unlock()
	c, ok := s.slots[class]
	if !ok {
		c = make(chanLock, s.concurrency)
		s.slots[class] = c
	}
	return c
}

func (s *Scheduler) slotsBusy(m *probes.Module) error {
	return fmt.Errorf("%w: all %d %s probe slots (--probe.concurrency) are in use; try again", ErrBusy, s.concurrency, m.ConcurrencyClass())
}

func effectiveTimeout(t *config.Target, m *probes.Module) time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return m.Timeout
}

// Shutdown stops scheduling, waits up to grace for probes in flight to
// finish (and QUIT), then cancels the rest and waits for them to end.
func (s *Scheduler) Shutdown(grace time.Duration) {
	s.stopScheduling()
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

// CancelProbes ends Shutdown's grace period at once (a second SIGTERM): it
// stops scheduling and cancels every probe in flight, scheduled or on
// demand. Shutdown still waits for them to end.
func (s *Scheduler) CancelProbes() {
	s.stopScheduling()
	s.stopProbes()
}

// StopScheduling begins shutdown at once: no scheduled or on-demand probe
// starts after it returns (on-demand ones get ErrShuttingDown), while the
// probes in flight run on. Shutdown, which does it too, then waits for them.
func (s *Scheduler) StopScheduling() { s.stopScheduling() }

// stopScheduling cancels schedCtx under the lock that on-demand probes and
// Apply check it under.
func (s *Scheduler) stopScheduling() {
	s.mu.Lock()
	s.stopSched()
	s.mu.Unlock()
}
