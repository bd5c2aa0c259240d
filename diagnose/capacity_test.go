package diagnose

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/capacity"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// fullSocket is a unix socket with a backlog of 1 that never accepts,
// filled until connects fail with EAGAIN.
func fullSocket(t *testing.T) string {
	t.Helper()
	path := filepath.Join(testutil.ShortDir(t), "full.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return path
}

// TestCapacityLine: a failing server that listens here gets one line
// saying whether it is full or down; a healthy fast one gets none.
func TestCapacityLine(t *testing.T) {
	full := fullSocket(t)
	dead := testutil.DeadAddr(t)
	healthy := testutil.HTTPBackend(t)
	conf := testutil.WriteNginxConf(t, fmt.Sprintf(`
    upstream php { server unix:%s; }
    upstream app { server %s; }
    upstream ok { server %s; }
    server {
        location /php { fastcgi_pass php; }
        location /app { proxy_pass http://app; }
        location /ok { proxy_pass http://ok; }
    }`, full, dead, healthy))
	check := func(ctx context.Context, targets []*discovery.Target) map[discovery.Key]capacity.Summary {
		return capacity.Check(ctx, targets, time.Second)
	}

	r := runDiagnose(t, conf, func(o *Options) { o.Capacity = check })
	if r.code != ExitFailing {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var capLines []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.Contains(l, "capacity:") {
			capLines = append(capLines, l)
		}
	}
	if len(capLines) != 2 {
		t.Fatalf("want a capacity line for each failing server, got %d:\n%s", len(capLines), r.stdout)
	}
	if !strings.Contains(capLines[0], "queue 2/1") || !strings.Contains(capLines[0], capacity.VerdictFull) {
		t.Errorf("full socket: %s", capLines[0])
	}
	if !strings.Contains(capLines[1], capacity.VerdictDown) {
		t.Errorf("dead port: %s", capLines[1])
	}
	if !strings.Contains(r.stdout, "backlog_full") {
		t.Errorf("the probe's reason is kept:\n%s", r.stdout)
	}

	r = runDiagnose(t, conf, func(o *Options) { o.Capacity = check; o.Output = OutputJSON })
	var rep Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	for _, tg := range rep.Targets {
		switch tg.Upstream {
		case "php":
			if c := tg.Capacity; c == nil || c.Saturated == nil || !*c.Saturated || *c.QueueLength != 2 || *c.QueueLimit != 1 || c.Started == nil {
				t.Errorf("php: %+v", c)
			}
		case "app":
			if c := tg.Capacity; c == nil || c.ListenState != "not_listening" || c.Saturated != nil {
				t.Errorf("app: %+v", c)
			}
		case "ok":
			if tg.Capacity != nil {
				t.Errorf("healthy server has a capacity report: %+v", tg.Capacity)
			}
		}
	}

	// Without the option nothing is read.
	r = runDiagnose(t, conf, nil)
	if strings.Contains(r.stdout, "capacity:") {
		t.Errorf("capacity read without Options.Capacity:\n%s", r.stdout)
	}
}
