package nginxconf

import (
	"errors"
	"fmt"
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
	f.Add("events {} http { include inc/*.conf; server { location / { proxy_pass http://$x$request_uri; } } }")
	f.Add("events {} http { upstream u { server unix:; } }")
	f.Add("events {} http { server { location / { set $a \"${b\"; proxy_pass http://${a}; } } }")
	f.Add("events {} http { server { location / { grpc_pass grpcs://[::1; } } }")
	// Lua blocks: strings, long brackets, comments, unterminated ones.
	f.Add("events {} http { init_by_lua_block { -- it's\n local s = [==[ } ]==] .. 'a\\'}' } }")
	f.Add("events {} http { server { set_by_lua_block $x{ return --[[ } ]] '}' } location / { content_by_lua_block { [=[ ")
	f.Add("events {} http { upstream b { server 0.0.0.1; balancer_by_lua_block { b() } } server { location / { proxy_pass http://b; } } }")
	// Finite choices and nginx -t parity.
	f.Add("events {} http { map $a $b { default 127.0.0.1:1; x 127.0.0.1:2; } server { location / { set $c $b; if ($d) { set $c 127.0.0.1:3; return 403; } proxy_pass http://$c; } } }")
	f.Add("events {} http { upstream u { ip_hash; server 127.0.0.1:1 backup; } server { location / { proxy_pass https://127.0.0.1; } location /g { grpc_pass grpcs://127.0.0.1; fastcgi_pass 127.0.0.1; } } }")
	// Refusals: no events, a duplicate, limits, files that are not files.
	f.Add("")
	f.Add("http {}")
	f.Add("events {} events {}")
	f.Add("events {} http { include fan/*.conf; }")
	f.Add("events {} http { include fan/1.conf; include fan/1.conf; include fan/1.conf; }")
	f.Add("events {} include deep/1.conf;")
	f.Add("events {} include big.conf;")
	f.Add("events {} include /dev/zero;")
	f.Add("events {} include nginx.conf;")

	f.Fuzz(func(t *testing.T, main string) {
		fsys := memFS{
			"/etc/nginx/nginx.conf":     main,
			"/etc/nginx/inc/a.conf":     "upstream inc { server 127.0.0.1:1; }\nserver { location / { proxy_pass http://inc; } }",
			"/etc/nginx/inc/b.conf":     "include inc/a.conf;",
			"/etc/nginx/snippets/x.inc": "proxy_read_timeout 1s;",
			// A fan-out of 5^3 inclusions, a chain 12 deep and a file
			// over MaxFileBytes, against small limits.
			"/etc/nginx/big.conf": strings.Repeat("# big\n", 200),
		}
		for i := range 5 {
			fsys[fmt.Sprintf("/etc/nginx/fan/%d.conf", i)] = "include fan2/*.conf;"
			fsys[fmt.Sprintf("/etc/nginx/fan2/%d.conf", i)] = "include fan3/*.conf;"
			fsys[fmt.Sprintf("/etc/nginx/fan3/%d.conf", i)] = "proxy_read_timeout 1s;"
		}
		for i := 1; i <= 12; i++ {
			fsys[fmt.Sprintf("/etc/nginx/deep/%d.conf", i)] = fmt.Sprintf("include deep/%d.conf;", i+1)
		}
		cfg, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: fsys, PageSize: 4096,
			MaxFileBytes: 1000, MaxInclusions: 100, MaxIncludeDepth: 8, MaxDirectives: 2000, MaxFiles: 40})
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
