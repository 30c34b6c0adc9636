package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
	"go.uber.org/goleak"
)

// The scheduler tests run in synctest bubbles: the scheduler's timers and
// the fake probes' sleeps use the bubble's clock, which moves only when
// every goroutine in the bubble is blocked. A test moves the clock to a
// planned time and finds every run due by then finished, so counts and
// start times are exact, and the tests take no real time to wait. Each
// bubble ends with the scheduler's Shutdown, inside it (newTestScheduler's
// cleanup, or the test's own call), since a bubble must not outlive its
// goroutines.

func nopLogger() log.Logger { return log.NewNopLogger() }

// elapse moves the bubble's clock on by d and returns when every goroutine
// in the bubble has done what it can by then (and is blocked again).
func elapse(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// probeCall is one call of the fake probe.
type probeCall struct {
	ctx    context.Context
	target string
	module probes.Module
	n      int // this target's nth call, from 1
	seq    int // nth call overall, from 1
	start  time.Time
}

// fakeProbe is a ProbeFunc that records its calls and how many run at
// once, overall and per target; fn decides the result.
type fakeProbe struct {
	fn func(c *probeCall) *probes.Result

	inFlight, maxInFlight atomic.Int64

	mu           sync.Mutex
	calls        []probeCall
	perTarget    map[string]int // calls running now
	maxPerTarget int
}

func newFakeProbe(fn func(c *probeCall) *probes.Result) *fakeProbe {
	return &fakeProbe{fn: fn, perTarget: map[string]int{}}
}

func (f *fakeProbe) probe(ctx context.Context, target string, m probes.Module, _ log.Logger) *probes.Result {
	f.mu.Lock()
	c := probeCall{ctx: ctx, target: target, module: m, seq: len(f.calls) + 1, start: time.Now()}
	for _, prev := range f.calls {
		if prev.target == target {
			c.n++
		}
	}
	c.n++
	f.calls = append(f.calls, c)
	f.perTarget[target]++
	f.maxPerTarget = max(f.maxPerTarget, f.perTarget[target])
	f.mu.Unlock()

	now := f.inFlight.Add(1)
	for {
		old := f.maxInFlight.Load()
		if now <= old || f.maxInFlight.CompareAndSwap(old, now) {
			break
		}
	}
	res := f.fn(&c)
	f.inFlight.Add(-1)

	f.mu.Lock()
	f.perTarget[target]--
	f.mu.Unlock()
	return res
}

// callsTo returns the calls made for target so far.
func (f *fakeProbe) callsTo(target string) []probeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []probeCall
	for _, c := range f.calls {
		if c.target == target {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeProbe) count(target string) int { return len(f.callsTo(target)) }

func (f *fakeProbe) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeProbe) maxSelfOverlap() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxPerTarget
}

// sleepCtx waits d or until ctx ends, reporting whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// resultWith is a finished result of the given reason (ok: success) with a
// reply in the failing phase, for backoff and schedule tests.
func resultWith(reason probes.Reason, code int, enh string) *probes.Result {
	res := &probes.Result{Start: time.Now(), Duration: time.Millisecond, Success: reason == probes.ReasonOK, Reason: reason,
		SMTP: &probes.SMTPFacts{HelloAnswered: true}}
	res.Phases = []*probes.PhaseResult{
		phaseResult(probes.PhaseResolve, 0.1),
		phaseResult(probes.PhaseConnect, 0.1),
		phaseResult(probes.PhaseBanner, 0.1, okReply(220, "", "ready")),
		phaseResult(probes.PhaseEHLO, 0.1, okReply(250, "", "hello")),
	}
	if reason != probes.ReasonOK {
		res.FailedPhase, res.Code, res.EnhancedCode = probes.PhaseMail, code, enh
		res.Phases = append(res.Phases, phaseResult(probes.PhaseMail, 0.1, reply(code, enh, reason, enh+" no")))
	} else {
		res.Phases = append(res.Phases, phaseResult(probes.PhaseMail, 0.1, okReply(250, "2.1.0", "2.1.0 ok")))
	}
	return res
}

func okResult() *probes.Result { return resultWith(probes.ReasonOK, 0, "") }

// plainModule is a module without TLS or sending; ehlo tells modules apart
// in the fake.
func plainModule(ehlo string) *probes.Module {
	m := &probes.Module{SMTP: probes.SMTPModule{TLS: probes.TLSNone, EHLO: ehlo, MailFrom: "monitor@example.net"}}
	m.SetDefaults()
	return m
}

// sendModule sends at most once an hour.
func sendModule() *probes.Module {
	m := &probes.Module{SMTP: probes.SMTPModule{
		TLS: probes.TLSNone, EHLO: "send.example.net", MailFrom: "monitor@example.net",
		RcptTo: []string{"sink@example.net"}, Send: true, MinSendInterval: time.Hour,
	}}
	m.SetDefaults()
	return m
}

// sendAwareResult has a DATA phase exactly when the module sends.
func sendAwareResult(m probes.Module) *probes.Result {
	res := okResult()
	res.Phases = append(res.Phases, phaseResult(probes.PhaseRcpt, 0.1, okReply(250, "2.1.5", "2.1.5 ok")))
	if m.SMTP.Send {
		res.Phases = append(res.Phases, phaseResult(probes.PhaseData, 0.1, okReply(354, "", "go ahead"), okReply(250, "2.0.0", "2.0.0 queued")))
	}
	return res
}

func targetsOf(module string, interval time.Duration, names ...string) []*config.Target {
	var out []*config.Target
	for _, n := range names {
		out = append(out, &config.Target{Name: n, Address: n, Module: module, Interval: interval})
	}
	return out
}

// newTestScheduler returns a scheduler over fake with a registry holding
// everything /metrics serves from it; cleanup shuts it down.
func newTestScheduler(t *testing.T, fake *fakeProbe, concurrency int) (*Scheduler, *Store, *prometheus.Registry) {
	t.Helper()
	store := NewStore()
	s := NewScheduler(fake.probe, concurrency, store, NewHistory(10), nopLogger())
	t.Cleanup(func() { s.Shutdown(0) })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(store))
	reg.MustRegister(s.Collectors()...)
	return s, store, reg
}

// value reads one series from the registry; missing series read as -1.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := find(gatherAll(t, reg), name, labels)
	if !ok {
		return -1
	}
	return v
}

func TestOffset_StableAndWithinInterval(t *testing.T) {
	for _, interval := range []time.Duration{50 * time.Millisecond, time.Second, time.Minute, time.Hour, 24 * time.Hour} {
		for i := range 200 {
			name := fmt.Sprintf("mx%d.example.net", i)
			o := offset(name, interval)
			if o < 0 || o >= interval {
				t.Fatalf("offset(%q, %s) = %s, outside [0, %s)", name, interval, o, interval)
			}
			if again := offset(name, interval); again != o {
				t.Fatalf("offset(%q, %s) not stable: %s then %s", name, interval, o, again)
			}
		}
	}
	// Pinned: the same name keeps its slot across restarts and releases.
	if got, want := offset("mail-submission", time.Minute), offset("mail-submission", time.Minute); got != want {
		t.Fatalf("offset not deterministic")
	}
}

func TestOffset_SpreadsNames(t *testing.T) {
	const (
		names   = 1000
		buckets = 10
	)
	interval := time.Minute
	var counts [buckets]int
	seen := map[time.Duration]bool{}
	for i := range names {
		o := offset(fmt.Sprintf("target-%03d", i), interval)
		counts[o*buckets/interval]++
		seen[o] = true
	}
	// Uniform would put 100 in each tenth; a clumping hash would not.
	for b, n := range counts {
		if n < 50 || n > 150 {
			t.Errorf("tenth %d of the interval holds %d of %d first runs: %v", b, n, names, counts)
		}
	}
	if len(seen) < names-5 {
		t.Errorf("only %d distinct offsets for %d names", len(seen), names)
	}
	if offset("a", interval) == offset("b", interval) {
		t.Error(`"a" and "b" share an offset`)
	}
}

