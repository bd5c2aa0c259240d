package mixin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// inCI reports whether missing tools must fail the tests instead of skipping them.
func inCI() bool { return os.Getenv("CI") == "true" }

// missing skips the test, or fails it in CI, when a tool is unavailable.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if inCI() {
		t.Fatalf("%s (CI=true: missing tools are an error)", msg)
	}
	t.Skipf("%s; skipping (CI=true turns this into a failure)", msg)
}

// goTool returns a tool built from tools/go.mod into .bin, building it when
// absent. The dashboard linter takes minutes to build cold, so outside CI a
// missing linter skips instead (`make -C mixin tools` builds it).
func goTool(t *testing.T, name, pkg string, slow bool) string {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join(".bin", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if slow && !inCI() {
		missing(t, "%s is not built", bin)
	}
	// The linter's module is not in the public checksum database.
	t.Setenv("GONOSUMDB", "github.com/grafana/dashboard-linter")
	if err := testutil.GoBuild("tools", bin, pkg); err != nil {
		missing(t, "cannot build %s: %v", pkg, err)
	}
	return bin
}

func jsonnetBin(t *testing.T) string {
	return goTool(t, "jsonnet", "github.com/google/go-jsonnet/cmd/jsonnet", false)
}

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s not found in PATH (Debian package prometheus)", name)
	}
	return p
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// evalJSON evaluates a jsonnet expression against the mixin and decodes it.
func evalJSON(t *testing.T, expr string, v any) {
	t.Helper()
	out := run(t, jsonnetBin(t), "-e", "local mixin = import 'mixin.libsonnet'; "+expr)
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatal(err)
	}
}

