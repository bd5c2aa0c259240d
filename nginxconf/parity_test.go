package nginxconf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// nginxBinary is Debian's nginx, which CI installs; without it the
// comparisons with nginx -t are skipped outside CI.
const nginxBinary = "/usr/sbin/nginx"

// nginxVerdict is what `nginx -t` says of a configuration: ok, or the
// first [emerg] message and its position (empty when nginx names none).
type nginxVerdict struct {
	ok       bool
	msg, pos string
	out      string
}

var emergLine = regexp.MustCompile(`\[emerg\] [0-9#]+: (.*?)(?: in (\S+):([0-9]+))?\n`)

// nginxTest runs the real nginx -t on main, with dir as prefix and a pid
// file in a temporary directory. It skips the test when nginx is not
// installed, except in CI.
func nginxTest(t *testing.T, dir, main string) nginxVerdict {
	t.Helper()
	return nginxTestArgs(t, dir, main, "-g", "pid "+filepath.Join(t.TempDir(), "nginx.pid")+";")
}

// nginxTestArgs is nginxTest with other arguments; nginx -t writes no pid
// file, so a configuration with its own `pid` needs none.
func nginxTestArgs(t *testing.T, dir, main string, args ...string) nginxVerdict {
	t.Helper()
	if _, err := os.Stat(nginxBinary); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nginx is required in CI: %v", err)
		}
		t.Skipf("%s not installed (apt-get install nginx-light): %v", nginxBinary, err)
	}
	cmd := exec.Command(nginxBinary, append([]string{"-t", "-q", "-e", "stderr", "-p", dir, "-c", main}, args...)...)
	out, err := cmd.CombinedOutput()
	v := nginxVerdict{ok: err == nil, out: string(out)}
	if m := emergLine.FindSubmatch(out); m != nil {
		v.msg = string(m[1])
		if len(m[2]) > 0 {
			v.pos = string(m[2]) + ":" + string(m[3])
		}
	}
	if !v.ok && v.msg == "" {
		t.Fatalf("nginx -t failed without an [emerg] line: %v\n%s", err, out)
	}
	return v
}

