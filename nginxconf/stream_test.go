package nginxconf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestStreamSemantics spells out what testdata/stream/want.json records,
// so that a regenerated golden file cannot bless a regression.
func TestStreamSemantics(t *testing.T) {
	cfg := mustLoad(t, filepath.Join("testdata", "stream", "nginx.conf"), LoadOptions{})

	// stream and http upstream blocks are separate namespaces.
	eq(t, "http db", findTarget(t, cfg, "db", "10.9.9.9:80", "http").Settings.ConnectTimeout, 60*time.Second)
	for _, s := range cfg.Servers {
		if s.Upstream == "db" && s.Server == "10.9.9.9:80" && s.Kind().Label() != "http" {
			t.Errorf("the http upstream db leaked into stream: %+v", s)
		}
	}

	db := findTarget(t, cfg, "db", "10.0.0.1:5432", "tcp")
	eq(t, "connect timeout inherited from stream{}", db.Settings.ConnectTimeout, 5*time.Second)
	eq(t, "proxy_timeout is the read timeout", db.Settings.ReadTimeout, time.Hour)
	eq(t, "proxy_timeout is the send timeout", db.Settings.SendTimeout, time.Hour)
	eq(t, "proxy_buffer_size default", db.Settings.BufferSize, 16384)
	eq(t, "params", db.Params, ServerParams{Weight: 2, MaxFails: 3, FailTimeout: 30 * time.Second})
	eq(t, "resolver inherited", db.Resolvers, []string{"127.0.0.53"})
	eq(t, "backup", findTarget(t, cfg, "db", "10.0.0.2:5432", "tcp").Params.Backup, true)
	down := findTarget(t, cfg, "db", "unix:/run/postgresql/.s.PGSQL.5432", "tcp")
	eq(t, "down", down.Params.Down, true)
	eq(t, "socket", down.SocketPath, "/run/postgresql/.s.PGSQL.5432")

	// A server with a TCP and a UDP listener talks both.
	for _, proto := range []string{"tcp", "udp"} {
		d := findTarget(t, cfg, "dns", "10.0.0.53:53", proto)
		eq(t, proto+" connect timeout at server level", d.Settings.ConnectTimeout, 2*time.Second)
		eq(t, proto+" default proxy_timeout", d.Settings.ReadTimeout, 10*time.Minute)
		eq(t, proto+" resolve", findTarget(t, cfg, "dns", "dns.internal:53", proto).RuntimeResolve, true)
	}

	r := findTarget(t, cfg, "redis.internal:6379", "redis.internal:6379", "tcp")
	eq(t, "implicit", r.Implicit, true)
	eq(t, "implicit params", r.Params, ServerParams{Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second})
	eq(t, "implicit port", r.Port, "6379")

	m := findTarget(t, cfg, "mqtt.example:8883", "mqtt.example:8883", "tls")
	eq(t, "proxy_ssl on", m.Settings.SSL.Enabled, true)
	eq(t, "verify", m.Settings.SSL.Verify, true)
	eq(t, "sni", m.Settings.SSL.ServerName, true)
	eq(t, "ssl name", m.Settings.SSL.Name, "broker.example")
	eq(t, "protocols inherited", m.Settings.SSL.Protocols, []string{"TLSv1.3"})
	eq(t, "relative CA resolved against the conf prefix", m.Settings.SSL.TrustedCertificate, filepath.Join("testdata", "stream", "ca.pem"))

	eq(t, "unix udp", findTarget(t, cfg, "unix:/run/syslog.sock", "unix:/run/syslog.sock", "udp").SocketPath, "/run/syslog.sock")
	eq(t, "proxy_ssl ignored over udp", findTarget(t, cfg, "10.0.2.1:3478", "10.0.2.1:3478", "udp").Settings.SSL.Enabled, false)

	// A map of literal values: each choice is a target, once.
	for _, u := range []string{"by_sni_a", "by_sni_b"} {
		for _, tg := range cfg.Servers {
			if tg.Upstream == u && (tg.Kind().Label() != "tcp" || tg.RuntimeResolve) {
				t.Errorf("%s: %+v", u, tg)
			}
		}
	}
	findTarget(t, cfg, "by_sni_a", "10.0.1.1:443", "tcp")
	findTarget(t, cfg, "by_sni_b", "10.0.1.2:443", "tcp")
	eq(t, "literal choice", findTarget(t, cfg, "10.0.3.1:5349", "10.0.3.1:5349", "tcp").RuntimeResolve, false)
	cdn := findTarget(t, cfg, "cdn.internal:443", "cdn.internal:443", "tcp")
	eq(t, "a name chosen per session is resolved at run time", cdn.RuntimeResolve, true)
	eq(t, "through stream's resolver", cdn.Resolvers, []string{"127.0.0.53"})
	if len(cfg.Dynamic) != 1 || cfg.Dynamic[0].Address != "$passthrough" {
		t.Errorf("Dynamic = %+v, want the proxy_pass $passthrough", cfg.Dynamic)
	}
	eq(t, "unused upstreams", cfg.UnusedUpstreams, []string(nil))
}

