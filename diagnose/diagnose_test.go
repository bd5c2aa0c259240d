package diagnose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
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

type runResult struct {
	code           int
	stdout, stderr string
}

func runDiagnose(t *testing.T, conf string, mutate func(*Options)) runResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	opts := Options{
		Load:        discovery.Options{NginxConfig: conf},
		Timeout:     2 * time.Second,
		Concurrency: 8,
		Stdout:      &stdout,
		Stderr:      &stderr,
		Getenv:      func(string) string { return "" },
	}
	if mutate != nil {
		mutate(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := Run(ctx, opts)
	return runResult{code, stdout.String(), stderr.String()}
}

// mixed is a configuration with a healthy primary, a dead backup, a down
// server and a healthy FastCGI socket: healthy as far as nginx's clients
// are concerned.
func mixed(t *testing.T, primary string) string {
	return testutil.WriteNginxConf(t, fmt.Sprintf(`
    upstream app {
        server %s max_fails=3 fail_timeout=30s;
        server %s backup;
        server 127.0.0.1:9 down;
    }
    server {
        listen 127.0.0.1:8080;
        proxy_connect_timeout 2s;
        location / { proxy_pass http://app; }
        location ~ \.php$ { fastcgi_pass %s; }
        location /dyn/ { proxy_pass http://$http_x_backend; }
    }`, primary, testutil.DeadAddr(t), testutil.FastCGIBackend(t, unixListener(t))))
}

func TestExitStatus(t *testing.T) {
	t.Run("healthy primaries, dead backup", func(t *testing.T) {
		res := runDiagnose(t, mixed(t, testutil.HTTPBackend(t)), nil)
		if res.code != ExitHealthy {
			t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, ExitHealthy, res.stdout, res.stderr)
		}
		for _, want := range []string{"ok", "FAIL (backup)", "down (not probed)", "Every primary server is healthy", "(implicit)", "$http_x_backend"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("table lacks %q:\n%s", want, res.stdout)
			}
		}
	})
	t.Run("dead primary", func(t *testing.T) {
		dead := testutil.DeadAddr(t)
		res := runDiagnose(t, mixed(t, dead), nil)
		if res.code != ExitFailing {
			t.Fatalf("exit %d, want %d\n%s", res.code, ExitFailing, res.stdout)
		}
		var row string
		for _, l := range strings.Split(res.stdout, "\n") {
			if strings.Contains(l, dead) && !strings.Contains(l, "backup") {
				row = l
			}
		}
		if !strings.Contains(row, "FAIL") || !strings.Contains(row, "connection_refused") {
			t.Errorf("row of the dead server %s does not say FAIL connection_refused: %q\n%s", dead, row, res.stdout)
		}
		for _, want := range []string{
			prober.ReasonConnectionRefused.NginxMessage(),
			"fix:",
			"docs/runbook.md#connection_refused",
			"1 primary server(s) failing",
		} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("table lacks %q:\n%s", want, res.stdout)
			}
		}
		if strings.Contains(res.stdout, "\x1b[") {
			t.Errorf("colour escape sequences in output that is not a terminal:\n%q", res.stdout)
		}
	})
	t.Run("missing config", func(t *testing.T) {
		res := runDiagnose(t, filepath.Join(t.TempDir(), "absent.conf"), nil)
		if res.code != ExitUsage {
			t.Fatalf("exit %d, want %d", res.code, ExitUsage)
		}
		if !strings.Contains(res.stderr, "cannot load nginx configuration") {
			t.Errorf("stderr does not explain: %s", res.stderr)
		}
	})
	t.Run("broken config", func(t *testing.T) {
		res := runDiagnose(t, testutil.WriteNginxConf(t, "server { location / { proxy_pass http://127.0.0.1:1; }"), nil)
		if res.code != ExitUsage {
			t.Fatalf("exit %d, want %d\n%s", res.code, ExitUsage, res.stderr)
		}
	})
	t.Run("bad output", func(t *testing.T) {
		res := runDiagnose(t, mixed(t, testutil.HTTPBackend(t)), func(o *Options) { o.Output = "yaml" })
		if res.code != ExitUsage {
			t.Fatalf("exit %d, want %d", res.code, ExitUsage)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		conf := mixed(t, testutil.HTTPBackend(t))
		var stdout, stderr bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		code := Run(ctx, Options{Load: discovery.Options{NginxConfig: conf}, Timeout: time.Second, Stdout: &stdout, Stderr: &stderr})
		if code != ExitInterrupted {
			t.Fatalf("exit %d, want %d", code, ExitInterrupted)
		}
	})
}

