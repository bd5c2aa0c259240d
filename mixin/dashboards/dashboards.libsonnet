(import 'overview.libsonnet') +
(import 'upstream.libsonnet')
