local g = import '../lib/grafana.libsonnet';
local v = import 'variables.libsonnet';

{
  local serverLegend = '{{instance}} {{upstream}} {{server}} {{address}}',
  local targetBy = 'job, instance, upstream, server, address, protocol',

  grafanaDashboards+:: {
    'nginx-upstream-detail.json': g.dashboard(
      $._config,
      uid='nginx-upstream-detail',
      title='Upstream detail',
      description='Per-server probe results of the selected nginx upstreams: success, failure reasons, latency by phase against the nginx timeouts, HTTP status and certificate expiry.',
      variables=v.list($._config),
      rows=[
        {
          h: 9,
          panels: [
            g.table(
              'Servers',
              'Every server of the selected upstreams as nginx sees it (backup, down, weight, max_fails, fail_timeout), with the result of its last probe and its current failure reason.',
              'none',
              [
                g.target('nginx_upstream_probe_target_info{%s}' % v.target),
                g.target('nginx_upstream_probe_success{%s}' % v.target),
                g.target('nginx_upstream_probe_duration_seconds{%s}' % v.target),
                g.target('nginx_upstream_probe_http_status_code{%s}' % v.target),
                g.target('label_replace(nginx_upstream_probe_failure_reason{%s}, "failure", "$1", "reason", "(.*)")' % v.target),
              ],
              organize={
                excludeByName: { Time: true, __name__: true, 'Value #A': true, 'Value #E': true, reason: true },
                renameByName: { 'Value #B': 'success', 'Value #C': 'probe duration', 'Value #D': 'HTTP status' },
              },
            ) + g.columnUnit('probe duration', 's'),
          ],
        },
        { h: 1, panels: [g.row('Availability')] },
        {
          h: 8,
          panels: [
            g.timeseries(
              'Probe success',
              'Result of the last probe of each server: 1 when nginx would accept the response, 0 when it would fail the request with 502 or 504.',
              'none',
              [g.target('nginx_upstream_probe_success{%s}' % v.target, serverLegend)],
              min=0,
              max=1,
            ),
            g.timeseries(
              'Failed probes by reason',
              'Failed probes per server and reason. The reasons are named after nginx error-log messages (see docs/runbook.md).',
              'short',
              [g.target('sum by (instance, upstream, server, reason) (increase(nginx_upstream_probe_failures_total{%s}[$__rate_interval]))' % v.target, '{{instance}} {{upstream}} {{server}} {{reason}}')],
              min=0,
              bars=true,
              stack=true,
            ),
          ],
        },
        { h: 1, panels: [g.row('Latency against the nginx timeouts')] },
        {
          h: 8,
          panels: [
            g.timeseries(
              'Time to response header vs read timeout',
              'Processing phase of the last probe (request sent until the response header arrived) next to the *_read_timeout nginx applies (dashed). When the first reaches the second, nginx answers 504 (read_timeout).',
              's',
              [
                g.target('nginx_upstream_probe_phase_duration_seconds{%s, phase="processing"}' % v.target, serverLegend),
                g.target('max by (instance, upstream, server, address) (nginx_upstream_probe_timeout_seconds{%s, kind="read"})' % v.target, serverLegend + ' read timeout'),
              ],
              min=0,
            ) + g.dashedLimit('.* read timeout'),
            g.timeseries(
              'Connect and TLS handshake vs connect timeout',
              'Connect and TLS phases of the last probe next to the *_connect_timeout nginx applies to each of them (dashed). Reaching it gives connect_timeout or tls_handshake_timeout and a 504.',
              's',
              [
                g.target('nginx_upstream_probe_phase_duration_seconds{%s, phase=~"connect|tls"}' % v.target, serverLegend + ' {{phase}}'),
                g.target('max by (instance, upstream, server, address) (nginx_upstream_probe_timeout_seconds{%s, kind="connect"})' % v.target, serverLegend + ' connect timeout'),
              ],
              min=0,
            ) + g.dashedLimit('.* connect timeout'),
          ],
        },
        {
          h: 8,
          panels: [
            g.timeseries(
              'Probe duration by phase',
              'Where the time of the last probe of each server went: resolve, connect, tls, processing, transfer.',
              's',
              [g.target('sum by (instance, upstream, server, phase) (nginx_upstream_probe_phase_duration_seconds{%s})' % v.target, '{{instance}} {{upstream}} {{server}} {{phase}}')],
              min=0,
              stack=true,
            ),
            g.timeseries(
              'Probe rate',
              'Probes run per second per server.',
              'ops',
              [g.target('sum by (instance, upstream, server) (rate(nginx_upstream_probe_runs_total{%s}[$__rate_interval]))' % v.target, '{{instance}} {{upstream}} {{server}}')],
              min=0,
            ),
          ],
        },
        { h: 1, panels: [g.row('HTTP and TLS')] },
        {
          h: 8,
          panels: [
            g.timeseries(
              'HTTP status codes',
              'HTTP status of the last probe response (http, https and grpc). nginx passes 5xx answers of the application to clients unless proxy_next_upstream names them.',
              'none',
              [g.target('nginx_upstream_probe_http_status_code{%s}' % v.target, serverLegend)],
              min=100,
            ) + {
              fieldConfig+: {
                defaults+: {
                  thresholds: g.thresholds([['green', null], ['orange', 400], ['red', 500]]),
                  custom+: { thresholdsStyle: { mode: 'line+area' } },
                },
              },
            },
            g.table(
              'Certificate expiry',
              'Time left before the leaf certificate of each TLS server expires (checked whether or not proxy_ssl_verify is on).',
              's',
              [g.target('nginx_upstream_probe_tls_certificate_expiry_timestamp_seconds{%s} - time()' % v.target)],
              organize={ renameByName: { Value: 'expires in' } },
            ) + {
              fieldConfig+: {
                defaults+: {
                  thresholds: g.thresholds([['red', null], ['orange', 7 * 86400], ['green', $._config.certificateExpiryWarningDays * 86400]]),
                  custom: { cellOptions: { type: 'color-background' } },
                },
              },
            },
          ],
        },
      ],
    ),
  },
}
