package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	"github.com/smtp-exporter/smtp_exporter/collector"
	"github.com/smtp-exporter/smtp_exporter/collector/config"
	"github.com/smtp-exporter/smtp_exporter/probes"
)

// defaultListenAddress: Prometheus's list of default exporter ports is
// full, so this port is not registered there; README.md says so.
const defaultListenAddress = ":9799"

// httpShutdownTimeout bounds the web server's shutdown, which comes after
// the probes': what is left to answer then is quick.
const httpShutdownTimeout = time.Second

type serveCommand struct {
	name          string
	web           *web.FlagConfig
	webLimits     *webLimits
	check         *bool
	concurrency   *int
	handshakes    *int
	allowAdhoc    *bool
	adhocAllow    collector.AdhocAllowList
	timeoutOffset *time.Duration
	historyLimit  *int
	shutdownGrace *time.Duration
	targets       *targetFlags
	phaseHistos   *string
	heapFloor     *units.Base2Bytes
}

func newServeCommand(app *kingpin.Application) *serveCommand {
	c := &serveCommand{name: "serve"}
	cmd := app.Command(c.name, "Run the exporter (the default command).").Default()
	c.web = kingpinflag.AddFlags(cmd, defaultListenAddress)
	c.webLimits = addWebLimitFlags(cmd)
	c.check = cmd.Flag("config.check", "Validate the configuration file, then exit 0 if it is valid and 1 if not.").Bool()
	c.concurrency = cmd.Flag("probe.concurrency", "Most probes running at once, per concurrency class (SMTP and LMTP dialogs are one class); later runs wait and the wait shows in smtp_exporter_scheduler_lag_seconds. A probe waiting on a slow server costs a descriptor, not CPU; the limit is lowered to fit the open-files limit.").Default(strconv.Itoa(collector.DefaultConcurrency)).Int()
	c.handshakes = cmd.Flag("probe.handshake-concurrency", "Most TLS handshakes computing at once, over all probes (0: twice GOMAXPROCS). A handshake waiting for its server does not count.").Default("0").Int()
	c.allowAdhoc = cmd.Flag("probe.allow-adhoc", "Allow /probe?module=M&target=host:port for targets not in the configuration, in the networks of --probe.adhoc-allow (loopback only without it). Off by default: it lets anyone who reaches the exporter make it connect there.").Bool()
	cmd.Flag("probe.adhoc-allow", "With --probe.allow-adhoc, a network and optionally ports ad hoc targets may be in, as CIDR[:PORTS]: 192.0.2.0/24:25,465,587 or 2001:db8::/32:1024-2048. Every address a target's name resolves to must be allowed. Repeatable.").PlaceHolder("CIDR[:PORTS]").SetValue(&c.adhocAllow)
	c.timeoutOffset = cmd.Flag("probe.timeout-offset", "Subtracted from Prometheus's scrape timeout on /probe, to leave time to answer.").Default("500ms").Duration()
	c.historyLimit = cmd.Flag("history.limit", "Recent probe results kept for /history.").Default("100").Int()
	c.phaseHistos = cmd.Flag("metrics.phase-histograms", "Labels of probe_smtp_phase_latency_seconds: module (by module and phase, the default) or target (by target too: 19 series per phase of every target, several times the rest of a target's series).").Default("module").Enum("module", "target")
	c.heapFloor = cmd.Flag("runtime.heap-floor", "While the live heap is small, let it grow to this size between garbage collections (GOGC is raised, and given back as the heap grows): a few targets' exporter would otherwise collect every dozen probes. 0 turns it off; GOGC in the environment wins.").Default("16MiB").Bytes()
	c.shutdownGrace = cmd.Flag("shutdown.grace-period", "On SIGTERM scheduling stops at once; how long probes in flight may run on (and QUIT) before they are cancelled.").Default("15s").Duration()
	c.targets = addTargetFlags(cmd)
	return c
}

