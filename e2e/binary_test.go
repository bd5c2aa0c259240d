package e2e

// Whole-binary tests without nginx: the exporter built once by TestMain,
// run as an operator would against backends in this process.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// requireRoot skips tests that need root (chown, a directory the worker
// cannot search) on a developer's machine; CI runs as root and must not skip.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root to build a socket directory nginx's worker cannot search")
	}
}

type binExporter struct {
	cmd  *exec.Cmd
	addr string
	log  *syncBuilder
}

// syncBuilder collects the exporter's log lines while tests read them.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) WriteString(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(v)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startBinExporter(t *testing.T, conf string, extra ...string) *binExporter {
	t.Helper()
	return startBinExporterVia(t, nil, conf, extra...)
}

// startBinExporterVia starts the exporter through a wrapper command
// (argv prefix, e.g. a shell that first moves itself into a cgroup and
// then execs the exporter), so that the exporter starts already there.
func startBinExporterVia(t *testing.T, wrapper []string, conf string, extra ...string) *binExporter {
	t.Helper()
	requireExporter(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	// extra overrides a default of the same flag: kingpin refuses repeats.
	var args []string
	for _, d := range []string{"--nginx.config=" + conf, "--web.listen-address=" + addr,
		"--probe.interval=200ms", "--probe.timeout=2s", "--log.level=debug"} {
		name, _, _ := strings.Cut(d, "=")
		if !slices.ContainsFunc(extra, func(e string) bool { return strings.HasPrefix(e, name+"=") }) {
			args = append(args, d)
		}
	}
	args = append(args, extra...)
	argv := append(append(slices.Clone(wrapper), exporterBinary), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	logs := &syncBuilder{}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
		}
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		waited := make(chan struct{})
		go func() { cmd.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-waited
			t.Errorf("exporter did not stop within 10s of SIGTERM")
		}
		pw.Close()
		<-done
		if t.Failed() {
			t.Logf("exporter log:\n%s", logs.String())
		}
	})
	return &binExporter{cmd: cmd, addr: addr, log: logs}
}

