// Small functions shared by the recording rules, the alerts and the dashboards.
{
  // Comma-separated label list for `by (…)` and `on (…)`.
  labels(list):: std.join(', ', list),

  // Parameters for the `%(name)s` placeholders of rule expressions.
  params(config):: {
    sel: config.exporterSelector,
    // One exporter.
    instanceBy: $.labels(config.instanceLabels),
    // One upstream of one exporter.
    upstreamBy: $.labels(config.instanceLabels + ['upstream']),
    // One target of one exporter.
    targetBy: $.labels(config.instanceLabels + config.targetLabels),
    gap: config.scrapeGapWindow,
    rate: config.rateWindow,
  },

  // Expression text is written as `|||` blocks: fill in the placeholders.
  expr(text, params):: text % params,
}
