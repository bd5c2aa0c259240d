package nginxconf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustLoad(t *testing.T, main string, opts LoadOptions) *Config {
	t.Helper()
	if opts.PageSize == 0 {
		opts.PageSize = 4096
	}
	cfg, err := Load(main, opts)
	if err != nil {
		t.Fatalf("Load(%s): %v", main, err)
	}
	return cfg
}

func findTarget(t *testing.T, cfg *Config, upstream, server string, proto string) UpstreamServer {
	t.Helper()
	for _, tg := range cfg.Servers {
		if tg.Upstream == upstream && tg.Server == server && tg.Kind().Label() == proto {
			return tg
		}
	}
	t.Fatalf("no target (%s, %s, %s) in %+v", upstream, server, proto, cfg.Servers)
	return UpstreamServer{}
}

// TestSemantics spells out, case by case, the nginx behaviour the golden
// files record, so that a regenerated golden file cannot silently bless a
// regression in these points.
func TestSemantics(t *testing.T) {
	defaults := ServerParams{Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second}
	tests := []struct {
		name      string
		dir       string
		upstream  string
		server    string
		proto     string
		check     func(t *testing.T, tg UpstreamServer)
		wantCount int // number of (upstream, server, proto) matches; 0 means 1
	}{
		{name: "upstream block default port", dir: "includes", upstream: "app", server: "10.0.0.2", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "Port", tg.Port, "80")
				eq(t, "Implicit", tg.Implicit, false)
				eq(t, "Params", tg.Params, defaults)
				eq(t, "HostHeader", tg.Settings.HostHeader, "app")
			}},
		{name: "nested include from glob", dir: "includes", upstream: "nested", server: "unix:/run/nested.sock", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "SocketPath", tg.SocketPath, "/run/nested.sock")
				eq(t, "Sources", tg.Sources, []string{"testdata/includes/sites-enabled/site:10"})
			}},
		{name: "proxy_pass with URI", dir: "passes", upstream: "127.0.0.1:8080", server: "127.0.0.1:8080", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "Implicit", tg.Implicit, true)
				eq(t, "Params", tg.Params, defaults)
				eq(t, "HTTPVersion", tg.Settings.HTTPVersion, "1.0")
			}},
		{name: "https default port", dir: "passes", upstream: "secure.example", server: "secure.example", proto: "https",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "Port", tg.Port, "443")
				eq(t, "SSL.Enabled", tg.Settings.SSL.Enabled, true)
				eq(t, "HostHeader", tg.Settings.HostHeader, "secure.example")
			}},
		{name: "proxy_pass unix with URI", dir: "passes", upstream: "unix:/run/app.sock", server: "unix:/run/app.sock", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "SocketPath", tg.SocketPath, "/run/app.sock")
				eq(t, "HostHeader", tg.Settings.HostHeader, "localhost")
			}},
		{name: "proxy_pass unix without URI", dir: "passes", upstream: "unix:/run/app2.sock", server: "unix:/run/app2.sock", proto: "http"},
		{name: "fastcgi unix", dir: "passes", upstream: "unix:/run/php/php8.2-fpm.sock", server: "unix:/run/php/php8.2-fpm.sock", proto: "fastcgi",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "HostHeader", tg.Settings.HostHeader, "")
				eq(t, "HTTPVersion", tg.Settings.HTTPVersion, "")
			}},
		{name: "fastcgi tcp", dir: "passes", upstream: "127.0.0.1:9000", server: "127.0.0.1:9000", proto: "fastcgi"},
		{name: "fastcgi to upstream block", dir: "passes", upstream: "php", server: "unix:/run/php/php8.2-fpm.sock", proto: "fastcgi"},
		{name: "uwsgi scheme", dir: "passes", upstream: "10.0.0.5:3031", server: "10.0.0.5:3031", proto: "uwsgi",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "SSL.Enabled", tg.Settings.SSL.Enabled, false) }},
		{name: "suwsgi is uwsgi over TLS", dir: "passes", upstream: "10.0.0.6:3031", server: "10.0.0.6:3031", proto: "suwsgi",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "SSL.Enabled", tg.Settings.SSL.Enabled, true) }},
		{name: "uwsgi bare", dir: "passes", upstream: "10.0.0.7:3031", server: "10.0.0.7:3031", proto: "uwsgi"},
		{name: "grpc scheme", dir: "passes", upstream: "10.0.0.8:50051", server: "10.0.0.8:50051", proto: "grpc",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "HostHeader", tg.Settings.HostHeader, "10.0.0.8:50051") }},
		{name: "grpcs", dir: "passes", upstream: "10.0.0.9:443", server: "10.0.0.9:443", proto: "grpcs"},
		{name: "grpc bare", dir: "passes", upstream: "10.0.0.10:50051", server: "10.0.0.10:50051", proto: "grpc"},
		{name: "scgi", dir: "passes", upstream: "127.0.0.1:4000", server: "127.0.0.1:4000", proto: "scgi"},
		{name: "memcached", dir: "passes", upstream: "127.0.0.1:11211", server: "127.0.0.1:11211", proto: "memcached"},
		{name: "ipv6", dir: "passes", upstream: "[::1]:8081", server: "[::1]:8081", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "Host", tg.Host, "::1") }},
		{name: "scheme is case-insensitive, default port left out of Host", dir: "passes", upstream: "Upper.Example:80", server: "Upper.Example:80", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "HostHeader", tg.Settings.HostHeader, "Upper.Example") }},
		{name: "limit_except", dir: "passes", upstream: "127.0.0.1:8082", server: "127.0.0.1:8082", proto: "http"},
		{name: "if in location", dir: "passes", upstream: "127.0.0.1:8083", server: "127.0.0.1:8083", proto: "http"},

		{name: "server parameters", dir: "upstream-params", upstream: "backend", server: "app1.internal:8080", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "Params", tg.Params, ServerParams{Weight: 5, MaxFails: 3, FailTimeout: 30 * time.Second, MaxConns: 100, SlowStart: time.Minute})
				eq(t, "Resolvers", tg.Resolvers, []string{"10.0.0.53", "[::1]:5353"})
			}},
		{name: "backup", dir: "upstream-params", upstream: "backend", server: "app2.internal:8080", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "Backup", tg.Params.Backup, true) }},
		{name: "down servers are targets", dir: "upstream-params", upstream: "backend", server: "app3.internal", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "Down", tg.Params.Down, true)
				eq(t, "Port", tg.Port, "80")
			}},
		{name: "resolve", dir: "upstream-params", upstream: "backend", server: "app4.internal:8080", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "RuntimeResolve", tg.RuntimeResolve, true)
				eq(t, "Service", tg.Params.Service, "http")
			}},
		{name: "block name is case-insensitive; http resolver", dir: "upstream-params", upstream: "plain", server: "10.1.1.1", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "FailTimeout", tg.Params.FailTimeout, 90*time.Minute)
				eq(t, "Resolvers", tg.Resolvers, []string{"127.0.0.53"})
			}},

		{name: "http -> server inheritance, directive after location", dir: "inheritance", upstream: "127.0.0.1:1001", server: "127.0.0.1:1001", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "ConnectTimeout", tg.Settings.ConnectTimeout, 5*time.Second)
				eq(t, "ReadTimeout", tg.Settings.ReadTimeout, 30*time.Second)
				eq(t, "SendTimeout", tg.Settings.SendTimeout, 10*time.Second)
				eq(t, "BufferSize", tg.Settings.BufferSize, 16384)
			}},
		{name: "nested location", dir: "inheritance", upstream: "127.0.0.1:1002", server: "127.0.0.1:1002", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "ConnectTimeout", tg.Settings.ConnectTimeout, 5*time.Second)
				eq(t, "ReadTimeout", tg.Settings.ReadTimeout, time.Hour+30*time.Second)
				eq(t, "SendTimeout", tg.Settings.SendTimeout, 500*time.Millisecond)
				eq(t, "BufferSize", tg.Settings.BufferSize, 8192)
			}},
		{name: "prefix follows the *_pass", dir: "inheritance", upstream: "127.0.0.1:9000", server: "127.0.0.1:9000", proto: "fastcgi",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "ConnectTimeout", tg.Settings.ConnectTimeout, 60*time.Second)
				eq(t, "ReadTimeout", tg.Settings.ReadTimeout, 2*time.Minute)
				eq(t, "BufferSize", tg.Settings.BufferSize, 32768)
			}},

		{name: "strictest wins", dir: "strictest", upstream: "api", server: "10.0.0.1:443", proto: "https",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "ReadTimeout", tg.Settings.ReadTimeout, 5*time.Second)
				eq(t, "ConnectTimeout", tg.Settings.ConnectTimeout, 60*time.Second)
				eq(t, "BufferSize", tg.Settings.BufferSize, 4096)
				eq(t, "HTTPVersion", tg.Settings.HTTPVersion, "1.1")
				eq(t, "SSL.Verify", tg.Settings.SSL.Verify, true)
				eq(t, "SSL.Name", tg.Settings.SSL.Name, "api.internal")
				eq(t, "SSL.TrustedCertificate", tg.Settings.SSL.TrustedCertificate, filepath.Join("testdata", "strictest", "ca.pem"))
				eq(t, "Sources", len(tg.Sources), 3)
			}},

		{name: "file included in two servers", dir: "duplicates", upstream: "127.0.0.1:7000", server: "127.0.0.1:7000", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "ReadTimeout", tg.Settings.ReadTimeout, 3*time.Second)
				eq(t, "HostHeader", tg.Settings.HostHeader, "one.test")
				eq(t, "Sources", tg.Sources, []string{"testdata/duplicates/shared/locations.conf:3"})
			}},
		{name: "dedup across locations", dir: "duplicates", upstream: "127.0.0.1:9999", server: "127.0.0.1:9999", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "Sources", tg.Sources, []string{"testdata/duplicates/nginx.conf:15", "testdata/duplicates/nginx.conf:16"})
			}},
		{name: "same address, other protocol", dir: "duplicates", upstream: "127.0.0.1:9999", server: "127.0.0.1:9999", proto: "fastcgi"},

		{name: "variable only in the URI", dir: "variables", upstream: "app.internal:8080", server: "app.internal:8080", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "RuntimeResolve", tg.RuntimeResolve, true)
				eq(t, "Resolvers", tg.Resolvers, []string{"127.0.0.1"})
			}},
		{name: "server-level set literal", dir: "variables", upstream: "app.internal:8081", server: "app.internal:8081", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "RuntimeResolve", tg.RuntimeResolve, true) }},
		{name: "set naming an upstream block", dir: "variables", upstream: "pool", server: "10.0.0.1:8080", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "RuntimeResolve", tg.RuntimeResolve, false) }},
		{name: "set in the enclosing if", dir: "variables", upstream: "other.internal:9090", server: "other.internal:9090", proto: "http"},
		{name: "IP needs no resolver", dir: "variables", upstream: "10.1.2.3:8080", server: "10.1.2.3:8080", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "RuntimeResolve", tg.RuntimeResolve, false) }},
		{name: "scheme from set", dir: "variables", upstream: "secure.internal", server: "secure.internal", proto: "https"},

		{name: "Host $host from http level", dir: "host-header", upstream: "127.0.0.1:1", server: "127.0.0.1:1", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "HostHeader", tg.Settings.HostHeader, "real.test") }},
		{name: "Host literal", dir: "host-header", upstream: "127.0.0.1:2", server: "127.0.0.1:2", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "HostHeader", tg.Settings.HostHeader, "api.example.com") }},
		{name: "Host $proxy_host", dir: "host-header", upstream: "127.0.0.1:3", server: "127.0.0.1:3", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "HostHeader", tg.Settings.HostHeader, "127.0.0.1:3") }},
		{name: "other header stops Host inheritance", dir: "host-header", upstream: "127.0.0.1:4", server: "127.0.0.1:4", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "HostHeader", tg.Settings.HostHeader, "127.0.0.1:4") }},
		{name: "$proxy_host of https with port 443", dir: "host-header", upstream: "secure.test:443", server: "secure.test:443", proto: "https",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "HostHeader", tg.Settings.HostHeader, "secure.test") }},
		{name: "$host:$proxy_port", dir: "host-header", upstream: "127.0.0.1:5", server: "127.0.0.1:5", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "HostHeader", tg.Settings.HostHeader, "real.test:5") }},
		{name: "unknown variable falls back to default", dir: "host-header", upstream: "127.0.0.1:6", server: "127.0.0.1:6", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "HostHeader", tg.Settings.HostHeader, "127.0.0.1:6") }},
		{name: "grpc ignores proxy_set_header", dir: "host-header", upstream: "10.0.0.2:50051", server: "10.0.0.2:50051", proto: "grpc",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "HostHeader", tg.Settings.HostHeader, "10.0.0.2:50051") }},
		{name: "grpc_set_header Host", dir: "host-header", upstream: "10.0.0.3:50051", server: "10.0.0.3:50051", proto: "grpc",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "HostHeader", tg.Settings.HostHeader, "grpc.example") }},
		{name: "no server_name", dir: "host-header", upstream: "127.0.0.1:8", server: "127.0.0.1:8", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "HostHeader", tg.Settings.HostHeader, "localhost") }},

		{name: "proxy_ssl_*", dir: "ssl", upstream: "10.0.0.1:8443", server: "10.0.0.1:8443", proto: "https",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "SSL", tg.Settings.SSL, SSLSettings{
					Enabled: true, Verify: true, VerifyDepth: 2, TrustedCertificate: filepath.Join("testdata", "ssl", "ca.pem"),
					Name: "ssl.test", ServerName: true, Protocols: []string{"TLSv1.2"}, Ciphers: "HIGH:!aNULL",
					Certificate:    filepath.Join("testdata", "ssl", "certs", "client.pem"),
					CertificateKey: filepath.Join("testdata", "ssl", "certs", "client.key"),
				})
			}},
		{name: "grpc_ssl_*", dir: "ssl", upstream: "10.0.0.2:50051", server: "10.0.0.2:50051", proto: "grpcs",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "SSL", tg.Settings.SSL, SSLSettings{Enabled: true, Verify: true, VerifyDepth: 1,
					TrustedCertificate: filepath.Join("testdata", "ssl", "ca.pem"),
					Protocols:          []string{"TLSv1.3"}, Ciphers: "DEFAULT"})
			}},
		{name: "uwsgi_ssl_*", dir: "ssl", upstream: "10.0.0.3:3031", server: "10.0.0.3:3031", proto: "suwsgi",
			check: func(t *testing.T, tg UpstreamServer) {
				eq(t, "SSL", tg.Settings.SSL, SSLSettings{Enabled: true, VerifyDepth: 1, ServerName: true,
					Protocols: []string{"TLSv1.2", "TLSv1.3"}, Ciphers: "DEFAULT"})
			}},
		{name: "no TLS, no SSL settings", dir: "ssl", upstream: "10.0.0.4", server: "10.0.0.4", proto: "http",
			check: func(t *testing.T, tg UpstreamServer) { eq(t, "SSL", tg.Settings.SSL, SSLSettings{}) }},

		{name: "third-party directives", dir: "third-party", upstream: "127.0.0.1:8000", server: "127.0.0.1:8000", proto: "http"},
	}
	cache := map[string]*Config{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, ok := cache[tt.dir]
			if !ok {
				cfg = mustLoad(t, filepath.Join("testdata", tt.dir, "nginx.conf"), LoadOptions{})
				cache[tt.dir] = cfg
			}
			tg := findTarget(t, cfg, tt.upstream, tt.server, tt.proto)
			if tt.check != nil {
				tt.check(t, tg)
			}
		})
	}
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestConfigLevel(t *testing.T) {
	t.Run("includes", func(t *testing.T) {
		cfg := mustLoad(t, "testdata/includes/nginx.conf", LoadOptions{})
		eq(t, "Files", cfg.Files, []string{
			"testdata/includes/nginx.conf",
			"testdata/includes/mime.types",
			"testdata/includes/conf.d/upstreams.conf",
			"testdata/includes/snippets/nested.conf",
			// sites-enabled/.site.swp is not matched: glob(3) keeps
			// wildcards off leading dots.
			"testdata/includes/sites-enabled/site",
		})
		eq(t, "User", cfg.User, "www-data")
		eq(t, "Group", cfg.Group, "")
	})
	t.Run("user and group, stream upstreams", func(t *testing.T) {
		cfg := mustLoad(t, "testdata/third-party/nginx.conf", LoadOptions{})
		eq(t, "User", cfg.User, "nobody")
		eq(t, "Group", cfg.Group, "nogroup")
		eq(t, "targets", len(cfg.Servers), 2)
		eq(t, "UnusedUpstreams", cfg.UnusedUpstreams, []string(nil))
	})
	t.Run("no user directive", func(t *testing.T) {
		cfg := mustLoad(t, "testdata/passes/nginx.conf", LoadOptions{})
		eq(t, "User", cfg.User, "")
	})
	t.Run("unused upstream", func(t *testing.T) {
		cfg := mustLoad(t, "testdata/upstream-params/nginx.conf", LoadOptions{})
		eq(t, "UnusedUpstreams", cfg.UnusedUpstreams, []string{"unused"})
	})
	t.Run("dynamic", func(t *testing.T) {
		cfg := mustLoad(t, "testdata/variables/nginx.conf", LoadOptions{})
		eq(t, "Dynamic", cfg.Dynamic, []DynamicPass{
			// /ambiguous (line 31) and /map (line 33) have finite
			// choices: they are targets (finite.go).
			{Directive: "proxy_pass", Source: "testdata/variables/nginx.conf:34", Address: "http://$http_host$request_uri", Reason: ReasonVariables},
			{Directive: "fastcgi_pass", Source: "testdata/variables/nginx.conf:35", Address: "unix:/run/php/php$php_version-fpm.sock", Reason: ReasonVariables},
			{Directive: "proxy_pass", Source: "testdata/variables/nginx.conf:48", Address: "http://$inner_host:8080", Reason: ReasonVariables},
		})
	})
	t.Run("prefix resolves a relative main file", func(t *testing.T) {
		cfg := mustLoad(t, "nginx.conf", LoadOptions{Prefix: "testdata/includes"})
		eq(t, "Files[0]", cfg.Files[0], filepath.Join("testdata", "includes", "nginx.conf"))
		eq(t, "targets", len(cfg.Servers), 3)
	})
	t.Run("page size default", func(t *testing.T) {
		cfg, err := Load("testdata/passes/nginx.conf", LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "BufferSize", cfg.Servers[0].Settings.BufferSize, os.Getpagesize())
	})
}

