package errorlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

func TestRedact(t *testing.T) {
	in := `2026/11/27 08:14:20 [error] 6#6: *2 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: s, request: "GET /login?token=SECRET HTTP/1.1", upstream: "http://10.0.0.5:8080/login?token=SECRET", host: "private.example", referrer: "https://x/?session=SECRET"` + "\x00"
	got := Redact([]byte(in))
	want := `2026/11/27 08:14:20 [error] 6#6: *2 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: s, request: "GET /login?… HTTP/1.1", upstream: "http://10.0.0.5:8080/login?…", host: "…"`
	if got != want {
		t.Errorf("Redact:\n got %s\nwant %s", got, want)
	}
	if strings.Contains(got, "SECRET") || strings.Contains(got, "private") {
		t.Error("secret kept")
	}
}

func TestRecent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "error.log")
	var b strings.Builder
	b.WriteString(strings.Repeat("x", 5000) + "\n") // cut by the byte limit
	for range 3 {
		b.WriteString(errLine("10.0.0.5:8080"))
	}
	b.WriteString(strings.Replace(errLine("10.0.0.5:8080"), "08:14:20", "08:15:00", 1))
	b.WriteString(strings.Replace(errLine("10.9.9.9:80"), "connect() failed (111: Connection refused) while connecting to upstream", "upstream timed out (110: Connection timed out) while reading response header from upstream", 1))
	b.WriteString(errLine("10.0.0.8:80"))
	if err := os.WriteFile(path, []byte(b.String()), 0o640); err != nil {
		t.Fatal(err)
	}
	set := &discovery.Set{Targets: testIndex(t).targets}
	rep := Recent([]string{path, filepath.Join(dir, "missing.log")}, set, int64(b.Len()-100), time.UTC)
	if len(rep.Files) != 2 || rep.Files[0].State != FileTailing || rep.Files[1].State != FileMissing {
		t.Fatalf("files = %+v", rep.Files)
	}
	app := rep.Targets[discovery.Key{Upstream: "app", Server: "10.0.0.5:8080", Address: "10.0.0.5:8080", Protocol: "http"}]
	if app == nil || app.Errors[prober.ReasonConnectionRefused] != 4 {
		t.Fatalf("app = %+v", app)
	}
	if app.Last.Format("15:04:05") != "08:15:00" || !strings.Contains(app.LastLine, `host: "…"`) || strings.Contains(app.LastLine, "?a=b") {
		t.Errorf("last = %s, line %s", app.Last, app.LastLine)
	}
	other := rep.Targets[discovery.Key{Upstream: "other", Server: "10.9.9.9:80", Address: "10.9.9.9:80", Protocol: "http"}]
	if other == nil || other.Errors[prober.ReasonReadTimeout] != 1 {
		t.Errorf("other = %+v", other)
	}
	if rep.Unattributed[prober.ReasonConnectionRefused] != 1 {
		t.Errorf("unattributed = %v", rep.Unattributed)
	}
}
