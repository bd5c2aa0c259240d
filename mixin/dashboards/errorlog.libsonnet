local g = import '../lib/grafana.libsonnet';
local v = import 'variables.libsonnet';

// Real requests beside the probes: what nginx logged for the selected
// upstreams next to what the probes saw, in the same reasons.
{
  local byServerReason = '{{instance}} {{upstream}} {{server}} {{reason}}',
  local targetBy = 'instance, upstream, server, address, protocol',

  grafanaDashboards+:: {
    'nginx-upstream-error-log.json': g.dashboard(
      $._config,
      uid='nginx-upstream-error-log',
      title='Real requests vs probes',
      description="Upstream errors nginx logged for real requests (its error log) next to the exporter's probe failures, per server and reason.",
      variables=v.list($._config),
      rows=[
        {
          h: 9,
          panels: [
            g.timeseries(
              'Logged errors by server and reason',
              'Upstream errors nginx wrote to its error log for real requests, per server and reason: each failed a request with 502 or 504 or sent it to another server.',
              'short',
              [g.target('sum by (instance, upstream, server, reason) (increase(nginx_upstream_log_errors_total{%s}[$__rate_interval]))' % v.target, byServerReason)],
              min=0,
              bars=true,
              stack=true,
            ),
            g.timeseries(
              'Failed probes by server and reason',
              "The exporter's own probes of the same servers, in the same reasons. Logged errors without failed probes are intermittent or request-specific failures.",
              'short',
              [g.target('sum by (instance, upstream, server, reason) (increase(nginx_upstream_probe_failures_total{%s}[$__rate_interval]))' % v.target, byServerReason)],
              min=0,
              bars=true,
              stack=true,
            ),
          ],
        },
        {
          h: 8,
          panels: [
            g.timeseries(
              'Logged errors while the probes pass',
              'Logged errors of servers whose probes all passed in the same interval: keepalive races, saturation, a slow endpoint, a URL whose response header is too big.',
              'short',
              [g.target(|||
                sum by (instance, upstream, server, reason) (increase(nginx_upstream_log_errors_total{%s}[$__rate_interval]))
                and on (%s)
                min by (%s) (min_over_time(nginx_upstream_probe_success{%s}[$__rate_interval])) == 1
              ||| % [v.target, targetBy, targetBy, v.target], byServerReason)],
              min=0,
              bars=true,
              stack=true,
            ),
            g.timeseries(
              'Truncated responses and no live upstreams',
              "Errors nginx logged while reading a response body (the client got a truncated response, not a 502), and 'no live upstreams' (every server of the upstream marked failed).",
              'short',
              [
                g.target('sum by (instance, upstream, server, reason) (increase(nginx_upstream_log_body_errors_total{%s}[$__rate_interval]))' % v.target, 'truncated {{instance}} {{upstream}} {{server}} {{reason}}'),
                g.target('sum by (instance, upstream) (increase(nginx_upstream_log_no_live_upstreams_total{%s}[$__rate_interval]))' % v.target, 'no live upstreams {{instance}} {{upstream}}'),
              ],
              min=0,
              bars=true,
            ),
          ],
        },
        { h: 1, panels: [g.row('Error-log reader')] },
        {
          h: 7,
          panels: [
            g.timeseries(
              'Lines read by result',
              'Error-log lines the exporter read per second: matched (an error of one server), unattributed (an upstream error of no single server), other, unparsed.',
              'ops',
              [g.target('sum by (instance, result) (rate(nginx_upstream_exporter_log_lines_total{%s}[$__rate_interval]))' % v.exporter, '{{instance}} {{result}}')],
              min=0,
            ),
            g.timeseries(
              'Log files by state',
              'Error-log files the exporter follows: tailing, missing (retried), unreadable (permissions or not a regular file).',
              'none',
              [g.target('sum by (instance, state) (nginx_upstream_exporter_log_files{%s})' % v.exporter, '{{instance}} {{state}}')],
              min=0,
            ),
          ],
        },
      ],
    ),
  },
}