func TestScheduler_RunsEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 50 * time.Millisecond
		fake := newFakeProbe(func(*probeCall) *probes.Result { return okResult() })
		s, _, reg := newTestScheduler(t, fake, 4)
		names := []string{"alpha", "beta", "gamma"}
		start := time.Now()
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targetsOf("plain", interval, names...)})
		// Every first run is planned within the first interval.
		elapse(5 * interval)
		s.Shutdown(time.Minute)
		elapsed := time.Since(start)
		for _, n := range names {
			calls := fake.callsTo(n)
			if len(calls) < 5 {
				t.Errorf("%s ran %d times in five intervals, want at least 5", n, len(calls))
			}
			// The kth run is planned at offset + (k-1)·interval and never
			// starts early.
			if limit := int(elapsed/interval) + 1; len(calls) > limit {
				t.Errorf("%s ran %d times in %s, more than once per %s (limit %d)", n, len(calls), elapsed, interval, limit)
			}
			// Nor late: nothing else holds it up.
			for i, c := range calls {
				if planned := offset(n, interval) + time.Duration(i)*interval; c.start.Sub(start) != planned {
					t.Errorf("%s's run %d started at %s, planned for %s", n, i+1, c.start.Sub(start), planned)
				}
			}
			if got := value(t, reg, "probe_smtp_runs_total", map[string]string{"target": n, "module": "plain"}); got != float64(len(calls)) {
				t.Errorf("probe_smtp_runs_total{target=%q} = %v, want %d (one per run)", n, got, len(calls))
			}
		}
		if got := value(t, reg, "smtp_exporter_targets", nil); got != 3 {
			t.Errorf("smtp_exporter_targets = %v, want 3", got)
		}
	})
}

func TestScheduler_ConcurrencyLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 100 * time.Millisecond
		gate := make(chan struct{})
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			select {
			case <-gate:
			case <-c.ctx.Done():
			}
			sleepCtx(c.ctx, 5*time.Millisecond)
			return okResult()
		})
		s, _, reg := newTestScheduler(t, fake, 2)
		names := []string{"t1", "t2", "t3", "t4", "t5", "t6"}
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targetsOf("plain", interval, names...)})

		// Every target comes due within the first interval; two get a slot.
		elapse(interval)
		if n := fake.inFlight.Load(); n != 2 {
			t.Fatalf("%d probes in flight once every target came due, want the limit 2", n)
		}
		if got := value(t, reg, "smtp_exporter_probes_in_flight", nil); got != 2 {
			t.Errorf("smtp_exporter_probes_in_flight = %v with two probes blocked, want 2", got)
		}
		// Every other target comes due again while the two block; none may
		// start.
		elapse(250 * time.Millisecond)
		if n := fake.inFlight.Load(); n != 2 {
			t.Errorf("%d probes in flight with concurrency 2", n)
		}
		if got := value(t, reg, "smtp_exporter_probes_in_flight", nil); got != 2 {
			t.Errorf("smtp_exporter_probes_in_flight = %v, want 2", got)
		}
		close(gate)
		// 18 runs of 5ms on two slots take 45ms; the schedule adds at most
		// three intervals.
		elapse(time.Second)
		for _, n := range names {
			if c := fake.count(n); c < 3 {
				t.Errorf("%s ran %d times in the second after the gate opened, want at least 3", n, c)
			}
		}
		s.Shutdown(time.Minute)
		if m := fake.maxInFlight.Load(); m != 2 {
			t.Errorf("at most %d probes ran at once, want exactly the limit 2", m)
		}
		if got := value(t, reg, "smtp_exporter_probes_in_flight", nil); got != 0 {
			t.Errorf("smtp_exporter_probes_in_flight = %v after shutdown, want 0", got)
		}
	})
}

func TestScheduler_NoSelfOverlap_SlowProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 50 * time.Millisecond
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			sleepCtx(c.ctx, 3*interval)
			return okResult()
		})
		s, _, reg := newTestScheduler(t, fake, 8)
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targetsOf("plain", interval, "slow")})
		// The first run starts within an interval; each later one, late,
		// as soon as the one before ends.
		elapse(interval + 3*3*interval)
		if n := fake.count("slow"); n < 4 {
			t.Fatalf("%d runs, want at least 4", n)
		}
		s.Shutdown(time.Minute)
		if m := fake.maxSelfOverlap(); m != 1 {
			t.Errorf("target ran %d probes at once, want 1", m)
		}
		calls := fake.callsTo("slow")
		if got := value(t, reg, "probe_smtp_runs_total", map[string]string{"target": "slow"}); got != float64(len(calls)) {
			t.Errorf("probe_smtp_runs_total = %v, want %d", got, len(calls))
		}
	})
}

func TestScheduler_RunNow_WaitsForScheduledRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 100 * time.Millisecond
		release := make(chan struct{})
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			if c.seq == 1 {
				select {
				case <-release:
				case <-c.ctx.Done():
				}
			}
			return okResult()
		})
		s, _, _ := newTestScheduler(t, fake, 4)
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targetsOf("plain", interval, "mx")})
		elapse(interval)
		if n := fake.total(); n != 1 {
			t.Fatalf("%d probes started in the first interval, want the scheduled run", n)
		}

		type runNow struct {
			res *probes.Result
			err error
		}
		done := make(chan runNow, 1)
		go func() {
			res, _, err := s.RunNow(context.Background(), "mx", 0, nil)
			done <- runNow{res, err}
		}()
		elapse(150 * time.Millisecond)
		select {
		case <-done:
			t.Fatal("RunNow returned while the scheduled run was still in progress")
		default:
		}
		if n := fake.total(); n != 1 {
			t.Fatalf("%d probes started while the scheduled run was in progress, want 1", n)
		}
		close(release)
		var got runNow
		select {
		case got = <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("RunNow did not return after the scheduled run finished")
		}
		if got.err != nil || got.res == nil || got.res.Target != "mx" || got.res.Module != "plain" {
			t.Errorf("RunNow = %+v, want a result for mx/plain", got)
		}
		if m := fake.maxSelfOverlap(); m != 1 {
			t.Errorf("target ran %d probes at once, want 1", m)
		}
		if _, _, err := s.RunNow(context.Background(), "unknown", 0, nil); !errors.Is(err, ErrUnknownTarget) {
			t.Errorf("RunNow of an unknown target: err = %v, want ErrUnknownTarget", err)
		}
	})
}

func TestScheduler_Lag_WhenConcurrencyForcesWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 200 * time.Millisecond
		release, hold := make(chan struct{}), make(chan struct{})
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			switch {
			case c.seq == 1:
				// The first probe holds the only slot.
				select {
				case <-release:
				case <-c.ctx.Done():
				}
			case c.n > 1:
				// Later runs wait, so each target's lag stays that of its
				// first run.
				select {
				case <-hold:
				case <-c.ctx.Done():
				}
			}
			return okResult()
		})
		s, _, reg := newTestScheduler(t, fake, 1)
		start := time.Now()
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targetsOf("plain", interval, "a", "b")})
		// Both first runs are due within 200ms; one gets the only slot.
		elapse(interval)
		if n := fake.total(); n != 1 {
			t.Fatalf("%d probes started with one slot, want 1", n)
		}
		first := fake.callsTo("a")
		holder, waiter := "a", "b"
		if len(first) == 0 {
			holder, waiter = "b", "a"
		}
		// The waiter's first run is now late.
		elapse(400 * time.Millisecond)
		close(release)
		synctest.Wait()
		if got := value(t, reg, "probe_smtp_runs_total", map[string]string{"target": waiter}); got != 1 {
			t.Fatalf("probe_smtp_runs_total{target=%q} = %v once the slot was free, want its first run", waiter, got)
		}
		lag := value(t, reg, "smtp_exporter_scheduler_lag_seconds", map[string]string{"target": waiter, "module": "plain"})
		// Due before 200ms, started after 400ms: at least 200ms late.
		if lag < 0.1 {
			t.Errorf("lag of %s, which waited for %s's slot, = %v, want > 0.1s", waiter, holder, lag)
		}
		// Due at its offset, started when the slot came free at 600ms.
		if want := (time.Since(start) - offset(waiter, interval)).Seconds(); lag != want {
			t.Errorf("lag of %s = %vs, want %vs", waiter, lag, want)
		}
		close(hold)
	})
}

