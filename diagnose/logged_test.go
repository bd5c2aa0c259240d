package diagnose

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/errorlog"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// TestLogged: what nginx logged lately is shown beside the probe, and a
// server nginx failed real requests to is named although its probe
// passes now.
func TestLogged(t *testing.T) {
	good, dead := testutil.HTTPBackend(t), testutil.DeadAddr(t)
	log := filepath.Join(t.TempDir(), "error.log")
	conf := testutil.WriteNginxConf(t, fmt.Sprintf(`
    error_log %s;
    upstream app {
        server %s;
        server %s;
    }
    server {
        listen 127.0.0.1:8080;
        location / { proxy_pass http://app; }
    }`, log, good, dead))
	line := func(peer, msg, at string) string {
		return fmt.Sprintf("2026/11/27 %s [error] 6#6: *2 %s while reading response header from upstream, client: 127.0.0.1, server: s, request: \"GET /a?token=SECRET HTTP/1.1\", upstream: \"http://%s/a?token=SECRET\", host: \"secret.example\"\n", at, msg, peer)
	}
	text := line(good, "upstream timed out (110: Connection timed out)", "08:14:20") +
		line(good, "upstream timed out (110: Connection timed out)", "08:14:21") +
		line(good, "upstream prematurely closed connection", "08:14:22") +
		line(dead, "recv() failed (104: Connection reset by peer)", "08:14:23")
	if err := os.WriteFile(log, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	logOpts := func(o *Options) {
		o.ErrorLog = &ErrorLogOptions{Find: errorlog.FindOptions{FromConfig: true}, Bytes: 1 << 20, Location: time.UTC}
	}
	res := runDiagnose(t, conf, logOpts)
	if res.code != ExitFailing {
		t.Fatalf("exit %d, want %d (the dead server fails its probe)\n%s", res.code, ExitFailing, res.stdout)
	}
	for _, want := range []string{
		"nginx logged: 2 read_timeout, 1 premature_close (last at 2026/11/27 08:14:22)",
		"although the probe passes now",
		"nginx logged: 1 connection_reset (last at 2026/11/27 08:14:23)",
		"error log: nginx failed real requests to 1 server(s) whose probe passes now.",
		"error log: read the last",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, res.stdout)
		}
	}
	if strings.Contains(res.stdout, "SECRET") || strings.Contains(res.stdout, "secret.example") {
		t.Errorf("query string or header value printed:\n%s", res.stdout)
	}

	res = runDiagnose(t, conf, func(o *Options) { logOpts(o); o.Output = OutputJSON })
	var rep Report
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.ErrorLog == nil || rep.ErrorLog.Intermittent != 1 || len(rep.ErrorLog.Files) != 1 || rep.ErrorLog.Files[0].State != "read" {
		t.Fatalf("error_log = %+v", rep.ErrorLog)
	}
	for _, tg := range rep.Targets {
		switch tg.Server {
		case good:
			if tg.Logged == nil || !tg.Logged.WhileProbePasses || tg.Logged.Errors["read_timeout"] != 2 {
				t.Errorf("%s logged = %+v", good, tg.Logged)
			}
		case dead:
			if tg.Logged == nil || tg.Logged.WhileProbePasses || tg.Logged.Errors["connection_reset"] != 1 {
				t.Errorf("%s logged = %+v", dead, tg.Logged)
			}
		}
	}

	// Without the option nothing is read.
	res = runDiagnose(t, conf, nil)
	if strings.Contains(res.stdout, "nginx logged") || strings.Contains(res.stdout, "error log:") {
		t.Errorf("error log read although not asked:\n%s", res.stdout)
	}
}
