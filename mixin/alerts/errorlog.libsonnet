// Alerts on nginx's own error log: what real requests got, beside what the
// probes see.
local promql = import '../lib/promql.libsonnet';

{
  _config+:: {
    // NginxUpstreamLoggedErrors (warning): upstream errors nginx logged for
    // real requests, per upstream and reason, above this rate (errors per
    // second over rateWindow), whatever the probes say.
    loggedErrorsPerSecond: 0.1,
    loggedErrorsFor: '5m',

    // NginxUpstreamIntermittentFailures (warning): nginx logged at least
    // intermittentMinErrors errors of a server within rateWindow while
    // every probe of that server passed: keepalive races, saturation, one
    // slow endpoint, one URL's header size.
    intermittentMinErrors: 1,
    intermittentFor: '10m',

    // NginxUpstreamExporterErrorLogUnreadable (warning): an error log the
    // exporter cannot read (permissions, not a regular file).
    errorLogUnreadableFor: '15m',
  },

  local c = $._config,
  local p = c + promql.params(c),

  local alert(name, severity, forDuration, expr, summary, description) = {
    alert: name,
    expr: promql.expr(expr, p),
    [if forDuration != '0s' then 'for']: forDuration,
    labels: { severity: severity },
    annotations: {
      summary: summary,
      description: description,
      runbook_url: c.runbookURLPattern % std.asciiLower(name),
    },
  },

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'nginx-upstream-error-log',
        rules: [
          alert(
            'NginxUpstreamLoggedErrors',
            'warning',
            c.loggedErrorsFor,
            |||
              sum by (%(upstreamBy)s, reason) (
                rate(nginx_upstream_log_errors_total{%(sel)s}[%(rate)s])
              ) > %(loggedErrorsPerSecond)g
            |||,
            'nginx is failing real requests to an upstream.',
            'nginx on {{ $labels.instance }} logged {{ $value | humanize }} upstream errors per second for upstream {{ $labels.upstream }} with reason {{ $labels.reason }} over the last %s: real requests got 502, 504 or another server. This is what nginx experienced, whether or not the probes pass.' % c.rateWindow,
          ),
          alert(
            'NginxUpstreamIntermittentFailures',
            'warning',
            c.intermittentFor,
            |||
              sum by (%(targetBy)s, reason) (
                increase(nginx_upstream_log_errors_total{%(sel)s}[%(rate)s])
              ) >= %(intermittentMinErrors)g
              and on (%(targetBy)s)
              min_over_time(nginx_upstream_probe_success{%(sel)s}[%(rate)s]) == 1
            |||,
            'nginx fails some real requests to a server whose probes pass.',
            'nginx on {{ $labels.instance }} logged {{ $value | humanize }} {{ $labels.reason }} error(s) for server {{ $labels.server }} of upstream {{ $labels.upstream }} over the last %s while every probe of that server passed: the failures are intermittent or specific to some requests (keepalive timeouts, saturation, a slow endpoint, one URL whose header is too big).' % c.rateWindow,
          ),
          alert(
            'NginxUpstreamExporterErrorLogUnreadable',
            'warning',
            c.errorLogUnreadableFor,
            |||
              last_over_time(nginx_upstream_exporter_log_files{%(sel)s, state="unreadable"}[%(gap)s]) > 0
            |||,
            'nginx_upstream_exporter cannot read an nginx error log.',
            'nginx_upstream_exporter on {{ $labels.instance }} cannot read {{ $value }} nginx error log file(s) (permissions, or not a regular file): the errors nginx logs there for real requests are not counted. The exporter log names the file.',
          ),
        ],
      },
    ],
  },
}