type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Record      string            `json:"record"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

type target struct {
	Expr string `json:"expr"`
}

type panel struct {
	Type        string   `json:"type"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Datasource  any      `json:"datasource"`
	Targets     []target `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob("dashboards_out/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in dashboards_out: %v", err)
	}
	ds := map[string]dashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ds[f] = d
	}
	return ds
}

// TestGeneratedUpToDate regenerates the output and compares it with the
// committed files, so a source change without `make -C mixin` fails.
func TestGeneratedUpToDate(t *testing.T) {
	jsonnet := jsonnetBin(t)
	for _, f := range []string{"alerts", "rules"} {
		got := run(t, jsonnet, "-S", f+".jsonnet")
		want, err := os.ReadFile(f + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s.yaml is out of date: run make -C mixin", f)
		}
	}
	dir := t.TempDir()
	run(t, jsonnet, "-S", "-m", dir, "dashboards.jsonnet")
	gen, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	committed, _ := filepath.Glob("dashboards_out/*.json")
	if len(gen) != len(committed) {
		t.Errorf("dashboards_out has %d files, the sources generate %d: run make -C mixin", len(committed), len(gen))
	}
	for _, g := range gen {
		got, _ := os.ReadFile(g)
		want, err := os.ReadFile(filepath.Join("dashboards_out", filepath.Base(g)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("dashboards_out/%s is out of date: run make -C mixin", filepath.Base(g))
		}
	}
}

func sources(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (p == "tools" || p == ".bin") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, ".jsonnet") || strings.HasSuffix(p, ".libsonnet") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestJsonnetfmt(t *testing.T) {
	fmtBin := goTool(t, "jsonnetfmt", "github.com/google/go-jsonnet/cmd/jsonnetfmt", false)
	cmd := exec.Command(fmtBin, append([]string{"--test"}, sources(t)...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("jsonnetfmt --test: %v\n%s\nrun make -C mixin fmt", err, out)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	run(t, lookPath(t, "promtool"), "check", "rules", "alerts.yaml", "rules.yaml")
}

func TestPromtoolTestRules(t *testing.T) {
	tests, _ := filepath.Glob("tests/*.yaml")
	if len(tests) == 0 {
		t.Fatal("no promtool tests in tests/")
	}
	run(t, lookPath(t, "promtool"), append([]string{"test", "rules"}, tests...)...)
}

// TestEveryAlertIsTested makes sure each alert appears in the promtool tests
// both firing and quiet.
func TestEveryAlertIsTested(t *testing.T) {
	var g ruleGroups
	evalJSON(t, "mixin.prometheusAlerts", &g)
	tests, _ := filepath.Glob("tests/*.yaml")
	var all []byte
	for _, f := range tests {
		b, _ := os.ReadFile(f)
		all = append(all, b...)
	}
	for _, grp := range g.Groups {
		for _, r := range grp.Rules {
			fires := regexp.MustCompile(`alertname: ` + r.Alert + `\n\s+exp_alerts:\n\s+- exp_labels`)
			quiet := regexp.MustCompile(`alertname: ` + r.Alert + `\n\s+exp_alerts: \[\]`)
			if !fires.Match(all) {
				t.Errorf("%s: no promtool test case where it fires", r.Alert)
			}
			if !quiet.Match(all) {
				t.Errorf("%s: no promtool test case where it must stay quiet", r.Alert)
			}
		}
	}
}

func TestAlertConventions(t *testing.T) {
	var g ruleGroups
	evalJSON(t, "mixin.prometheusAlerts", &g)
	name := regexp.MustCompile(`^NginxUpstream[A-Z][A-Za-z]+$`)
	seen := map[string]bool{}
	for _, grp := range g.Groups {
		for _, r := range grp.Rules {
			if !name.MatchString(r.Alert) {
				t.Errorf("alert %q: want CamelCase with the NginxUpstream prefix", r.Alert)
			}
			if seen[r.Alert] {
				t.Errorf("alert %q defined twice", r.Alert)
			}
			seen[r.Alert] = true
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("%s: severity %q", r.Alert, r.Labels["severity"])
			}
			a := r.Annotations
			if a["summary"] == "" || strings.Contains(a["summary"], "{{") {
				t.Errorf("%s: summary must be set and untemplated", r.Alert)
			}
			if !strings.Contains(a["description"], "{{") {
				t.Errorf("%s: description must be templated", r.Alert)
			}
			if !strings.HasSuffix(a["runbook_url"], "#"+strings.ToLower(r.Alert)) {
				t.Errorf("%s: runbook_url %q", r.Alert, a["runbook_url"])
			}
		}
	}
}

// headings returns the GitHub anchors of the Markdown headings of a file.
func headings(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	anchors := map[string]bool{}
	strip := regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
	inFence := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		a := strings.ReplaceAll(strip.ReplaceAllString(strings.ToLower(h), ""), " ", "-")
		anchors[a] = true
	}
	return anchors
}

// TestRunbook checks that every runbook_url anchor, every failure reason of
// docs/metrics.md and every in-page link of the runbook has a heading.
func TestRunbook(t *testing.T) {
	anchors := headings(t, "../docs/runbook.md")
	var g ruleGroups
	evalJSON(t, "mixin.prometheusAlerts", &g)
	for _, grp := range g.Groups {
		for _, r := range grp.Rules {
			u := r.Annotations["runbook_url"]
			i := strings.LastIndex(u, "#")
			if i < 0 || !anchors[u[i+1:]] {
				t.Errorf("%s: runbook anchor of %q has no heading in docs/runbook.md", r.Alert, u)
			}
		}
	}
	for _, reason := range reasons(t) {
		if !anchors[reason] {
			t.Errorf("failure reason %s has no section in docs/runbook.md", reason)
		}
	}
	b, _ := os.ReadFile("../docs/runbook.md")
	for _, m := range regexp.MustCompile(`\]\(#([^)]+)\)`).FindAllSubmatch(b, -1) {
		if !anchors[string(m[1])] {
			t.Errorf("docs/runbook.md links to #%s, which is not a heading", m[1])
		}
	}
}

