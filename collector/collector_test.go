package collector

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

var update = flag.Bool("update", false, "rewrite golden files")

type fakeSource []scheduler.Status

// Each hands out one reused copy, as the scheduler does.
func (f fakeSource) Each(fn func(st *scheduler.Status)) {
	var st scheduler.Status
	for i := range f {
		st = f[i]
		fn(&st)
	}
}

func tgt(upstream, server, address, proto string, params nginxconf.ServerParams, probed bool) *discovery.Target {
	t := &discovery.Target{
		Key: discovery.Key{Upstream: upstream, Server: server, Address: address, Protocol: proto},
		ServerSettings: &discovery.ServerSettings{Params: params,
			ConnectTimeout: time.Second, ReadTimeout: 60 * time.Second, SendTimeout: 60 * time.Second},
	}
	if probed {
		t.Probe = &prober.Peer{}
	}
	return t
}

var defaults = nginxconf.ServerParams{Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second}

func fixture() fakeSource {
	finished := time.Unix(1_700_000_000, 500_000_000)
	healthy := scheduler.Status{
		Target:    tgt("app", "app.internal:3000", "127.0.0.1:3000", "http", defaults, true),
		HasResult: true, Finished: finished, Runs: 7,
		Result: prober.Result{Success: true, Duration: 3 * time.Millisecond, HTTPStatus: 200,
			Phases: [5]time.Duration{0, time.Millisecond, 0, 1500 * time.Microsecond, 500 * time.Microsecond}},
	}
	failing := scheduler.Status{
		Target:    tgt("unix:/run/php/php8.2-fpm.sock", "unix:/run/php/php8.2-fpm.sock", "unix:/run/php/php8.2-fpm.sock", "fastcgi", defaults, true),
		HasResult: true, Finished: finished, Runs: 4,
		Result: prober.Result{Reason: prober.ReasonSocketNotFound, Duration: 20 * time.Microsecond},
	}
	failing.Failures[1] = 1 // connection_refused earlier
	failing.Failures[2] = 3 // socket_not_found
	tls := scheduler.Status{
		Target:    tgt("secure", "10.0.0.1:443", "10.0.0.1:443", "https", nginxconf.ServerParams{Weight: 5, MaxFails: 2, FailTimeout: 30 * time.Second, Backup: true}, true),
		HasResult: true, Finished: finished, Runs: 1,
		Result: prober.Result{Success: true, Duration: 9 * time.Millisecond, HTTPStatus: 503, TLSNotAfter: time.Unix(1_800_000_000, 0)},
	}
	notYet := scheduler.Status{Target: tgt("app", "app2.internal:3000", "127.0.0.2:3000", "http", defaults, true)}
	down := scheduler.Status{Target: tgt("app", "127.0.0.9:3000", "127.0.0.9:3000", "http", nginxconf.ServerParams{Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second, Down: true}, false)}
	return fakeSource{healthy, failing, tls, notYet, down}
}