// TestNginxParity: Load refuses what nginx -t refuses, with nginx's
// message (OpenSSL's details aside) and, where nginx names one, its
// position; and accepts what nginx accepts. Every case runs through the
// real nginx -t.
func TestNginxParity(t *testing.T) {
	tests := []struct {
		name string
		http string // the content of http{}
		// want is Load's message, "" when nginx accepts; line is
		// where Load puts it (nginx's own line when it names one).
		want string
		line int
		// targets, when set, are the "protocol server" pairs Load
		// must find in an accepted configuration.
		targets []string
	}{
		{name: "duplicate proxy_pass",
			http: "server { location / {\nproxy_pass http://127.0.0.1:1;\nproxy_pass http://127.0.0.1:2; } }",
			want: `"proxy_pass" directive is duplicate`, line: 5},
		{name: "duplicate fastcgi_pass in an if",
			http: "server { location / { if ($arg_a) {\nfastcgi_pass 127.0.0.1:1;\nfastcgi_pass 127.0.0.1:2; } } }",
			want: `"fastcgi_pass" directive is duplicate`, line: 5},
		{name: "different *_pass in one location: the last is used",
			http:    "server { location / {\nproxy_pass http://127.0.0.1:1;\nfastcgi_pass 127.0.0.1:2; } }",
			targets: []string{"fastcgi 127.0.0.1:2"}},
		{name: "a *_pass in an if and one in its location are both used",
			http:    "server { location / { if ($arg_a) { proxy_pass http://127.0.0.1:1; }\nproxy_pass http://127.0.0.1:2; } }",
			targets: []string{"http 127.0.0.1:1", "http 127.0.0.1:2"}},
		{name: "backup after ip_hash",
			http: "upstream u { ip_hash; server 127.0.0.1:1;\nserver 127.0.0.1:2 backup; }\nserver { location / { proxy_pass http://u; } }",
			want: `balancing method does not support parameter "backup"`, line: 4},
		{name: "backup after hash",
			http: "upstream u { hash $uri consistent;\nserver 127.0.0.1:2 backup; }\nserver { location / { proxy_pass http://u; } }",
			want: `balancing method does not support parameter "backup"`, line: 4},
		{name: "backup after random",
			http: "upstream u { random two;\nserver 127.0.0.1:2 backup; }\nserver { location / { proxy_pass http://u; } }",
			want: `balancing method does not support parameter "backup"`, line: 4},
		{name: "backup before ip_hash is accepted",
			http:    "upstream u { server 127.0.0.1:1; server 127.0.0.1:2 backup; ip_hash; }\nserver { location / { proxy_pass http://u; } }",
			targets: []string{"http 127.0.0.1:1", "http 127.0.0.1:2"}},
		{name: "backup with least_conn",
			http:    "upstream u { least_conn; server 127.0.0.1:1; server 127.0.0.1:2 backup; }\nserver { location / { proxy_pass http://u; } }",
			targets: []string{"http 127.0.0.1:1", "http 127.0.0.1:2"}},
		{name: "down with hash",
			http:    "upstream u { hash $uri; server 127.0.0.1:1 down; server 127.0.0.1:2; }\nserver { location / { proxy_pass http://u; } }",
			targets: []string{"http 127.0.0.1:1", "http 127.0.0.1:2"}},

		{name: "grpcs without port after https shares its implicit upstream",
			http:    "server { location /a { proxy_pass https://127.0.0.1; }\nlocation / { grpc_pass grpcs://127.0.0.1; } }",
			targets: []string{"https 127.0.0.1:443", "grpcs 127.0.0.1:443"}},
		{name: "fastcgi without port after a proxy_pass with one",
			http:    "server { location /a { proxy_pass http://127.0.0.1:9000; }\nlocation / { fastcgi_pass 127.0.0.1; } }",
			targets: []string{"http 127.0.0.1:9000", "fastcgi 127.0.0.1:9000"}},
		{name: "grpcs without port before https",
			http: "server {\nlocation / { grpc_pass grpcs://127.0.0.1; }\nlocation /a { proxy_pass https://127.0.0.1; } }",
			want: `no port in upstream "127.0.0.1"`, line: 4},
		{name: "fastcgi without port",
			http: "server {\nlocation / { fastcgi_pass 127.0.0.1; } }",
			want: `no port in upstream "127.0.0.1"`, line: 4},
		{name: "no port reported after a later parse error",
			http: "server {\nlocation / { fastcgi_pass 127.0.0.1; }\nlocation /b {\nproxy_pass http://127.0.0.1:1;\nproxy_pass http://127.0.0.1:1; } }",
			want: `"proxy_pass" directive is duplicate`, line: 7},
		{name: "ports are checked before TLS files",
			http: "server {\nlocation /f { fastcgi_pass 127.0.0.1; }\nlocation / {\nproxy_ssl_verify on;\nproxy_pass https://127.0.0.1:1; } }",
			want: `no port in upstream "127.0.0.1"`, line: 4},
		{name: "TLS files are checked in locations whose upstream is refused",
			http: "server {\nlocation / {\nproxy_ssl_verify on;\nproxy_pass https://127.0.0.1:1; }\nlocation /f { fastcgi_pass 127.0.0.1; } }",
			want: `no proxy_ssl_trusted_certificate for proxy_ssl_verify`, line: 5},
		{name: "an upstream block defined after a *_pass with a port",
			http: "server { location / {\nproxy_pass http://u:8080; } }\nupstream u {\nserver 127.0.0.1:8080; }",
			want: `upstream "u" may not have port 8080`, line: 4},
		{name: "different ports stay apart",
			http:    "server { location /a { proxy_pass http://127.0.0.1:9000; }\nlocation / { fastcgi_pass 127.0.0.1:9001; } }",
			targets: []string{"http 127.0.0.1:9000", "fastcgi 127.0.0.1:9001"}},

		{name: "invalid port", http: "server { location / {\nproxy_pass http://127.0.0.1:0; } }",
			want: `invalid port in upstream "127.0.0.1:0"`, line: 4},
		{name: "port out of range", http: "server { location / {\nproxy_pass http://127.0.0.1:65536; } }",
			want: `invalid port in upstream "127.0.0.1:65536"`, line: 4},
		{name: "empty port", http: "server { location / {\nfastcgi_pass 127.0.0.1:; } }",
			want: `invalid port in upstream "127.0.0.1:"`, line: 4},
		{name: "no host", http: "server { location / {\nproxy_pass http://; } }",
			want: `no host in upstream ""`, line: 4},
		{name: "broken IPv6 literal", http: "server { location / {\nproxy_pass http://[::1; } }",
			want: `invalid host in upstream "[::1"`, line: 4},
		{name: "unix socket without path", http: "server { location / {\nfastcgi_pass unix:; } }",
			want: `no path in the unix domain socket in upstream "unix:"`, line: 4},
		{name: "upstream server with invalid port", http: "upstream u {\nserver 127.0.0.1:0; }\nserver { location / { proxy_pass http://u; } }",
			want: `invalid port in upstream "127.0.0.1:0"`, line: 4},
		{name: "unknown scheme", http: "server { location / {\nproxy_pass ftp://127.0.0.1:21; } }",
			want: `invalid URL prefix`, line: 4},
		{name: "upstream block with a port", http: "upstream u { server 127.0.0.1:1; }\nserver { location / {\nproxy_pass http://u:8080; } }",
			want: `upstream "u" may not have port 8080`, line: 5},

		{name: "verify without trusted certificate",
			http: "server { location / {\nproxy_ssl_verify on;\nproxy_pass https://127.0.0.1:1; } }",
			want: `no proxy_ssl_trusted_certificate for proxy_ssl_verify`, line: 4},
		{name: "missing trusted certificate",
			http: "server { location / {\nproxy_ssl_verify on;\nproxy_ssl_trusted_certificate missing.pem;\nproxy_pass https://127.0.0.1:1; } }",
			want: `SSL_CTX_load_verify_locations("DIR/missing.pem") failed`, line: 5},
		{name: "trusted certificate without certificates",
			http: "server { location / {\nproxy_ssl_verify on;\nproxy_ssl_trusted_certificate nginx.conf;\nproxy_pass https://127.0.0.1:1; } }",
			want: `SSL_CTX_load_verify_locations("DIR/nginx.conf") failed`, line: 5},
		{name: "missing grpc trusted certificate",
			http: "server { location / {\ngrpc_ssl_verify on;\ngrpc_ssl_trusted_certificate /nonexistent/ca.pem;\ngrpc_pass grpcs://127.0.0.1:1; } }",
			want: `SSL_CTX_load_verify_locations("/nonexistent/ca.pem") failed`, line: 5},
		{name: "missing uwsgi trusted certificate",
			http: "server { location / {\nuwsgi_ssl_verify on;\nuwsgi_ssl_trusted_certificate /nonexistent/ca.pem;\nuwsgi_pass suwsgi://127.0.0.1:1; } }",
			want: `SSL_CTX_load_verify_locations("/nonexistent/ca.pem") failed`, line: 5},
		{name: "missing trusted certificate with proxy_pass variables",
			http: "server { location / {\nproxy_ssl_verify on;\nproxy_ssl_trusted_certificate missing.pem;\nset $b 127.0.0.1:1;\nproxy_pass http://$b; } }",
			want: `SSL_CTX_load_verify_locations("DIR/missing.pem") failed`, line: 5},
		{name: "missing trusted certificate without TLS is not loaded",
			http:    "proxy_ssl_verify on; proxy_ssl_trusted_certificate missing.pem;\nserver { location / { proxy_pass http://127.0.0.1:1; } }",
			targets: []string{"http 127.0.0.1:1"}},
		{name: "trusted certificate present",
			http:    "server { location / {\nproxy_ssl_verify on;\nproxy_ssl_trusted_certificate ca.pem;\nproxy_pass https://127.0.0.1:1; } }",
			targets: []string{"https 127.0.0.1:1"}},
		{name: "missing CRL",
			http: "server { location / {\nproxy_ssl_verify on;\nproxy_ssl_trusted_certificate ca.pem;\nproxy_ssl_crl missing.crl;\nproxy_pass https://127.0.0.1:1; } }",
			want: `X509_LOOKUP_load_file("DIR/missing.crl") failed`, line: 6},
		{name: "CRL without verification is not loaded",
			http:    "server { location / {\nproxy_ssl_crl missing.crl;\nproxy_pass https://127.0.0.1:1; } }",
			targets: []string{"https 127.0.0.1:1"}},
		{name: "missing password file, wherever it is written",
			http: "proxy_ssl_password_file missing.pass;\nserver { location / { proxy_pass http://127.0.0.1:1; } }",
			want: `open() "DIR/missing.pass" failed (2: No such file or directory)`, line: 3},
		{name: "client certificate without key",
			http: "server { location / {\nproxy_ssl_certificate client.pem;\nproxy_pass https://127.0.0.1:1; } }",
			want: `no "proxy_ssl_certificate_key" is defined for certificate "client.pem"`, line: 4},
		{name: "missing client certificate",
			http: "server { location / {\nproxy_ssl_certificate missing.pem;\nproxy_ssl_certificate_key client.key;\nproxy_pass https://127.0.0.1:1; } }",
			want: `cannot load certificate "DIR/missing.pem"`, line: 4},
		{name: "missing client key",
			http: "server { location / {\nproxy_ssl_certificate client.pem;\nproxy_ssl_certificate_key missing.key;\nproxy_pass https://127.0.0.1:1; } }",
			want: `cannot load certificate key "DIR/missing.key"`, line: 4},
		{name: "client certificate and key present",
			http:    "server { location / {\nproxy_ssl_certificate client.pem;\nproxy_ssl_certificate_key client.key;\nproxy_pass https://127.0.0.1:1; } }",
			targets: []string{"https 127.0.0.1:1"}},

		{name: "timeout beyond a Go duration",
			http:    "grpc_read_timeout 1071906480m;\nserver { location / { grpc_pass 127.0.0.1:1; } }",
			targets: []string{"grpc 127.0.0.1:1"}},
		{name: "timeout in months", http: "server { location / {\nproxy_read_timeout 1M; proxy_pass http://127.0.0.1:1; } }",
			want: `"proxy_read_timeout" directive invalid value`, line: 4},

		{name: "finite choices",
			http:    "server { location / { set $b 127.0.0.1:1; if ($request_method = POST) { set $b 127.0.0.1:2; }\nproxy_pass http://$b; } }",
			targets: []string{"http 127.0.0.1:1", "http 127.0.0.1:2"}},
	}
	ssl := filepath.Join("testdata", "ssl")
	ca, err := os.ReadFile(filepath.Join(ssl, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := os.ReadFile(filepath.Join(ssl, "certs", "client.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(ssl, "certs", "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			main := filepath.Join(dir, "nginx.conf")
			writeFiles(t, dir, map[string]string{
				"nginx.conf": "events {}\nhttp {\n" + tt.http + "\n}\n",
				"ca.pem":     string(ca), "client.pem": string(cert), "client.key": string(key),
			})
			want := strings.ReplaceAll(tt.want, "DIR", dir)
			cfg, err := Load(main, LoadOptions{PageSize: 4096})
			switch {
			case want == "" && err != nil:
				t.Errorf("Load: %v", err)
			case want != "":
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("Load error = %v, want a *ParseError %q", err, want)
				}
				if pe.Msg != want {
					t.Errorf("Load message = %q, want %q", pe.Msg, want)
				}
				if got := fmt.Sprintf("%s:%d", pe.File, pe.Line); got != fmt.Sprintf("%s:%d", main, tt.line) {
					t.Errorf("Load position = %s, want line %d", got, tt.line)
				}
			}
			if len(tt.targets) > 0 && cfg != nil {
				var got []string
				for _, s := range cfg.Servers {
					got = append(got, s.Kind().Label()+" "+s.Host+":"+s.Port)
				}
				if strings.Join(got, ", ") != strings.Join(tt.targets, ", ") {
					t.Errorf("targets = %v, want %v", got, tt.targets)
				}
			}

			v := nginxTest(t, dir, main)
			if v.ok != (want == "") {
				t.Fatalf("nginx -t ok=%v, but the case expects ok=%v:\n%s", v.ok, want == "", v.out)
			}
			if v.ok {
				return
			}
			// OpenSSL appends its own reasons: nginx's message starts
			// with Load's.
			if !strings.HasPrefix(v.msg, want) {
				t.Errorf("nginx says %q, Load %q", v.msg, want)
			}
			if v.pos != "" && v.pos != fmt.Sprintf("%s:%d", main, tt.line) {
				t.Errorf("nginx says %s, Load line %d", v.pos, tt.line)
			}
		})
	}
}

