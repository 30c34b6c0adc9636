package main

import (
	"errors"
	"net/http"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	"github.com/smtp-exporter/smtp_exporter/collector"
)

// defaultListenAddress: the Prometheus default port allocations are all
// taken, so this is a free port in the exporter range, documented in the
// README.
const defaultListenAddress = ":9799"

type serveCommand struct {
	name  string
	web   *web.FlagConfig
	check *bool
}

func newServeCommand(app *kingpin.Application) *serveCommand {
	c := &serveCommand{name: "serve"}
	cmd := app.Command(c.name, "Run the exporter (the default command).").Default()
	c.web = kingpinflag.AddFlags(cmd, defaultListenAddress)
	c.check = cmd.Flag("config.check", "Validate the configuration file, then exit 0 if it is valid and 1 if not.").Bool()
	return c
}

func (c *serveCommand) run(configFile string, base log.Logger, logLevel string) int {
	logger := withTimestamp(base)
	cfg, err := collector.LoadFile(configFile)
	if *c.check {
		if err != nil {
			level.Error(logger).Log("msg", "Configuration is invalid", "err", err)
			return 1
		}
		level.Info(logger).Log("msg", "Configuration is valid", "file", configFile, "modules", len(cfg.Modules), "targets", len(cfg.Targets))
		return 0
	}
	if err != nil {
		level.Error(logger).Log("msg", "Error loading config", "err", err)
		return 1
	}
	level.Info(logger).Log("msg", "Starting smtp_exporter", "version", version.Info())
	level.Info(logger).Log("msg", "Build context", "build_context", version.BuildContext())

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector("smtp_exporter"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("Healthy\n")) })
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("Ready\n")) })
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        "SMTP Exporter",
		Description: "Prometheus exporter for synthetic SMTP monitoring",
		Version:     version.Info(),
		Links: []web.LandingLinks{
			{Address: "/metrics", Text: "Metrics"},
		},
	})
	if err != nil {
		level.Error(logger).Log("msg", "Error creating landing page", "err", err)
		return 1
	}
	mux.Handle("/", landing)
	_ = cfg
	srv := &http.Server{Handler: mux}
	if err := web.ListenAndServe(srv, c.web, slogLogger(base, logLevel)); err != nil && !errors.Is(err, http.ErrServerClosed) {
		level.Error(logger).Log("msg", "Error running HTTP server", "err", err)
		return 1
	}
	return 0
}
