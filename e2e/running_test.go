package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil/dnstest"
)

// The running nginx: stale upstream addresses, reload pending and
// reloads that would fail, with real nginx in a network namespace of the
// test, answering names from the test's own DNS responder.

// movingApp is app.test:PORT, a backend that moves between loopback
// addresses while DNS follows it, as a container that comes back with a
// new IP.
type movingApp struct {
	t    *testing.T
	env  *netEnv
	dns  *dnstest.Server
	port int
	ip   string
	srv  *http.Server
}

func newMovingApp(t *testing.T, env *netEnv, ip string) *movingApp {
	t.Helper()
	pc, err := env.listenPacket("udp", "127.0.0.1:53")
	if err != nil {
		t.Fatalf("DNS responder: %v", err)
	}
	a := &movingApp{t: t, env: env, dns: dnstest.NewServer(pc, nil)}
	t.Cleanup(func() { a.dns.Close() })
	l, err := env.listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	a.port = l.Addr().(*net.TCPAddr).Port
	a.serve(ip, l)
	t.Cleanup(func() { a.srv.Close() })
	return a
}

func (a *movingApp) serve(ip string, l net.Listener) {
	a.ip = ip
	a.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })}
	go a.srv.Serve(l)
	a.dns.Set("app.test", netip.MustParseAddr(ip))
}

// moveTo stops the backend (closing every connection, as a container
// that goes away) and starts it on ip, and DNS follows.
func (a *movingApp) moveTo(ip string) {
	a.t.Helper()
	a.srv.Close()
	l, err := a.env.listen("tcp", net.JoinHostPort(ip, strconv.Itoa(a.port)))
	if err != nil {
		a.t.Fatal(err)
	}
	a.serve(ip, l)
}

func (a *movingApp) addr(ip string) string { return net.JoinHostPort(ip, strconv.Itoa(a.port)) }

// runningScene writes an nginx.conf whose upstream `app` is the static
// name app.test, kept alive between requests so that nginx's workers
// hold connections to the address they resolved.
func runningScene(t *testing.T, env *netEnv, a *movingApp, extraHTTP, extraServer string) (dir, conf, listen string) {
	t.Helper()
	dir = nginxDir(t, "running-")
	listen = fmt.Sprintf("127.0.0.1:%d", env.freePort(t))
	if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte(fmt.Sprintf("upstream app {\n    server app.test:%d;\n    keepalive 4;\n}\n", a.port)), 0o644); err != nil {
		t.Fatal(err)
	}
	conf = writeNginxConf(t, dir, map[string]string{"Listen": listen},
		"include "+dir+"/app.conf;\n"+extraHTTP,
		`location / {
    proxy_pass http://app;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_connect_timeout 3s;
}
`+extraServer)
	return dir, conf, listen
}

// masterPID is the nginx master's pid in the suite's PID namespace: the
// child of the `unshare` the process helper runs it under. (nginx -s
// reload would read the pid nginx wrote, 1 in its own namespace, and
// signal the wrong process from here.)
func masterPID(t *testing.T, n *nginx) int {
	t.Helper()
	pid := n.proc.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return pid
	}
	child, _ := strconv.Atoi(f[0])
	cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child))
	if !strings.HasPrefix(string(cmd), "nginx: master process") {
		t.Fatalf("pid %d is %q, not nginx's master", child, cmd)
	}
	return child
}

