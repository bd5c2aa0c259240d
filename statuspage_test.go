package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/jsonschema"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// TestStatusPageNeverProbes: with the schedule stopped, reading the status
// page, the per-target view and the API many times opens no connection to
// any backend; the servers are shown as not probed yet, and unknown is not
// healthy.
func TestStatusPageNeverProbes(t *testing.T) {
	backend, accepted := testutil.CountingListener(t)
	conf := testutil.WriteNginxConf(t, fmt.Sprintf(`upstream app { server %s; } server { location / { proxy_pass http://app; } }`, backend))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &commonFlags{nginxConfig: conf, probeConcurrency: 4}
	// The scheduler is built but never run: any probe would come from a
	// request.
	exp, err := newExporter(ctx, promslog.New(&promslog.Config{Writer: io.Discard}), c, "/metrics", time.Second, &probeFlags{maxRequests: 4}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.firstLoad(ctx); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		for _, path := range []string{"/", "/api/v1/targets", "/target?server=" + backend, "/?state=problems"} {
			rec := httptest.NewRecorder()
			exp.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s: %d\n%s", path, rec.Code, rec.Body.String())
			}
			body := rec.Body.String()
			if !strings.Contains(body, "pending") && !strings.Contains(body, "PENDING") {
				t.Fatalf("GET %s does not say the server is not probed yet:\n%s", path, body)
			}
			if path == "/api/v1/targets" && !strings.Contains(body, `"healthy":false`) {
				t.Errorf("the API calls a never-probed configuration healthy:\n%s", body)
			}
		}
	}
	// Any connection would have been accepted by now: requests are
	// synchronous, and a probe dials before it answers.
	time.Sleep(50 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Errorf("the backend received %d connections from status page requests", n)
	}
	// The control: /probe does probe, and the backend sees it.
	rec := httptest.NewRecorder()
	exp.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/probe?target="+backend, nil))
	deadline := time.Now().Add(5 * time.Second)
	for accepted.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if accepted.Load() == 0 {
		t.Errorf("the backend did not see /probe's connection: the counter is blind (/probe answered %d)", rec.Code)
	}
}

// TestReportsMatchSchema: what the real command prints with every section
// it can add (the running nginx, the error log and what it says about a
// server) and what the served API answers both follow the one published
// schema.
func TestReportsMatchSchema(t *testing.T) {
	doc, err := os.ReadFile("docs/api/targets.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := jsonschema.Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	good, dead := testutil.HTTPBackend(t), testutil.DeadAddr(t)
	log := filepath.Join(t.TempDir(), "error.log")
	line := fmt.Sprintf("2026/11/27 08:14:20 [error] 6#6: *2 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://%s/\", host: \"h\"\n", good)
	if err := os.WriteFile(log, []byte(line), 0o640); err != nil {
		t.Fatal(err)
	}
	conf := testutil.WriteNginxConf(t, fmt.Sprintf(`
    error_log %s;
    upstream app { server %s; server %s; server 127.0.0.1:9 down; }
    server { listen 127.0.0.1:8080; location / { proxy_pass http://app; } location /dyn/ { proxy_pass http://$http_x_backend; } }`, log, good, dead))

	code, stdout, stderr := runMain(t, "diagnose", "--nginx.config", conf, "--output=json")
	if code != 1 {
		t.Fatalf("diagnose exit %d, want 1\n%s", code, stderr)
	}
	for _, section := range []string{`"nginx": {`, `"error_log": {`, `"logged": {`, `"capacity": {`, `"dynamic": [`} {
		if !strings.Contains(stdout, section) {
			t.Errorf("diagnose JSON lacks %s, so the schema test does not cover it:\n%s", section, stdout)
		}
	}
	for _, err := range schema.Validate([]byte(stdout)) {
		t.Errorf("diagnose --output=json: %v", err)
	}

	addr, _ := startServer(t, conf, "", probeFlags{}, io.Discard)
	c := &http.Client{Timeout: 10 * time.Second}
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, body = do(t, c, http.MethodGet, "http://"+addr+"/api/v1/targets", "", "")
		if !strings.Contains(body, `"verdict":"pending"`) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(body, `"verdict":"failed"`) || !strings.Contains(body, `"verdict":"ok"`) || !strings.Contains(body, `"verdict":"down"`) {
		t.Fatalf("API has not every verdict yet:\n%s", body)
	}
	for _, err := range schema.Validate([]byte(body)) {
		t.Errorf("/api/v1/targets: %v", err)
	}
}
