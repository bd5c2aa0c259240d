package nginxconf

import "testing"

// TestSSLSessionReuse reads proxy_ssl_session_reuse (default on) and merges
// it across locations: reuse stays on if any location reuses sessions.
func TestSSLSessionReuse(t *testing.T) {
	for _, tc := range []struct {
		name, http, loc1, loc2 string
		wantNoReuse            bool
	}{
		{"default on", "", "", "", false},
		{"off at http", "proxy_ssl_session_reuse off;", "", "", true},
		{"off in one location only", "", "proxy_ssl_session_reuse off;", "", false},
		{"off in both locations", "", "proxy_ssl_session_reuse off;", "proxy_ssl_session_reuse off;", true},
		{"on overrides off", "proxy_ssl_session_reuse off;", "proxy_ssl_session_reuse on;", "proxy_ssl_session_reuse on;", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := "events {}\nhttp {\n" + tc.http + `
upstream app { server 127.0.0.1:8443; }
server {
	location /a { proxy_pass https://app; ` + tc.loc1 + ` }
	location /b { proxy_pass https://app; ` + tc.loc2 + ` }
}
}
`
			cfg, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: memFS{"/etc/nginx/nginx.conf": conf}})
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Servers) != 1 {
				t.Fatalf("%d servers, want 1", len(cfg.Servers))
			}
			if got := cfg.Servers[0].Settings.SSL.NoSessionReuse; got != tc.wantNoReuse {
				t.Errorf("NoSessionReuse = %v, want %v", got, tc.wantNoReuse)
			}
		})
	}
}