// TestScheduler_Backoff reads, at the start of each run, the backoff gauge
// left by the run before.
func TestScheduler_Backoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 20 * time.Millisecond
		script := []*probes.Result{
			resultWith(probes.ReasonThrottled, 421, "4.7.0"),          // → 2
			resultWith(probes.ReasonGreylisted, 450, "4.7.1"),         // → 4
			resultWith(probes.ReasonMailboxUnavailable, 550, "5.1.1"), // permanent: stays 4
			resultWith(probes.ReasonServiceUnavailable, 421, "4.3.2"), // → 8
			resultWith(probes.ReasonThrottled, 451, "4.7.1"),          // capped: 8
			okResult(), // → 1
			resultWith(probes.ReasonMailboxUnavailable, 550, "5.1.1"), // stays 1
			resultWith(probes.ReasonGreylisted, 451, "4.7.1"),         // → 2
			okResult(), // → 1
		}
		want := []float64{1, 2, 4, 4, 8, 8, 1, 1, 2}
		var (
			s    *Scheduler
			mu   sync.Mutex
			seen []float64
		)
		ready := make(chan struct{})
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			<-ready
			mu.Lock()
			seen = append(seen, testutil.ToFloat64(s.metrics.backoff.WithLabelValues("greylister", "plain")))
			mu.Unlock()
			if c.n <= len(script) {
				return script[c.n-1]
			}
			return okResult()
		})
		s, _, reg := newTestScheduler(t, fake, 2)
		close(ready)
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targetsOf("plain", interval, "greylister")})
		// The script's runs wait 2+4+4+8+8+1+1+2+1 = 31 intervals in all
		// before the run after it.
		elapse(32 * interval)
		if n := fake.count("greylister"); n <= len(script) {
			t.Fatalf("%d runs in 32 intervals, want the %d scripted ones and one more", n, len(script))
		}
		s.Shutdown(time.Minute)
		mu.Lock()
		got := seen[:len(want)]
		mu.Unlock()
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("backoff factor before each run = %v, want %v", got, want)
			}
		}
		if f := value(t, reg, "smtp_exporter_scheduler_backoff_factor", map[string]string{"target": "greylister"}); f != 1 {
			t.Errorf("backoff factor after successes = %v, want 1", f)
		}
	})
}

func TestScheduler_Backoff_SpacesRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 50 * time.Millisecond
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			if c.target == "throttled" {
				return resultWith(probes.ReasonThrottled, 421, "4.7.0")
			}
			return okResult()
		})
		s, _, reg := newTestScheduler(t, fake, 4)
		start := time.Now()
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targetsOf("plain", interval, "throttled", "healthy")})
		elapse(30 * interval)
		if n := fake.count("healthy"); n < 30 {
			t.Fatalf("the healthy target ran %d times in 30 intervals, want at least 30", n)
		}
		s.Shutdown(time.Minute)
		elapsed := time.Since(start)
		healthy, throttled := fake.count("healthy"), fake.count("throttled")
		// Planned starts of the throttled target, after its offset: each wait
		// is the interval times 2, 4, 8, 8, ...; no run starts before its plan.
		limit, planned, factor := 0, time.Duration(0), 1
		for planned <= elapsed {
			limit++
			factor = min(factor*2, maxBackoff)
			planned += interval * time.Duration(factor)
		}
		if throttled > limit {
			t.Errorf("throttled target ran %d times in %s, its backed-off schedule allows %d", throttled, elapsed, limit)
		}
		if throttled*2 >= healthy {
			t.Errorf("throttled target ran %d times, the healthy one %d: backoff did not space runs", throttled, healthy)
		}
		if f := value(t, reg, "smtp_exporter_scheduler_backoff_factor", map[string]string{"target": "throttled"}); f != maxBackoff {
			t.Errorf("backoff factor of a target always throttled = %v, want %d", f, maxBackoff)
		}
		if f := value(t, reg, "smtp_exporter_scheduler_backoff_factor", map[string]string{"target": "healthy"}); f != 1 {
			t.Errorf("backoff factor of a healthy target = %v, want 1", f)
		}
	})
}

func TestScheduler_SendRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 50 * time.Millisecond
		fake := newFakeProbe(func(c *probeCall) *probes.Result { return sendAwareResult(c.module) })
		s, _, reg := newTestScheduler(t, fake, 2)
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"send": sendModule()}, Targets: targetsOf("send", interval, "mx")})
		elapse(5 * interval)
		if n := fake.count("mx"); n < 5 {
			t.Fatalf("%d runs in five intervals, want at least 5", n)
		}
		s.Shutdown(time.Minute)
		calls := fake.callsTo("mx")
		for i, c := range calls {
			if want := i == 0; c.module.SMTP.Send != want {
				t.Errorf("run %d: Send = %v, want %v (min_send_interval 1h)", i+1, c.module.SMTP.Send, want)
			}
		}
		labels := map[string]string{"target": "mx", "module": "send"}
		if got := value(t, reg, "smtp_exporter_sends_skipped_total", labels); got != float64(len(calls)-1) {
			t.Errorf("smtp_exporter_sends_skipped_total = %v, want %d", got, len(calls)-1)
		}
		if got := value(t, reg, "probe_smtp_runs_total", labels); got != float64(len(calls)) {
			t.Errorf("probe_smtp_runs_total = %v, want %d", got, len(calls))
		}
		// The configuration is not changed by the limit.
		if !sendModule().SMTP.Send {
			t.Fatal("sendModule does not send")
		}
	})
}

// A send the rate limit held back has no DATA phase duration, like any
// phase a run did not reach: a 0 would drag the phase's quantiles down.
func TestScheduler_SendRateLimit_HeldBackDataAbsent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 50 * time.Millisecond
		fake := newFakeProbe(func(c *probeCall) *probes.Result { return sendAwareResult(c.module) })
		store, history := NewStore(), NewHistory(10)
		s := NewScheduler(fake.probe, 2, store, history, nopLogger())
		t.Cleanup(func() { s.Shutdown(0) })
		reg := registryOf(NewCollector(store))
		reg.MustRegister(s.Collectors()...)
		targets := targetsOf("send", interval, "mx")
		targets[0].Timeout = 40 * time.Millisecond
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"send": sendModule()}, Targets: targets})
		labels := map[string]string{"target": "mx", "module": "send"}
		elapse(3 * interval)
		if got := value(t, reg, "probe_smtp_runs_total", labels); got < 3 {
			t.Fatalf("probe_smtp_runs_total = %v after three intervals, want at least 3", got)
		}
		s.Shutdown(time.Minute)
		calls := fake.callsTo("mx")
		if last := calls[len(calls)-1]; last.module.SMTP.Send {
			t.Fatal("the last run sent; want it held back by min_send_interval")
		}
		if got := value(t, reg, "probe_smtp_phase_duration_seconds", map[string]string{"target": "mx", "phase": "data"}); got != -1 {
			t.Errorf("probe_smtp_phase_duration_seconds{phase=data} = %v after a skipped send, want absent (-1)", got)
		}
		if _, ok := store.Get("mx"); !ok {
			t.Fatal("no store entry for mx")
		}
		if tr := history.List()[0].Result.Transcript; len(tr) == 0 || !strings.Contains(tr[len(tr)-1].Text, "no message sent") {
			t.Errorf("the transcript does not say the send was held back: %v", tr)
		}
	})
}