func TestJSONReport(t *testing.T) {
	dead := testutil.DeadAddr(t)
	conf := mixed(t, dead)
	res := runDiagnose(t, conf, func(o *Options) { o.Output = OutputJSON })
	if res.code != ExitFailing {
		t.Fatalf("exit %d, want %d", res.code, ExitFailing)
	}
	var rep Report
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, res.stdout)
	}
	if rep.Healthy || !rep.Probed || rep.Config != conf {
		t.Errorf("healthy=%v probed=%v config=%q", rep.Healthy, rep.Probed, rep.Config)
	}
	want := Summary{Upstreams: 2, Targets: 4, Probed: 3, Healthy: 1, Failing: 2, FailingPrimary: 1, FailingBackup: 1, Down: 1, Dynamic: 1}
	if rep.Summary != want {
		t.Errorf("summary %+v, want %+v", rep.Summary, want)
	}
	var found, down, backup bool
	for _, tg := range rep.Targets {
		switch {
		case tg.Server == dead:
			found = true
			if tg.Success || tg.Reason != "connection_refused" || tg.Verdict != VerdictFailed || tg.Upstream != "app" || tg.Protocol != "http" {
				t.Errorf("dead server reported as %+v", tg)
			}
			if !strings.Contains(tg.Hint, "docs/runbook.md#connection_refused") || tg.Runbook != "docs/runbook.md#connection_refused" {
				t.Errorf("hint %q runbook %q", tg.Hint, tg.Runbook)
			}
			if tg.NginxMessage == "" || tg.PhasesSeconds == nil {
				t.Errorf("no nginx message or phases: %+v", tg)
			}
			if _, ok := tg.PhasesSeconds["connect"]; !ok {
				t.Errorf("phases lack connect: %v", tg.PhasesSeconds)
			}
		case tg.Down:
			down = true
			if tg.Verdict != VerdictDown || tg.Success {
				t.Errorf("down server reported as %+v", tg)
			}
		case tg.Backup:
			backup = true
			if tg.Success || tg.Verdict != VerdictFailed {
				t.Errorf("dead backup reported as %+v", tg)
			}
		case tg.Protocol == "fastcgi":
			if !tg.Success || tg.Network != "unix" || !tg.Implicit {
				t.Errorf("FastCGI socket reported as %+v", tg)
			}
		}
	}
	if !found || !down || !backup {
		t.Errorf("missing targets (dead %v, down %v, backup %v) in %s", found, down, backup, res.stdout)
	}
	if len(rep.Dynamic) != 1 {
		t.Errorf("dynamic = %+v", rep.Dynamic)
	}
}

func TestJSONConfigError(t *testing.T) {
	res := runDiagnose(t, filepath.Join(t.TempDir(), "absent.conf"), func(o *Options) { o.Output = OutputJSON })
	if res.code != ExitUsage {
		t.Fatalf("exit %d", res.code)
	}
	var rep Report
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || rep.Error == "" {
		t.Errorf("want a JSON report with an error, got %v: %s", err, res.stdout)
	}
}

func TestSocketNotFoundHint(t *testing.T) {
	missing := filepath.Join(testutil.ShortDir(t), "php-fpm.sock")
	conf := testutil.WriteNginxConf(t, fmt.Sprintf(`server { location / { fastcgi_pass unix:%s; } }`, missing))
	res := runDiagnose(t, conf, nil)
	if res.code != ExitFailing {
		t.Fatalf("exit %d\n%s", res.code, res.stdout)
	}
	for _, want := range []string{"socket_not_found", "php-fpm not running or listen path differs", "docs/runbook.md#socket_not_found", "No such file or directory"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
}

func TestColour(t *testing.T) {
	conf := mixed(t, testutil.DeadAddr(t))
	tty := func(io.Writer) bool { return true }
	for _, tc := range []struct {
		name  string
		mode  ColorMode
		tty   bool
		env   map[string]string
		color bool
	}{
		{"terminal", ColorAuto, true, nil, true},
		{"pipe", ColorAuto, false, nil, false},
		{"NO_COLOR", ColorAuto, true, map[string]string{"NO_COLOR": "1"}, false},
		{"dumb terminal", ColorAuto, true, map[string]string{"TERM": "dumb"}, false},
		{"always", ColorAlways, false, nil, true},
		{"never", ColorNever, true, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runDiagnose(t, conf, func(o *Options) {
				o.Color = tc.mode
				o.Getenv = func(k string) string { return tc.env[k] }
				o.IsTerminal = func(w io.Writer) bool { return tc.tty && w == o.Stdout && tty(w) }
			})
			if got := strings.Contains(res.stdout, "\x1b["); got != tc.color {
				t.Errorf("colour = %v, want %v:\n%q", got, tc.color, res.stdout)
			}
		})
	}
}

