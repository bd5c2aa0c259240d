package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// TestSeriesFlags serves one healthy backend with each combination of
// --[no-]collector.probe.phases and --[no-]collector.probe.timeouts and
// checks which families /metrics carries.
func TestSeriesFlags(t *testing.T) {
	backend := testutil.HTTPBackend(t)
	conf := testutil.WriteNginxConf(t, fmt.Sprintf(`upstream app { server %s; } server { location / { proxy_pass http://app; } }`, backend))
	c := &http.Client{Timeout: 10 * time.Second}
	const phases, timeouts = "nginx_upstream_probe_phase_duration_seconds{", "nginx_upstream_probe_timeout_seconds{"
	for _, tc := range []struct {
		name                     string
		pf                       probeFlags
		wantPhases, wantTimeouts bool
	}{
		{"defaults", probeFlags{}, true, true},
		{"no phases", probeFlags{noPhases: true}, false, true},
		{"no timeouts", probeFlags{noTimeouts: true}, true, false},
		{"neither", probeFlags{noPhases: true, noTimeouts: true}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := startServer(t, conf, "", tc.pf, io.Discard)
			var body string
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(body, "nginx_upstream_probe_success{") {
				if time.Now().After(deadline) {
					t.Fatalf("no probe result on /metrics:\n%s", body)
				}
				time.Sleep(50 * time.Millisecond)
				_, body = do(t, c, http.MethodGet, "http://"+addr+"/metrics", "", "")
			}
			if got := strings.Contains(body, phases); got != tc.wantPhases {
				t.Errorf("phase series present: %v, want %v", got, tc.wantPhases)
			}
			if got := strings.Contains(body, timeouts); got != tc.wantTimeouts {
				t.Errorf("timeout series present: %v, want %v", got, tc.wantTimeouts)
			}
			if !strings.Contains(body, "nginx_upstream_probe_duration_seconds{") {
				t.Error("duration_seconds missing: only the optional families may go")
			}
		})
	}
}

// TestSeriesFlagsParse checks the flag names, including kingpin's --no-
// forms, stopping before serve at a later flag check.
func TestSeriesFlagsParse(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--no-collector.probe.phases", "--no-collector.probe.timeouts", "--web.max-requests=0"},
		{"serve", "--collector.probe.phases", "--collector.probe.timeouts", "--web.max-requests=0"},
	} {
		var stderr bytes.Buffer
		if code := run(args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "--web.max-requests") {
			t.Errorf("%v: exit %d: %s", args, code, stderr.String())
		}
	}
}
