package mixin

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// optionalFamilies are the families `--no-collector.probe.phases` and
// `--no-collector.probe.timeouts` leave out of /metrics.
var optionalFamilies = []string{
	"nginx_upstream_probe_phase_duration_seconds",
	"nginx_upstream_probe_timeout_seconds",
}

// Only these use the optional families; docs/metrics.md ("Series per
// server") says what a user who leaves them out loses.
var (
	optionalAlerts = []string{"NginxUpstreamServerLatencyNearTimeout"}
	optionalPanels = []string{"Time to response header vs read timeout", "Connect and TLS handshake vs connect timeout", "Probe duration by phase"}
)

func usesOptional(expr string) bool {
	for _, n := range metricNames(expr) {
		if slices.Contains(optionalFamilies, n) {
			return true
		}
	}
	return false
}

// TestOptionalSeriesUsers lists every rule and panel that reads the
// optional families, so a new one cannot quietly depend on series a user
// may have turned off.
func TestOptionalSeriesUsers(t *testing.T) {
	var alerts []string
	for _, file := range []string{"alerts.yaml", "rules.yaml"} {
		var g ruleGroups
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &g); err != nil {
			t.Fatal(err)
		}
		for _, grp := range g.Groups {
			for _, r := range grp.Rules {
				if usesOptional(r.Expr) {
					if r.Record != "" {
						t.Errorf("recording rule %s reads an optional family: alerts built on it would break without it", r.Record)
					}
					alerts = append(alerts, r.Alert)
				}
			}
		}
	}
	if !slices.Equal(alerts, optionalAlerts) {
		t.Errorf("alerts reading the optional families: %q, want %q (update docs/metrics.md and this list)", alerts, optionalAlerts)
	}
	var panels []string
	for _, d := range loadDashboards(t) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if usesOptional(tg.Expr) {
					panels = append(panels, p.Title)
					break
				}
			}
		}
	}
	slices.Sort(panels)
	want := slices.Clone(optionalPanels)
	slices.Sort(want)
	if !slices.Equal(panels, want) {
		t.Errorf("panels reading the optional families: %q, want %q (update docs/metrics.md and this list)", panels, want)
	}
}

// TestRulesWithoutOptionalSeries runs every promtool test again with the
// optional families removed from the input, as an exporter started with
// --no-collector.probe.phases --no-collector.probe.timeouts exposes it:
// every alert must give the same result, except the ones that read those
// families, which must stay quiet (and not fail to evaluate).
func TestRulesWithoutOptionalSeries(t *testing.T) {
	promtool := lookPath(t, "promtool")
	files, _ := filepath.Glob("tests/*.yaml")
	if len(files) == 0 {
		t.Fatal("no promtool tests in tests/")
	}
	dir := t.TempDir()
	var rewritten []string
	removed := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ruleFiles, _ := doc["rule_files"].([]any)
		for i, rf := range ruleFiles {
			abs, err := filepath.Abs(filepath.Join(filepath.Dir(f), rf.(string)))
			if err != nil {
				t.Fatal(err)
			}
			ruleFiles[i] = abs
		}
		tests, _ := doc["tests"].([]any)
		for _, tc := range tests {
			tc := tc.(map[string]any)
			var kept []any
			for _, s := range asSlice(tc["input_series"]) {
				series, _ := s.(map[string]any)["series"].(string)
				if slices.ContainsFunc(optionalFamilies, func(n string) bool { return strings.HasPrefix(series, n+"{") }) {
					removed++
					continue
				}
				kept = append(kept, s)
			}
			tc["input_series"] = kept
			for _, a := range asSlice(tc["alert_rule_test"]) {
				a := a.(map[string]any)
				if slices.Contains(optionalAlerts, a["alertname"].(string)) {
					a["exp_alerts"] = []any{}
				}
			}
			if len(asSlice(tc["promql_expr_test"])) > 0 {
				t.Fatalf("%s: promql_expr_test not handled here", f)
			}
		}
		out, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(name, out, 0o644); err != nil {
			t.Fatal(err)
		}
		rewritten = append(rewritten, name)
	}
	if removed == 0 {
		t.Fatal("no test uses the optional families: nothing was checked")
	}
	run(t, promtool, append([]string{"test", "rules"}, rewritten...)...)
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
