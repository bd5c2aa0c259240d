package mixin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// exporterBinary returns the exporter to test: $NGINX_UPSTREAM_EXPORTER_BINARY
// or a fresh build of the repository root.
func exporterBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("NGINX_UPSTREAM_EXPORTER_BINARY"); b != "" {
		return b
	}
	out, err := exec.Command("go", "list", "-f", "{{.Name}}", "..").Output()
	if err != nil || strings.TrimSpace(string(out)) != "main" {
		missing(t, "the repository root has no main package to build the exporter from (go list: %v)", err)
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "nginx_upstream_exporter"), ".")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "nginx_upstream_exporter")
}

// start runs a process until the test ends, its output going to the test log.
func start(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	logf, err := os.Create(filepath.Join(t.TempDir(), filepath.Base(name)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("--- %s output (tail) ---\n%s", name, b)
		}
	})
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

// serveHTTP200 answers every connection on l with an empty HTTP 200 once it
// has read the request header.
func serveHTTP200(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func(c net.Conn) {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil || line == "\r\n" || line == "\n" {
					break
				}
			}
			_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
		}(c)
	}
}

// TestEndToEnd runs the exporter against a dead upstream, scraped by a real
// Prometheus server that loads the generated rules with short `for:` values,
// and waits for NginxUpstreamAllServersDown to fire, then to resolve once
// the backend answers.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	prometheus := lookPath(t, "prometheus")
	jsonnet := jsonnetBin(t)
	exporter := exporterBinary(t)
	dir := t.TempDir()

	// The backend port: nothing listens on it until the backend "comes back".
	backendPort := freePort(t)
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

	exporterAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start(t, exporter,
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
	for _, f := range []string{"alerts", "rules"} {
		out := run(t, jsonnet, "-S", "--tla-code", "config="+overrides, f+".jsonnet")
		if err := os.WriteFile(filepath.Join(dir, f+".yaml"), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	promConf := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %s
  - %s
scrape_configs:
  - job_name: nginx_upstream_exporter
    static_configs:
      - targets: ['%s']
`, filepath.Join(dir, "rules.yaml"), filepath.Join(dir, "alerts.yaml"), exporterAddr)
	promConfPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promConfPath, []byte(promConf), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start(t, prometheus,
		"--config.file="+promConfPath,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr,
	)
	poll(t, 60*time.Second, "prometheus to be ready", func() (bool, string) {
		code, _, err := httpGet("http://" + promAddr + "/-/ready")
		return err == nil && code == http.StatusOK, fmt.Sprint(code, err)
	})

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
	t.Cleanup(func() { l.Close() })
	go serveHTTP200(l)

	poll(t, 120*time.Second, "NginxUpstreamAllServersDown to resolve", func() (bool, string) {
		s, body := alertState()
		return s == "inactive", body
	})
}
