package nginxconf

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary text to Load as the main file of an in-memory
// tree that also holds an included file, and checks that Load never
// panics and that its result is consistent.
func FuzzLoad(f *testing.F) {
	for _, name := range caseDirs(f) {
		tree := readTree(f, filepath.Join("testdata", name))
		for _, content := range tree {
			f.Add(content)
		}
	}
	f.Add("http { include inc/*.conf; server { location / { proxy_pass http://$x$request_uri; } } }")
	f.Add("http { upstream u { server unix:; } }")
	f.Add("http { server { location / { set $a \"${b\"; proxy_pass http://${a}; } } }")
	f.Add("http { server { location / { grpc_pass grpcs://[::1; } } }")

	f.Fuzz(func(t *testing.T, main string) {
		fsys := memFS{
			"/etc/nginx/nginx.conf":     main,
			"/etc/nginx/inc/a.conf":     "upstream inc { server 127.0.0.1:1; }\nserver { location / { proxy_pass http://inc; } }",
			"/etc/nginx/inc/b.conf":     "include inc/a.conf;",
			"/etc/nginx/snippets/x.inc": "proxy_read_timeout 1s;",
		}
		cfg, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: fsys, PageSize: 4096})
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a *ParseError: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "nginxconf: ") {
				t.Fatalf("error lacks prefix: %v", err)
			}
			return
		}
		if len(cfg.Files) == 0 || cfg.Files[0] != "/etc/nginx/nginx.conf" {
			t.Fatalf("Files = %v", cfg.Files)
		}
		seen := map[targetKey]bool{}
		for _, tg := range cfg.Servers {
			k := targetKey{tg.Upstream, tg.Server, tg.Kind()}
			if seen[k] {
				t.Fatalf("duplicate target %+v", k)
			}
			seen[k] = true
			if len(tg.Sources) == 0 {
				t.Fatalf("target without source: %+v", tg)
			}
			if (tg.SocketPath == "") == (tg.Port == "") {
				t.Fatalf("target must have either a socket or a port: %+v", tg)
			}
			if tg.Settings.BufferSize <= 0 {
				t.Fatalf("buffer size %d", tg.Settings.BufferSize)
			}
		}
	})
}