// deniedFS is a memFS in which some files cannot be read for lack of
// permission, as for an exporter running unprivileged.
type deniedFS struct {
	memFS
	denied map[string]bool
}

func (d deniedFS) ReadFile(name string) ([]byte, error) {
	if d.denied[name] {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return d.memFS.ReadFile(name)
}

// TestUnreadableCertificateIsNotRefused: nginx's master reads TLS files
// as root; a file the exporter may not read is unknown, not missing, and
// never fails the load. A missing one does.
func TestUnreadableCertificateIsNotRefused(t *testing.T) {
	main := "/etc/nginx/nginx.conf"
	conf := "events {}\nhttp { server { location / {\nproxy_ssl_verify on;\nproxy_ssl_trusted_certificate /etc/ssl/private/ca.pem;\n" +
		"proxy_ssl_certificate /etc/ssl/private/client.pem;\nproxy_ssl_certificate_key /etc/ssl/private/client.key;\nproxy_pass https://127.0.0.1:1; } } }\n"
	denied := map[string]bool{"/etc/ssl/private/ca.pem": true, "/etc/ssl/private/client.pem": true, "/etc/ssl/private/client.key": true}
	cfg, err := Load(main, LoadOptions{PageSize: 4096, FS: deniedFS{memFS{main: conf}, denied}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(cfg.Servers) != 1 || !cfg.Servers[0].Settings.SSL.Verify {
		t.Errorf("servers = %+v", cfg.Servers)
	}
	if _, err := Load(main, LoadOptions{PageSize: 4096, FS: memFS{main: conf}}); err == nil {
		t.Error("Load accepts missing certificate files")
	}
}
