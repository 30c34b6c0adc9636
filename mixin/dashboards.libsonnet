// The Grafana dashboard, rendered to examples/grafana/smtp_exporter.json
// by `make mixin`. Its source is the dashboard JSON as Grafana exports it
// (dashboards/smtp_exporter.json, edit it in Grafana and export it there);
// _config adjusts the links and the job variable.
local defaults = (import 'config.libsonnet')._config;

// mapStrings applies f to every string in v.
local mapStrings(f, v) =
  if std.isString(v) then f(v)
  else if std.isArray(v) then [mapStrings(f, x) for x in v]
  else if std.isObject(v) then { [k]: mapStrings(f, v[k]) for k in std.objectFields(v) }
  else v;

{
  grafanaDashboards+:: {
    local c = $._config,
    local links(s) =
      std.strReplace(
        std.strReplace(s, defaults.runbookURL + '#', c.runbookURL + '#'),
        defaults.exporterScheme + '://${__',
        c.exporterScheme + '://${__',
      ),
    local jobQuery = 'label_values(smtp_exporter_build_info, job)',
    local dashboard = mapStrings(links, import 'dashboards/smtp_exporter.json'),

    'smtp_exporter.json': dashboard {
      templating+: {
        list: [
          if v.name == 'job' && c.dashboardJobSelector != '' then
            v {
              query: std.strReplace(jobQuery, 'build_info', 'build_info{' + c.dashboardJobSelector + '}'),
              definition: self.query,
            }
          else v
          for v in super.list
        ],
      },
    },
  },
}
