// A small, local subset of what grafonnet offers: enough to build the
// dashboards of this mixin as plain JSON (Grafana schema version 39).
{
  local datasource = { type: 'prometheus', uid: '${datasource}' },

  // The data source variable every panel and variable query uses.
  datasourceVariable(regex=''):: {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    regex: regex,
    hide: 0,
    current: {},
    options: [],
    refresh: 1,
  },

  // A multi-value label variable filled from label_values(); `.+` as "All"
  // keeps queries valid when a label is empty on some series.
  labelVariable(name, label, metricSelector):: {
    local query = 'label_values(%s, %s)' % [metricSelector, name],
    name: name,
    label: label,
    type: 'query',
    datasource: datasource,
    query: query,
    definition: query,
    refresh: 2,
    multi: true,
    includeAll: true,
    allValue: '.+',
    sort: 1,
    hide: 0,
    current: {},
    options: [],
  },

  // One PromQL query of a panel.
  target(expr, legend='', instant=false, format='time_series'):: {
    datasource: datasource,
    expr: expr,
    legendFormat: legend,
    instant: instant,
    range: !instant,
    format: format,
  },

  local panel(type, title, description, unit, targets) = {
    type: type,
    title: title,
    description: description,
    datasource: datasource,
    targets: [
      targets[i] { refId: std.char(std.codepoint('A') + i) }
      for i in std.range(0, std.length(targets) - 1)
    ],
    fieldConfig: {
      defaults: { unit: unit },
      overrides: [],
    },
    options: {},
  },

  // A single number.
  stat(title, description, unit, targets, thresholds=null, mappings=[]):: panel('stat', title, description, unit, targets) {
    fieldConfig+: {
      defaults+: {
        mappings: mappings,
        [if thresholds != null then 'thresholds']: thresholds,
        color: { mode: 'thresholds' },
      },
    },
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'background',
      graphMode: 'none',
      textMode: 'auto',
      justifyMode: 'auto',
      orientation: 'auto',
    },
  },

  // A graph over time.
  timeseries(title, description, unit, targets, min=null, max=null, stack=false, bars=false):: panel('timeseries', title, description, unit, targets) {
    fieldConfig+: {
      defaults+: {
        [if min != null then 'min']: min,
        [if max != null then 'max']: max,
        custom: {
          drawStyle: if bars then 'bars' else 'line',
          fillOpacity: if stack || bars then 60 else 10,
          lineWidth: 1,
          showPoints: 'never',
          spanNulls: false,
          stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
        },
      },
    },
    options: {
      legend: { displayMode: 'table', placement: 'bottom', showLegend: true, calcs: ['lastNotNull', 'max'] },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
  },

  // A table of instant queries, merged on their common labels.
  table(title, description, unit, targets, organize={}):: panel('table', title, description, unit, [
    t { instant: true, range: false, format: 'table' }
    for t in targets
  ]) {
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false } },
    transformations: [
      { id: 'merge', options: {} },
      { id: 'organize', options: { excludeByName: { Time: true, __name__: true }, renameByName: {}, indexByName: {} } + organize },
    ],
  },

  // Styles the series whose display name matches `regex` as a dashed red
  // line: used to draw per-server nginx timeouts next to the latencies.
  dashedLimit(regex):: {
    fieldConfig+: {
      overrides+: [{
        matcher: { id: 'byRegexp', options: regex },
        properties: [
          { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
          { id: 'color', value: { mode: 'fixed', fixedColor: 'red' } },
          { id: 'custom.fillOpacity', value: 0 },
        ],
      }],
    },
  },

  // Unit of the columns of a table whose name matches `regex`.
  columnUnit(regex, unit):: {
    fieldConfig+: {
      overrides+: [{
        matcher: { id: 'byRegexp', options: regex },
        properties: [{ id: 'unit', value: unit }],
      }],
    },
  },

  thresholds(steps):: {
    mode: 'absolute',
    steps: [{ color: s[0], value: s[1] } for s in steps],
  },

  row(title):: { type: 'row', title: title, collapsed: false, panels: [] },

  // Lays out rows of panels on Grafana's 24-column grid and numbers the
  // panels. Each row is { h: height, panels: [...] }; a panel may set `w`
  // (hidden) to take a given width, the others share the rest equally.
  layout(rows)::
    local placeRow(row, y) =
      local fixed = std.foldl(function(acc, p) acc + std.get(p, 'w', 0), row.panels, 0);
      local flexible = std.length([p for p in row.panels if !std.objectHasAll(p, 'w')]);
      local flexWidth = if flexible == 0 then 0 else std.floor((24 - fixed) / flexible);
      local widths = [std.get(p, 'w', flexWidth) for p in row.panels];
      [
        row.panels[i] {
          gridPos: {
            x: std.foldl(function(acc, w) acc + w, widths[0:i], 0),
            y: y,
            w: widths[i],
            h: if row.panels[i].type == 'row' then 1 else row.h,
          },
        }
        for i in std.range(0, std.length(row.panels) - 1)
      ];
    local heights = [r.h for r in rows];
    local placed = std.flattenArrays([
      placeRow(rows[i], std.foldl(function(acc, h) acc + h, heights[0:i], 0))
      for i in std.range(0, std.length(rows) - 1)
    ]);
    [placed[i] { id: i + 1 } for i in std.range(0, std.length(placed) - 1)],

  dashboard(config, uid, title, description, variables, rows):: {
    uid: uid,
    title: config.dashboardNamePrefix + title,
    description: description,
    tags: config.dashboardTags,
    timezone: config.dashboardTimezone,
    refresh: config.dashboardRefresh,
    time: { from: config.dashboardPeriod, to: 'now' },
    schemaVersion: 39,
    version: 1,
    editable: false,
    graphTooltip: 1,
    fiscalYearStartMonth: 0,
    liveNow: false,
    annotations: { list: [] },
    links: [{
      title: 'nginx upstream dashboards',
      type: 'dashboards',
      tags: config.dashboardTags,
      asDropdown: true,
      includeVars: true,
      keepTime: true,
    }],
    templating: { list: variables },
    panels: $.layout(rows),
  },
}
