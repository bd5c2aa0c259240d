// Renders mixin/dashboards_out/*.json (run with jsonnet -S -m).
function(config={})
  local mixin = (import 'mixin.libsonnet') + { _config+:: config };
  {
    [name]: std.manifestJsonEx(mixin.grafanaDashboards[name], '  ') + '\n'
    for name in std.objectFields(mixin.grafanaDashboards)
  }
