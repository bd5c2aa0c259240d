package e2e

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// slowBackend answers every request after delay, as an application whose
// endpoint is slow but within nginx's proxy_read_timeout.
func slowBackend(t *testing.T, delay time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return testutil.ServeHTTP(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
			fmt.Fprintln(w, "slow but fine")
		case <-r.Context().Done():
		}
	}))
}

func waitFor(t *testing.T, e *binExporter, within time.Duration, what string, cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(within)
	var last map[string]*dto.MetricFamily
	for time.Now().Before(deadline) {
		if last = e.scrape(t); last != nil && cond(last) {
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last verdicts: %v", what, reasonsOf(last))
	return nil
}

// A backend answering in 12 s behind nginx's default proxy_read_timeout
// (60 s) is served by nginx: the exporter, by default, waits as nginx does
// and reports it healthy with its latency. With an operator's cap shorter
// than that, the probe gives no verdict: never read_timeout, never success.
func TestBinarySlowBackendWithinNginxTimeout(t *testing.T) {
	const delay = 12 * time.Second
	backend := slowBackend(t, delay)
	conf := testutil.WriteNginxConf(t, fmt.Sprintf("server { listen 127.0.0.1:1; location / { proxy_pass http://%s; } }", backend))

	t.Run("default waits as nginx does", func(t *testing.T) {
		t.Parallel()
		// The harness's default 2 s cap is replaced: no cap at all.
		e := startBinExporter(t, conf, "--probe.interval=1s", "--probe.timeout=0s")
		mfs := waitFor(t, e, delay+15*time.Second, "a verdict", func(m map[string]*dto.MetricFamily) bool {
			return len(reasonsOf(m)) == 1
		})
		if r := reasonsOf(mfs); r[backend] != "" {
			t.Fatalf("slow backend within nginx's timeout reported %q, want healthy", r[backend])
		}
		if d := gauge(mfs, "nginx_upstream_probe_duration_seconds"); d < delay.Seconds() {
			t.Errorf("duration %v s, want at least the backend's %v", d, delay)
		}
	})
	t.Run("a shorter cap gives no verdict", func(t *testing.T) {
		t.Parallel()
		e := startBinExporter(t, conf, "--probe.interval=1s", "--probe.timeout=2s")
		mfs := waitFor(t, e, 15*time.Second, "an inconclusive probe", func(m map[string]*dto.MetricFamily) bool {
			return m["nginx_upstream_probe_inconclusive"] != nil
		})
		if l := labelsOf(mfs["nginx_upstream_probe_inconclusive"].Metric[0]); l["cause"] != "probe_timeout" {
			t.Errorf("cause %q, want probe_timeout", l["cause"])
		}
		if r := reasonsOf(mfs); len(r) != 0 {
			t.Errorf("a capped probe produced a verdict: %v", r)
		}
		if mf := mfs["nginx_upstream_exporter_probes_inconclusive_total"]; mf == nil {
			t.Error("no nginx_upstream_exporter_probes_inconclusive_total")
		}
	})
}
