// Alerts about the running nginx compared with the disk and DNS
// (docs/metrics.md, "The running nginx"): a stale upstream address, a
// reload pending for long, a reload or restart that would fail.
local promql = import '../lib/promql.libsonnet';

{
  _config+:: {
    // NginxUpstreamStaleAddress (warning): nginx dials an address its
    // static upstream hostname no longer resolves to. nginx only
    // resolves such names when it starts or reloads; a backend that came
    // back with a new IP gets 502s until then. Short: the alert should
    // fire before, or as, the 502s start.
    staleAddressFor: '2m',

    // NginxUpstreamReloadPending: a file nginx read at its last load
    // changed since and nginx has not been reloaded. A deploy normally
    // reloads within minutes; past this, someone believes a fix is live
    // that is not.
    reloadPendingFor: '30m',
    reloadPendingSeverity: 'info',

    // NginxUpstreamReloadWouldFail (warning): nginx would refuse its
    // configuration at the next reload or restart (a static upstream name
    // that does not resolve, a missing certificate, a syntax error).
    // nginx keeps serving; the next deploy or reboot is the outage.
    reloadWouldFailFor: '5m',
  },

  local c = $._config,
  local p = c + promql.params(c),

  local alert(name, severity, forDuration, expr, summary, description) = {
    alert: name,
    expr: promql.expr(expr, p),
    'for': forDuration,
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
        name: 'nginx-upstream-running-nginx',
        rules: [
          alert(
            'NginxUpstreamStaleAddress',
            'warning',
            c.staleAddressFor,
            |||
              last_over_time(nginx_upstream_dns_stale{%(sel)s}[%(gap)s]) == 1
            |||,
            'nginx dials an upstream address that DNS no longer gives: reload nginx.',
            'nginx on {{ $labels.instance }} resolved {{ $labels.server }} (upstream {{ $labels.upstream }}) when it last loaded its configuration, and the name now resolves to other addresses. nginx keeps dialling the old ones until it is reloaded; if the backend moved, requests get 502. `nginx_upstream_exporter diagnose` names both addresses.',
          ),
          alert(
            'NginxUpstreamReloadPending',
            c.reloadPendingSeverity,
            c.reloadPendingFor,
            |||
              last_over_time(nginx_upstream_config_reload_pending{%(sel)s}[%(gap)s]) == 1
            |||,
            'nginx runs an older configuration than the one on disk.',
            'A file nginx read when it last loaded its configuration on {{ $labels.instance }} (the configuration, an include, an upstream certificate or key) changed more than %s ago, and nginx has not been reloaded: what is on disk is not what nginx runs. `nginx_upstream_exporter diagnose` names the files.' % c.reloadPendingFor,
          ),
          alert(
            'NginxUpstreamReloadWouldFail',
            'warning',
            c.reloadWouldFailFor,
            |||
              last_over_time(nginx_upstream_config_reload_would_fail{%(sel)s}[%(gap)s]) == 1
            |||,
            'The next nginx reload or restart would fail: the next deploy or reboot is an outage.',
            "nginx on {{ $labels.instance }} would refuse its configuration if it were reloaded or restarted now ({{ $labels.reason }}). It keeps serving with the configuration it loaded; `nginx_upstream_exporter diagnose` prints nginx's own message with the file and line.",
          ),
        ],
      },
    ],
  },
}