func TestScheduler_SendRateLimit_OnlySentMessagesCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 50 * time.Millisecond
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			if c.n == 1 {
				// Refused at RCPT: no message went out.
				return resultWith(probes.ReasonMailboxUnavailable, 550, "5.1.1")
			}
			return sendAwareResult(c.module)
		})
		s, _, reg := newTestScheduler(t, fake, 2)
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"send": sendModule()}, Targets: targetsOf("send", interval, "mx")})
		elapse(4 * interval)
		if n := fake.count("mx"); n < 4 {
			t.Fatalf("%d runs in four intervals, want at least 4", n)
		}
		s.Shutdown(time.Minute)
		calls := fake.callsTo("mx")
		for i, c := range calls {
			if want := i < 2; c.module.SMTP.Send != want {
				t.Errorf("run %d: Send = %v, want %v", i+1, c.module.SMTP.Send, want)
			}
		}
		if got := value(t, reg, "smtp_exporter_sends_skipped_total", map[string]string{"target": "mx"}); got != float64(len(calls)-2) {
			t.Errorf("smtp_exporter_sends_skipped_total = %v, want %d", got, len(calls)-2)
		}
	})
}

// perTargetFamilies are the families that carry a target label.
var perTargetFamilies = []string{
	"probe_smtp_runs_total", "probe_smtp_replies_total", "probe_smtp_failures_total",
	"probe_smtp_last_run_timestamp_seconds",
	"smtp_exporter_scheduler_lag_seconds", "smtp_exporter_scheduler_backoff_factor",
	"probe_success", "probe_duration_seconds", "probe_smtp_phase_duration_seconds",
	"probe_smtp_reply_code", "probe_smtp_failure_info", "probe_smtp_starttls_offered",
}

func TestScheduler_Apply_Reload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 50 * time.Millisecond
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			switch c.target {
			case "b":
				return resultWith(probes.ReasonDMARC, 550, "5.7.26")
			case "a":
				return sendAwareResult(c.module)
			}
			return okResult()
		})
		s, _, reg := newTestScheduler(t, fake, 8)
		modules := map[string]*probes.Module{"send": sendModule(), "plain": plainModule("plain"), "other": plainModule("other")}
		s.Apply(&config.Config{Modules: modules, Targets: append(targetsOf("send", interval, "a"), targetsOf("plain", interval, "b", "c")...)})
		elapse(3 * interval)
		if fake.count("a") < 3 || fake.count("b") < 3 || fake.count("c") < 3 {
			t.Fatalf("runs of a, b and c in three intervals: %d, %d, %d; want at least 3 each", fake.count("a"), fake.count("b"), fake.count("c"))
		}

		mfs := gatherAll(t, reg)
		for _, name := range append(perTargetFamilies, "smtp_exporter_sends_skipped_total") {
			target := "b"
			if name == "smtp_exporter_sends_skipped_total" {
				target = "a"
			}
			if _, ok := find(mfs, name, map[string]string{"target": target}); !ok {
				t.Fatalf("before the reload: %s has no series for %s", name, target)
			}
		}
		runsA := value(t, reg, "probe_smtp_runs_total", map[string]string{"target": "a"})
		s.mu.Lock()
		loopA := s.loops["a"]
		s.mu.Unlock()

		// The reload: a unchanged, b removed, c moved to another module, d new.
		// The new file decodes into new structs.
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"send": sendModule(), "plain": plainModule("plain"), "other": plainModule("other")},
			Targets: append(append(targetsOf("send", interval, "a"), targetsOf("other", interval, "c")...), targetsOf("plain", interval, "d")...)})
		callsB := fake.count("b")

		mfs = gatherAll(t, reg)
		if fams := familiesWith(mfs, map[string]string{"target": "b"}); len(fams) > 0 {
			t.Errorf("removed target b still has series in %v", fams)
		}
		if fams := familiesWith(mfs, map[string]string{"target": "c", "module": "plain"}); len(fams) > 0 {
			t.Errorf("target c's old module still has series in %v", fams)
		}
		if got := value(t, reg, "probe_smtp_runs_total", map[string]string{"target": "a"}); got < runsA {
			t.Errorf("probe_smtp_runs_total{target=a} went from %v to %v on reload", runsA, got)
		}
		if got := value(t, reg, "smtp_exporter_targets", nil); got != 3 {
			t.Errorf("smtp_exporter_targets = %v, want 3", got)
		}
		s.mu.Lock()
		sameLoop := s.loops["a"] == loopA
		s.mu.Unlock()
		if !sameLoop {
			t.Error("unchanged target a was rescheduled by the reload")
		}

		callsA := fake.count("a")
		elapse(3 * interval)
		if fake.count("a") < callsA+3 || fake.count("d") < 2 || countModule(fake.callsTo("c"), "other") < 2 {
			t.Fatalf("runs in three intervals after the reload: a %d, d %d, c in module other %d; want at least 3, 2, 2",
				fake.count("a")-callsA, fake.count("d"), countModule(fake.callsTo("c"), "other"))
		}
		s.Shutdown(time.Minute)

		mfs = gatherAll(t, reg)
		if fams := familiesWith(mfs, map[string]string{"target": "b"}); len(fams) > 0 {
			t.Errorf("removed target b has series again in %v", fams)
		}
		// b's loop waited for its next run when the reload came.
		if n := fake.count("b"); n != callsB {
			t.Errorf("removed target b ran %d more times", n-callsB)
		}
		if got := value(t, reg, "probe_smtp_runs_total", map[string]string{"target": "a"}); got != float64(fake.count("a")) {
			t.Errorf("probe_smtp_runs_total{target=a} = %v, want all %d runs (not reset by the reload)", got, fake.count("a"))
		}
		if got, want := value(t, reg, "probe_smtp_runs_total", map[string]string{"target": "c", "module": "other"}), countModule(fake.callsTo("c"), "other"); got != float64(want) {
			t.Errorf("probe_smtp_runs_total{target=c,module=other} = %v, want %d (counted from the module change)", got, want)
		}
		if got := value(t, reg, "probe_smtp_runs_total", map[string]string{"target": "d", "module": "plain"}); got != float64(fake.count("d")) {
			t.Errorf("probe_smtp_runs_total{target=d} = %v, want %d", got, fake.count("d"))
		}
		// The send rate limit survived the reload: only a's very first run sent.
		for i, c := range fake.callsTo("a") {
			if c.module.SMTP.Send != (i == 0) {
				t.Errorf("a's run %d: Send = %v", i+1, c.module.SMTP.Send)
			}
		}
		checkLabelValues(t, mfs)
	})
}

func countModule(calls []probeCall, ehlo string) int {
	n := 0
	for _, c := range calls {
		if c.module.SMTP.EHLO == ehlo {
			n++
		}
	}
	return n
}

// A run in flight when its target is removed must not publish anything
// afterwards: not its result, not the send it skipped.
func TestScheduler_Apply_RemovedWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 50 * time.Millisecond
		release := make(chan struct{})
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			if c.target == "gone" && c.n == 2 {
				select {
				case <-release:
				case <-c.ctx.Done():
				}
			}
			return sendAwareResult(c.module)
		})
		s, _, reg := newTestScheduler(t, fake, 4)
		modules := map[string]*probes.Module{"send": sendModule()}
		s.Apply(&config.Config{Modules: modules, Targets: targetsOf("send", interval, "gone", "stays")})
		elapse(2 * interval)
		if n := fake.count("gone"); n != 2 {
			t.Fatalf("gone ran %d times in two intervals, want 2, the second still running", n)
		}
		s.Apply(&config.Config{Modules: modules, Targets: targetsOf("send", interval, "stays")})
		close(release)
		s.Shutdown(time.Minute)
		if fams := familiesWith(gatherAll(t, reg), map[string]string{"target": "gone"}); len(fams) > 0 {
			t.Errorf("target removed while running has series in %v", fams)
		}
	})
}