func TestCollectorGolden(t *testing.T) {
	c := New(fixture())
	golden := filepath.Join("testdata", "collector.prom")
	if *update {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.CollectAndCompare(c, f); err != nil {
		t.Error(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestExactlyOneReasonSeriesPerFailingTarget(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(New(fixture()))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "nginx_upstream_probe_failure_reason" {
			continue
		}
		if len(mf.Metric) != 1 {
			t.Fatalf("want one failure_reason series (one failing target), got %d", len(mf.Metric))
		}
		for _, lp := range mf.Metric[0].Label {
			if lp.GetName() == "reason" && lp.GetValue() != "socket_not_found" {
				t.Errorf("reason = %q", lp.GetValue())
			}
		}
		return
	}
	t.Fatal("no failure_reason family")
}

func TestConfigState(t *testing.T) {
	var s ConfigState
	s.Succeeded(time.Unix(1_700_000_000, 0), 10, 2, 1)
	s.Failed()
	want := `
# HELP nginx_upstream_exporter_config_last_reload_successful 1 when the last attempt to load the nginx configuration succeeded. On 0 the exporter keeps probing the last good target set.
# TYPE nginx_upstream_exporter_config_last_reload_successful gauge
nginx_upstream_exporter_config_last_reload_successful 0
# HELP nginx_upstream_exporter_config_last_reload_success_timestamp_seconds Unix time of the last successful load of the nginx configuration.
# TYPE nginx_upstream_exporter_config_last_reload_success_timestamp_seconds gauge
nginx_upstream_exporter_config_last_reload_success_timestamp_seconds 1.7e+09
# HELP nginx_upstream_exporter_targets Targets in the loaded nginx configuration by state: probed, down (marked down, not probed), dynamic (address built from request variables, not probeable).
# TYPE nginx_upstream_exporter_targets gauge
nginx_upstream_exporter_targets{state="down"} 2
nginx_upstream_exporter_targets{state="dynamic"} 1
nginx_upstream_exporter_targets{state="probed"} 10
`
	if err := testutil.CollectAndCompare(NewSelfMetrics(&s, nil), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestTextWriterMatchesCollector holds the fast text path to the reference
// Collector: the same series with the same values and help texts.
func TestTextWriterMatchesCollector(t *testing.T) {
	for name, opts := range map[string][]Option{
		"all":              nil,
		"without phases":   {WithoutPhases()},
		"without timeouts": {WithoutTimeouts()},
		"without both":     {WithoutPhases(), WithoutTimeouts()},
	} {
		t.Run(name, func(t *testing.T) { testTextWriterMatchesCollector(t, opts) })
	}
}

func testTextWriterMatchesCollector(t *testing.T, opts []Option) {
	src := append(fixture(), bigSource(50)...)
	var buf bytes.Buffer
	if _, err := NewTextWriter(src, opts...).WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fast, err := parser.TextToMetricFamilies(&buf)
	if err != nil {
		t.Fatalf("fast path output does not parse: %v\n%s", err, buf.String())
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(New(src, opts...))
	ref, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(ref) != len(fast) {
		t.Errorf("families: reference %d, fast %d", len(ref), len(fast))
	}
	for _, mf := range ref {
		got := fast[mf.GetName()]
		if got == nil {
			t.Errorf("family %s missing from fast path", mf.GetName())
			continue
		}
		if got.GetHelp() != mf.GetHelp() || got.GetType() != mf.GetType() {
			t.Errorf("%s: help/type differ: %q %v vs %q %v", mf.GetName(), got.GetHelp(), got.GetType(), mf.GetHelp(), mf.GetType())
		}
		want := map[string]float64{}
		for _, m := range mf.Metric {
			want[seriesKey(m)] = value(m)
		}
		if len(got.Metric) != len(want) {
			t.Errorf("%s: %d series, want %d", mf.GetName(), len(got.Metric), len(want))
		}
		for _, m := range got.Metric {
			k := seriesKey(m)
			if v, ok := want[k]; !ok || v != value(m) {
				t.Errorf("%s{%s}: fast %v, reference %v (present %v)", mf.GetName(), k, value(m), v, ok)
			}
		}
	}
}

func seriesKey(m *dto.Metric) string {
	var parts []string
	for _, lp := range m.Label {
		parts = append(parts, lp.GetName()+"="+lp.GetValue())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return math.NaN()
}

type fakeStats struct {
	lag prometheus.Histogram
}

func (f fakeStats) InFlight() int                      { return 3 }
func (f fakeStats) QueueLength() int                   { return 2 }
func (f fakeStats) LagHistogram() prometheus.Histogram { return f.lag }
func (f fakeStats) Skipped() uint64                    { return 7 }
func (f fakeStats) Inconclusive(c prober.Inconclusive) uint64 {
	if c == prober.InconclusiveProbeTimeout {
		return 2
	}
	return 0
}

// TestSelfMetrics holds every self-metric to its name under
// nginx_upstream_exporter_ and to the values its sources report.
func TestSelfMetrics(t *testing.T) {
	var s ConfigState
	s.Succeeded(time.Unix(1_700_000_000, 0), 4, 1, 1)
	// The scheduler's histogram carries no name of its own.
	lag := prometheus.NewHistogram(prometheus.HistogramOpts{Buckets: []float64{.01, 1}})
	lag.Observe(0.005)
	lag.Observe(0.5)
	lag.Observe(3)
	want := `
# HELP nginx_upstream_exporter_config_last_reload_successful 1 when the last attempt to load the nginx configuration succeeded. On 0 the exporter keeps probing the last good target set.
# TYPE nginx_upstream_exporter_config_last_reload_successful gauge
nginx_upstream_exporter_config_last_reload_successful 1
# HELP nginx_upstream_exporter_config_last_reload_success_timestamp_seconds Unix time of the last successful load of the nginx configuration.
# TYPE nginx_upstream_exporter_config_last_reload_success_timestamp_seconds gauge
nginx_upstream_exporter_config_last_reload_success_timestamp_seconds 1.7e+09
# HELP nginx_upstream_exporter_targets Targets in the loaded nginx configuration by state: probed, down (marked down, not probed), dynamic (address built from request variables, not probeable).
# TYPE nginx_upstream_exporter_targets gauge
nginx_upstream_exporter_targets{state="down"} 1
nginx_upstream_exporter_targets{state="dynamic"} 1
nginx_upstream_exporter_targets{state="probed"} 4
# HELP nginx_upstream_exporter_probes_in_flight Probes running now.
# TYPE nginx_upstream_exporter_probes_in_flight gauge
nginx_upstream_exporter_probes_in_flight 3
# HELP nginx_upstream_exporter_probe_queue_length Probes that are due but wait for a free concurrency slot.
# TYPE nginx_upstream_exporter_probe_queue_length gauge
nginx_upstream_exporter_probe_queue_length 2
# HELP nginx_upstream_exporter_probes_inconclusive_total Probes that gave no verdict about the server, by cause: probe_timeout (--probe.timeout ended them before nginx's timeout), exporter_resources (the exporter's own file descriptors, ports or memory ran out; never blamed on the server) or no_answer (a UDP server neither answered nor drew an ICMP error).
# TYPE nginx_upstream_exporter_probes_inconclusive_total counter
nginx_upstream_exporter_probes_inconclusive_total{cause="exporter_resources"} 0
nginx_upstream_exporter_probes_inconclusive_total{cause="no_answer"} 0
nginx_upstream_exporter_probes_inconclusive_total{cause="probe_timeout"} 2
# HELP nginx_upstream_exporter_probe_runs_skipped_total Scheduled probe runs skipped because the target's previous probe was still running: probes of one target never overlap.
# TYPE nginx_upstream_exporter_probe_runs_skipped_total counter
nginx_upstream_exporter_probe_runs_skipped_total 7
# HELP nginx_upstream_exporter_schedule_lag_seconds How late probes start compared with their scheduled time. Growing lag means --probe.concurrency is too low for the targets and their timeouts; lag of about a probe's duration minus the interval means probes outlast --probe.interval and runs are skipped.
# TYPE nginx_upstream_exporter_schedule_lag_seconds histogram
nginx_upstream_exporter_schedule_lag_seconds_bucket{le="0.01"} 1
nginx_upstream_exporter_schedule_lag_seconds_bucket{le="1"} 2
nginx_upstream_exporter_schedule_lag_seconds_bucket{le="+Inf"} 3
nginx_upstream_exporter_schedule_lag_seconds_sum 3.505
nginx_upstream_exporter_schedule_lag_seconds_count 3
`
	m := NewSelfMetrics(&s, fakeStats{lag: lag})
	if err := testutil.CollectAndCompare(m, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	problems, err := testutil.CollectAndLint(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// A probe without a verdict leaves success, failure_reason, duration and
// phases absent and says why: unknown is neither 0 nor healthy, and never
// a reason nginx would not log.
func TestInconclusiveHasNoVerdict(t *testing.T) {
	tg := &discovery.Target{
		Key:   discovery.Key{Upstream: "app", Server: "127.0.0.1:3000", Address: "127.0.0.1:3000", Protocol: "http"},
		Probe: &prober.Peer{Network: "tcp", Address: "127.0.0.1:3000"},
	}
	st := scheduler.Status{Target: tg, HasResult: true, Runs: 3, Finished: time.Unix(1_700_000_000, 0)}
	st.Result.Inconclusive = prober.InconclusiveProbeTimeout
	st.Result.Duration = time.Second
	want := `
# HELP nginx_upstream_probe_inconclusive ` + helpInconclusive + `
# TYPE nginx_upstream_probe_inconclusive gauge
nginx_upstream_probe_inconclusive{address="127.0.0.1:3000",cause="probe_timeout",protocol="http",server="127.0.0.1:3000",upstream="app"} 1
# HELP nginx_upstream_probe_runs_total ` + helpRuns + `
# TYPE nginx_upstream_probe_runs_total counter
nginx_upstream_probe_runs_total{address="127.0.0.1:3000",protocol="http",server="127.0.0.1:3000",upstream="app"} 3
`
	c := New(fakeSource{st})
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"nginx_upstream_probe_inconclusive", "nginx_upstream_probe_runs_total", "nginx_upstream_probe_success",
		"nginx_upstream_probe_failure_reason", "nginx_upstream_probe_duration_seconds", "nginx_upstream_probe_phase_duration_seconds",
		"nginx_upstream_probe_failures_total"); err != nil {
		t.Error(err)
	}
	// The fast renderer agrees.
	var b strings.Builder
	if _, err := NewTextWriter(fakeSource{st}).WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"nginx_upstream_probe_success{", "nginx_upstream_probe_failure_reason{", "nginx_upstream_probe_duration_seconds{"} {
		if strings.Contains(b.String(), absent) {
			t.Errorf("text page has %s for an inconclusive probe", absent)
		}
	}
	if !strings.Contains(b.String(), `nginx_upstream_probe_inconclusive{upstream="app",server="127.0.0.1:3000",address="127.0.0.1:3000",protocol="http",cause="probe_timeout"} 1`) {
		t.Errorf("text page lacks the inconclusive series:\n%s", b.String())
	}
}
