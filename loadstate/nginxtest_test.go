package loadstate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseNginxTest(t *testing.T) {
	out := `nginx: [emerg] host not found in upstream "app.test:3000" in /etc/nginx/conf.d/app.conf:2
nginx: configuration file /etc/nginx/nginx.conf test failed
nginx: [emerg] cannot load certificate "/etc/ssl/client.pem": BIO_new_file() failed (SSL: error:80000002:system library::No such file or directory)
2026/11/27 10:44:26 [emerg] 11221#11221: unexpected "}" in /etc/nginx/nginx.conf:9
nginx: [emerg] open() "/etc/nginx/missing.conf" failed (2: No such file or directory) in /etc/nginx/nginx.conf:3
`
	got := parseNginxTest(out)
	want := []string{ReasonHostNotFound, ReasonFileMissing, ReasonParseError, ReasonFileMissing}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i, f := range got {
		if f.Reason != want[i] {
			t.Errorf("%q: reason %s, want %s", f.Message, f.Reason, want[i])
		}
	}
	if !strings.HasSuffix(got[0].Message, "app.conf:2") {
		t.Errorf("message loses the position: %q", got[0].Message)
	}
}

// TestNginxTestReal runs the real nginx -t, when installed, on a tree
// with a missing CA bundle and then a syntax error (no name lookups: the
// test must not reach any resolver).
func TestNginxTestReal(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/nginx"); err2 != nil {
			t.Skip("nginx not installed")
		}
		bin = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	write := func(body string) {
		text := "pid " + dir + "/nginx.pid;\nerror_log " + dir + "/error.log;\nevents {}\nhttp {\n access_log off;\n" + body + "\n}\n"
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nt := &NginxTest{Binary: bin, Config: conf, Prefix: dir}
	write(`server { listen 127.0.0.1:1; location / { proxy_pass http://127.0.0.1:2; } }`)
	if f, err := nt.Run(context.Background()); err != nil || len(f) != 0 {
		t.Fatalf("valid configuration: %+v, %v", f, err)
	}
	write(`server { listen 127.0.0.1:1; location / { proxy_pass https://127.0.0.1:2; proxy_ssl_verify on; proxy_ssl_trusted_certificate missing-ca.pem; } }`)
	if f, err := nt.Run(context.Background()); err != nil || len(f) != 1 || f[0].Reason != ReasonFileMissing {
		t.Errorf("missing CA bundle: %+v, %v", f, err)
	}
	write(`server { listen 127.0.0.1:1 }`)
	if f, err := nt.Run(context.Background()); err != nil || len(f) != 1 || f[0].Reason != ReasonParseError || !strings.Contains(f[0].Message, conf) {
		t.Errorf("syntax error: %+v, %v", f, err)
	}
}
