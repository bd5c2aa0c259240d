package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestProbeFlagBounds: --probe.concurrency=10000000 once started ten
// million workers and took the machine's memory. Out-of-bound values must
// be refused at once with exit status 2 and a message that names the flag
// and its bound, before anything is allocated or loaded.
func TestProbeFlagBounds(t *testing.T) {
	conf := "--nginx.config=/nonexistent/nginx.conf"
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"concurrency serve", []string{"--probe.concurrency=10000000", conf}, []string{"--probe.concurrency=10000000", "65536"}},
		{"concurrency diagnose", []string{"diagnose", "--probe.concurrency=10000000", conf}, []string{"--probe.concurrency", "65536"}},
		{"concurrency zero", []string{"--probe.concurrency=0", conf}, []string{"--probe.concurrency=0", "between 1 and 65536"}},
		{"interval", []string{"--probe.interval=48h", conf}, []string{"--probe.interval=48h0m0s", "at most 1h0m0s"}},
		{"interval zero", []string{"--probe.interval=0s", conf}, []string{"--probe.interval", "positive"}},
		{"timeout", []string{"--probe.timeout=10h", conf}, []string{"--probe.timeout=10h0m0s", "between 0 (no cap) and 10m0s"}},
		{"timeout diagnose", []string{"diagnose", "--probe.timeout=11m", conf}, []string{"--probe.timeout", "10m0s"}},
		{"max requests", []string{"--probe.max-requests=100000", conf}, []string{"--probe.max-requests=100000", "1024"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q does not contain %q", stderr.String(), w)
				}
			}
			if took > 2*time.Second {
				t.Errorf("refusing the flags took %v", took)
			}
			if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20 {
				t.Errorf("refusing the flags allocated %d bytes", grown)
			}
		})
	}
}

// TestProbeFlagBoundsAccepted: values at the bounds are valid; the run then
// fails later, on the missing configuration (exit 1 for serve).
func TestProbeFlagBoundsAccepted(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"--probe.concurrency=65536", "--probe.interval=1h", "--probe.timeout=10m",
		"--probe.max-requests=1024", "--web.listen-address=127.0.0.1:0", "--nginx.config=/nonexistent/nginx.conf"}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (no configuration); stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "open files limit") {
		t.Errorf("serve did not log the open files limit: %s", stderr.String())
	}
}