// streamConf wraps a stream{} body into a configuration nginx can test.
func streamConf(body string) string {
	return "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\nevents {}\nstream {\n" + body + "\n}\n"
}

// TestStreamLoad checks stream configurations against what nginx says of
// them: the same refusal (message and line) or acceptance. Each case is
// also given to the real `nginx -t` when nginx and its stream module are
// installed, so that the expectations are nginx's and not ours.
func TestStreamLoad(t *testing.T) {
	tests := []struct {
		name string
		body string
		// want is the exact message after "file:line: ", "" when nginx
		// accepts the configuration.
		want string
		line int
		// nginxSays is the message nginx writes when it differs from
		// want (ours never repeats credentials).
		nginxSays string
		targets   []string // label "upstream server protocol" of each target, when accepted
	}{
		{
			name: "upstream server without port",
			body: "upstream u {\n server 127.0.0.1; }\nserver { listen 127.0.0.1:1; proxy_pass u; }",
			want: `no port in upstream "127.0.0.1"`, line: 5,
		},
		{
			name: "implicit upstream without port",
			body: "server { listen 127.0.0.1:1;\n proxy_pass 127.0.0.1; }",
			want: `no port in upstream "127.0.0.1"`, line: 5,
		},
		{
			name: "upstream name with port",
			body: "upstream u { server 127.0.0.1:2; }\nserver { listen 127.0.0.1:1;\n proxy_pass u:81; }",
			want: `upstream "u" may not have port 81`, line: 6,
		},
		{
			name: "two proxy_pass",
			body: "server { listen 127.0.0.1:1; proxy_pass 127.0.0.1:2;\n proxy_pass 127.0.0.1:3; }",
			want: `"proxy_pass" directive is duplicate`, line: 5,
		},
		{
			name: "no listen",
			body: "server {\n proxy_pass 127.0.0.1:2; }",
			want: `no "listen" is defined for server`, line: 4,
		},
		{
			name: "duplicate upstream",
			body: "upstream u { server 127.0.0.1:2; }\nupstream U { server 127.0.0.1:3; }\nserver { listen 127.0.0.1:1; proxy_pass u; }",
			want: `duplicate upstream "U"`, line: 5,
		},
		{
			name: "URL prefix",
			body: "server { listen 127.0.0.1:1;\n proxy_pass http://127.0.0.1:2; }",
			want: `invalid host in upstream "http://127.0.0.1:2"`, line: 5,
			nginxSays: `invalid host in upstream "http://127.0.0.1:2"`,
		},
		{
			name:      "credentials",
			body:      "server { listen 127.0.0.1:1;\n proxy_pass user:secret@127.0.0.1:2; }",
			want:      `credentials ("user:password@") in an upstream address, which nginx does not accept in "proxy_pass" directive`,
			line:      5,
			nginxSays: `invalid port in upstream`,
		},
		{
			name: "invalid proxy_timeout",
			body: "server { listen 127.0.0.1:1; proxy_pass 127.0.0.1:2;\n proxy_timeout 1x; }",
			want: `"proxy_timeout" directive invalid value`, line: 5,
			nginxSays: `"proxy_timeout" directive invalid value`,
		},
		{
			name:    "upstream defined after its use, tcp and udp",
			body:    "server { listen 127.0.0.1:1; listen 127.0.0.1:1 udp; proxy_pass u; }\nupstream u { server 127.0.0.1:2; server unix:/tmp/none.sock; }",
			targets: []string{"u 127.0.0.1:2 tcp", "u unix:/tmp/none.sock tcp", "u 127.0.0.1:2 udp", "u unix:/tmp/none.sock udp"},
		},
		{
			name:    "proxy_ssl over tcp only",
			body:    "proxy_ssl on;\nserver { listen 127.0.0.1:1; proxy_pass 127.0.0.1:2; }\nserver { listen 127.0.0.1:3 udp; proxy_pass 127.0.0.1:4; }",
			targets: []string{"127.0.0.1:2 127.0.0.1:2 tls", "127.0.0.1:4 127.0.0.1:4 udp"},
		},
		{
			name:    "a server without proxy_pass has no upstream",
			body:    "server { listen 127.0.0.1:1; return 200; }",
			targets: nil,
		},
	}
	nginx := nginxForTest(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := streamConf(tt.body)
			cfg, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: memFS{"/etc/nginx/nginx.conf": text}, PageSize: 4096})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				var got []string
				for _, s := range cfg.Servers {
					got = append(got, fmt.Sprintf("%s %s %s", s.Upstream, s.Server, s.Kind().Label()))
				}
				eq(t, "targets", got, tt.targets)
			} else {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("Load: %v, want a *ParseError", err)
				}
				if want := fmt.Sprintf("nginxconf: /etc/nginx/nginx.conf:%d: %s", tt.line, tt.want); err.Error() != want {
					t.Errorf("error = %q\n want %q", err, want)
				}
			}
			if nginx != "" {
				checkNginxT(t, nginx, text, tt.want, tt.nginxSays, tt.line)
			}
		})
	}
}