// reloadNginx does what `nginx -s reload` does: SIGHUP to the master.
func reloadNginx(t *testing.T, n *nginx) {
	t.Helper()
	if err := syscall.Kill(masterPID(t, n), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// sample finds one series by name and labels.
func sample(all []series, name string, labels ...string) (float64, bool) {
next:
	for _, s := range all {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

// waitMetrics scrapes until ok accepts a scrape.
func (x *exporter) waitMetrics(t *testing.T, what string, ok func([]series) bool) []series {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last []series
	for time.Now().Before(deadline) {
		if x.proc.exited() {
			t.Fatalf("the exporter exited (%v):\n%s", x.proc.err, x.proc.output())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		all, err := x.scrape(ctx)
		cancel()
		if err == nil {
			last = all
			if ok(all) {
				return all
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	var b strings.Builder
	for _, s := range last {
		if strings.HasPrefix(s.name, "nginx_upstream_nginx") || strings.HasPrefix(s.name, "nginx_upstream_dns") || strings.HasPrefix(s.name, "nginx_upstream_config") ||
			s.name == "nginx_upstream_probe_failure_reason" || s.name == "nginx_upstream_probe_success" {
			fmt.Fprintf(&b, "  %s%v %g\n", s.name, s.labels, s.value)
		}
	}
	t.Fatalf("within 30s the exporter never showed %s; last scrape:\n%s\nexporter log:\n%s", what, b.String(), x.proc.output())
	return nil
}

func is(all []series, want float64, name string, labels ...string) bool {
	v, ok := sample(all, name, labels...)
	return ok && v == want
}

func requireRunningPrereqs(t *testing.T) {
	t.Helper()
	requireNginx(t)
	requireExporter(t)
	if err := checkPrereqs()[needNetns]; err != nil {
		skipOrFail(t, "%v", err)
	}
}

// refusedLine checks that nginx itself logged the refused connection to
// the old address: the outage the exporter must name.
func refusedLine(t *testing.T, n *nginx, addr string) {
	t.Helper()
	lines := linesFor(n.errorLines(), addr)
	for _, l := range lines {
		if strings.Contains(l, "connect() failed (111: ") {
			return
		}
	}
	t.Fatalf("nginx logged no connect() failed (111: ...) to %s; its error lines: %q", addr, n.errorLines())
}

// TestStaleAddressWitnessed: the exporter runs when nginx starts; the
// backend moves; nginx answers 502 dialling the old address; the
// exporter says stale and probes what nginx dials; a reload fixes it.
func TestStaleAddressWitnessed(t *testing.T) {
	requireRunningPrereqs(t)
	env := newNetns(t)
	app := newMovingApp(t, env, "127.0.0.2")
	dir, conf, listen := runningScene(t, env, app, "", "")
	old, moved := app.addr("127.0.0.2"), app.addr("127.0.0.3")

	x := startExporter(t, env, dir, conf)
	x.waitMetrics(t, "nginx_upstream_nginx_up 0 before nginx starts", func(all []series) bool {
		return is(all, 0, "nginx_upstream_nginx_up")
	})
	ngx := mustStartNginx(t, env, dir, conf, listen)
	if code := ngx.get(t); code != 200 {
		t.Fatalf("healthy: nginx answered %d", code)
	}
	all := x.waitMetrics(t, "nginx up, its addresses known from the load, not stale", func(all []series) bool {
		return is(all, 1, "nginx_upstream_nginx_up") &&
			is(all, 1, "nginx_upstream_dns_nginx_addresses_source", "server", "app.test:"+strconv.Itoa(app.port), "source", "load") &&
			is(all, 0, "nginx_upstream_dns_stale", "upstream", "app") &&
			is(all, 1, "nginx_upstream_probe_success", "address", old) &&
			is(all, 0, "nginx_upstream_config_reload_pending")
	})
	firstLoad, _ := sample(all, "nginx_upstream_nginx_last_reload_timestamp_seconds")

	// A reload with nothing changed: no false positive.
	time.Sleep(1100 * time.Millisecond) // a later start time than the first generation's
	reloadNginx(t, ngx)
	all = x.waitMetrics(t, "a healthy reload counted, nothing stale", func(all []series) bool {
		return is(all, 1, "nginx_upstream_nginx_reloads_total") && is(all, 0, "nginx_upstream_dns_stale", "upstream", "app") &&
			is(all, 0, "nginx_upstream_config_reload_pending") && is(all, 1, "nginx_upstream_probe_success", "address", old)
	})
	secondLoad, _ := sample(all, "nginx_upstream_nginx_last_reload_timestamp_seconds")
	if secondLoad <= firstLoad {
		t.Errorf("reload timestamp %v did not advance past %v", secondLoad, firstLoad)
	}

	app.moveTo("127.0.0.3")
	if code := ngx.get(t); code != 502 {
		t.Fatalf("after the move nginx answered %d, want 502 (it still dials %s)", code, old)
	}
	refusedLine(t, ngx, old)
	x.waitMetrics(t, "stale 1 and connection_refused for the address nginx dials", func(all []series) bool {
		return is(all, 1, "nginx_upstream_dns_stale", "upstream", "app") &&
			is(all, 1, "nginx_upstream_probe_failure_reason", "address", old, "reason", "connection_refused")
	})

	time.Sleep(1100 * time.Millisecond)
	reloadNginx(t, ngx)
	all = x.waitMetrics(t, "after nginx's reload: not stale, the new address healthy", func(all []series) bool {
		return is(all, 0, "nginx_upstream_dns_stale", "upstream", "app") && is(all, 1, "nginx_upstream_probe_success", "address", moved) &&
			is(all, 2, "nginx_upstream_nginx_reloads_total")
	})
	if third, _ := sample(all, "nginx_upstream_nginx_last_reload_timestamp_seconds"); third <= secondLoad {
		t.Errorf("reload timestamp %v did not advance past %v", third, secondLoad)
	}
	if code := ngx.get(t); code != 200 {
		t.Errorf("after the reload nginx answered %d", code)
	}
}

// TestStaleAddressStartedAfterNginx: the exporter starts after nginx
// but before the move. It did not see nginx resolve; the connections
// nginx's workers keep to the backend (sock_diag) tell it.
func TestStaleAddressStartedAfterNginx(t *testing.T) {
	requireRunningPrereqs(t)
	env := newNetns(t)
	app := newMovingApp(t, env, "127.0.0.2")
	dir, conf, listen := runningScene(t, env, app, "", "")
	old := app.addr("127.0.0.2")
	ngx := mustStartNginx(t, env, dir, conf, listen)
	time.Sleep(1100 * time.Millisecond) // nginx's load is clearly before the exporter's start
	x := startExporter(t, env, dir, conf)
	x.waitMetrics(t, "nginx up, addresses unknown, no stale verdict", func(all []series) bool {
		_, stale := sample(all, "nginx_upstream_dns_stale")
		return is(all, 1, "nginx_upstream_nginx_up") && !stale &&
			is(all, 1, "nginx_upstream_dns_nginx_addresses_source", "upstream", "app", "source", "unknown")
	})
	if code := ngx.get(t); code != 200 { // leaves a keepalive connection to 127.0.0.2
		t.Fatalf("nginx answered %d", code)
	}
	x.waitMetrics(t, "the address learnt from the workers' connections", func(all []series) bool {
		_, stale := sample(all, "nginx_upstream_dns_stale")
		return is(all, 1, "nginx_upstream_dns_nginx_addresses_source", "upstream", "app", "source", "evidence") && !stale
	})
	app.moveTo("127.0.0.3")
	if code := ngx.get(t); code != 502 {
		t.Fatalf("after the move nginx answered %d, want 502", code)
	}
	refusedLine(t, ngx, old)
	x.waitMetrics(t, "stale 1 and connection_refused for the address nginx dials", func(all []series) bool {
		return is(all, 1, "nginx_upstream_dns_stale", "upstream", "app") &&
			is(all, 1, "nginx_upstream_probe_failure_reason", "address", old, "reason", "connection_refused")
	})
	reloadNginx(t, ngx)
	x.waitMetrics(t, "after the reload: not stale, the new address healthy", func(all []series) bool {
		return is(all, 0, "nginx_upstream_dns_stale", "upstream", "app") && is(all, 1, "nginx_upstream_probe_success", "address", app.addr("127.0.0.3"))
	})
}

// TestStaleAddressStartedAfterMove: the exporter starts after the move.
// The old address now drops packets (a host that is gone): nginx's
// workers wait in SYN_SENT on it while requests time out, which is the
// evidence; the probe meets nginx's connect timeout.
func TestStaleAddressStartedAfterMove(t *testing.T) {
	requireRunningPrereqs(t)
	env := newNetns(t)
	app := newMovingApp(t, env, "127.0.0.2")
	dir, conf, listen := runningScene(t, env, app, "", "")
	old := app.addr("127.0.0.2")
	mustStartNginx(t, env, dir, conf, listen)
	app.moveTo("127.0.0.3")
	env.iptables(t, "-A", "OUTPUT", "-d", "127.0.0.2", "-p", "tcp", "--dport", strconv.Itoa(app.port), "-j", "DROP")
	time.Sleep(1100 * time.Millisecond)
	x := startExporter(t, env, dir, conf)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	codes := make(chan int, 64)
	go func() {
		// Clients keep asking, as they would: each request holds a
		// worker socket in SYN_SENT to the old address for 3s.
		for ctx.Err() == nil {
			c, err := env.dial(ctx, "tcp", listen)
			if err != nil {
				continue
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET / HTTP/1.0\r\nHost: e2e.test\r\n\r\n")
			b, _ := io.ReadAll(c)
			c.Close()
			if f := strings.Fields(string(b)); len(f) > 1 {
				code, _ := strconv.Atoi(f[1])
				select {
				case codes <- code:
				default:
				}
			}
		}
	}()
	x.waitMetrics(t, "stale 1 from the workers' sockets and connect_timeout for the address nginx dials", func(all []series) bool {
		return is(all, 1, "nginx_upstream_dns_stale", "upstream", "app") &&
			is(all, 1, "nginx_upstream_dns_nginx_addresses_source", "upstream", "app", "source", "evidence") &&
			is(all, 1, "nginx_upstream_probe_failure_reason", "address", old, "reason", "connect_timeout")
	})
	// diagnose, a single look, learns it from the same sockets while
	// clients keep trying.
	want := fmt.Sprintf("nginx still dials 127.0.0.2 for app.test:%d; DNS now answers 127.0.0.3; reload nginx", app.port)
	if out := diagnoseIn(t, env, conf); !strings.Contains(out, want) {
		t.Errorf("diagnose does not say %q:\n%s", want, out)
	}
	cancel()
	select {
	case code := <-codes:
		if code != 504 {
			t.Errorf("nginx answered %d while dialling the dropped address, want 504", code)
		}
	case <-time.After(10 * time.Second):
		t.Error("no answer from nginx")
	}
}

// diagnoseIn runs `diagnose` in the scenario's namespace and returns its
// output; the exit status is not an error here.
func diagnoseIn(t *testing.T, env *netEnv, conf string) string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", env.name, exporterBinary, "diagnose", "--nginx.config="+conf, "--color=never", "--probe.timeout=2s")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("diagnose: %v\n%s", err, out)
	}
	return string(out)
}

// tlsLocation makes nginx read a CA bundle at load time (only with
// proxy_ssl_verify on does nginx load proxy_ssl_trusted_certificate).
const tlsLocation = `location /tls {
    proxy_pass https://app;
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate ca.pem;
}
`

func writeCA(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(testCerts(t).trustedCAFile)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReloadPending: an edited include and a replaced CA bundle are
// pending until nginx reloads.
func TestReloadPending(t *testing.T) {
	requireRunningPrereqs(t)
	env := newNetns(t)
	app := newMovingApp(t, env, "127.0.0.2")
	dir, conf, listen := runningScene(t, env, app, "", tlsLocation)
	ca := writeCA(t, dir)
	x := startExporter(t, env, dir, conf)
	ngx := mustStartNginx(t, env, dir, conf, listen)
	x.waitMetrics(t, "nothing pending after nginx's start", func(all []series) bool {
		return is(all, 1, "nginx_upstream_nginx_up") && is(all, 0, "nginx_upstream_config_reload_pending")
	})

	// diagnose, which did not see the load, compares modification times
	// with it: an edit within a tenth of a second of the load is not told
	// apart. Deploys edit later than that.
	time.Sleep(time.Second)
	include := filepath.Join(dir, "app.conf")
	edited := fmt.Sprintf("upstream app {\n    server app.test:%d;\n    server 127.0.0.4:%d;\n    keepalive 4;\n}\n", app.port, app.port)
	if err := os.WriteFile(include, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	added := app.addr("127.0.0.4")
	x.waitMetrics(t, "reload pending after editing the include, probes following what nginx loaded", func(all []series) bool {
		_, probed := sample(all, "nginx_upstream_probe_success", "address", added)
		return is(all, 1, "nginx_upstream_config_reload_pending") && is(all, 1, "nginx_upstream_config_probed_source", "source", "loaded") && !probed
	})
	out := diagnoseIn(t, env, conf)
	for _, want := range []string{include + " (modified)", "nginx -s reload"} {
		if !strings.Contains(out, want) {
			t.Errorf("diagnose does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, ca) {
		t.Errorf("diagnose names the unchanged CA bundle:\n%s", out)
	}
	time.Sleep(1100 * time.Millisecond)
	reloadNginx(t, ngx)
	x.waitMetrics(t, "nothing pending after the reload, the added server probed", func(all []series) bool {
		return is(all, 1, "nginx_upstream_nginx_reloads_total") && is(all, 0, "nginx_upstream_config_reload_pending") &&
			is(all, 1, "nginx_upstream_config_probed_source", "source", "disk") &&
			is(all, 1, "nginx_upstream_probe_failure_reason", "address", added, "reason", "connection_refused")
	})

	// A renewed CA bundle: new bytes at the same path.
	other, err := os.ReadFile(testCerts(t).trustedCAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, append(other, other...), 0o644); err != nil {
		t.Fatal(err)
	}
	x.waitMetrics(t, "reload pending after replacing the CA bundle", func(all []series) bool {
		return is(all, 1, "nginx_upstream_config_reload_pending")
	})
	if out := diagnoseIn(t, env, conf); !strings.Contains(out, ca+" (modified)") {
		t.Errorf("diagnose does not name the CA bundle:\n%s", out)
	}
	time.Sleep(1100 * time.Millisecond)
	reloadNginx(t, ngx)
	x.waitMetrics(t, "nothing pending after the second reload", func(all []series) bool {
		return is(all, 2, "nginx_upstream_nginx_reloads_total") && is(all, 0, "nginx_upstream_config_reload_pending")
	})
}

// TestReloadWouldFail: the exporter predicts that nginx would refuse to
// start, and a restart of that nginx proves it.
func TestReloadWouldFail(t *testing.T) {
	requireRunningPrereqs(t)
	for _, tc := range []struct {
		name, reason, nginxSays string
		breakIt                 func(t *testing.T, app *movingApp, dir string)
	}{
		{"name gone", "host_not_found", "host not found in upstream", func(t *testing.T, app *movingApp, _ string) {
			app.dns.Set("app.test") // NXDOMAIN from now on
		}},
		{"CA bundle missing", "file_missing", "SSL_CTX_load_verify_locations", func(t *testing.T, _ *movingApp, dir string) {
			if err := os.Remove(filepath.Join(dir, "ca.pem")); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newNetns(t)
			app := newMovingApp(t, env, "127.0.0.2")
			dir, conf, listen := runningScene(t, env, app, "", tlsLocation)
			writeCA(t, dir)
			ngx := mustStartNginx(t, env, dir, conf, listen)
			x := startExporter(t, env, dir, conf)
			x.waitMetrics(t, "a healthy nginx that would reload fine", func(all []series) bool {
				return is(all, 1, "nginx_upstream_nginx_up") && is(all, 0, "nginx_upstream_config_reload_would_fail", "reason", tc.reason)
			})
			tc.breakIt(t, app, dir)
			x.waitMetrics(t, tc.reason+" 1", func(all []series) bool {
				return is(all, 1, "nginx_upstream_config_reload_would_fail", "reason", tc.reason)
			})
			if code := ngx.get(t); code != 200 {
				t.Errorf("nginx still serves: got %d", code)
			}
			if out := diagnoseIn(t, env, conf); !strings.Contains(out, "the next reload or restart of nginx would fail") || !strings.Contains(out, tc.nginxSays) {
				t.Errorf("diagnose does not explain it:\n%s", out)
			}
			ngx.proc.stop()
			again, ok := startNginx(t, env, dir, conf, listen)
			if ok {
				t.Fatalf("the prediction is wrong: nginx restarted fine")
			}
			if out := again.proc.output(); !strings.Contains(out, tc.nginxSays) {
				t.Errorf("nginx refused to start, but not with %q:\n%s", tc.nginxSays, out)
			}
		})
	}
}

// TestRunningNginxNotVisible: an exporter in another PID namespace with
// its own /proc (a container next to nginx), and one running as nobody,
// started after nginx. Neither can know which addresses nginx resolved:
// after the backend moves they must not claim a stale address, must not
// crash, and keep probing what they resolved at their own load, as
// before.
func TestRunningNginxNotVisible(t *testing.T) {
	requireRunningPrereqs(t)
	for _, tc := range []struct {
		name    string
		wrap    []string
		up      float64
		logSays string
	}{
		{"another PID namespace", []string{"unshare", "--mount", "--pid", "--fork", "--mount-proc"}, 0, "cannot see nginx's processes"},
		// Not nobody: nginx's workers run as nobody, and the same user
		// may read their sockets.
		{"unprivileged", []string{"setpriv", "--reuid=daemon", "--regid=daemon", "--clear-groups", "--inh-caps=-all"}, 1, "no evidence of nginx's peers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newNetns(t)
			app := newMovingApp(t, env, "127.0.0.2")
			dir, conf, listen := runningScene(t, env, app, "", "")
			ngx := mustStartNginx(t, env, dir, conf, listen)
			if code := ngx.get(t); code != 200 {
				t.Fatalf("nginx answered %d", code)
			}
			time.Sleep(1100 * time.Millisecond)
			xl := fmt.Sprintf("127.0.0.1:%d", env.freePort(t))
			args := append(append([]string(nil), tc.wrap[1:]...), exporterBinary, "--nginx.config="+conf, "--web.listen-address="+xl, "--probe.interval=1s", "--log.level=debug")
			x := &exporter{proc: env.start(t, filepath.Join(dir, "exporter.log"), tc.wrap[0], args...), listen: xl, net: env}
			noStale := func(all []series) bool {
				_, stale := sample(all, "nginx_upstream_dns_stale")
				return !stale && is(all, tc.up, "nginx_upstream_nginx_up") &&
					is(all, 1, "nginx_upstream_dns_nginx_addresses_source", "upstream", "app", "source", "unknown")
			}
			x.waitMetrics(t, "no stale verdict, addresses unknown", func(all []series) bool {
				return noStale(all) && is(all, 1, "nginx_upstream_probe_success", "address", app.addr("127.0.0.2"))
			})
			app.moveTo("127.0.0.3")
			if code := ngx.get(t); code != 502 {
				t.Fatalf("after the move nginx answered %d, want 502", code)
			}
			x.waitMetrics(t, "still no stale verdict after the move", func(all []series) bool {
				return noStale(all) && is(all, 1, "nginx_upstream_probe_failure_reason", "address", app.addr("127.0.0.2"), "reason", "connection_refused")
			})
			if out := x.proc.output(); !strings.Contains(out, tc.logSays) {
				t.Errorf("the exporter's log does not say %q:\n%s", tc.logSays, out)
			}
		})
	}
}
