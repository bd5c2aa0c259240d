package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/crypto/bcrypt"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/server"
)

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func debugLogger(w io.Writer) *promslog.Config {
	lvl := promslog.NewLevel()
	_ = lvl.Set("debug")
	return &promslog.Config{Level: lvl, Writer: w}
}

// serveOptions tune serveExporter; zero values take the defaults noted.
type serveOptions struct {
	webConfig    string
	pf           probeFlags
	logs         io.Writer     // nil: discarded
	interval     time.Duration // 100ms
	probeTimeout time.Duration // 2s
	concurrency  int           // 8
	limits       server.Limits // none
}

// serveExporter builds the exporter exactly as `serve` does, loads the
// configuration and serves it through server.Serve (exporter-toolkit's
// web.Serve) on a random loopback port until the test ends.
func serveExporter(t *testing.T, conf string, o serveOptions) (addr string, exp *service) {
	t.Helper()
	if o.logs == nil {
		o.logs = io.Discard
	}
	if o.interval == 0 {
		o.interval = 100 * time.Millisecond
	}
	if o.probeTimeout == 0 {
		o.probeTimeout = 2 * time.Second
	}
	if o.concurrency == 0 {
		o.concurrency = 8
	}
	if o.pf.maxRequests == 0 {
		o.pf.maxRequests = 4
	}
	logger := promslog.New(debugLogger(o.logs))
	c := &commonFlags{nginxConfig: conf, probeTimeout: o.probeTimeout, probeConcurrency: o.concurrency}
	ctx, cancel := context.WithCancel(context.Background())
	exp, err := newExporter(ctx, logger, c, "/metrics", o.interval, &o.pf, 4)
	if err == nil {
		err = exp.firstLoad(ctx)
	}
	var ln net.Listener
	if err == nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	srv := server.NewHTTPServer(exp.handler, o.limits, logger)
	systemd := false
	flags := &web.FlagConfig{WebListenAddresses: &[]string{}, WebSystemdSocket: &systemd, WebConfigFile: &o.webConfig}
	served := make(chan error, 1)
	go func() { served <- server.Serve(ln, srv, flags, o.limits.MaxConnections, logger) }()
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		exp.sched.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		<-schedDone
	})
	return ln.Addr().String(), exp
}

// startServer serves the exporter of conf with the usual test settings.
func startServer(t *testing.T, conf, webConfig string, pf probeFlags, logs io.Writer) (addr string, exp *service) {
	t.Helper()
	return serveExporter(t, conf, serveOptions{webConfig: webConfig, pf: pf, logs: logs})
}

func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

type endpoint struct {
	method, path string
	want         int
}

func endpoints(backend string) []endpoint {
	return []endpoint{
		{http.MethodGet, "/metrics", http.StatusOK},
		{http.MethodGet, "/probe?target=" + backend, http.StatusOK},
		{http.MethodGet, "/-/healthy", http.StatusOK},
		{http.MethodGet, "/-/ready", http.StatusOK},
		{http.MethodPost, "/-/reload", http.StatusOK},
		{http.MethodGet, "/", http.StatusOK},
		{http.MethodGet, "/api/v1/targets", http.StatusOK},
		{http.MethodGet, "/target?server=" + backend, http.StatusOK},
	}
}

func do(t *testing.T, c *http.Client, method, url, user, pass string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestWebConfigCoversEveryEndpoint proves that --web.config.file (TLS and
// basic auth) wraps the whole mux, /probe and /-/reload included.
func TestWebConfigCoversEveryEndpoint(t *testing.T) {
	backend := testutil.HTTPBackend(t)
	conf := testutil.WriteNginxConf(t, fmt.Sprintf(`upstream app { server %s; } server { location / { proxy_pass http://app; } }`, backend))
	dir := t.TempDir()

	t.Run("basic auth", func(t *testing.T) {
		wc := testutil.WriteFile(t, dir, "web-auth.yml", fmt.Sprintf("basic_auth_users:\n  prometheus: %s\n", bcryptHash(t, "correct horse")))
		addr, _ := startServer(t, conf, wc, probeFlags{}, io.Discard)
		c := &http.Client{Timeout: 10 * time.Second}
		for _, e := range endpoints(backend) {
			url := "http://" + addr + e.path
			if code, _ := do(t, c, e.method, url, "", ""); code != http.StatusUnauthorized {
				t.Errorf("%s %s without credentials: %d, want 401", e.method, e.path, code)
			}
			if code, _ := do(t, c, e.method, url, "prometheus", "wrong"); code != http.StatusUnauthorized {
				t.Errorf("%s %s with a wrong password: %d, want 401", e.method, e.path, code)
			}
			if code, body := do(t, c, e.method, url, "prometheus", "correct horse"); code != e.want {
				t.Errorf("%s %s with credentials: %d %s, want %d", e.method, e.path, code, body, e.want)
			}
		}
	})

	t.Run("TLS and basic auth", func(t *testing.T) {
		cert := testutil.MustCert(t, "nginx_upstream_exporter test", testutil.CertOptions{Names: []string{"127.0.0.1"}})
		certFile, keyFile := cert.MustWritePEM(t, dir, "web")
		pool := cert.Pool()
		wc := testutil.WriteFile(t, dir, "web-tls.yml", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  prometheus: %s\n",
			certFile, keyFile, bcryptHash(t, "correct horse")))
		addr, _ := startServer(t, conf, wc, probeFlags{}, io.Discard)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
		defer tr.CloseIdleConnections()
		c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
		for _, e := range endpoints(backend) {
			url := "https://" + addr + e.path
			if code, _ := do(t, c, e.method, url, "", ""); code != http.StatusUnauthorized {
				t.Errorf("%s %s without credentials: %d, want 401", e.method, e.path, code)
			}
			if code, body := do(t, c, e.method, url, "prometheus", "correct horse"); code != e.want {
				t.Errorf("%s %s with credentials: %d %s, want %d", e.method, e.path, code, body, e.want)
			}
		}
		// Plain HTTP to the TLS port is refused before any handler runs.
		plain := &http.Client{Timeout: 10 * time.Second}
		if code, _ := do(t, plain, http.MethodGet, "http://"+addr+"/metrics", "prometheus", "correct horse"); code != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS listener: %d, want 400", code)
		}
	})
}

