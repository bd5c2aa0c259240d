package probehandler

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// listen is a backend that accepts connections.
func listen(t *testing.T) string {
	t.Helper()
	addr, _ := testutil.CountingListener(t)
	return addr
}

func target(upstream, server, protocol string) *discovery.Target {
	return &discovery.Target{
		Key: discovery.Key{Upstream: upstream, Server: server, Address: server, Protocol: protocol},
		ServerSettings: &discovery.ServerSettings{
			ConnectTimeout: time.Second, ReadTimeout: time.Second, SendTimeout: time.Second},
		Probe: &prober.Peer{Network: "tcp", Address: server,
			ConnectTimeout: time.Second, ReadTimeout: time.Second, SendTimeout: time.Second},
	}
}

func get(t *testing.T, h http.Handler, query url.Values) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/probe?"+query.Encode(), nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// The prober here only connects, whatever the protocol, so the tests do
// not depend on the protocol exchanges.
func connectOnly() prober.Prober {
	return prober.ProberFunc(func(ctx context.Context, t *prober.Peer, r *prober.Result) {
		if conn := prober.Dial(ctx, t, r); conn != nil {
			conn.Close()
			r.Success = true
		}
	})
}

func TestKnownTarget(t *testing.T) {
	up, down := listen(t), testutil.DeadAddr(t)
	targets := []*discovery.Target{
		target("app", up, "http"),
		target("app", down, "http"),
		target("other", up, "http"), // the same server in a second upstream
	}
	h := New(Options{Targets: func() []*discovery.Target { return targets }, Prober: connectOnly(), Timeout: 2 * time.Second, MaxRequests: 2})

	code, body := get(t, h, url.Values{"target": {up}, "upstream": {"app"}})
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	want := `nginx_upstream_probe_success{address="` + up + `",protocol="http",server="` + up + `",upstream="app"} 1`
	if !strings.Contains(body, want) {
		t.Errorf("body lacks %s:\n%s", want, body)
	}
	for _, name := range []string{"nginx_upstream_probe_duration_seconds", "nginx_upstream_probe_phase_duration_seconds", "nginx_upstream_probe_target_info"} {
		if !strings.Contains(body, name) {
			t.Errorf("body lacks %s", name)
		}
	}
	if strings.Contains(body, `upstream="other"`) {
		t.Errorf("upstream=app answered for another upstream:\n%s", body)
	}

	// Without upstream, every upstream that has the server is probed.
	_, body = get(t, h, url.Values{"target": {up}})
	if strings.Count(body, "nginx_upstream_probe_success{") != 2 {
		t.Errorf("want one success series per upstream:\n%s", body)
	}

	_, body = get(t, h, url.Values{"target": {down}})
	for _, want := range []string{
		`nginx_upstream_probe_success{address="` + down + `",protocol="http",server="` + down + `",upstream="app"} 0`,
		`nginx_upstream_probe_failure_reason{address="` + down + `",protocol="http",reason="connection_refused",server="` + down + `",upstream="app"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %s:\n%s", want, body)
		}
	}
}

func TestRefusesUnknownTargets(t *testing.T) {
	up := listen(t)
	targets := []*discovery.Target{target("app", up, "http")}
	h := New(Options{Targets: func() []*discovery.Target { return targets }, Prober: connectOnly(), Timeout: time.Second})
	for _, tc := range []struct {
		name  string
		query url.Values
		code  int
		msg   string
	}{
		{"missing target", url.Values{}, http.StatusBadRequest, "target parameter is missing"},
		{"not in config", url.Values{"target": {"10.1.2.3:80"}}, http.StatusNotFound, "--probe.allow-any-target"},
		{"wrong upstream", url.Values{"target": {up}, "upstream": {"nope"}}, http.StatusNotFound, `in upstream "nope"`},
		{"wrong protocol", url.Values{"target": {up}, "protocol": {"fastcgi"}}, http.StatusNotFound, "not an upstream server"},
		{"metadata endpoint", url.Values{"target": {"169.254.169.254:80"}}, http.StatusNotFound, "not an upstream server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, h, tc.query)
			if code != tc.code || !strings.Contains(body, tc.msg) {
				t.Errorf("status %d %q, want %d with %q", code, body, tc.code, tc.msg)
			}
			if strings.Contains(body, "nginx_upstream_probe_success") {
				t.Error("refused target was probed")
			}
		})
	}
}

func TestAllowAnyTarget(t *testing.T) {
	up := listen(t)
	dir, err := os.MkdirTemp("", "nue")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })

	h := New(Options{Prober: connectOnly(), Timeout: time.Second, AllowAnyTarget: true})
	for _, tc := range []struct {
		name  string
		query url.Values
		want  string
	}{
		{"tcp default", url.Values{"target": {up}}, `nginx_upstream_probe_success{address="` + up + `",protocol="tcp",server="` + up + `",upstream="` + up + `"} 1`},
		{"protocol and upstream", url.Values{"target": {up}, "protocol": {"http"}, "upstream": {"adhoc"}}, `protocol="http",server="` + up + `",upstream="adhoc"} 1`},
		{"unix", url.Values{"target": {"unix:" + sock}}, `nginx_upstream_probe_success{address="unix:` + sock + `",protocol="tcp"`},
		{"dead", url.Values{"target": {testutil.DeadAddr(t)}}, `reason="connection_refused"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, h, tc.query)
			if code != http.StatusOK || !strings.Contains(body, tc.want) {
				t.Errorf("status %d, body lacks %s:\n%s", code, tc.want, body)
			}
		})
	}
	for _, bad := range []url.Values{
		{"target": {"no-port"}},
		{"target": {"127.0.0.1:0"}},
		{"target": {"unix:relative.sock"}},
		{"target": {up}, "protocol": {"gopher"}},
	} {
		if code, body := get(t, h, bad); code != http.StatusBadRequest {
			t.Errorf("%v: status %d %s, want 400", bad, code, body)
		}
	}
}