func (e *binExporter) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + e.addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return mfs
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.Label {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// reasonsOf maps server -> reason ("" for success) from one scrape.
func reasonsOf(mfs map[string]*dto.MetricFamily) map[string]string {
	out := map[string]string{}
	if mf := mfs["nginx_upstream_probe_success"]; mf != nil {
		for _, m := range mf.Metric {
			if m.GetGauge().GetValue() == 1 {
				out[labelsOf(m)["server"]] = ""
			}
		}
	}
	if mf := mfs["nginx_upstream_probe_failure_reason"]; mf != nil {
		for _, m := range mf.Metric {
			l := labelsOf(m)
			out[l["server"]] = l["reason"]
		}
	}
	return out
}

func gauge(mfs map[string]*dto.MetricFamily, name string) float64 {
	mf := mfs[name]
	if mf == nil || len(mf.Metric) == 0 {
		return -1
	}
	return mf.Metric[0].GetGauge().GetValue()
}

func waitScrape(t *testing.T, e *binExporter, what string, cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last map[string]*dto.MetricFamily
	for time.Now().Before(deadline) {
		last = e.scrape(t)
		if last != nil && cond(last) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last verdicts: %v", what, reasonsOf(last))
	return nil
}

// TestBinaryVerdictsAndReload runs the exporter against the issue's
// reference set of backends, then breaks and repairs the configuration.
func TestBinaryVerdictsAndReload(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	// Unix socket paths must stay under 108 bytes: use a short base.
	sockDir, err := os.MkdirTemp("", "nue")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	// MkdirTemp makes 0700 directories, which nginx's worker could not
	// search either; only the "private" one below should be closed.
	if err := os.Chmod(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}

	healthy := testutil.HTTPBackend(t)
	dead := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	missing := filepath.Join(sockDir, "missing.sock")

	// A socket in a directory only root may search: nginx's worker
	// (nobody) gets EACCES, the exporter (root) would connect fine.
	private := filepath.Join(sockDir, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	privateSock := filepath.Join(private, "app.sock")
	pl, err := net.Listen("unix", privateSock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pl.Close() })
	os.Chmod(privateSock, 0o777)
	go acceptHTTP(pl)

	// A stale socket file: the listener died without removing it.
	stale := filepath.Join(sockDir, "stale.sock")
	sl, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	sl.SetUnlinkOnClose(false)
	sl.Close()
	// Writable for the worker, as php-fpm's listen.mode makes it; else
	// the verdict would rightly be permission_denied.
	os.Chmod(stale, 0o666)

	conf := filepath.Join(dir, "nginx.conf")
	good := fmt.Sprintf(`user nobody nogroup;
events {}
http {
    upstream app {
        server %s;
        server %s;
    }
    server {
        listen 127.0.0.1:8080;
        location / { proxy_pass http://app; }
        location /missing { proxy_pass http://unix:%s:/; }
        location /private { proxy_pass http://unix:%s; }
        location /stale { proxy_pass http://unix:%s:/x; }
    }
}
`, healthy, dead, missing, privateSock, stale)
	if err := os.WriteFile(conf, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}

	e := startBinExporter(t, conf)
	want := map[string]string{
		healthy:               "",
		dead:                  "connection_refused",
		"unix:" + missing:     "socket_not_found",
		"unix:" + privateSock: "permission_denied",
		"unix:" + stale:       "connection_refused",
	}
	mfs := waitScrape(t, e, "a verdict for every server", func(m map[string]*dto.MetricFamily) bool {
		return len(reasonsOf(m)) == len(want)
	})
	got := reasonsOf(mfs)
	for server, reason := range want {
		if r, ok := got[server]; !ok || r != reason {
			t.Errorf("server %s: want reason %q, got %q (present %v)", server, reason, r, ok)
		}
	}
	if v := gauge(mfs, "nginx_upstream_exporter_config_last_reload_successful"); v != 1 {
		t.Errorf("reload successful = %v after a good start", v)
	}

	// Break the configuration: the last good targets keep probing.
	if err := os.WriteFile(conf, []byte("events {}\nhttp { upstream app { server "), 0o644); err != nil {
		t.Fatal(err)
	}
	e.cmd.Process.Signal(syscall.SIGHUP)
	mfs = waitScrape(t, e, "reload failure", func(m map[string]*dto.MetricFamily) bool {
		return gauge(m, "nginx_upstream_exporter_config_last_reload_successful") == 0
	})
	if got := reasonsOf(mfs); len(got) != len(want) {
		t.Errorf("after a failed reload want the %d last good targets, got %v", len(want), got)
	}
	if !strings.Contains(e.log.String(), "failed to load configuration") || !strings.Contains(e.log.String(), conf) {
		t.Errorf("failed reload not logged with the file name")
	}
	resp, err := http.Post("http://"+e.addr+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("POST /-/reload with a broken config: status %d, want 500", resp.StatusCode)
	}

	// Repair it with one server fewer; the change is picked up on its own
	// (file watch) and the reload metric recovers.
	repaired := strings.Replace(good, "        server "+dead+";\n", "", 1)
	if err := os.WriteFile(conf, []byte(repaired), 0o644); err != nil {
		t.Fatal(err)
	}
	mfs = waitScrape(t, e, "recovery after repair", func(m map[string]*dto.MetricFamily) bool {
		return gauge(m, "nginx_upstream_exporter_config_last_reload_successful") == 1 && len(reasonsOf(m)) == len(want)-1
	})
	if _, ok := reasonsOf(mfs)[dead]; ok {
		t.Errorf("removed server %s still exported", dead)
	}
	resp, err = http.Get("http://" + e.addr + "/-/reload")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: status %d, want 405", resp.StatusCode)
	}
}

func acceptHTTP(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})}
	srv.Serve(l)
}