func TestProbeEndpointRefusesTargetsOutsideConfig(t *testing.T) {
	backend, other := testutil.HTTPBackend(t), testutil.HTTPBackend(t)
	conf := testutil.WriteNginxConf(t, fmt.Sprintf(`upstream app { server %s; } server { location / { proxy_pass http://app; } }`, backend))
	c := &http.Client{Timeout: 10 * time.Second}

	addr, _ := startServer(t, conf, "", probeFlags{}, io.Discard)
	code, body := do(t, c, http.MethodGet, "http://"+addr+"/probe?target="+backend, "", "")
	if code != http.StatusOK || !strings.Contains(body, `nginx_upstream_probe_success{address="`+backend+`",protocol="http",server="`+backend+`",upstream="app"} 1`) {
		t.Errorf("known target: %d\n%s", code, body)
	}
	if code, body := do(t, c, http.MethodGet, "http://"+addr+"/probe?target="+other, "", ""); code != http.StatusNotFound {
		t.Errorf("target outside the config: %d %s, want 404", code, body)
	}

	addr, _ = startServer(t, conf, "", probeFlags{allowAny: true}, io.Discard)
	code, body = do(t, c, http.MethodGet, "http://"+addr+"/probe?target="+other, "", "")
	if code != http.StatusOK || !strings.Contains(body, `nginx_upstream_probe_success{address="`+other+`",protocol="tcp"`) {
		t.Errorf("--probe.allow-any-target: %d\n%s", code, body)
	}
}

func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestDiagnoseCommand(t *testing.T) {
	healthy := testutil.WriteNginxConf(t, fmt.Sprintf(`upstream app { server %s; server 127.0.0.1:9 down; } server { location / { proxy_pass http://app; } }`, testutil.HTTPBackend(t)))
	dead := testutil.DeadAddr(t)
	failing := testutil.WriteNginxConf(t, fmt.Sprintf(`upstream app { server %s; server %s; } server { location / { proxy_pass http://app; } }`, testutil.HTTPBackend(t), dead))

	for _, tc := range []struct {
		name string
		args []string
		code int
		out  []string
	}{
		{"healthy", []string{"diagnose", "--nginx.config", healthy}, 0, []string{"down (not probed)", "Every primary server is healthy"}},
		{"one dead server", []string{"diagnose", "--nginx.config=" + failing, "--probe.timeout=2s"}, 1, []string{dead, "connection_refused", "docs/runbook.md#connection_refused", "connect() failed (111: Connection refused)"}},
		{"list", []string{"diagnose", "--list", "--nginx.config", failing}, 0, []string{dead, "weight=1"}},
		{"missing config", []string{"diagnose", "--nginx.config", filepath.Join(t.TempDir(), "nope.conf")}, 2, nil},
		{"unknown output", []string{"diagnose", "--nginx.config", healthy, "--output=yaml"}, 2, nil},
		{"unknown flag", []string{"diagnose", "--nginx.config", healthy, "--frobnicate"}, 2, nil},
		{"bad timeout", []string{"diagnose", "--nginx.config", healthy, "--probe.timeout=-1s"}, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			for _, want := range tc.out {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			if strings.Contains(stdout, "\x1b[") {
				t.Error("colour in output that is not a terminal")
			}
		})
	}

	code, stdout, _ := runMain(t, "diagnose", "--nginx.config", failing, "-o", "json")
	var rep struct {
		Healthy bool `json:"healthy"`
		Targets []struct {
			Server  string `json:"server"`
			Success bool   `json:"success"`
			Reason  string `json:"reason"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 1 {
		t.Fatalf("exit %d, JSON %v:\n%s", code, err, stdout)
	}
	named := false
	for _, tg := range rep.Targets {
		if tg.Server == dead {
			named = !tg.Success && tg.Reason == "connection_refused"
		}
	}
	if rep.Healthy || !named {
		t.Errorf("JSON does not name the dead server and its reason:\n%s", stdout)
	}
}