func TestScheduler_Shutdown_FinishesWithinGrace(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		type outcome struct {
			target               string
			completed, cancelled bool
		}
		const slowInterval = 200 * time.Millisecond
		slow := []string{"slow1", "slow2", "slow3", "slow4", "slow5", "slow6"}
		outcomes := make(chan outcome, len(slow))
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			if c.target == "fast" || c.n > 1 {
				return okResult()
			}
			// Longer than the interval: when it ends the next run is due at
			// once, just as shutdown wants no more runs.
			completed := sleepCtx(c.ctx, 400*time.Millisecond)
			outcomes <- outcome{c.target, completed && c.ctx.Err() == nil, c.ctx.Err() != nil}
			return okResult()
		})
		s := NewScheduler(fake.probe, 8, NewStore(), nil, nopLogger())
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")},
			Targets: append(targetsOf("plain", slowInterval, slow...), targetsOf("plain", 20*time.Millisecond, "fast")...)})
		elapse(slowInterval)
		for _, n := range slow {
			if fake.count(n) == 0 {
				t.Fatalf("%s did not run in its first interval", n)
			}
		}

		done := make(chan struct{})
		go func() { s.Shutdown(time.Minute); close(done) }()
		// Every slow probe started 400ms before it ends, at most 200ms ago.
		elapse(50 * time.Millisecond)
		select {
		case <-done:
			t.Fatal("Shutdown returned while probes were in flight")
		default:
		}
		during := fake.total()
		<-done
		for range slow {
			o := <-outcomes
			if !o.completed || o.cancelled {
				t.Errorf("%s, in flight at shutdown: completed=%v cancelled=%v; want it to finish within the grace period", o.target, o.completed, o.cancelled)
			}
		}
		elapse(100 * time.Millisecond)
		if after := fake.total(); after != during {
			t.Errorf("%d probes started after Shutdown began", after-during)
		}
	})
}

func TestScheduler_Shutdown_CancelsAfterGrace(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		observed := make(chan error, 1)
		entered := make(chan struct{})
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			close(entered)
			select {
			case <-c.ctx.Done():
				observed <- c.ctx.Err()
			case <-time.After(time.Minute):
				observed <- nil
			}
			return resultWith(probes.ReasonTimeout, 0, "")
		})
		store := NewStore()
		s := NewScheduler(fake.probe, 4, store, nil, nopLogger())
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targetsOf("plain", 50*time.Millisecond, "stuck")})
		<-entered
		start := time.Now()
		s.Shutdown(100 * time.Millisecond)
		select {
		case err := <-observed:
			if err != context.Canceled {
				t.Errorf("probe's ctx after the grace period: %v, want context.Canceled", err)
			}
		default:
			t.Fatal("Shutdown returned before the probe in flight ended")
		}
		if waited := time.Since(start); waited != 100*time.Millisecond {
			t.Errorf("Shutdown cancelled the probe after %s, want at the end of its 100ms grace period", waited)
		}
	})
}

// A probe started on demand is cancelled by shutdown too.
func TestScheduler_Shutdown_CancelsRunNow(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		entered := make(chan struct{})
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			close(entered)
			<-c.ctx.Done()
			return resultWith(probes.ReasonTimeout, 0, "")
		})
		s := NewScheduler(fake.probe, 4, NewStore(), nil, nopLogger())
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targetsOf("plain", time.Hour, "mx")})
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.RunNow(context.Background(), "mx", 0, nil)
		}()
		<-entered
		s.Shutdown(50 * time.Millisecond)
		<-done
	})
}

func TestScheduler_RunNow_CountsAgainstConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 100 * time.Millisecond
		release := make(chan struct{})
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			if c.target == "busy" {
				select {
				case <-release:
				case <-c.ctx.Done():
				}
			}
			return okResult()
		})
		s, _, _ := newTestScheduler(t, fake, 1)
		targets := append(targetsOf("plain", time.Hour, "busy"), targetsOf("plain", time.Hour, "idle")...)
		targets[0].Interval = interval
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targets})
		elapse(interval)
		if n := fake.count("busy"); n != 1 {
			t.Fatalf("busy ran %d times in its first interval, want 1", n)
		}

		done := make(chan error, 1)
		go func() {
			_, _, err := s.RunNow(context.Background(), "idle", 0, nil)
			done <- err
		}()
		elapse(150 * time.Millisecond)
		if n := fake.count("idle"); n != 0 {
			t.Fatalf("on-demand probe ran while the only slot was taken (%d runs)", n)
		}
		close(release)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunNow: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("RunNow did not get the slot after it was freed")
		}
	})
}

// An on-demand run of a target whose scheduled run is in progress gives up
// at the scrape's deadline rather than wait out the scheduled run, and a
// run waiting for its target holds no slot that other targets need.
func TestScheduler_RunNow_BusyTargetGivesUpAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 100 * time.Millisecond
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			if c.ctx.Err() != nil {
				// Started without a slot, past its deadline.
				return resultWith(probes.ReasonTimeout, 0, "")
			}
			if c.target == "mx" && c.n == 1 {
				sleepCtx(c.ctx, 10*time.Second)
			}
			return okResult()
		})
		s, _, _ := newTestScheduler(t, fake, 2)
		targets := targetsOf("plain", time.Hour, "mx", "other")
		targets[0].Interval = interval
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targets})
		elapse(interval)
		if n := fake.count("mx"); n != 1 {
			t.Fatalf("mx ran %d times in its first interval, want 1", n)
		}

		// Without a scrape timeout, an on-demand run waits for the target...
		go s.RunNow(context.Background(), "mx", 0, nil)
		elapse(100 * time.Millisecond)
		// ... but not in the second slot, which another target gets.
		start := time.Now()
		if res, _, err := s.RunNow(context.Background(), "other", 300*time.Millisecond, nil); err != nil || !res.Success {
			t.Errorf("RunNow(other) with one slot free: err=%v success=%v; want it to run", err, res != nil && res.Success)
		}
		if elapsed := time.Since(start); elapsed > 3*time.Second {
			t.Errorf("RunNow(other) returned after %s: the run waiting for mx held the free slot", elapsed)
		}

		start = time.Now()
		res, _, err := s.RunNow(context.Background(), "mx", 300*time.Millisecond, nil)
		elapsed := time.Since(start)
		if !errors.Is(err, ErrBusy) || res != nil {
			t.Errorf("RunNow(mx) during its 10s scheduled run: res=%v err=%v, want ErrBusy", res, err)
		}
		if err != nil && !strings.Contains(err.Error(), `target "mx" is being probed`) {
			t.Errorf("error %q does not say that the target is busy", err)
		}
		if elapsed > 3*time.Second {
			t.Errorf("RunNow with a 300ms timeout returned after %s", elapsed)
		}
		// It waits out the scrape's timeout and the slack, no less.
		if want := 300*time.Millisecond + answerSlack; elapsed != want {
			t.Errorf("RunNow with a 300ms timeout gave up after %s, want %s", elapsed, want)
		}
		if n := fake.count("mx"); n != 1 {
			t.Errorf("mx probed %d times, want only its scheduled run", n)
		}
	})
}

