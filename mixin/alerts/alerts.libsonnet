local promql = import '../lib/promql.libsonnet';
local series = import '../lib/series.libsonnet';

{
  local c = $._config,
  local p = c + promql.params(c) + {
    success: series.success,
    primarySuccess: series.primarySuccess,
    expirySeconds: c.certificateExpiryWarningDays * 86400,
    primary: 'nginx_upstream_probe_target_info{%s, backup="false", down="false"}' % c.exporterSelector,
    backup: 'nginx_upstream_probe_target_info{%s, backup="true", down="false"}' % c.exporterSelector,
  },

  // Alert template printing the failure reason of the target in $labels (the
  // exporter keeps one nginx_upstream_probe_failure_reason series per failing
  // target; a reason that changed within the gap window shows up as well).
  // The reason is looked up rather than made a label of the alert so that a
  // change of reason does not restart the alert's `for:` timer.
  local reasonOfTarget = std.join('', [
    '{{ range $i, $s := query (printf `last_over_time(nginx_upstream_probe_failure_reason{job=%q,instance=%q,upstream=%q,server=%q,address=%q}[',
    c.scrapeGapWindow,
    ']) == 1` $labels.job $labels.instance $labels.upstream $labels.server $labels.address) | sortByLabel "reason" }}',
    '{{ if $i }}, {{ end }}{{ $s.Labels.reason }}{{ end }}',
  ]),

  // Alert template listing the failing servers of the upstream in $labels as
  // "server (reason)".
  local failingServersOfUpstream = std.join('', [
    '{{ range $i, $s := query (printf `last_over_time(nginx_upstream_probe_failure_reason{job=%q,instance=%q,upstream=%q}[',
    c.scrapeGapWindow,
    ']) == 1` $labels.job $labels.instance $labels.upstream) | sortByLabel "address" }}',
    '{{ if $i }}, {{ end }}{{ $s.Labels.server }} ({{ $s.Labels.reason }}){{ end }}',
  ]),

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
        name: 'nginx-upstream-servers',
        rules: [
          alert(
            'NginxUpstreamAllServersDown',
            'critical',
            c.allServersDownFor,
            |||
              last_over_time(%(success)s[%(gap)s]) == 0
            |||,
            'Every server of an nginx upstream fails: nginx answers its requests with 502 or 504.',
            'No server of upstream {{ $labels.upstream }} on {{ $labels.instance }} (primary or backup) passes its probe, so nginx answers every request routed to it with 502 or 504 and logs "no live upstreams". Failing servers (reason): ' + failingServersOfUpstream + '.',
          ),
          alert(
            'NginxUpstreamServingFromBackup',
            'warning',
            c.servingFromBackupFor,
            |||
              last_over_time(%(primarySuccess)s[%(gap)s]) == 0
              unless on (%(upstreamBy)s)
              last_over_time(%(success)s[%(gap)s]) == 0
            |||,
            'Every primary server of an nginx upstream fails; only backup servers serve it.',
            'Every primary server of upstream {{ $labels.upstream }} on {{ $labels.instance }} fails its probe and nginx is sending the traffic to the backup servers. Failing servers (reason): ' + failingServersOfUpstream + '.',
          ),
          alert(
            'NginxUpstreamServerDown',
            'warning',
            c.serverDownFor,
            |||
              (
                last_over_time(nginx_upstream_probe_success{%(sel)s}[%(gap)s]) == 0
                and on (%(targetBy)s)
                last_over_time(%(primary)s[%(gap)s])
              )
              unless on (%(upstreamBy)s)
              last_over_time(%(primarySuccess)s[%(gap)s]) == 0
            |||,
            'A primary server of an nginx upstream fails while the others still serve.',
            'Server {{ $labels.server }} ({{ $labels.address }}, {{ $labels.protocol }}) of upstream {{ $labels.upstream }} on {{ $labels.instance }} fails its probe with reason ' + reasonOfTarget + '. The other servers of the upstream still answer; nginx retries on them but each request that hits this server first is slower or, for non-idempotent requests, fails.',
          ),
          alert(
            'NginxUpstreamBackupServerDown',
            'info',
            c.backupServerDownFor,
            |||
              (
                last_over_time(nginx_upstream_probe_success{%(sel)s}[%(gap)s]) == 0
                and on (%(targetBy)s)
                last_over_time(%(backup)s[%(gap)s])
              )
              unless on (%(upstreamBy)s)
              last_over_time(%(success)s[%(gap)s]) == 0
            |||,
            'A backup server of an nginx upstream fails: the upstream has no working fallback.',
            'Backup server {{ $labels.server }} ({{ $labels.address }}, {{ $labels.protocol }}) of upstream {{ $labels.upstream }} on {{ $labels.instance }} fails its probe with reason ' + reasonOfTarget + '. Nothing is broken for users yet, but nginx has nowhere to fail over if the primary servers fail.',
          ),
          alert(
            'NginxUpstreamServerLatencyNearTimeout',
            'warning',
            c.latencyNearTimeoutFor,
            |||
              (
                (
                  avg_over_time(nginx_upstream_probe_phase_duration_seconds{%(sel)s, phase="processing"}[%(latencyWindow)s])
                  / on (%(targetBy)s) group_left ()
                  (last_over_time(nginx_upstream_probe_timeout_seconds{%(sel)s, kind="read"}[%(gap)s]) > 0)
                )
                or
                (
                  avg_over_time(nginx_upstream_probe_phase_duration_seconds{%(sel)s, phase=~"connect|tls"}[%(latencyWindow)s])
                  / on (%(targetBy)s) group_left ()
                  (last_over_time(nginx_upstream_probe_timeout_seconds{%(sel)s, kind="connect"}[%(gap)s]) > 0)
                )
              ) > %(latencyTimeoutRatio)g
              and on (%(targetBy)s)
              last_over_time(%(primary)s[%(gap)s])
              unless on (%(targetBy)s)
              last_over_time(nginx_upstream_probe_success{%(sel)s}[%(gap)s]) == 0
            |||,
            'An nginx upstream server answers close to the nginx timeout: 504 responses are next.',
            'Server {{ $labels.server }} ({{ $labels.address }}) of upstream {{ $labels.upstream }} on {{ $labels.instance }} spends on average {{ $value | humanizePercentage }} of the nginx {{ if eq $labels.phase "processing" }}read{{ else }}connect{{ end }} timeout in the {{ $labels.phase }} phase. Past 100% nginx gives up and answers 504.',
          ),
          alert(
            'NginxUpstreamServerHTTPErrors',
            'warning',
            c.httpErrorsFor,
            |||
              last_over_time(nginx_upstream_probe_http_status_code{%(sel)s}[%(gap)s]) >= %(httpErrorStatusThreshold)s
              and on (%(targetBy)s)
              last_over_time(%(primary)s[%(gap)s])
            |||,
            'An nginx upstream server answers with HTTP server errors.',
            'Server {{ $labels.server }} ({{ $labels.address }}) of upstream {{ $labels.upstream }} on {{ $labels.instance }} answers the probe with HTTP status {{ $value }}. The connection works; the application behind it is failing, and nginx passes these errors to clients.',
          ),
          alert(
            'NginxUpstreamServerFlapping',
            'warning',
            c.flappingFor,
            |||
              changes(nginx_upstream_probe_success{%(sel)s}[%(flappingWindow)s]) >= %(flappingChanges)s
              and on (%(targetBy)s)
              last_over_time(%(primary)s[%(gap)s])
            |||,
            'An nginx upstream server keeps switching between passing and failing.',
            'The probe result of server {{ $labels.server }} ({{ $labels.address }}) of upstream {{ $labels.upstream }} on {{ $labels.instance }} changed {{ $value }} times in the last %s. Last failure reason seen: ' % c.flappingWindow + reasonOfTarget + '.',
          ),
          alert(
            'NginxUpstreamCertificateExpiringSoon',
            'warning',
            c.certificateExpiringFor,
            |||
              last_over_time(nginx_upstream_probe_tls_certificate_expiry_timestamp_seconds{%(sel)s}[%(gap)s])
              < time() + %(expirySeconds)s
            |||,
            'The TLS certificate of an nginx upstream server expires soon.',
            'The certificate of server {{ $labels.server }} ({{ $labels.address }}) of upstream {{ $labels.upstream }} on {{ $labels.instance }} is valid until {{ $value | humanizeTimestamp }}. With proxy_ssl_verify on, nginx refuses the server from then on.',
          ),
          alert(
            'NginxUpstreamCertificateExpired',
            c.certificateExpiredSeverity,
            c.certificateExpiredFor,
            |||
              last_over_time(nginx_upstream_probe_tls_certificate_expiry_timestamp_seconds{%(sel)s}[%(gap)s])
              <= time()
              and on (%(targetBy)s)
              last_over_time(%(primary)s[%(gap)s])
            |||,
            'The TLS certificate of an nginx upstream server has expired.',
            'The certificate of server {{ $labels.server }} ({{ $labels.address }}) of upstream {{ $labels.upstream }} on {{ $labels.instance }} expired at {{ $value | humanizeTimestamp }}. Locations with proxy_ssl_verify on answer 502 for this server; clients of locations without it talk to a server whose identity is no longer vouched for.',
          ),
        ],
      },
      {
        name: 'nginx-upstream-exporter',
        rules: [
          alert(
            'NginxUpstreamExporterConfigReloadFailed',
            'warning',
            c.configReloadFailedFor,
            |||
              last_over_time(nginx_upstream_exporter_config_last_reload_successful{%(sel)s}[%(gap)s]) == 0
            |||,
            'nginx_upstream_exporter cannot load the nginx configuration.',
            'nginx_upstream_exporter on {{ $labels.instance }} failed to load the nginx configuration and keeps probing the targets of the last good one. Upstreams added or changed since then are not monitored, and nginx itself would probably refuse the same reload.',
          ),
          alert(
            'NginxUpstreamDynamicTargetsUnprobed',
            'info',
            c.dynamicTargetsFor,
            |||
              last_over_time(nginx_upstream_exporter_targets{%(sel)s, state="dynamic"}[%(gap)s]) > 0
            |||,
            'Some nginx upstream addresses are built from request variables and cannot be probed.',
            'The nginx configuration read by {{ $labels.instance }} has {{ $value }} *_pass directive(s) whose address is built from request variables. The exporter cannot know these targets, so their failures are not monitored.',
          ),
          alert(
            'NginxUpstreamExporterDown',
            'warning',
            c.exporterDownFor,
            |||
              up{%(sel)s} == 0
            |||,
            'Prometheus cannot scrape nginx_upstream_exporter.',
            'Prometheus has failed to scrape nginx_upstream_exporter at {{ $labels.instance }} (job {{ $labels.job }}) for %s. The upstreams of that nginx are not monitored, and alerts about them resolve on their own.' % c.exporterDownFor,
          ),
          alert(
            'NginxUpstreamExporterAbsent',
            'warning',
            c.exporterAbsentFor,
            |||
              absent(up{%(sel)s})
            |||,
            'No nginx_upstream_exporter target is known to Prometheus.',
            'Prometheus has had no scrape target matching {%s}{{ with $labels.job }} (job {{ . }}){{ end }} for %s: service discovery or the scrape configuration lost the exporter, and no nginx upstream is monitored.' % [c.exporterSelector, c.exporterAbsentFor],
          ),
          alert(
            'NginxUpstreamExporterProbesStale',
            'warning',
            c.probeStaleFor,
            |||
              count by (%(instanceBy)s) (
                time() - last_over_time(nginx_upstream_probe_last_run_timestamp_seconds{%(sel)s}[%(gap)s]) > %(probeStaleSeconds)s
              )
            |||,
            'nginx_upstream_exporter has stopped finishing probes.',
            '{{ $value }} target(s) of nginx_upstream_exporter on {{ $labels.instance }} have not finished a probe for more than %ds. Their success and reason series describe the past, not the present.' % c.probeStaleSeconds,
          ),
          alert(
            'NginxUpstreamExporterScheduleLag',
            'warning',
            c.scheduleLagFor,
            |||
              histogram_quantile(%(scheduleLagQuantile)g,
                sum by (%(instanceBy)s, le) (
                  rate(nginx_upstream_exporter_schedule_lag_seconds_bucket{%(sel)s}[%(rate)s])
                )
              ) > %(scheduleLagThresholdSeconds)s
            |||,
            'nginx_upstream_exporter starts its probes late.',
            'The %g quantile of probe start lag of nginx_upstream_exporter on {{ $labels.instance }} is {{ $value | humanizeDuration }}: probes run less often than --probe.interval, so failures are seen late. Raise --probe.concurrency or lower the probe timeouts.' % c.scheduleLagQuantile,
          ),
        ],
      },
    ],
  },
}