func (c *serveCommand) run(configFile string, base log.Logger, logLevel string) int {
	logger := withTimestamp(base, logLevel)
	// The probes' loggers: their transcript lines are debug lines, not
	// built at all unless the level lets them through.
	probeLogger := func(component string) log.Logger {
		l := log.With(logger, "component", component)
		if logLevel != "debug" {
			l = probes.WithoutDebug(l)
		}
		return l
	}
	if *c.check {
		cfg, err := config.LoadFile(configFile)
		if err != nil {
			level.Error(logger).Log("msg", "Configuration is invalid", "err", err)
			return 1
		}
		if !c.targets.check(cfg, logger) {
			return 1
		}
		level.Info(logger).Log("msg", "Configuration is valid", "file", configFile, "modules", len(cfg.Modules), "targets", len(cfg.Targets))
		return 0
	}
	level.Info(logger).Log("msg", "Starting smtp_exporter", "version", version.Info())
	level.Info(logger).Log("msg", "Build context", "build_context", version.BuildContext())
	defer startHeapFloor(uint64(*c.heapFloor)).stop()

	// The running configuration: the file's targets and its target
	// files', this shard's of them. The scheduler, made once the file
	// is known good, is given each change.
	sc := collector.NewSafeConfig(configFile)
	var sched *collector.Scheduler
	targets := collector.NewTargets(sc, c.targets.shard, func(cfg *config.Config) {
		if sched != nil {
			sched.Apply(cfg)
		}
	}, log.With(logger, "component", "targets"))
	cfg, err := targets.Reload()
	if err != nil {
		level.Error(logger).Log("msg", "Error loading config", "err", err)
		return 1
	}
	level.Info(logger).Log("msg", "Loaded config file", "file", configFile, "modules", len(cfg.Modules), "targets", len(cfg.Targets), "shard", c.targets.shard.String())

	store := collector.NewStore()
	history := collector.NewHistory(*c.historyLimit)
	concurrency, lowered := fitConcurrency(*c.concurrency, *c.webLimits.maxConns, openFilesLimit())
	if lowered {
		level.Warn(logger).Log("msg", "--probe.concurrency lowered to fit the open-files limit (ulimit -n) beside --web.max-connections; raise the limit to run more probes at once",
			"requested", *c.concurrency, "concurrency", concurrency, "open_files_limit", openFilesLimit(), "web_max_connections", *c.webLimits.maxConns)
	} else {
		level.Info(logger).Log("msg", "Probe concurrency", "concurrency", concurrency, "open_files_limit", openFilesLimit())
	}
	sched = collector.NewScheduler(probers.Probe, concurrency, store, history, probeLogger("scheduler"))
	if *c.handshakes > 0 {
		sched.LimitHandshakes(*c.handshakes)
	}
	sched.SetPhaseHistograms(*c.phaseHistos == "target")
	sched.Apply(cfg)

	var (
		reloadMu sync.Mutex
		stopping bool // set under reloadMu before the scheduler shuts down
	)
	reload := func() error {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		if stopping {
			return errors.New("shutting down: the configuration is no longer reloaded")
		}
		cfg, err := targets.Reload()
		if err != nil {
			return err
		}
		// A reload starts afresh: every chain is verified again at its
		// next probe (after a change to the system's trust store, say).
		forgotten := probes.ForgetVerifications()
		level.Info(logger).Log("msg", "Reloaded config file", "file", configFile, "modules", len(cfg.Modules), "targets", len(cfg.Targets), "verified_chains_forgotten", forgotten)
		return nil
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector("smtp_exporter"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	reg.MustRegister(sc.Collectors()...)
	reg.MustRegister(targets.Collectors()...)
	shared, perTarget := sched.MetricSources()
	reg.MustRegister(shared...)

	mux := http.NewServeMux()
	// The per-target series are not in reg: MetricsHandler keeps their
	// encoding between scrapes.
	mux.Handle("/metrics", collector.MetricsHandler(reg, collector.NewCollector(store), perTarget))
	mux.Handle("/probe", c.webLimits.probeDeadlines(sc, &collector.ProbeHandler{
		Config: sc, Scheduler: sched, AllowAdhoc: *c.allowAdhoc, AdhocAllow: c.adhocAllow, TimeoutOffset: *c.timeoutOffset,
		Logger: probeLogger("probe"),
	}))
	mux.Handle("/config", collector.ConfigHandler(sc))
	mux.Handle("/history", collector.HistoryHandler(history))
	mux.Handle("/-/reload", collector.ReloadHandler(reload, logger))
	handlePprof(mux)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("Healthy\n")) })
	var ready atomic.Bool
	ready.Store(true)
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "Shutting down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("Ready\n"))
	})
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        "SMTP Exporter",
		Description: "Prometheus exporter for synthetic SMTP monitoring",
		Version:     version.Info(),
		Form: web.LandingForm{
			Action: "/probe",
			Inputs: []web.LandingFormInput{
				{Label: "Target", Type: "text", Name: "target", Placeholder: "configured target name, or host:port", Value: ""},
				{Label: "Module (ad hoc only)", Type: "text", Name: "module", Placeholder: "module name", Value: ""},
				{Label: "Debug", Type: "checkbox", Name: "debug", Value: "true"},
			},
		},
		Links: []web.LandingLinks{
			{Address: "/metrics", Text: "Metrics"},
			{Address: "/history", Text: "Recent probes"},
			{Address: "/config", Text: "Configuration"},
		},
	})
	if err != nil {
		level.Error(logger).Log("msg", "Error creating landing page", "err", err)
		return 1
	}
	mux.Handle("/", landing)

	// Signals are caught before the port opens: a SIGHUP or SIGTERM sent as
	// soon as the exporter answers must not meet the default action (exit).
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(signals)

	// Target files are looked at until shutdown begins.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); targets.Watch(watchCtx, *c.targets.refresh) }()

	srv := c.webLimits.server(mux)
	serveErr := make(chan error, 1)
	go func() { serveErr <- c.webLimits.listenAndServe(srv, c.web, slogLogger(base, logLevel)) }()

	status := 0
	for done := false; !done; {
		select {
		case err := <-serveErr:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				level.Error(logger).Log("msg", "Error running HTTP server", "err", err)
				status = 1
			}
			done = true
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				if err := reload(); err != nil {
					level.Error(logger).Log("msg", "Error reloading config, keeping the running one", "err", err)
				}
				continue
			}
			// Before the log line: nothing starts after it.
			sched.StopScheduling()
			ready.Store(false)
			level.Info(logger).Log("msg", "Shutting down", "signal", sig, "grace_period", *c.shutdownGrace)
			done = true
		}
	}
	stopWatch()
	<-watchDone
	// A POST /-/reload still being served must not start targets on a
	// scheduler that is shutting down.
	reloadMu.Lock()
	stopping = true
	reloadMu.Unlock()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		// Probes first, the web server last: until the probes are over it
		// answers new /probe requests with 503 and still serves /metrics,
		// and the /probe handlers in flight must write their answers (the
		// result, or 503 for a probe cut short) before it closes.
		sched.Shutdown(*c.shutdownGrace)
		ctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	}()
	// An operator who does not want to wait for the grace period signals
	// again.
	for waiting := true; waiting; {
		select {
		case <-stopped:
			waiting = false
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				level.Info(logger).Log("msg", "Not reloading: shutting down", "signal", sig)
				continue
			}
			level.Warn(logger).Log("msg", "Signalled again during shutdown, cancelling probes in flight", "signal", sig)
			sched.CancelProbes()
		}
	}
	level.Info(logger).Log("msg", "Stopped")
	return status
}
