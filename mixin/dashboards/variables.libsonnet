local g = import '../lib/grafana.libsonnet';

// Template variables shared by the dashboards and the label filters that
// every query uses with them.
{
  // Per-target and per-upstream series.
  target: 'job=~"$job", instance=~"$instance", upstream=~"$upstream"',
  // Series of the exporter itself (no upstream label).
  exporter: 'job=~"$job", instance=~"$instance"',

  list(config):: [
    g.datasourceVariable(config.datasourceRegex),
    g.labelVariable('job', 'Job', 'nginx_upstream_probe_target_info'),
    g.labelVariable('instance', 'Instance', 'nginx_upstream_probe_target_info{job=~"$job"}'),
    g.labelVariable('upstream', 'Upstream', 'nginx_upstream_probe_target_info{job=~"$job", instance=~"$instance"}'),
  ],
}
