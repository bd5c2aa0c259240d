package nginxconf

import (
	"strings"
	"testing"
)

// Credentials written into an upstream address must never reach an error
// message, a label or a log line: nginx refuses such addresses, and so
// does Load, without repeating them.
func TestUserinfoNeverEchoed(t *testing.T) {
	const secret = "hunter2-pw"
	for _, tc := range []struct {
		name, conf string
		wantErr    bool
	}{
		{"proxy_pass", `events {} http { server { location / { proxy_pass http://user:` + secret + `@127.0.0.1:8080/x; } } }`, true},
		{"upstream server", `events {} http { upstream b { server user:` + secret + `@127.0.0.1:8080; } server { location / { proxy_pass http://b; } } }`, true},
		{"dynamic", `events {} http { server { location / { proxy_pass http://user:` + secret + `@$http_x_backend/x; } } }`, false},
		{"unix path with at sign", `events {} http { server { location / { fastcgi_pass unix:/run/a@b.sock; } } }`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: memFS{"/etc/nginx/nginx.conf": tc.conf}, PageSize: 4096})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error repeats the password: %v", err)
				}
				if !strings.Contains(err.Error(), "credentials") {
					t.Errorf("error does not say what is wrong: %v", err)
				}
				return
			}
			for _, d := range cfg.Dynamic {
				if strings.Contains(d.Address, secret) {
					t.Errorf("dynamic address keeps the password: %q", d.Address)
				}
			}
		})
	}
}

func TestRedactUserinfo(t *testing.T) {
	for in, want := range map[string]string{
		"http://u:p@$host/x":        "http://<redacted>@$host/x",
		"http://$host/x@y":          "http://$host/x@y",
		"unix:/run/a@b.sock":        "unix:/run/a@b.sock",
		"http://unix:/run/a@b.sock": "http://unix:/run/a@b.sock",
		"u:p@$host":                 "<redacted>@$host",
	} {
		if got := redactUserinfo(in); got != want {
			t.Errorf("redactUserinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
