// Alerts on the capacity of backends that listen on the exporter's host
// (docs/metrics.md, "Capacity: saturated or down"): full rather than down,
// restarting, killed by the OOM killer.
local promql = import '../lib/promql.libsonnet';

{
  _config+:: {
    // NginxUpstreamBackendSaturated (warning): the server was saturated
    // (nginx_upstream_backend_saturated: its listen queue full or nearly full,
    // or every php-fpm worker busy) for at least this share of the samples
    // within saturatedWindow, for saturatedFor. A queue that fills for a few
    // seconds at a time is already close to 502s (unix sockets) or 504s (TCP).
    saturatedRatio: 0.5,
    saturatedWindow: '5m',
    saturatedFor: '5m',

    // NginxUpstreamBackendRestartLoop (warning): the listening socket or the
    // process behind it changed at least restartLoopCount times within
    // restartLoopWindow.
    restartLoopCount: 3,
    restartLoopWindow: '15m',

    // NginxUpstreamBackendOOMKilled (warning): the OOM killer killed a process
    // in the backend's memory cgroup within oomKillWindow.
    oomKillWindow: '15m',
  },

  local c = $._config,
  local p = c + promql.params(c),

  local alert(name, expr, summary, description) = {
    alert: name,
    expr: promql.expr(expr, p),
    labels: { severity: 'warning' },
    annotations: {
      summary: summary,
      description: description,
      runbook_url: c.runbookURLPattern % std.asciiLower(name),
    },
  },

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'nginx-upstream-capacity',
        rules: [
          alert(
            'NginxUpstreamBackendSaturated',
            |||
              avg_over_time(nginx_upstream_backend_saturated{%(sel)s}[%(saturatedWindow)s]) >= %(saturatedRatio)g
            |||,
            'An nginx upstream server is full, not down: requests wait in its listen queue.',
            'Server {{ $labels.server }} of upstream {{ $labels.upstream }} on {{ $labels.instance }} was saturated in {{ $value | humanizePercentage }} of the last %s: its listen queue is (nearly) full or every php-fpm worker is busy. It is up; nginx answers 502 (unix socket) or 504 (TCP) once the queue overflows. Give it capacity rather than restarting it.' % c.saturatedWindow,
          ) + { 'for': c.saturatedFor },
          alert(
            'NginxUpstreamBackendRestartLoop',
            |||
              increase(nginx_upstream_backend_restarts_total{%(sel)s}[%(restartLoopWindow)s]) >= %(restartLoopCount)s
            |||,
            'An nginx upstream server keeps restarting.',
            'The process behind server {{ $labels.server }} of upstream {{ $labels.upstream }} on {{ $labels.instance }} restarted {{ $value | printf "%%.0f" }} times in the last %s. Requests that reach it while it restarts fail with 502.' % c.restartLoopWindow,
          ),
          alert(
            'NginxUpstreamBackendOOMKilled',
            |||
              increase(nginx_upstream_backend_oom_kills_total{%(sel)s}[%(oomKillWindow)s]) > 0
            |||,
            'The OOM killer killed a process of an nginx upstream server.',
            'The OOM killer killed {{ $value | printf "%%.0f" }} process(es) in the memory cgroup of server {{ $labels.server }} of upstream {{ $labels.upstream }} on {{ $labels.instance }} in the last %s. The requests those processes were serving failed (502).' % c.oomKillWindow,
          ),
        ],
      },
    ],
  },
}
