// Settings of the smtp_exporter mixin. Override them when importing it:
//
//   (import 'smtp_exporter/mixin/mixin.libsonnet') + {
//     _config+:: { exporterSelector: 'job="smtp"' },
//   }
//
// The defaults render examples/alerts.yml and
// examples/grafana/smtp_exporter.json as committed.
{
  _config+:: {
    // Selects the scrapes of the exporter's /metrics (SMTPExporterDown).
    exporterSelector: 'job="smtp_exporter"',
    // Selects the blackbox-style /probe scrapes (SMTPProbeScrapeFailing).
    probeSelector: 'job=~"smtp_probe.*"',
    // Where the alerts' runbook_url and the dashboard's RUNBOOK links
    // point; each alert's section is #alertname in lower case.
    runbookURL: 'https://github.com/smtp-exporter/smtp_exporter/blob/main/examples/RUNBOOK.md',
    // The scheme of the links to the exporter's /history page, built from
    // the instance label (https for an exporter with --web.config.file).
    exporterScheme: 'http',
    // Narrows the dashboard's job variable, e.g. 'job="smtp_exporter"';
    // empty offers every job that runs the exporter.
    dashboardJobSelector: '',
  },
}