// nginxForTest returns the nginx binary when it and the stream module are
// installed, else "" (the cases then check only our side).
func nginxForTest(t *testing.T) string {
	path, err := exec.LookPath("nginx")
	if err != nil {
		path = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(path); err != nil {
		t.Log("nginx not installed: cases not cross-checked with nginx -t")
		return ""
	}
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_stream_module.so"); err != nil {
		t.Log("libnginx-mod-stream not installed: cases not cross-checked with nginx -t")
		return ""
	}
	return path
}

var nginxLine = regexp.MustCompile(`\[emerg\] [0-9#]+: (.*) in (\S+):([0-9]+)`)

// checkNginxT runs `nginx -t` on text and compares its verdict with ours.
func checkNginxT(t *testing.T, nginx, text, want, nginxSays string, line int) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	text = "pid " + filepath.Join(dir, "nginx.pid") + ";\n" + strings.Replace(text, "\n", " ", 1)
	// The pid line moved everything down by one line, the join of the
	// first two lines back up: line numbers stay those of the case.
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-q", "-p", dir, "-e", "stderr", "-c", conf).CombinedOutput()
	if want == "" {
		if err != nil {
			t.Errorf("nginx -t refuses what we accept:\n%s", out)
		}
		return
	}
	if err == nil {
		t.Fatalf("nginx -t accepts what we refuse (%s)", want)
	}
	m := nginxLine.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no [emerg] line with a position from nginx -t:\n%s", out)
	}
	msg := want
	if nginxSays != "" {
		msg = nginxSays
	}
	if !strings.HasPrefix(m[1], msg) {
		t.Errorf("nginx says %q, we say %q", m[1], want)
	}
	if m[3] != fmt.Sprint(line) {
		t.Errorf("nginx refuses at line %s, we at line %d", m[3], line)
	}
}

// A stream upstream balanced by Lua (ingress-nginx's TCP/UDP services)
// has a placeholder server: never probed, listed as dynamic with why.
func TestStreamLuaBalancer(t *testing.T) {
	cfg, err := Load("/etc/nginx/nginx.conf", LoadOptions{FS: memFS{
		"/etc/nginx/nginx.conf": `events {}
stream {
	upstream upstream_balancer {
		server 0.0.0.1:1234; # placeholder
		balancer_by_lua_block {
			tcp_udp_balancer.balance() -- it's chosen per session
		}
	}
	server { listen 127.0.0.1:8443; proxy_pass upstream_balancer; }
}
`}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Servers) != 0 {
		t.Errorf("placeholder probed: %+v", cfg.Servers)
	}
	if len(cfg.Dynamic) != 1 || !strings.Contains(cfg.Dynamic[0].Reason, "balanced by Lua") {
		t.Errorf("dynamic = %+v", cfg.Dynamic)
	}
}
