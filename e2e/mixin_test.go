package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// startLogged runs a process in this network namespace until the test
// ends, its output going to a log file the test prints when it fails.
func startLogged(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	logFile := filepath.Join(dir, filepath.Base(name)+".log")
	p := (&netEnv{}).start(t, logFile, name, args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s output (tail) ---\n%s", name, tail(p.output(), 8000))
		}
	})
}

// jsonnetBinary is the jsonnet the mixin's Makefile builds from
// mixin/tools/go.mod into mixin/.bin, built here when absent.
func jsonnetBinary(t *testing.T) string {
	t.Helper()
	mixin := filepath.Join(moduleRoot(t), "mixin")
	bin := filepath.Join(mixin, ".bin", "jsonnet")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := testutil.GoBuild(filepath.Join(mixin, "tools"), bin, "github.com/google/go-jsonnet/cmd/jsonnet"); err != nil {
		skipOrFail(t, "cannot build jsonnet: %v", err)
	}
	return bin
}

// poll calls f every 500ms until it returns true or the timeout passes.
func poll(t *testing.T, timeout time.Duration, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := f()
		if ok {
			return
		}
		last = state
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
}

// writeMixinRules renders the mixin's alerts and recording rules, with
// overrides (jsonnet code merged into _config) so that the windows last
// seconds, into dir/alerts.yaml and dir/rules.yaml.
func writeMixinRules(t *testing.T, jsonnet, dir, overrides string) {
	t.Helper()
	for _, f := range []string{"alerts", "rules"} {
		cmd := exec.Command(jsonnet, "-S", "--tla-code", "config="+overrides, f+".jsonnet")
		cmd.Dir = filepath.Join(moduleRoot(t), "mixin")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("jsonnet %s.jsonnet: %v", f, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f+".yaml"), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// startPrometheus runs Prometheus on a free port until the test ends,
// scraping the exporter at exporterAddr every second with the rules
// writeMixinRules left in dir, and sending alerts to the Alertmanager at
// alertmanagerAddr unless it is empty. It returns once Prometheus is
// ready, with its address.
func startPrometheus(t *testing.T, prometheus, dir, exporterAddr, alertmanagerAddr string) string {
	t.Helper()
	alerting := ""
	if alertmanagerAddr != "" {
		alerting = fmt.Sprintf(`alerting:
  alertmanagers:
    - static_configs:
        - targets: ['%s']
`, alertmanagerAddr)
	}
	promConf := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
%srule_files:
  - %s
  - %s
scrape_configs:
  - job_name: nginx_upstream_exporter
    static_configs:
      - targets: ['%s']
`, alerting, filepath.Join(dir, "rules.yaml"), filepath.Join(dir, "alerts.yaml"), exporterAddr)
	promConfPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promConfPath, []byte(promConf), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	startLogged(t, dir, prometheus,
		"--config.file="+promConfPath,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr,
	)
	poll(t, 60*time.Second, "prometheus to be ready", func() (bool, string) {
		code, _, err := httpGet("http://" + promAddr + "/-/ready")
		return err == nil && code == http.StatusOK, fmt.Sprint(code, err)
	})
	return promAddr
}

func httpGet(url string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestMixinAlertFiresAndResolves runs the exporter against a dead upstream, scraped by a real
// Prometheus server that loads the generated rules with short `for:` values,
// and waits for NginxUpstreamAllServersDown to fire, then to resolve once
// the backend answers.
func TestMixinAlertFiresAndResolves(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	requireExporter(t)
	prometheus, err := exec.LookPath("prometheus")
	if err != nil {
		skipOrFail(t, "prometheus not installed (Debian package prometheus): %v", err)
	}
	jsonnet := jsonnetBinary(t)
	dir := t.TempDir()

	// The backend port: nothing listens on it until the backend "comes back".
	backendPort := testutil.FreePort(t)
	nginxConf := filepath.Join(dir, "nginx.conf")
	conf := fmt.Sprintf(`events {}
http {
    upstream app {
        server 127.0.0.1:%d;
    }
    server {
        listen 127.0.0.1:1;
        location / {
            proxy_pass http://app;
        }
    }
}
`, backendPort)
	if err := os.WriteFile(nginxConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	exporterAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	startLogged(t, dir, exporterBinary,
		"--nginx.config="+nginxConf,
		"--web.listen-address="+exporterAddr,
		"--probe.interval=1s",
		"--log.level=debug",
	)
	poll(t, 30*time.Second, "the exporter to serve /metrics", func() (bool, string) {
		code, _, err := httpGet("http://" + exporterAddr + "/metrics")
		return err == nil && code == http.StatusOK, fmt.Sprint(code, err)
	})

	// Rules with short windows so the test takes seconds, not minutes.
	overrides := `{allServersDownFor: '3s', scrapeGapWindow: '5s', serverDownFor: '3s'}`
	writeMixinRules(t, jsonnet, dir, overrides)
	promAddr := startPrometheus(t, prometheus, dir, exporterAddr, "")

	alertState := func() (string, string) {
		_, body, err := httpGet("http://" + promAddr + "/api/v1/alerts")
		if err != nil {
			return "", err.Error()
		}
		var r struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return "", err.Error()
		}
		for _, a := range r.Data.Alerts {
			if a.Labels["alertname"] == "NginxUpstreamAllServersDown" && a.Labels["upstream"] == "app" {
				return a.State, string(body)
			}
		}
		return "inactive", string(body)
	}

	poll(t, 120*time.Second, "NginxUpstreamAllServersDown to fire", func() (bool, string) {
		s, body := alertState()
		return s == "firing", body
	})

	// The backend comes back.
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", backendPort))
	if err != nil {
		t.Fatalf("cannot listen on the backend port again: %v", err)
	}
	testutil.ServeHTTP(t, l, testutil.OKHandler())

	poll(t, 120*time.Second, "NginxUpstreamAllServersDown to resolve", func() (bool, string) {
		s, body := alertState()
		return s == "inactive", body
	})
}