func TestIsTerminal(t *testing.T) {
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("/dev/null is a character device but not a terminal")
	}
}

func TestList(t *testing.T) {
	addr, accepted := testutil.CountingListener(t)
	conf := testutil.WriteNginxConf(t, fmt.Sprintf(`
    upstream app { server %s weight=5 max_conns=10; server 127.0.0.1:9 down; }
    server {
        proxy_connect_timeout 3s;
        proxy_read_timeout 45s;
        proxy_buffer_size 8k;
        location / { proxy_pass http://app; }
    }`, addr))
	res := runDiagnose(t, conf, func(o *Options) { o.List = true })
	if res.code != ExitHealthy {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	for _, want := range []string{addr, "weight=5", "max_conns=10", "down (not probed)", "3s", "45s", "8k", "--probe.timeout=2s"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("list lacks %q:\n%s", want, res.stdout)
		}
	}
	if strings.Contains(res.stdout, "FAIL") || strings.Contains(res.stdout, " ok") {
		t.Errorf("list shows verdicts:\n%s", res.stdout)
	}

	res = runDiagnose(t, conf, func(o *Options) { o.List = true; o.Output = OutputJSON })
	var rep Report
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Probed || len(rep.Targets) != 2 || rep.Targets[0].Settings.ReadTimeoutSeconds != 45 || rep.Targets[0].Settings.BufferSizeBytes != 8192 {
		t.Errorf("list report: %s", res.stdout)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("--list opened %d connections", n)
	}
}

func TestProgress(t *testing.T) {
	addr, _ := testutil.CountingListener(t)
	_, port, _ := net.SplitHostPort(addr)
	var servers strings.Builder
	// Distinct loopback addresses: only 127.0.0.1 accepts, the others
	// are refused at once, which is all progress needs.
	for i := 1; i <= ProgressThreshold+1; i++ {
		fmt.Fprintf(&servers, "server 127.0.0.%d:%s;\n", i, port)
	}
	conf := testutil.WriteNginxConf(t, fmt.Sprintf(`upstream many { %s } server { location / { proxy_pass http://many; } }`, servers.String()))
	res := runDiagnose(t, conf, nil)
	if !strings.Contains(res.stderr, "probing ") || !strings.Contains(res.stderr, "probed ") {
		t.Errorf("no progress lines on stderr:\n%s", res.stderr)
	}
	if strings.Contains(res.stderr, "\r") {
		t.Errorf("carriage returns on a stderr that is not a terminal")
	}
	res = runDiagnose(t, conf, func(o *Options) {
		o.IsTerminal = func(w io.Writer) bool { return w == o.Stderr }
	})
	if !strings.Contains(res.stderr, "\r\x1b[Kprobing ") {
		t.Errorf("no live progress on a terminal stderr:\n%q", res.stderr)
	}
	if strings.Contains(res.stdout, "\r") {
		t.Error("progress leaked into stdout")
	}
}

func TestPrivilegeNotes(t *testing.T) {
	unix := func(w *prober.Credentials) *discovery.Target {
		return &discovery.Target{Probe: &prober.Peer{Network: "unix", Worker: w}}
	}
	nginx := &prober.Credentials{User: "www-data", UID: 33}
	if n := privilegeNotes([]*discovery.Target{unix(nginx)}, 0); n != nil {
		t.Errorf("root: %v", n)
	}
	if n := privilegeNotes([]*discovery.Target{unix(nginx)}, 33); n != nil {
		t.Errorf("as the worker user: %v", n)
	}
	if n := privilegeNotes([]*discovery.Target{unix(nginx)}, 1000); len(n) != 1 || !strings.Contains(n[0], "not root") || !strings.Contains(n[0], "www-data") {
		t.Errorf("unprivileged: %v", n)
	}
	if n := privilegeNotes([]*discovery.Target{unix(nil)}, 1000); len(n) != 1 || !strings.Contains(n[0], "uid 1000") {
		t.Errorf("unknown worker: %v", n)
	}
	if n := privilegeNotes([]*discovery.Target{unix(nil)}, 0); len(n) != 1 || !strings.Contains(n[0], "not checked") {
		t.Errorf("unknown worker as root: %v", n)
	}
	if n := privilegeNotes([]*discovery.Target{{Probe: &prober.Peer{Network: "tcp"}}}, 1000); n != nil {
		t.Errorf("tcp only: %v", n)
	}
}