// metricsDoc reads docs/metrics.md: metric names (first column of the
// metric tables) and their types.
func metricsDoc(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| (gauge|counter|histogram|summary) \\|")
	m := map[string]string{}
	for _, r := range row.FindAllSubmatch(b, -1) {
		m[string(r[1])] = string(r[2])
	}
	if len(m) < 10 {
		t.Fatalf("found only %d metrics in docs/metrics.md: has its table format changed?", len(m))
	}
	return m
}

func reasons(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("## Failure reasons"))
	if i < 0 {
		t.Fatal("docs/metrics.md has no Failure reasons section")
	}
	var rs []string
	for _, r := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllSubmatch(b[i:], -1) {
		rs = append(rs, string(r[1]))
	}
	if len(rs) != 17 {
		t.Errorf("docs/metrics.md lists %d failure reasons, the runbook was written for 17", len(rs))
	}
	return rs
}

// metricNames returns the metric and recorded-series names used in PromQL
// text: identifiers outside of string literals that are not followed by `(`
// (functions) and contain either `:` or an exporter prefix.
func metricNames(expr string) []string {
	noStrings := regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\x60[^\x60]*\x60`).ReplaceAllString(expr, `""`)
	ident := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\(?`)
	var names []string
	for _, id := range ident.FindAllString(noStrings, -1) {
		if strings.HasSuffix(id, "(") {
			continue
		}
		if strings.Contains(id, ":") || strings.HasPrefix(id, "nginx_upstream_") ||
			strings.HasPrefix(id, "go_") || strings.HasPrefix(id, "process_") || id == "up" {
			names = append(names, id)
		}
	}
	return names
}

// TestMetricNames fails when an alert, rule, alert template or panel uses a
// metric the exporter does not expose (docs/metrics.md) or a recorded series
// no rule records.
func TestMetricNames(t *testing.T) {
	doc := metricsDoc(t)
	known := map[string]bool{"up": true}
	for name, typ := range doc {
		known[name] = true
		if typ == "histogram" || typ == "summary" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				known[name+s] = true
			}
		}
	}
	var rules, alerts ruleGroups
	evalJSON(t, "mixin.prometheusRules", &rules)
	evalJSON(t, "mixin.prometheusAlerts", &alerts)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			known[r.Record] = true
		}
	}
	used := map[string][]string{}
	for _, gs := range []ruleGroups{rules, alerts} {
		for _, g := range gs.Groups {
			for _, r := range g.Rules {
				where := r.Alert + r.Record
				texts := []string{r.Expr}
				// PromQL inside alert templates: the first argument of printf/query.
				for _, m := range regexp.MustCompile("query \\(printf `([^`]*)`").FindAllStringSubmatch(r.Annotations["description"], -1) {
					texts = append(texts, m[1])
				}
				for _, text := range texts {
					for _, n := range metricNames(text) {
						used[n] = append(used[n], where)
					}
				}
			}
		}
	}
	for f, d := range loadDashboards(t) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				for _, n := range metricNames(tg.Expr) {
					used[n] = append(used[n], f+": "+p.Title)
				}
			}
		}
		for _, v := range d.Templating.List {
			if q, ok := v.Query.(string); ok && v.Type == "query" {
				for _, n := range metricNames(q) {
					used[n] = append(used[n], f+": variable "+v.Name)
				}
			}
		}
	}
	if len(used) == 0 {
		t.Fatal("found no metric names at all")
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !known[n] {
			t.Errorf("%s is not in docs/metrics.md nor recorded by a rule; used by %v", n, used[n])
		}
	}
}

func TestMetricNamesParser(t *testing.T) {
	got := metricNames(`sum by (job) (rate(nginx_upstream_probe_failures_total{job="nginx_upstream_exporter"}[5m])) / upstream:nginx_upstream_probe_success:ratio unless up`)
	want := []string{"nginx_upstream_probe_failures_total", "upstream:nginx_upstream_probe_success:ratio", "up"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("metricNames = %v, want %v", got, want)
	}
}

