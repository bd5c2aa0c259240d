package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// TestStatusPageNeverProbes: with the schedule stopped, reading the status
// page, the per-target view and the API many times opens no connection to
// any backend; the servers are shown as not probed yet, and unknown is not
// healthy.
func TestStatusPageNeverProbes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-acceptDone })
	backend := l.Addr().String()
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
