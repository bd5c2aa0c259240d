package nginxconf

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkLoadCoverage loads 10,000 locations that use what
// configuration coverage added: implicit upstreams (shared by host as
// nginx shares them), finite variable choices through set/if and a map,
// and Lua blocks with quotes and long brackets. Half the passes share a
// host with an earlier one, so that the implicit-upstream index is hit.
func BenchmarkLoadCoverage(b *testing.B) {
	const locations = 10000
	var sb strings.Builder
	sb.WriteString("events {}\nhttp {\n    map $http_x_canary $canary { default 127.0.0.1:9001; 1 127.0.0.1:9002; }\n")
	sb.WriteString("    init_by_lua_block {\n        -- load all plugins that'll be used here\n        local s = [==[ } ]==]\n    }\n    server {\n")
	for i := range locations {
		host := fmt.Sprintf("10.%d.%d.1", i/2/250, i/2%250)
		switch i % 4 {
		case 0, 1:
			fmt.Fprintf(&sb, "        location /i%d { proxy_pass http://%s:%d; }\n", i, host, 8000+i%2)
		case 2:
			fmt.Fprintf(&sb, "        location /s%d { set $p %s:8080; if ($request_method = POST) { set $p %s:8081; } proxy_pass http://$p; }\n", i, host, host)
		case 3:
			fmt.Fprintf(&sb, "        location /m%d { content_by_lua_block { ngx.say('it\\'s {') } }\n        location /c%d { proxy_pass http://$canary; }\n", i, i)
		}
	}
	sb.WriteString("    }\n}\n")
	fs := memFS{"/etc/nginx/nginx.conf": sb.String()}
	b.ReportAllocs()
	for b.Loop() {
		cfg, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: fs, PageSize: 4096})
		if err != nil {
			b.Fatal(err)
		}
		if len(cfg.Servers) < locations {
			b.Fatalf("%d targets", len(cfg.Servers))
		}
	}
}
