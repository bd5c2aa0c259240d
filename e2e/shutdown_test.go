package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// bigConf writes a configuration whose load takes seconds: n servers in
// one upstream (about 25 bytes each).
func bigConf(t *testing.T, n int) string {
	t.Helper()
	b := []byte("events {}\nhttp {\nupstream many {\n")
	for i := range n {
		b = fmt.Appendf(b, "server 127.%d.%d.%d:80;\n", i/62500%250+1, i/250%250, i%250+1)
	}
	b = append(b, "}\nserver { listen 127.0.0.1:1; location / { proxy_pass http://many; } }\n}\n"...)
	path := filepath.Join(t.TempDir(), "nginx.conf")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func status(url string) int {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The listener opens before the first load: /-/healthy answers and
// /-/ready says not ready while a slow load runs; SIGTERM during that
// load ends the process within seconds, not after the load.
func TestBinaryShutdownDuringSlowFirstLoad(t *testing.T) {
	conf := bigConf(t, 600_000)
	e := startBinExporter(t, conf, "--probe.interval=15s")
	base := "http://" + e.addr

	deadline := time.Now().Add(5 * time.Second)
	for status(base+"/-/healthy") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/-/healthy did not answer within 5 s of start: the listener waits for the load")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := status(base + "/-/ready"); code != http.StatusServiceUnavailable {
		t.Fatalf("/-/ready = %d during the first load, want 503", code)
	}
	start := time.Now()
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		e.cmd.Wait() // the cleanup's own Wait then returns at once
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the exporter did not exit within 5 s of SIGTERM during its first load")
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}