// Shutdown must not make a probe it cut short count as a failure: the
// server did nothing wrong.
func TestScheduler_Shutdown_CancelledRunNotRecorded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 20 * time.Millisecond
		var logs bytes.Buffer
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			if c.n == 1 {
				return okResult()
			}
			<-c.ctx.Done()
			res := resultWith(probes.ReasonTimeout, 0, "")
			res.FailedPhase = probes.PhaseBanner
			if c.target == "wrapped" {
				// What smtp.Probe reports when its context is cancelled.
				res.Err = fmt.Errorf("read banner: %w", context.Canceled)
			}
			return res
		})
		store, history := NewStore(), NewHistory(10)
		s := NewScheduler(fake.probe, 4, store, history, log.NewLogfmtLogger(log.NewSyncWriter(&logs)))
		reg := registryOf(NewCollector(store))
		reg.MustRegister(s.Collectors()...)
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targetsOf("plain", interval, "wrapped", "bare")})
		elapse(2 * interval)
		if fake.count("wrapped") != 2 || fake.count("bare") != 2 {
			t.Fatalf("runs in two intervals: wrapped %d, bare %d; want 2 each, the second still running", fake.count("wrapped"), fake.count("bare"))
		}
		s.Shutdown(50 * time.Millisecond)

		for _, target := range []string{"wrapped", "bare"} {
			labels := map[string]string{"target": target}
			if got := value(t, reg, "probe_smtp_runs_total", labels); got != 1 {
				t.Errorf("probe_smtp_runs_total{target=%q} = %v, want 1: the cancelled run counted", target, got)
			}
			if got := value(t, reg, "probe_smtp_failures_total", labels); got != -1 {
				t.Errorf("probe_smtp_failures_total{target=%q} = %v, want none", target, got)
			}
			if got := value(t, reg, "probe_success", labels); got != 1 {
				t.Errorf("probe_success{target=%q} = %v, want the last real run's 1", target, got)
			}
		}
		for _, e := range history.List() {
			if !e.Result.Success {
				t.Errorf("history holds the cancelled run of %s", e.Result.Target)
			}
		}
		out := logs.String()
		if strings.Contains(out, "Probe failed") {
			t.Errorf("a cancelled run was logged as a failure:\n%s", out)
		}
		if n := strings.Count(out, "Probe cancelled by shutdown"); n != 2 {
			t.Errorf("%d log lines for two cancelled runs, want one each:\n%s", n, out)
		}
	})
}

// On-demand runs after shutdown has begun are refused as such, not as an
// unknown target.
func TestScheduler_RunNow_DuringShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 20 * time.Millisecond
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			if c.target == "slow" {
				sleepCtx(c.ctx, 10*time.Second)
			}
			return okResult()
		})
		s := NewScheduler(fake.probe, 4, NewStore(), nil, nopLogger())
		targets := targetsOf("plain", time.Hour, "slow", "mx")
		targets[0].Interval = interval
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targets})
		elapse(interval)
		if n := fake.count("slow"); n != 1 {
			t.Fatalf("slow ran %d times in its first interval, want 1", n)
		}
		done := make(chan struct{})
		go func() { s.Shutdown(time.Minute); close(done) }()
		synctest.Wait()
		if s.schedCtx.Err() == nil {
			t.Fatal("shutdown has not begun")
		}
		for _, name := range []string{"mx", "slow", "unknown"} {
			if _, _, err := s.RunNow(context.Background(), name, 0, nil); !errors.Is(err, ErrShuttingDown) {
				t.Errorf("RunNow(%s) during shutdown: err = %v, want ErrShuttingDown", name, err)
			}
		}
		s.CancelProbes()
		<-done
		if _, _, err := s.RunNow(context.Background(), "mx", 0, nil); !errors.Is(err, ErrShuttingDown) {
			t.Errorf("RunNow after shutdown: err = %v, want ErrShuttingDown", err)
		}
		if n := fake.count("mx"); n != 0 {
			t.Errorf("mx probed %d times during shutdown", n)
		}
	})
}

// A reload after Shutdown (a SIGHUP or POST /-/reload that lost the race)
// changes nothing: no loop starts, no series goes.
func TestScheduler_Apply_AfterShutdownIsNoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 20 * time.Millisecond
		fake := newFakeProbe(func(*probeCall) *probes.Result { return okResult() })
		s, store, reg := newTestScheduler(t, fake, 4)
		modules := map[string]*probes.Module{"plain": plainModule("p")}
		s.Apply(&config.Config{Modules: modules, Targets: targetsOf("plain", interval, "old")})
		elapse(interval)
		if _, ok := store.Get("old"); !ok {
			t.Fatal("no result of old after its first interval")
		}
		s.Shutdown(time.Minute)
		calls := fake.total()

		s.Apply(&config.Config{Modules: modules, Targets: targetsOf("plain", interval, "new1", "new2")})
		elapse(5 * interval)
		if _, ok := store.Get("old"); !ok {
			t.Error("Apply after Shutdown removed old's result")
		}
		if got := value(t, reg, "smtp_exporter_targets", nil); got != 1 {
			t.Errorf("smtp_exporter_targets = %v after Apply after Shutdown, want 1", got)
		}
		s.mu.Lock()
		_, started := s.loops["new1"]
		s.mu.Unlock()
		if started || fake.total() != calls {
			t.Errorf("Apply after Shutdown started a loop (%v) or a probe (%d)", started, fake.total()-calls)
		}
	})
}

// A reload that changes a kept target's interval replans it at once: the
// old plan could be an hour away. Counters and the send rate limit stay.
func TestScheduler_Apply_ChangedIntervalReplans(t *testing.T) {
	if o := offset("mx", time.Hour); o < time.Minute {
		t.Fatalf("mx's first run in an hourly plan is %s in; the test needs a later one", o)
	}
	synctest.Test(t, func(t *testing.T) {
		fake := newFakeProbe(func(c *probeCall) *probes.Result { return sendAwareResult(c.module) })
		s, _, reg := newTestScheduler(t, fake, 2)
		modules := map[string]*probes.Module{"send": sendModule()}
		labels := map[string]string{"target": "mx", "module": "send"}
		runs := func() float64 { return value(t, reg, "probe_smtp_runs_total", labels) }
		s.Apply(&config.Config{Modules: modules, Targets: targetsOf("send", 50*time.Millisecond, "mx")})
		elapse(2 * 50 * time.Millisecond)
		if got := runs(); got < 2 {
			t.Fatalf("probe_smtp_runs_total = %v after two intervals, want at least 2", got)
		}
		s.mu.Lock()
		loopMX := s.loops["mx"]
		s.mu.Unlock()

		s.Apply(&config.Config{Modules: modules, Targets: targetsOf("send", time.Hour, "mx")})
		synctest.Wait()
		before := fake.count("mx")
		// The old plan had a run due every 50ms; the hourly one has none
		// for a minute.
		elapse(300 * time.Millisecond)
		if n := fake.count("mx"); n != before || runs() != float64(n) {
			t.Fatalf("after the reload to an hourly interval: %d runs in 300ms, %v recorded of %d; want the hourly plan, no run",
				n-before, runs(), n)
		}

		s.Apply(&config.Config{Modules: modules, Targets: targetsOf("send", 100*time.Millisecond, "mx")})
		elapse(3 * 100 * time.Millisecond)
		if n := fake.count("mx"); n < before+3 {
			t.Fatalf("%d runs in three intervals of the new plan, want at least 3", n-before)
		}
		s.Shutdown(time.Minute)

		s.mu.Lock()
		sameLoop := s.loops["mx"] == loopMX
		s.mu.Unlock()
		if !sameLoop {
			t.Error("the reload replaced mx's loop")
		}
		if got, want := runs(), float64(fake.count("mx")); got != want {
			t.Errorf("probe_smtp_runs_total = %v, want all %v runs (not reset by the reloads)", got, want)
		}
		for i, c := range fake.callsTo("mx") {
			if c.module.SMTP.Send != (i == 0) {
				t.Errorf("run %d: Send = %v; the send rate limit did not survive the reloads", i+1, c.module.SMTP.Send)
			}
		}
	})
}