func TestEveryReasonHasAHint(t *testing.T) {
	for _, r := range prober.Reasons {
		for _, proto := range []string{"http", "fastcgi"} {
			for _, network := range []string{"tcp", "unix"} {
				h := Hint(r, proto, network)
				if !strings.HasSuffix(h, "; see docs/runbook.md#"+string(r)) {
					t.Errorf("Hint(%s, %s, %s) = %q: no runbook anchor", r, proto, network, h)
				}
				if strings.Contains(h, "see the runbook;") {
					t.Errorf("Hint(%s) has no specific advice", r)
				}
				if strings.Contains(h, "\n") {
					t.Errorf("Hint(%s) spans lines", r)
				}
			}
		}
	}
	if Hint(prober.ReasonNone, "http", "tcp") != "" {
		t.Error("success has a hint")
	}
}

func TestRunbookHasEveryAnchor(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range prober.Reasons {
		// GitHub's anchor of "### connection_refused" is #connection_refused.
		if !strings.Contains(string(b), "\n### "+string(r)+"\n") {
			t.Errorf("docs/runbook.md has no section %q for %s", "### "+string(r), RunbookURL(r))
		}
	}
}

// unixListener listens on a unix socket in a short directory.
func unixListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(testutil.ShortDir(t), "fpm.sock"))
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// An interrupted run prints what it did probe and says how many probes
// finished; it never claims it probed every target.
func TestInterruptedRunIsHonest(t *testing.T) {
	healthy := testutil.HTTPBackend(t)
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close() // accepts (in the kernel) and never answers
	conf := testutil.WriteNginxConf(t, fmt.Sprintf(`
    upstream fast { server %s; }
    upstream slow { server %s; }
    server {
        location / { proxy_pass http://fast; }
        location /slow { proxy_pass http://slow; }
    }`, healthy, hang.Addr()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(500*time.Millisecond, cancel)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := Run(ctx, Options{Load: discovery.Options{NginxConfig: conf}, Concurrency: 2, Output: OutputJSON,
		Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }})
	if code != ExitInterrupted {
		t.Fatalf("exit %d, want %d; stderr %s", code, ExitInterrupted, stderr.String())
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("interrupted run took %v", d)
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("no report on interruption: %v\n%s", err, stdout.String())
	}
	verdicts := map[string]string{}
	for _, tg := range rep.Targets {
		verdicts[tg.Upstream] = tg.Verdict
	}
	if verdicts["fast"] != VerdictOK || verdicts["slow"] != VerdictNoResult {
		t.Errorf("verdicts %v, want fast ok and slow no_result", verdicts)
	}
	if rep.Summary.NoResult != 1 || rep.Healthy {
		t.Errorf("summary %+v healthy %v", rep.Summary, rep.Healthy)
	}
	if !strings.Contains(stderr.String(), "1 of 2 probes finished") {
		t.Errorf("stderr %q does not say how many probes finished", stderr.String())
	}
}

// TestHugeTimeout: nginx accepts timeouts far beyond what a time.Duration
// holds (grpc_read_timeout 1071906480m is copied into many proxy setups);
// the list shows them as a bound, never as a negative duration.
func TestHugeTimeout(t *testing.T) {
	conf := testutil.WriteNginxConf(t, `
    server {
        grpc_read_timeout 1071906480m;
        location / { grpc_pass 127.0.0.1:9; }
    }`)
	res := runDiagnose(t, conf, func(o *Options) { o.List = true })
	if res.code != ExitHealthy {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, ">292y") || strings.Contains(res.stdout, "-2562047h") {
		t.Errorf("list shows the timeout wrongly:\n%s", res.stdout)
	}
}

// Only what nginx itself would refuse is said to fail nginx's next
// reload; a wrong --nginx.config path is not a prediction about nginx.
func TestLoadErrorPredictionOnlyForNginxErrors(t *testing.T) {
	refused := testutil.WriteNginxConf(t, "server { location / { proxy_pass http://127.0.0.1; }")
	res := runDiagnose(t, refused, nil)
	if res.code != ExitUsage || !strings.Contains(res.stderr, "the next reload or restart of nginx would fail") {
		t.Errorf("a configuration nginx refuses: exit %d\n%s", res.code, res.stderr)
	}
	res = runDiagnose(t, filepath.Join(t.TempDir(), "missing.conf"), nil)
	if res.code != ExitUsage || strings.Contains(res.stderr, "next reload") {
		t.Errorf("a missing main file: exit %d\n%s", res.code, res.stderr)
	}
}