// TestDashboardConventions checks what the dashboard linter does not:
// stable uids, the upstream variable, and descriptions and units everywhere.
func TestDashboardConventions(t *testing.T) {
	wantUIDs := map[string]bool{"nginx-upstream-overview": true, "nginx-upstream-detail": true, "nginx-upstream-error-log": true}
	perTarget := regexp.MustCompile(`nginx_upstream_probe_(success|failure_reason|duration_seconds|phase_duration_seconds|runs_total|failures_total|last_run_timestamp_seconds|timeout_seconds|http_status_code|tls_certificate_expiry_timestamp_seconds|target_info)\b|upstream:`)
	rateCall := regexp.MustCompile(`\b(rate|irate|increase)\([^\[]*\[([^\]]*)\]`)
	for f, d := range loadDashboards(t) {
		if !wantUIDs[d.UID] {
			t.Errorf("%s: uid %q is not one of the stable uids %v", f, d.UID, wantUIDs)
		}
		delete(wantUIDs, d.UID)
		vars := map[string]string{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v.Type
		}
		for _, v := range []string{"datasource", "job", "instance", "upstream"} {
			if _, ok := vars[v]; !ok {
				t.Errorf("%s: missing template variable %s", f, v)
			}
		}
		for _, p := range d.Panels {
			if p.Type == "row" {
				continue
			}
			if p.Description == "" {
				t.Errorf("%s: panel %q has no description", f, p.Title)
			}
			if p.FieldConfig.Defaults.Unit == "" {
				t.Errorf("%s: panel %q has no unit", f, p.Title)
			}
			if ds, _ := p.Datasource.(map[string]any); ds == nil || ds["uid"] != "${datasource}" {
				t.Errorf("%s: panel %q does not use the datasource variable", f, p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f, p.Title)
			}
			for _, tg := range p.Targets {
				for _, m := range []string{`job=~"$job"`, `instance=~"$instance"`} {
					if !strings.Contains(tg.Expr, m) {
						t.Errorf("%s: panel %q: query lacks %s: %s", f, p.Title, m, tg.Expr)
					}
				}
				if perTarget.MatchString(tg.Expr) && !strings.Contains(tg.Expr, `upstream=~"$upstream"`) {
					t.Errorf("%s: panel %q: per-upstream query lacks the upstream filter: %s", f, p.Title, tg.Expr)
				}
				for _, m := range rateCall.FindAllStringSubmatch(tg.Expr, -1) {
					if m[2] != "$__rate_interval" {
						t.Errorf("%s: panel %q: %s over [%s], want [$__rate_interval]", f, p.Title, m[1], m[2])
					}
				}
			}
		}
	}
	for uid := range wantUIDs {
		t.Errorf("no dashboard with uid %s", uid)
	}
}

// TestPanelQueriesParse substitutes the template variables of every panel
// query and has promtool parse them as recording rules.
func TestPanelQueriesParse(t *testing.T) {
	promtool := lookPath(t, "promtool")
	repl := strings.NewReplacer("$__rate_interval", "1m", "$job", ".+", "$instance", ".+", "$upstream", ".+", "${datasource}", "x")
	var b strings.Builder
	b.WriteString("groups:\n  - name: panels\n    rules:\n")
	n := 0
	for f, d := range loadDashboards(t) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				expr, _ := json.Marshal(repl.Replace(tg.Expr))
				fmt.Fprintf(&b, "      - record: panel:%d\n        expr: %s\n", n, expr)
				n++
			}
		}
		_ = f
	}
	path := filepath.Join(t.TempDir(), "panels.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, promtool, "check", "rules", path)
}

func TestDashboardLinter(t *testing.T) {
	linter := goTool(t, "dashboard-linter", "github.com/grafana/dashboard-linter", true)
	for f := range loadDashboards(t) {
		cmd := exec.Command(linter, "lint", "--strict", f)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("dashboard-linter lint --strict %s: %v\n%s", f, err, out)
		}
	}
}
