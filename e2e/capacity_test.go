package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCapacityFullNotDown drives a real php-fpm pool (pm static, one
// worker) behind real nginx into saturation with slow requests, on a unix
// socket with listen.backlog 1 (nginx answers 502: EAGAIN) and on TCP with
// a normal backlog (nginx answers 504: its read timeout). Before and while
// nginx fails, the exporter's /metrics and `diagnose` say the server is
// full, not down, with the kernel's queue and the pool read from
// pm.status_listen; when the load ends the server is no longer saturated;
// a restart of php-fpm is counted on the server.
func TestCapacityFullNotDown(t *testing.T) {
	t.Run("unix backlog full, 502", func(t *testing.T) {
		capacityScenario(t, false, 1, "20s", 502, "Resource temporarily unavailable")
	})
	t.Run("tcp busy pool, 504", func(t *testing.T) {
		capacityScenario(t, true, 511, "1s", 504, "upstream timed out")
	})
}

func capacityScenario(t *testing.T, tcp bool, backlog int, readTimeout string, wantStatus int, wantLog string) {
	requireNginx(t)
	requireExporter(t)
	if err := checkPrereqs()[needPHPFPM]; err != nil {
		skipOrFail(t, "%v", err)
	}
	env := &netEnv{}
	dir := nginxDir(t, "capacity-")
	www := filepath.Join(dir, "www")
	if err := os.Mkdir(www, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, "slow.php"), []byte("<?php usleep((int)($_GET['ms'] ?? 0) * 1000); echo \"ok\\n\";\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "fpm.sock")
	server := "unix:" + sock
	if tcp {
		sock = fmt.Sprintf("127.0.0.1:%d", env.freePort(t))
		server = sock
	}
	status := filepath.Join(dir, "status.sock")
	user := ""
	if os.Geteuid() == 0 {
		user = "user = nobody\ngroup = nogroup\n"
	}
	fpmConf := filepath.Join(dir, "php-fpm.conf")
	if err := os.WriteFile(fpmConf, []byte(fmt.Sprintf(`[global]
pid = %[1]s/php-fpm.pid
error_log = %[1]s/php-fpm.log
daemonize = no

[app]
%[2]slisten = %[3]s
listen.mode = 0666
listen.backlog = %[5]d
pm = static
pm.max_children = 1
pm.status_path = /status
pm.status_listen = %[4]s
`, dir, user, sock, status, backlog)), 0o644); err != nil {
		t.Fatal(err)
	}
	startFPM := func() *process {
		args := []string{"-F", "-n", "-y", fpmConf}
		if os.Geteuid() == 0 {
			args = append(args, "-R")
		}
		p := env.start(t, filepath.Join(dir, "php-fpm.out"), phpFPMBinary, args...)
		deadline := time.Now().Add(15 * time.Second)
		for {
			if _, err := os.Stat(status); err == nil {
				if c, err := env.dial(context.Background(), "unix", status); err == nil {
					c.Close()
					return p
				}
			}
			if p.exited() || time.Now().After(deadline) {
				t.Fatalf("php-fpm did not start:\n%s", p.output())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	fpm := startFPM()

	listen := fmt.Sprintf("127.0.0.1:%d", env.freePort(t))
	conf := writeNginxConf(t, dir, map[string]string{"Dir": dir, "Listen": listen, "Server": server, "ReadTimeout": readTimeout}, "", `
location / {
    fastcgi_pass {{.Server}};
    fastcgi_param SCRIPT_FILENAME {{.Dir}}/www/slow.php;
    fastcgi_param SCRIPT_NAME /slow.php;
    fastcgi_param REQUEST_METHOD $request_method;
    fastcgi_param QUERY_STRING ms=3000;
    fastcgi_read_timeout {{.ReadTimeout}};
}
`)
	ngx, ok := startNginx(t, env, dir, conf, listen)
	if !ok {
		t.Fatalf("nginx refused the configuration:\n%s", ngx.proc.output())
	}
	x := startExporter(t, env, dir, conf)
	labels := map[string]string{"server": server, "protocol": "fastcgi"}
	value := func(all []series, name string, extra ...string) (float64, bool) {
		want := maps.Clone(labels)
		for i := 0; i+1 < len(extra); i += 2 {
			want[extra[i]] = extra[i+1]
		}
		for _, s := range all {
			if s.is(name, want) {
				return s.value, true
			}
		}
		return 0, false
	}
	// waitWithin scrapes until cond holds for the page.
	waitWithin := func(within time.Duration, what string, cond func(all []series) bool) []series {
		t.Helper()
		deadline := time.Now().Add(within)
		var last []series
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			all, err := x.scrape(ctx)
			cancel()
			if err == nil {
				last = all
				if cond(all) {
					return all
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		var b strings.Builder
		for _, s := range last {
			if strings.HasPrefix(s.name, "nginx_upstream_backend") || strings.HasPrefix(s.name, "nginx_upstream_phpfpm") || strings.HasPrefix(s.name, "nginx_upstream_probe_failure_reason") {
				fmt.Fprintf(&b, "%s %v %g\n", s.name, s.labels, s.value)
			}
		}
		t.Fatalf("%s: not within %v; last scrape:\n%s\nexporter log:\n%s", what, within, b.String(), x.proc.output())
		return nil
	}
	waitFor := func(what string, cond func(all []series) bool) []series {
		t.Helper()
		return waitWithin(20*time.Second, what, cond)
	}

	// Idle: listening, not saturated, the pool's size exported.
	waitFor("idle pool seen", func(all []series) bool {
		sat, ok1 := value(all, "nginx_upstream_backend_saturated")
		mc, ok2 := value(all, "nginx_upstream_phpfpm_max_children")
		up, ok3 := value(all, "nginx_upstream_phpfpm_status_up")
		return ok1 && sat == 0 && ok2 && mc == 1 && ok3 && up == 1
	})

	// Load: more slow requests through nginx than the pool and its queue
	// hold.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses []int
	)
	for range 6 {
		wg.Go(func() {
			code := ngx.get(t)
			mu.Lock()
			statuses = append(statuses, code)
			mu.Unlock()
		})
		time.Sleep(30 * time.Millisecond)
	}
	all := waitFor("saturated while nginx fails", func(all []series) bool {
		sat, _ := value(all, "nginx_upstream_backend_saturated")
		active, _ := value(all, "nginx_upstream_phpfpm_processes", "state", "active")
		q, _ := value(all, "nginx_upstream_backend_listen_queue_length")
		limit, _ := value(all, "nginx_upstream_backend_listen_queue_limit")
		full := q >= limit || (tcp && q >= 1)
		return sat == 1 && active == 1 && limit > 0 && full
	})
	q, _ := value(all, "nginx_upstream_backend_listen_queue_length")
	limit, _ := value(all, "nginx_upstream_backend_listen_queue_limit")
	if limit != float64(backlog) || (!tcp && q < limit) || q < 1 {
		t.Errorf("saturated pool: queue %g/%g", q, limit)
	}
	if v, ok := value(all, "nginx_upstream_backend_listener_state", "state", "listening"); !ok || v != 1 {
		t.Errorf("a full server is listening: %g %v", v, ok)
	}

	// diagnose, while the pool is still full.
	out, _ := exec.Command(exporterBinary, "diagnose", "--nginx.config="+conf, "--probe.timeout=2s").CombinedOutput()
	t.Logf("diagnose during saturation:\n%s", out)
	if !strings.Contains(string(out), "full, not down") || !strings.Contains(string(out), "queue ") {
		t.Errorf("diagnose during saturation does not say full, not down:\n%s", out)
	}

	wg.Wait()
	got := false
	for _, c := range statuses {
		got = got || c == wantStatus
	}
	if !got {
		t.Errorf("nginx statuses %v: no %d", statuses, wantStatus)
	}
	if lines := strings.Join(ngx.errorLines(), "\n"); !strings.Contains(lines, wantLog) {
		t.Errorf("nginx did not log %q:\n%s", wantLog, lines)
	}

	// After the load: no longer saturated. nginx gave up on its requests
	// after fastcgi_read_timeout, but php-fpm still runs every queued one
	// (6 of 3 s each, plus probes) before its queue empties.
	waitWithin(45*time.Second, "saturation ends with the load", func(all []series) bool {
		sat, ok := value(all, "nginx_upstream_backend_saturated")
		return ok && sat == 0
	})

	if tcp {
		return
	}
	// Restart: stop and start php-fpm; one restart on this server.
	before, _ := value(all, "nginx_upstream_backend_process_start_time_seconds")
	fpm.stop()
	time.Sleep(1500 * time.Millisecond)
	startFPM()
	waitFor("restart counted", func(all []series) bool {
		r, _ := value(all, "nginx_upstream_backend_restarts_total")
		start, _ := value(all, "nginx_upstream_backend_process_start_time_seconds")
		return r == 1 && start > before
	})
}
