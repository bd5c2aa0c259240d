package collector

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// A probe without a verdict (a silent UDP server) exports neither
// probe_success nor a failure reason, on both renderings; the target
// still has its runs, timestamps and info, and no failure is counted.
func TestUnknownVerdictIsAbsent(t *testing.T) {
	st := scheduler.Status{
		Target:    tgt("dns", "127.0.0.1:53", "127.0.0.1:53", "udp", defaults, true),
		HasResult: true, Finished: time.Unix(1_700_000_000, 0), Runs: 3,
		Result: prober.Result{Unknown: true, Duration: time.Second},
	}
	src := fakeSource{st}
	for _, name := range []string{"nginx_upstream_probe_success", "nginx_upstream_probe_failure_reason", "nginx_upstream_probe_failures_total"} {
		if n := testutil.CollectAndCount(New(src), name); n != 0 {
			t.Errorf("%s: %d series for a probe without a verdict, want none", name, n)
		}
	}
	if n := testutil.CollectAndCount(New(src), "nginx_upstream_probe_runs_total"); n != 1 {
		t.Errorf("runs_total: %d series, want 1", n)
	}
	var b bytes.Buffer
	if _, err := NewTextWriter(src).WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "nginx_upstream_probe_success{") || strings.HasPrefix(line, "nginx_upstream_probe_failure_reason{") {
			t.Errorf("text page has %q for a probe without a verdict", line)
		}
	}
	if !strings.Contains(b.String(), `nginx_upstream_probe_last_run_timestamp_seconds{upstream="dns"`) {
		t.Errorf("the target's other series are missing:\n%s", b.String())
	}
}
