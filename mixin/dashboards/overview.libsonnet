local g = import '../lib/grafana.libsonnet';
local series = import '../lib/series.libsonnet';
local v = import 'variables.libsonnet';

{
  grafanaDashboards+:: {
    'nginx-upstream-overview.json': g.dashboard(
      $._config,
      uid='nginx-upstream-overview',
      title='Overview',
      description='Health of every nginx upstream and server probed by nginx_upstream_exporter, and of the exporter itself.',
      variables=v.list($._config),
      rows=[
        {
          h: 4,
          panels: [
            g.stat(
              'Upstreams',
              'Upstreams (upstream {} blocks and implicit upstreams of *_pass directives) in the nginx configuration.',
              'none',
              [g.target('count(count by (job, instance, upstream) (nginx_upstream_probe_target_info{%s}))' % v.target)],
              thresholds=g.thresholds([['blue', null]]),
            ),
            g.stat(
              'Upstreams with no working server',
              'Upstreams where no server nginx may use (primary or backup) passes its probe: nginx answers all their requests with 502 or 504.',
              'none',
              [g.target('count(%s{%s} == 0) or vector(0)' % [series.success, v.target])],
              thresholds=g.thresholds([['green', null], ['red', 1]]),
            ),
            g.stat(
              'Failing servers',
              'Probed servers (primary and backup) whose last probe failed.',
              'none',
              [g.target('count(nginx_upstream_probe_success{%s} == 0) or vector(0)' % v.target)],
              thresholds=g.thresholds([['green', null], ['orange', 1]]),
            ),
            g.stat(
              'Servers marked down',
              'Servers marked `down` in the nginx configuration: nginx sends them nothing and the exporter does not probe them.',
              'none',
              [g.target('count(nginx_upstream_probe_target_info{%s, down="true"}) or vector(0)' % v.target)],
              thresholds=g.thresholds([['blue', null]]),
            ),
            g.stat(
              'Unprobeable dynamic targets',
              '*_pass directives whose address is built from request variables: they cannot be probed.',
              'none',
              [g.target('sum(nginx_upstream_exporter_targets{%s, state="dynamic"}) or vector(0)' % v.exporter)],
              thresholds=g.thresholds([['green', null], ['blue', 1]]),
            ),
            g.stat(
              'Config reload',
              'Whether the last attempt of the exporter to load the nginx configuration succeeded (lowest value over the selected instances).',
              'none',
              [g.target('min(nginx_upstream_exporter_config_last_reload_successful{%s})' % v.exporter)],
              thresholds=g.thresholds([['red', null], ['green', 1]]),
              mappings=[{ type: 'value', options: { '0': { text: 'failed' }, '1': { text: 'ok' } } }],
            ),
          ],
        },
        { h: 1, panels: [g.row('Upstreams')] },
        {
          h: 9,
          panels: [
            g.table(
              'Upstreams',
              'Healthy servers of each upstream. Primary servers take the traffic; backup servers only when every primary fails. Servers marked down are not counted.',
              'none',
              [
                g.target('%s{%s}' % [series.primarySuccess, v.target]),
                g.target('%s{%s}' % [series.primaryServers, v.target]),
                g.target('%s{%s}' % [series.success, v.target]),
                g.target('%s{%s}' % [series.servers, v.target]),
                g.target('%s{%s}' % [series.successRatio, v.target]),
              ],
              organize={ renameByName: {
                'Value #A': 'healthy primary',
                'Value #B': 'primary',
                'Value #C': 'healthy (with backups)',
                'Value #D': 'servers (with backups)',
                'Value #E': 'healthy primary share',
              } },
            ) + g.columnUnit('healthy primary share', 'percentunit') + { w:: 12 },
            g.table(
              'Failing servers',
              'Servers whose last probe failed, with the failure reason (named after the nginx error-log message; see docs/runbook.md).',
              'none',
              [
                g.target(|||
                  nginx_upstream_probe_failure_reason{%s}
                  * on (job, instance, upstream, server, address, protocol) group_left (backup)
                  nginx_upstream_probe_target_info{%s}
                ||| % [v.target, v.target]),
              ],
              organize={ excludeByName: { Time: true, __name__: true, Value: true } },
            ) + { w:: 12 },
          ],
        },
        {
          h: 8,
          panels: [
            g.timeseries(
              'Healthy primary servers',
              'Share of the primary servers of each upstream that pass their probe.',
              'percentunit',
              [g.target('%s{%s}' % [series.successRatio, v.target], '{{instance}} {{upstream}}')],
              min=0,
              max=1,
            ),
            g.timeseries(
              'Failing servers by reason',
              'Servers whose last probe failed, by failure reason.',
              'none',
              [g.target('count by (reason) (nginx_upstream_probe_failure_reason{%s})' % v.target, '{{reason}}')],
              min=0,
              stack=true,
            ),
            g.timeseries(
              'Failed probes by reason',
              'Rate of failed probes, by failure reason.',
              'ops',
              [g.target('sum by (reason) (rate(nginx_upstream_probe_failures_total{%s}[$__rate_interval]))' % v.target, '{{reason}}')],
              min=0,
              stack=true,
            ),
          ],
        },
        { h: 1, panels: [g.row('Exporter')] },
        {
          h: 8,
          panels: [
            g.timeseries(
              'Config reload',
              'Result of the last attempt to load the nginx configuration: 1 ok, 0 failed (the exporter then keeps probing the last good target set).',
              'none',
              [
                g.target('nginx_upstream_exporter_config_last_reload_successful{%s}' % v.exporter, '{{instance}} reload ok'),
              ],
              min=0,
              max=1,
            ),
            g.timeseries(
              'Targets by state',
              'Targets in the loaded nginx configuration: probed, marked down (not probed) and dynamic (not probeable).',
              'none',
              [g.target('sum by (instance, state) (nginx_upstream_exporter_targets{%s})' % v.exporter, '{{instance}} {{state}}')],
              min=0,
            ),
            g.timeseries(
              'Scrape status',
              'Whether Prometheus could scrape the exporter (the `up` series).',
              'none',
              [g.target('up{%s}' % v.exporter, '{{instance}}')],
              min=0,
              max=1,
            ),
          ],
        },
        {
          h: 8,
          panels: [
            g.timeseries(
              'Probe schedule lag',
              'How late probes start compared with their schedule (50th, 90th and 99th percentile). Growing lag means --probe.concurrency is too low for the number of targets and their timeouts.',
              's',
              [
                g.target('histogram_quantile(%s, sum by (instance, le) (rate(nginx_upstream_exporter_schedule_lag_seconds_bucket{%s}[$__rate_interval])))' % [q, v.exporter], '{{instance}} p%s' % std.strReplace(q, '0.', ''))
                for q in ['0.5', '0.9', '0.99']
              ],
              min=0,
            ),
            g.timeseries(
              'Probes in flight and queued',
              'Probes running now and probes due but waiting for a free concurrency slot.',
              'none',
              [
                g.target('nginx_upstream_exporter_probes_in_flight{%s}' % v.exporter, '{{instance}} in flight'),
                g.target('nginx_upstream_exporter_probe_queue_length{%s}' % v.exporter, '{{instance}} queued'),
              ],
              min=0,
            ),
            g.timeseries(
              'Probe rate',
              'Probes run per second against the selected upstreams.',
              'ops',
              [g.target('sum by (instance) (rate(nginx_upstream_probe_runs_total{%s}[$__rate_interval]))' % v.target, '{{instance}}')],
              min=0,
            ),
          ],
        },
      ],
    ),
  },
}