func TestBinaryMissingConfigExitsNonZero(t *testing.T) {
	requireExporter(t)
	cmd := exec.Command(exporterBinary, "--nginx.config="+filepath.Join(t.TempDir(), "nope.conf"),
		"--web.listen-address=127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...).CombinedOutput()
	if err == nil {
		t.Fatalf("exporter started without a config:\n%s", out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("want exit status 1, got %v", err)
	}
	if !strings.Contains(string(out), "nope.conf") {
		t.Errorf("error does not name the missing file:\n%s", out)
	}
}

func TestBinaryEndpoints(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	backend := testutil.HTTPBackend(t)
	os.WriteFile(conf, []byte(fmt.Sprintf("events {}\nhttp { server { location / { proxy_pass http://%s; } } }\n", backend)), 0o644)
	e := startBinExporter(t, conf)
	waitScrape(t, e, "first probe", func(m map[string]*dto.MetricFamily) bool { return len(reasonsOf(m)) == 1 })
	for path, want := range map[string]int{"/-/healthy": 200, "/-/ready": 200, "/": 200, "/metrics": 200} {
		resp, err := http.Get("http://" + e.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	checkMetricsWithPromtool(t, e.addr)
	mfs := e.scrape(t)
	bi := mfs["nginx_upstream_exporter_build_info"]
	if bi == nil || bi.Metric[0].GetGauge().GetValue() != 1 {
		t.Errorf("nginx_upstream_exporter_build_info missing")
	}
	for _, name := range []string{"nginx_upstream_exporter_probes_in_flight", "nginx_upstream_exporter_probe_queue_length", "nginx_upstream_exporter_schedule_lag_seconds"} {
		if mfs[name] == nil {
			t.Errorf("self-metric %s missing", name)
		}
	}
}

// checkMetricsWithPromtool lints the live page with Prometheus's own
// checker: names, units, help texts and types.
func checkMetricsWithPromtool(t *testing.T, addr string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not installed and CI=true forbids skipping")
		}
		t.Log("promtool not installed: skipping the metrics lint")
		return
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = resp.Body
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestBinaryExporterConfigOverrides: the optional exporter file changes the
// probe request per upstream, and an unexpected status fails the probe.
func TestBinaryExporterConfigOverrides(t *testing.T) {
	paths := make(chan string, 100)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case paths <- r.Method + " " + r.URL.Path:
		default:
		}
		w.WriteHeader(http.StatusTeapot)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("events {}\nhttp { upstream app { server %s; } server { location / { proxy_pass http://app; } } }\n", l.Addr())), 0o644)
	yml := filepath.Join(dir, "exporter.yml")
	os.WriteFile(yml, []byte("upstreams:\n  - upstream: app\n    http: {method: HEAD, path: /healthz, expect_status: [200]}\n"), 0o644)

	e := startBinExporter(t, conf, "--config.file="+yml)
	mfs := waitScrape(t, e, "a verdict", func(m map[string]*dto.MetricFamily) bool { return len(reasonsOf(m)) == 1 })
	select {
	case got := <-paths:
		if got != "HEAD /healthz" {
			t.Errorf("probe request %q, want HEAD /healthz", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("backend saw no probe")
	}
	if v := reasonsOf(mfs)[l.Addr().String()]; v == "" {
		t.Errorf("status 418 with expect_status [200] must fail the probe")
	}

	// A broken exporter file is a failed reload like a broken nginx.conf.
	os.WriteFile(yml, []byte("upstreams:\n  - upstream: app\n    htp: {}\n"), 0o644)
	waitScrape(t, e, "reload failure on a bad exporter file", func(m map[string]*dto.MetricFamily) bool {
		return gauge(m, "nginx_upstream_exporter_config_last_reload_successful") == 0
	})
}