// A new plan starts without the old one's backoff.
func TestScheduler_Apply_ChangedIntervalResetsBackoff(t *testing.T) {
	if o := offset("throttled", time.Hour); o < time.Minute {
		t.Fatalf("throttled's first run in an hourly plan is %s in; the test needs a later one", o)
	}
	synctest.Test(t, func(t *testing.T) {
		const interval = 10 * time.Millisecond
		fake := newFakeProbe(func(*probeCall) *probes.Result { return resultWith(probes.ReasonThrottled, 421, "4.7.0") })
		s, _, reg := newTestScheduler(t, fake, 2)
		modules := map[string]*probes.Module{"plain": plainModule("p")}
		labels := map[string]string{"target": "throttled", "module": "plain"}
		s.Apply(&config.Config{Modules: modules, Targets: targetsOf("plain", interval, "throttled")})
		// Three throttled runs, 2 and 4 intervals apart, reach the cap.
		elapse(interval + 6*interval)
		if got := value(t, reg, "smtp_exporter_scheduler_backoff_factor", labels); got != maxBackoff {
			t.Fatalf("backoff factor after three throttled runs = %v, want the cap %d", got, maxBackoff)
		}
		s.Apply(&config.Config{Modules: modules, Targets: targetsOf("plain", time.Hour, "throttled")})
		synctest.Wait()
		if got := value(t, reg, "smtp_exporter_scheduler_backoff_factor", labels); got != 1 {
			t.Errorf("backoff factor after the reload = %v, want 1", got)
		}
	})
}

// manyTargets is n targets of module plain, due once a day, so that a
// reload test or benchmark measures the reload rather than runs.
func manyTargets(n int) []*config.Target {
	out := make([]*config.Target, n)
	for i := range out {
		name := fmt.Sprintf("mx%06d.example.net", i)
		out[i] = &config.Target{Name: name, Address: name + ":25", Module: "plain", Interval: 24 * time.Hour}
	}
	return out
}

// A reload plans its changes without the scheduler's lock, which every run
// takes to read its target's settings (current): runs go on while a large
// file is compared with the running one.
func TestScheduler_Apply_PlansWithoutTheLock(t *testing.T) {
	const n = 50000
	fake := newFakeProbe(func(*probeCall) *probes.Result { return okResult() })
	s, _, reg := newTestScheduler(t, fake, 4)
	modules := map[string]*probes.Module{"plain": plainModule("plain")}
	s.Apply(&config.Config{Modules: modules, Targets: manyTargets(n)})
	last := fmt.Sprintf("mx%06d.example.net", n-1)
	s.mu.Lock()
	l := s.loops[last]
	s.mu.Unlock()

	planned := 0
	s.testHookPlanned = func() {
		planned++
		if !s.mu.TryLock() {
			t.Error("Apply holds the scheduler lock while it compares the configurations")
			return
		}
		s.mu.Unlock()
		if tg, m := s.current(l); tg == nil || m == nil {
			t.Errorf("current(%s) during the reload = %v, %v; want the running settings", last, tg, m)
		}
	}
	// An unchanged file decodes into new structs.
	s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("plain")}, Targets: manyTargets(n)})
	if planned != 1 {
		t.Fatalf("the planning hook ran %d times, want 1", planned)
	}
	s.mu.Lock()
	same := s.loops[last] == l
	loops := len(s.loops)
	s.mu.Unlock()
	if !same || loops != n {
		t.Errorf("an unchanged reload replaced a loop (%v) or changed their number to %d", !same, loops)
	}
	if got := value(t, reg, "smtp_exporter_targets", nil); got != n {
		t.Errorf("smtp_exporter_targets = %v, want %d", got, n)
	}
}

// BenchmarkScheduler_ApplyUnchanged reloads a file that did not change:
// the cost should grow linearly with the targets (ns/target stays flat
// from 10,000 to 50,000). max-run-wait-ms is the longest a run waited for
// the scheduler's lock (current) during the reloads.
func BenchmarkScheduler_ApplyUnchanged(b *testing.B) {
	for _, n := range []int{10000, 50000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			fake := newFakeProbe(func(*probeCall) *probes.Result { return okResult() })
			s := NewScheduler(fake.probe, 4, NewStore(), NewHistory(10), nopLogger())
			defer s.Shutdown(0)
			modules := map[string]*probes.Module{"plain": plainModule("plain")}
			s.Apply(&config.Config{Modules: modules, Targets: manyTargets(n)})
			cfgs := make([]*config.Config, 2)
			for i := range cfgs {
				cfgs[i] = &config.Config{Modules: modules, Targets: manyTargets(n)}
			}
			s.mu.Lock()
			l := s.loops["mx000000.example.net"]
			s.mu.Unlock()

			stop := make(chan struct{})
			waited := make(chan time.Duration)
			go func() {
				var longest time.Duration
				for {
					select {
					case <-stop:
						waited <- longest
						return
					default:
					}
					start := time.Now()
					s.current(l)
					longest = max(longest, time.Since(start))
					time.Sleep(100 * time.Microsecond)
				}
			}()
			i := 0
			for b.Loop() {
				s.Apply(cfgs[i%2])
				i++
			}
			close(stop)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/target")
			b.ReportMetric(float64((<-waited).Microseconds())/1000, "max-run-wait-ms")
		})
	}
}

// A chanLock is held by at most cap holders; a waiter gives up when its
// context ends, and gets the lock as soon as a holder lets go.
func TestChanLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := make(chanLock, 1)
		if err := l.lock(context.Background()); err != nil {
			t.Fatalf("lock of a free chanLock: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if err := l.lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("lock of a held chanLock: err = %v, want the context's DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("lock gave up after %s, want at the context's deadline, 1s", waited)
		}

		got := make(chan error, 1)
		go func() { got <- l.lock(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("a second holder got the lock (err = %v)", err)
		default:
		}
		l.unlock()
		if err := <-got; err != nil {
			t.Errorf("lock after unlock: %v", err)
		}
		l.unlock()

		two := make(chanLock, 2)
		for i := range 2 {
			if err := two.lock(context.Background()); err != nil {
				t.Errorf("lock %d of a chanLock of two: %v", i+1, err)
			}
		}
	})
}

// Probe slots are pooled by the module's concurrency class, each pool of
// --probe.concurrency: modules of one class share one pool.
func TestScheduler_SlotsPerConcurrencyClass(t *testing.T) {
	s := NewScheduler(nil, 3, NewStore(), NewHistory(0), log.NewNopLogger())
	a, b := plainModule("a"), plainModule("b")
	pa, pb := s.slotsOf(a), s.slotsOf(b)
	if cap(pa) != 3 || a.ConcurrencyClass() != b.ConcurrencyClass() {
		t.Fatalf("pool of %d slots for class %q", cap(pa), a.ConcurrencyClass())
	}
	if err := pa.lock(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer pa.unlock()
	if len(pb) != 1 {
		t.Errorf("a slot taken through one module of class %q is not taken for another of the same class", a.ConcurrencyClass())
	}
}

// TestScheduler_PendingMessages: a run that reports an awaited message
// shows as pending until it reports the wait settled, and a target removed
// while its message is awaited leaves no pending series behind.
func TestScheduler_PendingMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Minute
		awaiting, settle := make(chan struct{}), make(chan struct{})
		fake := newFakeProbe(func(c *probeCall) *probes.Result {
			if c.n == 1 {
				probes.Report(c.ctx, probes.EventAwaiting)
				awaiting <- struct{}{}
				<-settle
				probes.Report(c.ctx, probes.EventSettled)
			}
			return sendAwareResult(c.module)
		})
		s, _, reg := newTestScheduler(t, fake, 4)
		modules := map[string]*probes.Module{"send": sendModule()}
		s.Apply(&config.Config{Modules: modules, Targets: targetsOf("send", interval, "flow", "gone")})
		tl := func(name string) map[string]string { return map[string]string{"target": name, "module": "send"} }
		<-awaiting
		<-awaiting
		for _, name := range []string{"flow", "gone"} {
			if v := value(t, reg, "probe_delivery_pending", tl(name)); v != 1 {
				t.Errorf("%s: probe_delivery_pending = %v while its message is awaited, want 1", name, v)
			}
		}
		s.Apply(&config.Config{Modules: modules, Targets: targetsOf("send", interval, "flow")})
		close(settle)
		synctest.Wait()
		if v := value(t, reg, "probe_delivery_pending", tl("flow")); v != 0 {
			t.Errorf("flow: probe_delivery_pending = %v once the wait settled, want 0", v)
		}
		if v := value(t, reg, "probe_delivery_pending", tl("gone")); v != -1 {
			t.Errorf("gone: probe_delivery_pending = %v after its removal, want no series", v)
		}
	})
}

