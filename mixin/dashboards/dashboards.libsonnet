(import 'overview.libsonnet') +
(import 'upstream.libsonnet') +
(import 'errorlog.libsonnet')
