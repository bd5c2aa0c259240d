package capacity

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

const unprivEnv = "CAPACITY_TEST_UNPRIVILEGED"

// unprivChild runs one refresh over the sockets named in the environment
// and prints the exposition, as the exporter running as this user would.
func unprivChild() {
	var targets []*discovery.Target
	for _, s := range strings.Split(os.Getenv(unprivEnv), ",") {
		tg, err := discovery.Arbitrary("unix:"+s, "", protocol.Kind{Protocol: protocol.FastCGI}, discovery.Options{})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		targets = append(targets, tg)
	}
	m := New(Options{Targets: func() []*discovery.Target { return targets }, Interval: time.Second})
	m.Refresh(context.Background())
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(m))
	mfs, err := reg.Gather()
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	enc := expfmt.NewEncoder(os.Stdout, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		enc.Encode(mf)
	}
}

// TestUnprivileged runs the monitor as "nobody" against two sockets of
// root's: one in a directory everyone may enter, one in a directory only
// root may. The kernel's queue of the first is readable by anyone; its
// owner (root's /proc/<pid>/fd), start time and cgroup are not, and must
// be absent rather than 0. The second socket's state is unknown, not
// "not listening".
func TestUnprivileged(t *testing.T) {
	nobody := testutil.Nobody(t)
	pub, bin := testutil.PublicCopy(t, os.Args[0], "capacity.test")
	open := filepath.Join(pub, "open.sock")
	private := filepath.Join(pub, "private")
	os.Mkdir(private, 0o700)
	closed := filepath.Join(private, "closed.sock")
	for _, p := range []string{open, closed} {
		ln, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
	}

	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), unprivEnv+"="+open+","+closed)
	testutil.RunAs(cmd, nobody)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("unprivileged run: %v\n%s", err, out)
	}
	page := string(out)
	openLabels := fmt.Sprintf(`address="unix:%s"`, open)
	closedLabels := fmt.Sprintf(`address="unix:%s"`, closed)
	has := func(metric, labels, extra, value string) bool {
		for _, l := range strings.Split(page, "\n") {
			if strings.HasPrefix(l, metric+"{") && strings.Contains(l, labels) && strings.Contains(l, extra) && strings.HasSuffix(l, " "+value) {
				return true
			}
		}
		return false
	}
	absent := func(metric, labels string) bool {
		for _, l := range strings.Split(page, "\n") {
			if strings.HasPrefix(l, metric+"{") && strings.Contains(l, labels) {
				return false
			}
		}
		return true
	}
	for _, c := range []struct {
		ok   bool
		what string
	}{
		{has("nginx_upstream_backend_listener_state", openLabels, `state="listening"`, "1"), "open socket listening"},
		{has("nginx_upstream_backend_listen_queue_limit", openLabels, "", "4096") || has("nginx_upstream_backend_listen_queue_limit", openLabels, "", readSomaxconn(t)), "open socket's queue limit"},
		{has("nginx_upstream_backend_saturated", openLabels, "", "0"), "open socket's saturation from the kernel"},
		{absent("nginx_upstream_backend_process_start_time_seconds", openLabels), "no start time for root's process"},
		{absent("nginx_upstream_backend_oom_kills_total", openLabels), "no OOM count without the owner's cgroup"},
		{has("nginx_upstream_backend_listener_state", closedLabels, `state="unknown"`, "1"), "socket in an unreadable directory is unknown"},
		{has("nginx_upstream_backend_listener_state", closedLabels, `state="not_listening"`, "0"), "unreadable socket not reported as down"},
		{absent("nginx_upstream_backend_saturated", closedLabels), "no saturation verdict for an unknown socket"},
		{absent("nginx_upstream_backend_restarts_total", closedLabels), "no restart count for an unknown socket"},
	} {
		if !c.ok {
			t.Errorf("%s: not so in:\n%s", c.what, page)
		}
	}
}

func readSomaxconn(t *testing.T) string {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
