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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// TestAlertChainErrorLog proves the error-log alert end to end: real nginx
// fails requests to one slow endpoint of a backend whose probe passes; the
// exporter reads nginx's error log; real Prometheus evaluates the
// generated rules; real Alertmanager delivers the notification to a
// webhook of the test, carrying upstream, server, reason and runbook_url.
func TestAlertChainErrorLog(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	requireNginx(t)
	requireExporter(t)
	prometheus, err := exec.LookPath("prometheus")
	if err != nil {
		skipOrFail(t, "prometheus not installed (Debian package prometheus): %v", err)
	}
	alertmanager, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		skipOrFail(t, "prometheus-alertmanager not installed (Debian package prometheus-alertmanager): %v", err)
	}
	jsonnet := jsonnetBinary(t)
	dir, err := os.MkdirTemp(baseDir, "alert-chain-")
	if err != nil {
		t.Fatal(err)
	}

	// The backend: "/" (what the probe asks) answers at once, "/slow"
	// after nginx's read timeout.
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "ok\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	go backend.Serve(bl)
	t.Cleanup(func() { backend.Close() })
	backendAddr := bl.Addr().String()

	nginxAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	nginxConf := filepath.Join(dir, "nginx.conf")
	conf := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream app {
        server %[2]s;
    }
    server {
        listen %[3]s;
        location / {
            proxy_pass http://app;
            proxy_read_timeout 500ms;
        }
    }
}
`, dir, backendAddr, nginxAddr)
	if err := os.WriteFile(nginxConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startLogged(t, dir, nginxBinary, "-p", dir, "-c", nginxConf, "-e", "stderr", "-g", "daemon off;")
	poll(t, 15*time.Second, "nginx to listen", func() (bool, string) {
		c, err := net.DialTimeout("tcp", nginxAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil, fmt.Sprint(err)
	})

	exporterAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	startLogged(t, dir, exporterBinary, "--nginx.config="+nginxConf, "--web.listen-address="+exporterAddr, "--probe.interval=1s", "--log.level=debug")
	poll(t, 30*time.Second, "the exporter to tail nginx's error log", func() (bool, string) {
		_, body, err := httpGet("http://" + exporterAddr + "/metrics")
		return err == nil && strings.Contains(string(body), `nginx_upstream_exporter_log_files{state="tailing"} 1`), fmt.Sprint(err)
	})

	// The webhook receiver.
	notifications := make(chan []byte, 64)
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hook := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case notifications <- b:
		default:
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	go hook.Serve(hl)
	t.Cleanup(func() { hook.Close() })

	amAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	amConf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(amConf, []byte(fmt.Sprintf(`route:
  receiver: hook
  group_by: [alertname, upstream, server, reason]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://%s/hook
`, hl.Addr())), 0o644); err != nil {
		t.Fatal(err)
	}
	startLogged(t, dir, alertmanager, "--config.file="+amConf, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	poll(t, 60*time.Second, "alertmanager to be ready", func() (bool, string) {
		code, _, err := httpGet("http://" + amAddr + "/-/ready")
		return err == nil && code == http.StatusOK, fmt.Sprint(code, err)
	})

	overrides := `{scrapeGapWindow: '5s', rateWindow: '20s', intermittentFor: '2s', loggedErrorsFor: '2s'}`
	writeMixinRules(t, jsonnet, dir, overrides)
	promAddr := startPrometheus(t, prometheus, dir, exporterAddr, amAddr)

	// Real requests: the slow endpoint, again and again.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		client := &http.Client{Timeout: 5 * time.Second}
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+nginxAddr+"/slow", nil)
			if resp, err := client.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})

	type notification struct {
		Alerts []struct {
			Status      string            `json:"status"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"alerts"`
	}
	deadline := time.After(150 * time.Second)
	var seen []string
	for {
		select {
		case b := <-notifications:
			var n notification
			if err := json.Unmarshal(b, &n); err != nil {
				t.Fatalf("webhook payload: %v\n%s", err, b)
			}
			for _, a := range n.Alerts {
				seen = append(seen, a.Labels["alertname"])
				if a.Labels["alertname"] != "NginxUpstreamIntermittentFailures" || a.Status != "firing" {
					continue
				}
				if a.Labels["upstream"] != "app" || a.Labels["server"] != backendAddr || a.Labels["reason"] != "read_timeout" {
					t.Fatalf("notification labels = %v, want upstream=app server=%s reason=read_timeout", a.Labels, backendAddr)
				}
				if !strings.HasSuffix(a.Annotations["runbook_url"], "docs/runbook.md#nginxupstreamintermittentfailures") {
					t.Fatalf("runbook_url = %q", a.Annotations["runbook_url"])
				}
				t.Logf("Alertmanager delivered %s: %v, runbook %s", a.Labels["alertname"], a.Labels, a.Annotations["runbook_url"])
				return
			}
		case <-deadline:
			_, body, _ := httpGet("http://" + promAddr + "/api/v1/alerts")
			_, metrics, _ := httpGet("http://" + exporterAddr + "/metrics")
			var logged []string
			for _, l := range strings.Split(string(metrics), "\n") {
				if strings.HasPrefix(l, "nginx_upstream_log_") || strings.HasPrefix(l, "nginx_upstream_probe_success") {
					logged = append(logged, l)
				}
			}
			t.Fatalf("no NginxUpstreamIntermittentFailures notification within 150s; notifications seen: %v\nprometheus alerts: %s\nexporter: %s", seen, body, strings.Join(logged, "\n"))
		}
	}
}
