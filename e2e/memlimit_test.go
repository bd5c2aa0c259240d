package e2e

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// TestAutoGoMemLimit runs the exporter inside a memory cgroup the test
// creates with a 64 MiB limit, as a sidecar container would, and reads
// the Go runtime's soft limit back from go_gc_gomemlimit_bytes: 0.9 of
// the cgroup's limit by default, the ratio flag's share with it, nothing
// with --no-auto-gomemlimit, and GOMEMLIMIT when the environment sets it.
func TestAutoGoMemLimit(t *testing.T) {
	const limit = 64 << 20
	_, procs := testutil.MemoryCgroup(t, limit)
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	backend := testutil.HTTPBackend(t)
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("events {}\nhttp { server { location / { proxy_pass http://%s; } } }\n", backend)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The shell moves itself into the cgroup, then becomes the exporter,
	// so the exporter reads its cgroup after it is already in it.
	inCgroup := []string{"/bin/sh", "-c", `echo $$ > "$1" && shift && exec "$@"`, "sh", procs}
	tests := []struct {
		name    string
		wrapper []string
		extra   []string
		want    float64
	}{
		{"default ratio", inCgroup, nil, math.Floor(0.9 * limit)},
		{"ratio flag", inCgroup, []string{"--auto-gomemlimit.ratio=0.5"}, 0.5 * limit},
		{"disabled", inCgroup, []string{"--no-auto-gomemlimit"}, math.MaxInt64},
		{"environment wins", append(append([]string{}, inCgroup...), "/usr/bin/env", "GOMEMLIMIT=40MiB"), nil, 40 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startBinExporterVia(t, tt.wrapper, conf, tt.extra...)
			mfs := waitScrape(t, e, "first scrape", func(m map[string]*dto.MetricFamily) bool { return m["go_gc_gomemlimit_bytes"] != nil })
			if got := gauge(mfs, "go_gc_gomemlimit_bytes"); got != tt.want {
				t.Errorf("go_gc_gomemlimit_bytes = %.0f, want %.0f", got, tt.want)
			}
		})
	}
}

// TestGCPercent reads the collector's target back from
// go_gc_gogc_percent: 50 by default, GOGC when the environment sets it.
func TestGCPercent(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte("events {}\nhttp { server { location / { proxy_pass http://127.0.0.1:1; } } }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		wrapper []string
		want    float64
	}{
		{"default", nil, 50},
		{"environment wins", []string{"/usr/bin/env", "GOGC=100"}, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := startBinExporterVia(t, tt.wrapper, conf)
			mfs := waitScrape(t, e, "first scrape", func(m map[string]*dto.MetricFamily) bool { return m["go_gc_gogc_percent"] != nil })
			if got := gauge(mfs, "go_gc_gogc_percent"); got != tt.want {
				t.Errorf("go_gc_gogc_percent = %.0f, want %.0f", got, tt.want)
			}
		})
	}
}
