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
