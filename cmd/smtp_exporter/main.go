// Command smtp_exporter probes SMTP servers and exports the results to
// Prometheus. `smtp_exporter probe` runs a single probe and prints it.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"
)

const appName = "smtp_exporter"

// usageTemplate is kingpin's, with the flags of the default command on the
// top-level help: `smtp_exporter --config.file=... --web.listen-address=...`
// runs serve, so `smtp_exporter --help` is where its user looks for them.
var usageTemplate = kingpin.DefaultUsageTemplate + `{{if not .Context.SelectedCommand -}}
{{range .App.Commands}}{{if .Default -}}
Flags of {{.Name}}, the default command (also: {{$.App.Name}} {{.Name}} --help):
{{.Flags|FlagsToTwoColumns|FormatTwoColumns}}
{{end}}{{end -}}
{{end -}}
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run parses the command line and runs the chosen command; it returns the
// process exit status, so that tests can run the whole program in process.
func run(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New(appName, "A Prometheus exporter for synthetic SMTP monitoring.")
	app.Version(version.Print(appName))
	app.HelpFlag.Short('h')
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	app.UsageTemplate(usageTemplate)
	// --help and --version end the program through kingpin's terminate;
	// record it instead of exiting, so that run returns to its caller.
	// Parsing goes on after it, and may then fail on what help did not
	// need (probe --help has no target): once terminated, that error is
	// not the user's.
	terminated := false
	app.Terminate(func(int) { terminated = true })

	logFlags := addLogFlags(app)
	configFile := app.Flag("config.file", "Configuration file (modules and targets).").Default("smtp_exporter.yml").String()

	serve := newServeCommand(app)
	probe := newProbeCommand(app)

	cmd, err := app.Parse(args)
	if terminated {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", appName, err)
		return 2
	}
	logger, err := logFlags.logger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", appName, err)
		return 2
	}
	switch cmd {
	case probe.name:
		return probe.run(*configFile, logger, stdout, stderr)
	default:
		return serve.run(*configFile, logger, *logFlags.level)
	}
}
