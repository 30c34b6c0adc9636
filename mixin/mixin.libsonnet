// The smtp_exporter monitoring mixin: prometheusAlerts and
// grafanaDashboards, configured by _config (config.libsonnet).
(import 'config.libsonnet') +
(import 'alerts.libsonnet') +
(import 'dashboards.libsonnet')
