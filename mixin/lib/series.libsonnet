// Names of the series written by the recording rules (rules/rules.libsonnet),
// kept in one place so alerts and dashboards cannot drift from the rules.
{
  // Targets nginx may send traffic to (not marked `down`), backups included.
  servers: 'upstream:nginx_upstream_probe_servers:count',
  // How many of those passed their last probe or gave no verdict
  // (nginx_upstream_probe_inconclusive: not counted as failing).
  success: 'upstream:nginx_upstream_probe_success:sum',
  // Primary targets: neither `backup` nor `down`.
  primaryServers: 'upstream:nginx_upstream_probe_primary_servers:count',
  // How many primary targets passed their last probe (or gave no verdict).
  primarySuccess: 'upstream:nginx_upstream_probe_primary_success:sum',
  // primarySuccess / primaryServers: the share of healthy primary servers.
  successRatio: 'upstream:nginx_upstream_probe_success:ratio',
}
