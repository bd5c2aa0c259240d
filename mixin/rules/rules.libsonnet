local promql = import '../lib/promql.libsonnet';
local series = import '../lib/series.libsonnet';

{
  prometheusRules+:: {
    local p = promql.params($._config),
    groups+: [
      {
        name: 'nginx-upstream.rules',
        rules: [
          {
            record: series.servers,
            expr: promql.expr(|||
              count by (%(upstreamBy)s) (
                nginx_upstream_probe_target_info{%(sel)s, down="false"}
              )
            |||, p),
          },
          {
            record: series.success,
            // A probe without a verdict (nginx_upstream_probe_inconclusive:
            // a silent UDP server, the exporter's own limits) counts as not
            // failing: no alert may claim a failure nothing showed.
            expr: promql.expr(|||
              sum by (%(upstreamBy)s) (
                (
                  nginx_upstream_probe_success{%(sel)s}
                  or on (%(targetBy)s)
                  max by (%(targetBy)s) (nginx_upstream_probe_inconclusive{%(sel)s})
                )
                and on (%(targetBy)s)
                nginx_upstream_probe_target_info{%(sel)s, down="false"}
              )
            |||, p),
          },
          {
            record: series.primaryServers,
            expr: promql.expr(|||
              count by (%(upstreamBy)s) (
                nginx_upstream_probe_target_info{%(sel)s, backup="false", down="false"}
              )
            |||, p),
          },
          {
            record: series.primarySuccess,
            // Probes without a verdict count as not failing, as above.
            expr: promql.expr(|||
              sum by (%(upstreamBy)s) (
                (
                  nginx_upstream_probe_success{%(sel)s}
                  or on (%(targetBy)s)
                  max by (%(targetBy)s) (nginx_upstream_probe_inconclusive{%(sel)s})
                )
                and on (%(targetBy)s)
                nginx_upstream_probe_target_info{%(sel)s, backup="false", down="false"}
              )
            |||, p),
          },
          {
            record: series.successRatio,
            expr: '%s\n/ on (%s)\n%s' % [series.primarySuccess, p.upstreamBy, series.primaryServers],
          },
        ],
      },
    ],
  },
}
