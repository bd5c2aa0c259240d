package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// TestUnprivilegedDiagnose runs diagnose as "nobody" with no capabilities
// against a php-fpm-like socket in a directory only nginx's worker user
// ("www-data") may enter. The exporter cannot see whether the worker can
// reach the socket, and must say so rather than guess. It needs root to
// set up (chown, and to drop to another uid).
func TestUnprivilegedDiagnose(t *testing.T) {
	requireRoot(t)
	requireExporter(t)
	nobody := testutil.Nobody(t)
	worker, err := user.Lookup("www-data")
	if err != nil {
		t.Skip("no user www-data")
	}
	wuid, _ := strconv.Atoi(worker.Uid)
	wgid, _ := strconv.Atoi(worker.Gid)

	// A world-readable copy of the binary and the config: the build
	// directory is private to root.
	pub, bin := testutil.PublicCopy(t, exporterBinary, "nginx_upstream_exporter")

	// The socket directory belongs to the worker user, mode 0700.
	sockDir := filepath.Join(pub, "php")
	if err := os.Mkdir(sockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(sockDir, "fpm.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	for _, p := range []string{sockDir, sock} {
		if err := os.Chown(p, wuid, wgid); err != nil {
			t.Fatal(err)
		}
	}

	conf := filepath.Join(pub, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("user www-data;\nevents {}\nhttp { server { location ~ \\.php$ { fastcgi_pass unix:%s; } } }\n", sock)), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, output := range []string{"table", "json"} {
		cmd := exec.Command(bin, "diagnose", "--nginx.config="+conf, "--output="+output)
		testutil.RunAs(cmd, nobody)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("%s: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", output, code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stderr.String(), "running unprivileged") {
			t.Errorf("%s: start-up does not say it runs unprivileged:\n%s", output, stderr.String())
		}
		switch output {
		case "table":
			for _, want := range []string{"FAIL (unverified)", "permission_denied", "not root", `"www-data"`} {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("table lacks %q:\n%s", want, stdout.String())
				}
			}
		case "json":
			var rep struct {
				Notes   []string `json:"notes"`
				Targets []struct {
					Reason     string `json:"reason"`
					Unverified bool   `json:"unverified"`
				} `json:"targets"`
			}
			if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
				t.Fatalf("JSON: %v\n%s", err, stdout.String())
			}
			if len(rep.Targets) != 1 || !rep.Targets[0].Unverified || rep.Targets[0].Reason != "permission_denied" || len(rep.Notes) == 0 {
				t.Errorf("JSON report: %s", stdout.String())
			}
		}
	}
}
