package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil/dnstest"
)

// logCount is the exporter's nginx_upstream_log_errors_total for one
// server and reason, and whether the series exists.
func (x *exporter) logCount(t *testing.T, server, reason string) (float64, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := x.scrape(ctx)
	if err != nil {
		return 0, false
	}
	for _, s := range all {
		if s.name == "nginx_upstream_log_errors_total" && s.labels["server"] == server && s.labels["reason"] == reason {
			return s.value, true
		}
	}
	return 0, false
}

// metric sums the samples of name whose labels include want.
func (x *exporter) metric(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := x.scrape(ctx)
	if err != nil {
		t.Fatalf("scraping the exporter: %v\n%s", err, x.proc.output())
	}
	sum := 0.0
	for _, s := range all {
		if s.is(name, want) {
			sum += s.value
		}
	}
	return sum
}

// is tells whether s is a sample of name whose labels include want.
func (s series) is(name string, want map[string]string) bool {
	if s.name != name {
		return false
	}
	for k, v := range want {
		if s.labels[k] != v {
			return false
		}
	}
	return true
}

// waitLogCount waits until the exporter counts exactly want errors, then
// checks the count stays there (nothing doubled late).
func (x *exporter) waitLogCount(t *testing.T, server, reason string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got float64
	for time.Now().Before(deadline) {
		got, _ = x.logCount(t, server, reason)
		if got >= want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got != want {
		t.Fatalf("nginx_upstream_log_errors_total{server=%q,reason=%q} = %g, want exactly %g\nexporter log:\n%s", server, reason, got, want, tail(x.proc.output(), 30))
	}
	time.Sleep(300 * time.Millisecond)
	if got, _ = x.logCount(t, server, reason); got != want {
		t.Fatalf("nginx_upstream_log_errors_total{server=%q,reason=%q} went on to %g, want exactly %g", server, reason, got, want)
	}
}

// masterPID is nginx's master process as seen from here: as root the
// suite runs nginx under `unshare --pid`, whose only child it is, and its
// pid file holds the pid inside that namespace.
func (n *nginx) masterPID(t *testing.T) int {
	t.Helper()
	pid := n.proc.cmd.Process.Pid
	if os.Geteuid() != 0 {
		return pid
	}
	for range 50 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if f := strings.Fields(string(b)); len(f) > 0 {
			child, err := strconv.Atoi(f[0])
			if err == nil {
				return child
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("cannot find nginx's master process")
	return 0
}

// reopen is `nginx -s reopen`: USR1 to the master, which reopens its
// logs and has its workers do the same; it waits for the file.
func (n *nginx) reopen(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Kill(n.masterPID(t), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not reopen %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The workers reopen when the master's signal reaches them.
	time.Sleep(200 * time.Millisecond)
}

func (n *nginx) requests(t *testing.T, count, status int) {
	t.Helper()
	for range count {
		if got := n.get(t); got != status {
			t.Fatalf("nginx answered %d, want %d", got, status)
		}
	}
}

// TestErrorLogExactCounts: N requests through real nginx to a dead
// server give exactly +N in nginx_upstream_log_errors_total, across every
// way a log is rotated, and through the syslog receiver.
func TestErrorLogExactCounts(t *testing.T) {
	requireNginx(t)
	requireExporter(t)
	copyFile := func(t *testing.T, from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	modes := []struct {
		name   string
		syslog bool
		// rotate runs between two batches; it may send requests itself
		// and returns how many.
		rotate func(t *testing.T, n *nginx, log string) int
	}{
		{name: "rename and reopen", rotate: func(t *testing.T, n *nginx, log string) int {
			if err := os.Rename(log, log+".1"); err != nil {
				t.Fatal(err)
			}
			n.requests(t, 3, 502) // still written to the renamed file
			n.reopen(t, log)
			return 3
		}},
		{name: "copytruncate", rotate: func(t *testing.T, n *nginx, log string) int {
			copyFile(t, log, log+".1")
			if err := os.Truncate(log, 0); err != nil {
				t.Fatal(err)
			}
			return 0
		}},
		{name: "delete and re-create", rotate: func(t *testing.T, n *nginx, log string) int {
			if err := os.Remove(log); err != nil {
				t.Fatal(err)
			}
			n.requests(t, 2, 502) // written to the deleted file
			n.reopen(t, log)
			return 2
		}},
		{name: "syslog receiver", syslog: true, rotate: func(t *testing.T, n *nginx, log string) int { return 0 }},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			env := &netEnv{}
			dir := nginxDir(t, "errorlog-")
			s := &senv{t: t, net: env, dir: dir}
			app := refused()(s)
			data := map[string]string{"Dir": dir, "app": app, "Listen": fmt.Sprintf("127.0.0.1:%d", env.freePort(t))}
			httpText := ""
			var extra []string
			log := filepath.Join(dir, "error.log")
			if m.syslog {
				sock := filepath.Join(dir, "log.sock")
				httpText = "error_log syslog:server=unix:" + sock + ",nohostname error;"
				extra = append(extra, "--nginx.error-log.syslog-socket="+sock)
			}
			conf := writeNginxConf(t, dir, data, httpText, `location / { proxy_pass http://{{.app}}; }`)
			ngx := mustStartNginx(t, env, dir, conf, data["Listen"])
			// History: lines written before the exporter starts are
			// never counted.
			ngx.requests(t, 4, 502)
			x := startExporter(t, env, dir, conf, extra...)
			deadline := time.Now().Add(15 * time.Second)
			for {
				if x.proc.exited() {
					t.Fatalf("exporter exited:\n%s", x.proc.output())
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := x.scrape(ctx)
				cancel()
				if err == nil && (m.syslog || x.metric(t, "nginx_upstream_exporter_log_files", map[string]string{"state": "tailing"}) == 1) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the exporter never tailed %s:\n%s", log, x.proc.output())
				}
				time.Sleep(50 * time.Millisecond)
			}
			if got, ok := x.logCount(t, app, "connection_refused"); ok {
				t.Fatalf("history counted: %g errors before any request after the start", got)
			}
			ngx.requests(t, 5, 502)
			x.waitLogCount(t, app, "connection_refused", 5)
			sent := 5 + m.rotate(t, ngx, log)
			ngx.requests(t, 6, 502)
			x.waitLogCount(t, app, "connection_refused", float64(sent+6))
			if !m.syslog {
				// nginx's own count of the lines, for the record.
				var lines int
				for _, f := range []string{log, log + ".1"} {
					b, _ := os.ReadFile(f)
					lines += strings.Count(string(b), "(111: Connection refused) while connecting to upstream")
				}
				t.Logf("nginx wrote %d refused lines in all (4 before the exporter started), the exporter counted %d", lines, sent+6)
			}
			if got := x.metric(t, "nginx_upstream_exporter_log_lines_total", map[string]string{"result": "unattributed"}); got != 0 {
				t.Errorf("%g unattributed lines, want 0", got)
			}
		})
	}
}

// waitTailing waits until the exporter follows nginx's error log.
func (x *exporter) waitTailing(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if x.proc.exited() {
			t.Fatalf("the exporter exited (%v):\n%s", x.proc.err, x.proc.output())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := x.scrape(ctx)
		cancel()
		if err == nil && x.metric(t, "nginx_upstream_exporter_log_files", map[string]string{"state": "tailing"}) >= 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exporter does not tail nginx's error log:\n%s", x.proc.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// loggedReasons are the reasons of nginx_upstream_log_errors_total for one
// target, with their counts.
func loggedReasons(all []series, tg target) map[string]float64 {
	out := map[string]float64{}
	for _, s := range all {
		if s.name == "nginx_upstream_log_errors_total" && s.labels["server"] == tg.server && s.labels["address"] == tg.address && s.value > 0 {
			out[s.labels["reason"]] += s.value
		}
	}
	return out
}

// checkLogged holds the exporter's reading of nginx's error log to the
// same table as its probes: for every server nginx logged an error about,
// the logged reason is the one nginx's line stands for (docs/metrics.md),
// which is also what the probe said; a server nginx reached has none. A
// peer nginx resolved per request is no target's: its error is
// unattributed, with that reason.
func checkLogged(t *testing.T, sc scenario, x *exporter, targets []target, saw []observed) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		all, err := x.scrape(ctx)
		cancel()
		var problems []string
		if err != nil {
			problems = append(problems, err.Error())
		}
		for i, tg := range targets {
			want := string(saw[i].reason)
			got := loggedReasons(all, tg)
			switch {
			case want == "" && len(got) > 0:
				problems = append(problems, fmt.Sprintf("server %s: nginx served it without error, the exporter read errors %v in nginx's log", tg, got))
			case want != "" && tg.runtime:
				n := 0.0
				for _, s := range all {
					if s.name == "nginx_upstream_log_unattributed_errors_total" && s.labels["reason"] == want {
						n += s.value
					}
				}
				if n == 0 {
					problems = append(problems, fmt.Sprintf("server %s (resolved per request): no unattributed %s error read from nginx's log", tg, want))
				}
			case want != "" && (len(got) != 1 || got[want] == 0):
				problems = append(problems, fmt.Sprintf("server %s: nginx logged %q (reason %s), the exporter read %v from that log", tg, message(saw[i].line), want, got))
			}
		}
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("scenario %s: the error-log reading disagrees with nginx:\n  %s", sc.name, strings.Join(problems, "\n  "))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rawRequest sends one request line and headers as given and returns the
// status nginx answers.
func (n *nginx) rawRequest(t *testing.T, text string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := n.net.dial(ctx, "tcp", n.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	k, _ := c.Read(b)
	f := strings.Fields(string(b[:k]))
	if len(f) < 2 {
		t.Fatalf("nginx answered %q", b[:k])
	}
	code, _ := strconv.Atoi(f[1])
	return code
}

// TestErrorLogForgedFields: a request whose URI, Host or referrer holds
// `upstream: "…"` naming another server neither creates nor moves series:
// real nginx's line is read in its fixed field order.
func TestErrorLogForgedFields(t *testing.T) {
	requireNginx(t)
	requireExporter(t)
	env := &netEnv{}
	dir := nginxDir(t, "forged-")
	s := &senv{t: t, net: env, dir: dir}
	a, b := refused()(s), refused()(s)
	data := map[string]string{"Dir": dir, "a": a, "b": b, "Listen": fmt.Sprintf("127.0.0.1:%d", env.freePort(t))}
	conf := writeNginxConf(t, dir, data, "", `location /a { proxy_pass http://{{.a}}; }
location /b { proxy_pass http://{{.b}}; }`)
	ngx := mustStartNginx(t, env, dir, conf, data["Listen"])
	x := startExporter(t, env, dir, conf)
	x.waitTailing(t)
	forged := fmt.Sprintf(`", upstream: "http://%s/`, b)
	requests := []string{
		"GET /a" + strings.ReplaceAll(forged, " ", "") + " HTTP/1.1\r\nHost: e2e.test\r\nConnection: close\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x" + forged + "\r\nConnection: close\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: e2e.test\r\nReferer: r" + forged + "\r\nConnection: close\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: e2e.test\r\nReferer: r" + forged + ", host: \"h\r\nConnection: close\r\n\r\n",
	}
	sent := 0
	for _, req := range requests {
		switch code := ngx.rawRequest(t, req); code {
		case 502:
			sent++
		case 400:
			t.Logf("nginx refused %q with 400 (no upstream line)", req)
		default:
			t.Fatalf("nginx answered %d to %q", code, req)
		}
	}
	if sent < 2 {
		t.Fatalf("only %d forged requests reached the upstream", sent)
	}
	x.waitLogCount(t, a, "connection_refused", float64(sent))
	if got, ok := x.logCount(t, b, "connection_refused"); ok {
		t.Errorf("forged text created a series for %s: %g", b, got)
	}
	if got := x.metric(t, "nginx_upstream_exporter_log_lines_total", map[string]string{"result": "unattributed"}); got != 0 {
		t.Errorf("%g unattributed lines, want 0", got)
	}
	t.Logf("nginx's lines:\n%s", strings.Join(ngx.errorLines(), "\n"))
}

// TestErrorLogStaleDNSPeer: nginx resolved an upstream's name at start;
// the name now points elsewhere, and so the exporter's target does. The
// errors nginx logs for the old address belong to no target, but to a
// known upstream: counted as such (nginx_upstream_log_unknown_peer_errors_total)
// and logged, never as an error of the new address.
func TestErrorLogStaleDNSPeer(t *testing.T) {
	requireNginx(t)
	requireExporter(t)
	for _, need := range []prereq{needRoot, needNetns} {
		if err := checkPrereqs()[need]; err != nil {
			skipOrFail(t, "%v", err)
		}
	}
	env := newNetns(t)
	dir := nginxDir(t, "stale-dns-")
	s := &senv{t: t, net: env, dir: dir, dns: map[string][]netip.Addr{}}
	old := refusedAt("127.0.0.3", true)(s)
	current := refusedAt("127.0.0.4", true)(s)
	_, port, _ := net.SplitHostPort(old)
	serveDNS := func(addr string) *dnstest.Server {
		pc, err := env.listenPacket("udp", "127.0.0.1:53")
		if err != nil {
			t.Fatalf("DNS responder: %v", err)
		}
		return dnstest.NewServer(pc, map[string][]netip.Addr{"stale.test": {netip.MustParseAddr(addr)}})
	}
	dns := serveDNS("127.0.0.3")
	data := map[string]string{"Dir": dir, "Port": port, "Listen": fmt.Sprintf("127.0.0.1:%d", env.freePort(t))}
	conf := writeNginxConf(t, dir, data, `upstream app {
		server stale.test:{{.Port}};
	}`, `location / { proxy_pass http://app; }`)
	ngx := mustStartNginx(t, env, dir, conf, data["Listen"])
	// The name moves; nginx keeps the address it resolved at start.
	dns.Close()
	dns = serveDNS("127.0.0.4")
	t.Cleanup(func() { dns.Close() })

	x := startExporter(t, env, dir, conf)
	x.waitTailing(t)
	const n = 3
	ngx.requests(t, n, 502)
	want := map[string]string{"upstream": "app", "protocol": "http", "reason": "connection_refused"}
	deadline := time.Now().Add(10 * time.Second)
	for x.metric(t, "nginx_upstream_log_unknown_peer_errors_total", want) < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := x.metric(t, "nginx_upstream_log_unknown_peer_errors_total", want); got != n {
		t.Fatalf("unknown peer errors = %g, want %d; nginx's lines:\n%s\nexporter:\n%s", got, n, strings.Join(ngx.errorLines(), "\n"), tail(x.proc.output(), 20))
	}
	if got := x.metric(t, "nginx_upstream_log_unattributed_errors_total", map[string]string{"reason": "connection_refused"}); got != n {
		t.Errorf("unattributed = %g, want %d", got, n)
	}
	if got, ok := x.logCount(t, "stale.test:"+port, "connection_refused"); ok {
		t.Errorf("the current address %s was charged with the old one's errors: %g", current, got)
	}
	if !strings.Contains(x.proc.output(), "peer="+old) {
		t.Errorf("the exporter did not log the stale peer %s:\n%s", old, tail(x.proc.output(), 20))
	}
}
