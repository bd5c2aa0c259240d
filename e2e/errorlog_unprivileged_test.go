package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// TestErrorLogUnprivileged follows Debian's layout: error.log is 0640
// www-data:adm. An exporter running as a user outside group adm cannot
// read it: that is exported as an unreadable file and logged once with
// the fix, never as a quiet log. In group adm it is read.
func TestErrorLogUnprivileged(t *testing.T) {
	requireRoot(t)
	requireExporter(t)
	nobody := testutil.Nobody(t)
	adm, err := user.LookupGroup("adm")
	if err != nil {
		t.Skip("no group adm")
	}
	admGID, _ := strconv.Atoi(adm.Gid)

	pub, bin := testutil.PublicCopy(t, exporterBinary, "nginx_upstream_exporter")
	log := filepath.Join(pub, "error.log")
	if err := os.WriteFile(log, []byte("2026/11/27 08:14:20 [notice] 1#1: start worker processes\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(log, 0, admGID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(log, 0o640); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(pub, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("events {}\nhttp { error_log %s; server { location / { proxy_pass http://127.0.0.1:9; } } }\n", log)), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		groups []uint32
		state  string
	}{
		{"outside group adm", nil, "unreadable"},
		{"in group adm", []uint32{uint32(admGID)}, "tailing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := testutil.FreeAddr(t)
			cmd := exec.Command(bin, "--nginx.config="+conf, "--web.listen-address="+addr, "--log.level=info")
			testutil.RunAs(cmd, nobody, tc.groups...)
			var out syncBuilder
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = pw
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				b := make([]byte, 4096)
				for {
					n, err := pr.Read(b)
					out.WriteString(string(b[:n]))
					if err != nil {
						return
					}
				}
			}()
			t.Cleanup(func() {
				cmd.Process.Signal(syscall.SIGTERM)
				cmd.Wait()
				<-done
				pr.Close()
			})
			var body string
			deadline := time.Now().Add(15 * time.Second)
			want := fmt.Sprintf(`nginx_upstream_exporter_log_files{state=%q} 1`, tc.state)
			for time.Now().Before(deadline) && !strings.Contains(body, want) {
				time.Sleep(100 * time.Millisecond)
				resp, err := http.Get("http://" + addr + "/metrics")
				if err != nil {
					continue
				}
				var b strings.Builder
				buf := make([]byte, 64<<10)
				for {
					n, err := resp.Body.Read(buf)
					b.Write(buf[:n])
					if err != nil {
						break
					}
				}
				resp.Body.Close()
				body = b.String()
			}
			if !strings.Contains(body, want) {
				t.Fatalf("no %s in /metrics:\n%s\nexporter log:\n%s", want, grepLines(body, "log_files"), out.String())
			}
			if tc.state == "unreadable" {
				deadline := time.Now().Add(5 * time.Second)
				for !strings.Contains(out.String(), "add the exporter's user to group adm") && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
				if n := strings.Count(out.String(), "cannot open error log file"); n != 1 {
					t.Errorf("logged the unreadable file %d times, want once:\n%s", n, out.String())
				}
			}
		})
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