// inUse is the heap and goroutine stacks in use after a collection.
func inUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}

// BenchmarkScheduler_IdleTargets measures what 10,000 targets cost while
// they wait for their next run: schedule-bytes/target is the heap and
// goroutine stacks their schedule holds, bytes/target all they hold once
// each has a result recorded (store, counters and histograms, a full
// history).
func BenchmarkScheduler_IdleTargets(b *testing.B) {
	const n = 10000
	modules := map[string]*probes.Module{"plain": plainModule("plain")}
	var scheduled, total float64
	for b.Loop() {
		targets := manyTargets(n)
		before := inUse()
		s := NewScheduler(func(context.Context, string, probes.Module, log.Logger) *probes.Result { return okResult() },
			DefaultConcurrency, NewStore(), NewHistory(100), nopLogger())
		s.Apply(&config.Config{Modules: modules, Targets: targets})
		scheduled = float64(inUse()-before) / n
		for i, t := range targets {
			s.mu.Lock()
			l := s.loops[t.Name]
			s.mu.Unlock()
			res := benchResult(i)
			res.Target, res.Module = t.Name, t.Module
			s.record(l, t, res, time.Millisecond, false)
		}
		total = float64(inUse()-before) / n
		s.Shutdown(0)
	}
	b.ReportMetric(scheduled, "schedule-bytes/target")
	b.ReportMetric(total, "bytes/target")
}

// recordingScheduler is a scheduler of one target, due once a day, with
// a result of that target to record (benchResult).
func recordingScheduler(store *Store, history *History) (*Scheduler, *loop, *config.Target, *probes.Result) {
	s := NewScheduler(nil, 1, store, history, nopLogger())
	targets := manyTargets(1)
	s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("plain")}, Targets: targets})
	t := targets[0]
	s.mu.Lock()
	l := s.loops[t.Name]
	s.mu.Unlock()
	res := benchResult(0)
	res.Target, res.Module = t.Name, t.Module
	return s, l, t, res
}

// BenchmarkScheduler_Record is the scheduled path's record step: publishing
// one result to the store, the counters and histograms, and the history.
func BenchmarkScheduler_Record(b *testing.B) {
	s, l, t, res := recordingScheduler(NewStore(), NewHistory(100))
	defer s.Shutdown(0)
	b.ReportAllocs()
	for b.Loop() {
		s.record(l, t, res, time.Millisecond, false)
	}
}

// TestScheduler_SlowServersAtScale: servers that hold their greeting 6 s
// (Postfix's postscreen) cost a waiting probe each, not CPU. 1,000 such
// targets every 10 s keep about 600 probes waiting at once; with the
// default concurrency every run starts within the lag budget of 1 s.
func TestScheduler_SlowServersAtScale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			n        = 1000
			interval = 10 * time.Second
			greeting = 6 * time.Second
			budget   = time.Second
		)
		var (
			mu                  sync.Mutex
			starts              = map[string][]time.Time{}
			inFlight, maxFlight int
		)
		probe := func(ctx context.Context, target string, _ probes.Module, _ log.Logger) *probes.Result {
			mu.Lock()
			starts[target] = append(starts[target], time.Now())
			inFlight++
			maxFlight = max(maxFlight, inFlight)
			mu.Unlock()
			sleepCtx(ctx, greeting)
			mu.Lock()
			inFlight--
			mu.Unlock()
			return okResult()
		}
		s := NewScheduler(probe, DefaultConcurrency, NewStore(), NewHistory(10), nopLogger())
		targets := make([]*config.Target, n)
		for i := range targets {
			name := fmt.Sprintf("mx%04d.example.net", i)
			targets[i] = &config.Target{Name: name, Address: name, Module: "plain", Interval: interval}
		}
		start := time.Now()
		s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targets})
		elapse(6 * interval)
		s.Shutdown(time.Minute)

		var late []string
		runs := 0
		for _, tg := range targets {
			calls := starts[tg.Name]
			if len(calls) < 5 {
				t.Fatalf("%s ran %d times in six intervals, want at least 5", tg.Name, len(calls))
			}
			for k, c := range calls {
				runs++
				planned := start.Add(offset(tg.Name, interval) + time.Duration(k)*interval)
				if lag := c.Sub(planned); lag >= budget || lag < 0 {
					late = append(late, fmt.Sprintf("%s run %d: lag %s", tg.Name, k+1, lag))
				}
			}
			if lag := testutil.ToFloat64(s.metrics.lag.WithLabelValues(tg.Name, "plain")); lag >= budget.Seconds() {
				t.Errorf("smtp_exporter_scheduler_lag_seconds{target=%q} = %v, want under %s", tg.Name, lag, budget)
			}
		}
		if len(late) > 0 {
			t.Errorf("%d of %d runs started outside the lag budget of %s, e.g. %v", len(late), runs, budget, late[:min(len(late), 3)])
		}
		if maxFlight < n/2 {
			t.Errorf("at most %d probes waited at once, want at least %d: the test does not load the scheduler", maxFlight, n/2)
		}
	})
}

// A probe gets a debug logger only where debug lines are kept: the mark
// of probes.WithoutDebug survives the keys the scheduler adds, on
// scheduled and on-demand runs alike, and /probe?debug=true's own logger
// (unmarked) gets them.
func TestScheduler_ProbeLoggerKeepsWithoutDebug(t *testing.T) {
	var (
		mu        sync.Mutex
		withDebug int
	)
	probe := func(_ context.Context, _ string, _ probes.Module, l log.Logger) *probes.Result {
		if probes.DebugLogger(l) != nil {
			mu.Lock()
			withDebug++
			mu.Unlock()
		}
		return okResult()
	}
	s := NewScheduler(probe, 4, NewStore(), NewHistory(10), probes.WithoutDebug(log.NewNopLogger()))
	defer s.Shutdown(time.Second)
	s.Apply(&config.Config{Modules: map[string]*probes.Module{"plain": plainModule("p")}, Targets: targetsOf("plain", time.Hour, "t")})
	debugRuns := func() int {
		mu.Lock()
		defer mu.Unlock()
		return withDebug
	}

	if _, _, err := s.RunNow(context.Background(), "t", 0, probes.WithoutDebug(log.NewNopLogger())); err != nil {
		t.Fatal(err)
	}
	if n := debugRuns(); n != 0 {
		t.Fatalf("%d runs got a debug logger through a WithoutDebug logger", n)
	}
	if _, _, err := s.RunNow(context.Background(), "t", 0, log.NewNopLogger()); err != nil {
		t.Fatal(err)
	}
	if n := debugRuns(); n != 1 {
		t.Errorf("%d runs got a debug logger, want 1 (the unmarked on-demand run)", n)
	}
}
