// nginx_upstream_exporter monitoring mixin: import this file and override
// `_config` (see config.libsonnet) to adapt selectors and thresholds.
(import 'config.libsonnet') +
(import 'alerts/alerts.libsonnet') +
(import 'alerts/nginx.libsonnet') +
(import 'alerts/errorlog.libsonnet') +
(import 'alerts/capacity.libsonnet') +
(import 'rules/rules.libsonnet') +
(import 'dashboards/dashboards.libsonnet')
