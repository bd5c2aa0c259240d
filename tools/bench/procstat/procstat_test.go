package procstat

import (
	"math"
	"os"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	s, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.Threads <= 0 {
		t.Fatalf("odd sample %+v", s)
	}
}

func TestParseMetricsAndQuantile(t *testing.T) {
	text := `# HELP x
nginx_upstream_probe_runs_total{upstream="a",server="s",address="s",protocol="http"} 10
nginx_upstream_probe_runs_total{upstream="b",server="s",address="s",protocol="http"} 5
nginx_upstream_probe_failures_total{upstream="b",server="s",address="s",protocol="http",reason="read_timeout"} 2
go_goroutines 42
go_memstats_heap_inuse_bytes 1.5e+07
go_memstats_next_gc_bytes 2.5e+07
process_open_fds 37
nginx_upstream_exporter_log_lines_total{result="matched"} 120
nginx_upstream_exporter_log_lines_total{result="other"} 7
nginx_upstream_nginx_up 1
nginx_upstream_nginx_reloads_total 2
nginx_upstream_backend_listen_queue_limit{upstream="a",server="s",address="s",protocol="http"} 511
nginx_upstream_backend_listen_queue_limit{upstream="b",server="s",address="s",protocol="http"} 511
nginx_upstream_exporter_schedule_lag_seconds_bucket{le="0.001"} 50
nginx_upstream_exporter_schedule_lag_seconds_bucket{le="0.01"} 99
nginx_upstream_exporter_schedule_lag_seconds_bucket{le="1"} 100
nginx_upstream_exporter_schedule_lag_seconds_bucket{le="+Inf"} 100
nginx_upstream_exporter_schedule_lag_seconds_count 100
`
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if m.Runs != 15 || m.Failures != 2 || m.Goroutines != 42 || m.LagCount != 100 {
		t.Fatalf("got %+v", m)
	}
	if m.HeapInuse != 15e6 || m.NextGC != 25e6 || m.OpenFDs != 37 || m.LogMatched != 120 || m.LogLines != 127 ||
		m.NginxUp != 1 || m.NginxReloads != 2 || m.CapacitySamples != 2 {
		t.Fatalf("signals: got %+v", m)
	}
	if m0, _ := ParseMetrics(strings.NewReader("go_goroutines 1\n")); m0.NginxUp != -1 {
		t.Errorf("nginx_up absent: got %v, want -1", m0.NginxUp)
	}
	if q := Quantile(0.5, nil, m.LagBuckets); math.Abs(q-0.001) > 1e-9 {
		t.Errorf("p50 = %v", q)
	}
	if q := Quantile(0.99, nil, m.LagBuckets); math.Abs(q-0.01) > 1e-9 {
		t.Errorf("p99 = %v", q)
	}
	if q := Quantile(0.995, nil, m.LagBuckets); q <= 0.01 || q >= 1 {
		t.Errorf("p99.5 = %v", q)
	}
}

func TestSlope(t *testing.T) {
	// RSS in MB sampled every 30 s (x in hours) growing 2 MB/h plus noise
	// in the pattern +,-,-,+, which is uncorrelated with x.
	var x, y []float64
	for i := range 60 {
		h := float64(i) * 30 / 3600
		noise := 0.3
		if i%4 == 1 || i%4 == 2 {
			noise = -0.3
		}
		x = append(x, h)
		y = append(y, 40+2*h+noise)
	}
	if s := Slope(x, y); math.Abs(s-2) > 1e-9 {
		t.Errorf("slope = %v MB/h, want 2", s)
	}
	if s := Slope([]float64{0, 1, 2}, []float64{5, 5, 5}); s != 0 {
		t.Errorf("flat: slope = %v", s)
	}
	if s := Slope([]float64{1, 1}, []float64{1, 2}); !math.IsNaN(s) {
		t.Errorf("one distinct x: slope = %v, want NaN", s)
	}
	if s := Slope([]float64{1}, []float64{1}); !math.IsNaN(s) {
		t.Errorf("one point: slope = %v, want NaN", s)
	}
}

func TestTheilSen(t *testing.T) {
	// RSS in MB every 30 s over half an hour (x in hours), growing
	// 2 MB/h, with one sample in six taken while a scrape holds 12 MB
	// more, and those concentrated in the later samples: least squares
	// reads them as growth, the median slope does not.
	var x, y []float64
	for i := range 60 {
		h := float64(i) * 30 / 3600
		mb := 40 + 2*h
		if i%6 == 5 && i > 20 {
			mb += 12
		}
		x = append(x, h)
		y = append(y, mb)
	}
	if s := TheilSen(x, y); math.Abs(s-2) > 0.5 {
		t.Errorf("Theil–Sen slope = %v MB/h, want 2", s)
	}
	if s := Slope(x, y); s < 6 {
		t.Errorf("least squares slope = %v MB/h: the spikes no longer bias it, the test shows nothing", s)
	}
	for _, tc := range []struct {
		name string
		x, y []float64
		want float64
	}{
		{"flat", []float64{0, 1, 2}, []float64{5, 5, 5}, 0},
		{"odd number of slopes", []float64{0, 1, 2}, []float64{0, 1, 4}, 2},                      // 1, 2, 3
		{"even number of slopes", []float64{0, 1, 2, 3}, []float64{0, 2, 3, 7}, 13.0 / 6},        // 1, 1.5, 2, 7/3, 2.5, 4
		{"a pair with the same x is skipped", []float64{0, 1, 1, 2}, []float64{0, 1, 3, 3}, 1.5}, // 0, 1, 1.5, 2, 3
		{"one distinct x", []float64{1, 1}, []float64{1, 2}, math.NaN()},
		{"one point", []float64{1}, []float64{1}, math.NaN()},
	} {
		s := TheilSen(tc.x, tc.y)
		if math.IsNaN(tc.want) != math.IsNaN(s) || (!math.IsNaN(s) && math.Abs(s-tc.want) > 1e-9) {
			t.Errorf("%s: %v, want %v", tc.name, s, tc.want)
		}
	}
}