// TestHeaderSecretsNotStored: proxy_set_header values other than Host may
// be credentials; none may appear anywhere in the result.
func TestHeaderSecretsNotStored(t *testing.T) {
	cfg := mustLoad(t, "testdata/host-header/nginx.conf", LoadOptions{})
	dump := fmt.Sprintf("%+v", cfg)
	for _, secret := range []string{"SECRET-TOKEN-123", "Bearer", "Authorization", "$remote_addr"} {
		if strings.Contains(dump, secret) {
			t.Errorf("result contains %q: %s", secret, dump)
		}
	}
	// Also when the Authorization header sits next to a dynamic pass.
	fsys := memFS{"/n.conf": `events {} http { server { location / {
		proxy_set_header Authorization "Basic dXNlcjpzM2NyM3Q=";
		proxy_set_header Host $http_authorization;
		proxy_pass http://$http_x_backend; }
		location /b { proxy_set_header Authorization "Basic dXNlcjpzM2NyM3Q="; proxy_pass http://127.0.0.1:1; } } }`}
	cfg, err := Load("/n.conf", LoadOptions{FS: fsys, PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if dump := fmt.Sprintf("%+v", cfg); strings.Contains(dump, "dXNlcjpzM2NyM3Q") {
		t.Errorf("result contains the Authorization value: %s", dump)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   memFS
		want    string // exact error message
		is      error  // errors.Is target, optional
		notIs   error
		wantPos string // "file:line" of the *ParseError
	}{
		{
			name:    "unexpected brace in included file",
			files:   memFS{"/etc/nginx/nginx.conf": "events {} http {\n include sites-enabled/*;\n}\n", "/etc/nginx/sites-enabled/app": "server {\n location / {\n }}\n}\n"},
			want:    `nginxconf: /etc/nginx/sites-enabled/app:4: unexpected "}"`,
			wantPos: "/etc/nginx/sites-enabled/app:4",
		},
		{
			name:    "unterminated block",
			files:   memFS{"/etc/nginx/nginx.conf": "events {} http {\n server {\n"},
			want:    `nginxconf: /etc/nginx/nginx.conf:3: unexpected end of file, expecting "}"`,
			wantPos: "/etc/nginx/nginx.conf:3",
		},
		{
			name:  "missing main file",
			files: memFS{},
			is:    ErrNotFound,
		},
		{
			name:    "missing plain include",
			files:   memFS{"/etc/nginx/nginx.conf": "events {}\nhttp {\n include conf.d/missing.conf;\n}\n"},
			is:      fs.ErrNotExist,
			notIs:   ErrNotFound,
			wantPos: "/etc/nginx/nginx.conf:3",
		},
		{
			name:    "include cycle",
			files:   memFS{"/etc/nginx/nginx.conf": "events {} include a.conf;\n", "/etc/nginx/a.conf": "\ninclude nginx.conf;\n"},
			wantPos: "/etc/nginx/a.conf:2",
		},
		{
			name:    "bad glob",
			files:   memFS{"/etc/nginx/nginx.conf": "events {} http {\n include [.conf;\n}\n"},
			wantPos: "/etc/nginx/nginx.conf:2",
		},
		{
			name:    "fastcgi_pass without port",
			files:   memFS{"/etc/nginx/nginx.conf": "events {} http { server { location / {\n fastcgi_pass php-host; } } }\n"},
			want:    `nginxconf: /etc/nginx/nginx.conf:2: no port in upstream "php-host"`,
			wantPos: "/etc/nginx/nginx.conf:2",
		},
		{
			name:    "upstream name with port",
			files:   memFS{"/etc/nginx/nginx.conf": "events {} http { upstream b { server 1.2.3.4; }\n server { location / {\n proxy_pass http://b:8080; } } }\n"},
			want:    `nginxconf: /etc/nginx/nginx.conf:3: upstream "b" may not have port 8080`,
			wantPos: "/etc/nginx/nginx.conf:3",
		},
		{
			name:    "proxy_pass without scheme",
			files:   memFS{"/etc/nginx/nginx.conf": "events {} http { server { location / {\n proxy_pass 127.0.0.1:80; } } }\n"},
			wantPos: "/etc/nginx/nginx.conf:2",
		},
		{
			name:    "invalid timeout",
			files:   memFS{"/etc/nginx/nginx.conf": "events {} http {\n proxy_read_timeout 1M;\n}\n"},
			want:    `nginxconf: /etc/nginx/nginx.conf:2: "proxy_read_timeout" directive invalid value`,
			wantPos: "/etc/nginx/nginx.conf:2",
		},
		{
			name:    "invalid weight",
			files:   memFS{"/etc/nginx/nginx.conf": "events {} http { upstream u {\n server 1.2.3.4 weight=0; } }\n"},
			wantPos: "/etc/nginx/nginx.conf:2",
		},
		{
			name:    "invalid port",
			files:   memFS{"/etc/nginx/nginx.conf": "events {} http { upstream u {\n server 1.2.3.4:99999; } }\n"},
			wantPos: "/etc/nginx/nginx.conf:2",
		},
		{
			name:    "duplicate upstream",
			files:   memFS{"/etc/nginx/nginx.conf": "events {} http { upstream u { server 1.2.3.4; }\n upstream U { server 1.2.3.5; } }\n"},
			wantPos: "/etc/nginx/nginx.conf:2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: tt.files, PageSize: 4096})
			if err == nil {
				t.Fatalf("Load succeeded: %+v", cfg)
			}
			if !strings.HasPrefix(err.Error(), "nginxconf: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			if tt.notIs != nil && errors.Is(err, tt.notIs) {
				t.Errorf("errors.Is(%v, %v) = true", err, tt.notIs)
			}
			if tt.wantPos != "" {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("error %v is not a *ParseError", err)
				}
				if got := fmt.Sprintf("%s:%d", pe.File, pe.Line); got != tt.wantPos {
					t.Errorf("position = %s, want %s (%v)", got, tt.wantPos, err)
				}
				if !strings.Contains(err.Error(), tt.wantPos+": ") {
					t.Errorf("message %q does not name %s", err, tt.wantPos)
				}
			}
		})
	}
}

func TestMissingMainFileOnDisk(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nginx.conf"), LoadOptions{})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

// TestPIDFile: the pid directive is kept as written, for finding the
// running nginx.
func TestPIDFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte("pid /run/test-nginx.pid;\nevents {}\nhttp {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(conf, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PIDFile != "/run/test-nginx.pid" {
		t.Errorf("PIDFile = %q", cfg.PIDFile)
	}
}