// blockingProber holds every probe until released, to fill the request
// limit.
type blockingProber struct {
	started chan struct{}
	release chan struct{}
}

func (b blockingProber) Probe(ctx context.Context, _ *prober.Peer, r *prober.Result) {
	b.started <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	r.Success = true
}

func TestLimitsConcurrentRequests(t *testing.T) {
	bp := blockingProber{started: make(chan struct{}, 4), release: make(chan struct{})}
	targets := []*discovery.Target{target("app", "127.0.0.1:1", "http")}
	h := New(Options{Targets: func() []*discovery.Target { return targets }, Prober: bp, Timeout: 5 * time.Second, MaxRequests: 1})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if code, body := get(t, h, url.Values{"target": {"127.0.0.1:1"}}); code != http.StatusOK {
			t.Errorf("first request: %d %s", code, body)
		}
	}()
	<-bp.started
	code, body := get(t, h, url.Values{"target": {"127.0.0.1:1"}})
	close(bp.release)
	wg.Wait()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "too many concurrent") {
		t.Errorf("second request: %d %s, want 503", code, body)
	}
}

func TestScrapeTimeoutHeader(t *testing.T) {
	h := New(Options{Timeout: 10 * time.Second})
	for hdr, want := range map[string]time.Duration{
		"":     10 * time.Second,
		"5":    4500 * time.Millisecond,
		"60":   10 * time.Second,
		"0.2":  10 * time.Second,
		"junk": 10 * time.Second,
		"+Inf": 10 * time.Second,
	} {
		req := httptest.NewRequest(http.MethodGet, "/probe", nil)
		if hdr != "" {
			req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", hdr)
		}
		if got := h.timeout(req); got != want {
			t.Errorf("header %q: timeout %s, want %s", hdr, got, want)
		}
	}
}
