package confgen

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestNginxAcceptsRunnable checks that a configuration written to be run
// (pid, error_log, temp paths, user) passes nginx's own test, in one file
// and spread over included files. It needs an nginx binary.
func TestNginxAcceptsRunnable(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			t.Skip("no nginx binary")
		}
		bin = "/usr/sbin/nginx"
	}
	targets := []Target{
		{Kind: "tcp", Addr: "127.0.0.1:20001"},
		{Kind: "http", Addr: "127.0.0.1:20002"},
		{Kind: "https", Addr: "127.0.0.1:20003"},
		{Kind: "fastcgi", Addr: "127.0.0.1:20004"},
	}
	for _, files := range []int{1, 2} {
		dir := t.TempDir()
		run := filepath.Join(dir, "run")
		if err := os.MkdirAll(run, 0o755); err != nil {
			t.Fatal(err)
		}
		errLog := filepath.Join(dir, "error.log")
		conf, err := Write(dir, targets, Options{Timeout: time.Second, Files: files, Listen: "127.0.0.1:18080",
			ErrorLog: errLog, PIDFile: filepath.Join(dir, "nginx.pid"), RunDir: run, User: NginxUser()})
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "-t", "-q", "-p", dir, "-e", errLog, "-c", conf).CombinedOutput()
		if err != nil {
			raw, _ := os.ReadFile(conf)
			t.Errorf("files=%d: nginx -t: %v: %s\n%s", files, err, out, raw)
		}
	}
}
