package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// streamModule is Debian's libnginx-mod-stream.
const streamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"

// streamScenario is one end-to-end case for stream{}: nginx proxies TCP
// or UDP to the servers, a client connects (or sends a datagram) through
// it, nginx's error log gives its verdict per server, and the exporter
// must agree. TCP clients of a stream server see no status: the log is
// the verdict.
type streamScenario struct {
	name    string
	needs   []prereq
	servers []server
	udp     bool   // the proxying server listens on UDP
	stream  string // text inside stream{}, before the server (upstream blocks)
	conf    string // text inside the proxying server{}
	// noVerdict: the servers nginx reaches without an error cannot be
	// judged (UDP silence): the exporter must export no verdict for them
	// (nginx_upstream_probe_inconclusive{cause="no_answer"}, no
	// probe_success, no failure reason), yet have probed them.
	noVerdict bool
}

var streamScenarios = []streamScenario{
	{
		name:    "stream_tcp_healthy",
		servers: []server{{"db", tcpServer(banner), prober.ReasonNone}},
		conf:    `proxy_pass {{.db}};`,
	},
	{
		name:    "stream_tcp_refused",
		servers: []server{{"db", refused(), prober.ReasonConnectionRefused}},
		conf:    `proxy_pass {{.db}};`,
	},
	{
		name: "stream_upstream_one_refused_one_healthy",
		servers: []server{
			{"dead", refused(), prober.ReasonConnectionRefused},
			{"good", tcpServer(banner), prober.ReasonNone},
		},
		stream: `upstream db {
			server {{.dead}};
			server {{.good}};
		}`,
		conf: `proxy_pass db;`,
	},
	{
		// proxy_pass through a map of literal addresses: nginx picks one
		// per connection, the exporter probes every choice.
		name: "stream_map_of_literal_choices",
		servers: []server{
			{"dead", refused(), prober.ReasonConnectionRefused},
			{"good", tcpServer(banner), prober.ReasonNone},
		},
		stream: `map $remote_addr $backend {
			127.0.0.1 {{.dead}};
			default   {{.good}};
		}`,
		conf: `proxy_pass $backend;`,
	},
	{
		name:    "stream_unix_missing_socket",
		servers: []server{{"db", missingSocket(), prober.ReasonSocketNotFound}},
		conf:    `proxy_pass {{.db}};`,
	},
	{
		name:    "stream_tcp_connect_timeout",
		needs:   []prereq{needNetns},
		servers: []server{{"db", filtered("-A", "INPUT", "-d", "127.0.0.2", "-p", "tcp", "--dport", "{{port}}", "--syn", "-j", "DROP"), prober.ReasonConnectTimeout}},
		conf: `proxy_pass {{.db}};
			proxy_connect_timeout 1s;`,
	},
	{
		name:    "stream_tls_healthy_verified",
		servers: []server{{"db", tlsHTTP(goodCert, nil), prober.ReasonNone}},
		conf: `proxy_pass {{.db}};
			proxy_ssl on;
			proxy_ssl_verify on;
			proxy_ssl_trusted_certificate {{.CA}};
			proxy_ssl_name backend.test;`,
	},
	{
		name:    "stream_tls_certificate_name_mismatch",
		servers: []server{{"db", tlsHTTP(goodCert, nil), prober.ReasonTLSCertificateInvalid}},
		conf: `proxy_pass {{.db}};
			proxy_ssl on;
			proxy_ssl_verify on;
			proxy_ssl_trusted_certificate {{.CA}};
			proxy_ssl_name other.test;`,
	},
	{
		// A plain-text server that speaks first (SMTP, PostgreSQL's
		// peers, Redis errors): OpenSSL reads "wrong version number".
		name:    "stream_tls_to_a_plain_port",
		servers: []server{{"db", tcpServer(banner), prober.ReasonProtocolMismatch}},
		conf: `proxy_pass {{.db}};
			proxy_ssl on;`,
	},
	{
		name:    "stream_udp_port_unreachable",
		udp:     true,
		servers: []server{{"dns", udpClosed(), prober.ReasonConnectionRefused}},
		conf:    `proxy_pass {{.dns}};`,
	},
	{
		name:    "stream_udp_answers",
		udp:     true,
		servers: []server{{"dns", udpServer(true), prober.ReasonNone}},
		conf: `proxy_pass {{.dns}};
			proxy_timeout 2s;`,
	},
	{
		// nginx logs "udp timed out" at info: no error, and no proof
		// either way. The exporter says so by exporting no verdict.
		name:      "stream_udp_silent_is_no_verdict",
		udp:       true,
		noVerdict: true,
		servers:   []server{{"dns", udpServer(false), prober.ReasonNone}},
		conf: `proxy_pass {{.dns}};
			proxy_timeout 1s;
			proxy_connect_timeout 1s;`,
	},
}

// banner greets like SMTP and closes.
func banner(c net.Conn) {
	c.Write([]byte("220 e2e.test ESMTP\r\n"))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.Copy(io.Discard, c)
}

// udpServer binds a UDP socket on 127.0.0.1 that answers every datagram
// with "pong", or stays silent.
func udpServer(answer bool) backend {
	return func(s *senv) string {
		pc, err := s.net.listenPacket("udp", "127.0.0.1:0")
		if err != nil {
			s.t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 1500)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				if answer {
					pc.WriteTo([]byte("pong"), from)
				}
			}
		}()
		s.t.Cleanup(func() {
			pc.Close()
			<-done
		})
		return pc.LocalAddr().String()
	}
}

// udpClosed is a UDP port nothing is bound to: the kernel answers every
// datagram with an ICMP port unreachable.
func udpClosed() backend {
	return func(s *senv) string {
		pc, err := s.net.listenPacket("udp", "127.0.0.1:0")
		if err != nil {
			s.t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		pc.Close()
		return addr
	}
}

var streamConf = template.Must(template.New("nginx.conf").Parse(`{{if .Root}}user nobody nogroup;
{{end}}load_module {{.Module}};
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log info;
events {
    worker_connections 64;
}
stream {
{{.Stream}}
    server {
        # Tells the harness nginx is up, whatever the proxying server
        # listens on.
        listen {{.Ready}};
        return "";
    }
    server {
        listen {{.Listen}}{{if .UDP}} udp{{end}};
{{.Server}}
    }
}
`))

func TestStreamScenarios(t *testing.T) {
	table, err := loadMapping(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range streamScenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runStreamScenario(t, table, sc)
		})
	}
}

func runStreamScenario(t *testing.T, table mappingTable, sc streamScenario) {
	requireNginx(t)
	if _, err := os.Stat(streamModule); err != nil {
		skipOrFail(t, "scenario %s: nginx's stream module (libnginx-mod-stream): %v", sc.name, err)
	}
	needs := sc.needs
	netns := false
	for _, n := range needs {
		if n == needNetns {
			netns = true
			needs = append(needs, needRoot)
		}
	}
	s := newScenarioEnv(t, sc.name, needs, netns)
	env, dir := s.net, s.dir

	// 1. The backends.
	data := map[string]string{"Dir": dir}
	var targets []target
	for _, srv := range sc.servers {
		server := srv.backend(s)
		data[srv.name] = server
		targets = append(targets, target{server: server, address: server, match: []string{server}})
	}
	if strings.Contains(sc.conf, "{{.CA}}") {
		data["CA"] = testCerts(t).trustedCAFile
	}
	port := env.freePort(t)
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	if sc.udp {
		// A UDP port for the proxy: free as a TCP port says little.
		pc, err := env.listenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listen = pc.LocalAddr().String()
		pc.Close()
	}
	ready := fmt.Sprintf("127.0.0.1:%d", env.freePort(t))
	conf := writeStreamConf(t, dir, data, sc, listen, ready)

	// 2-3. nginx: start it, pass one connection or datagram through it.
	ngx, started := startNginx(t, env, dir, conf, ready)
	if !started {
		t.Fatalf("nginx refused the configuration:\n%s", ngx.proc.output())
	}
	// The exporter follows nginx's error log from before the session.
	requireExporter(t)
	x := startExporter(t, env, dir, conf)
	x.waitTailing(t)
	if sc.udp {
		exchangeUDP(t, env, listen)
	} else {
		exchangeTCP(t, env, listen)
	}
	nginxSaw := observeNginx(t, table, scenario{name: sc.name, servers: sc.servers}, ngx, targets)

	// 4-5. The exporter's probes, then what it read in nginx's log.
	got := x.waitForRuns(t, targets)
	for i := range sc.servers {
		want := nginxSaw[i]
		v, ok := got[targets[i].key()]
		if !ok {
			t.Errorf("scenario %s, server %s: no series for it", sc.name, targets[i])
			continue
		}
		if sc.noVerdict && want.reason == prober.ReasonNone {
			if v.hasSuccess || v.reason() != "" || v.inconclusive != "no_answer" {
				t.Errorf("scenario %s, server %s: nginx logged no error and cannot tell either; the exporter must export no verdict, it says %s",
					sc.name, targets[i], v)
			}
			continue
		}
		wantSuccess := 0.0
		if want.reason == prober.ReasonNone {
			wantSuccess = 1
		}
		if !v.hasSuccess || v.reason() != string(want.reason) || v.success != wantSuccess {
			nginxSays := "no error (connection proxied)"
			if want.line != "" {
				nginxSays = fmt.Sprintf("%q", message(want.line))
			}
			t.Errorf("scenario %s, server %s: the exporter disagrees with nginx\n  nginx logged:  %s\n  mapping table: reason=%s (docs/metrics.md)\n  exporter:      %s",
				sc.name, targets[i], nginxSays, orNone(want.reason), v)
		}
	}
	checkLogged(t, scenario{name: sc.name, servers: sc.servers}, x, targets, nginxSaw)
	if t.Failed() {
		t.Logf("exporter log:\n%s", tail(x.proc.output(), 40))
	}
}

func writeStreamConf(t *testing.T, dir string, data map[string]string, sc streamScenario, listen, ready string) string {
	t.Helper()
	return writeConf(t, dir, streamConf, map[string]any{
		"Root":   os.Geteuid() == 0,
		"Module": streamModule,
		"Dir":    dir,
		"Listen": listen,
		"Ready":  ready,
		"UDP":    sc.udp,
		"Stream": renderBlock(t, "stream", sc.stream, data),
		"Server": renderBlock(t, "server", indent(sc.conf, "    "), data),
	})
}

// exchangeTCP connects through nginx and reads until nginx closes: at
// once when no upstream server can be reached, after the backend's banner
// otherwise. Stream clients get no status; the error log says what
// happened.
func exchangeTCP(t *testing.T, env *netEnv, listen string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := env.dial(ctx, "tcp", listen)
	if err != nil {
		t.Fatalf("connecting to nginx: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(io.LimitReader(c, 4096))
	t.Logf("client read %q through nginx", got)
}

// exchangeUDP sends one datagram through nginx and waits a moment for an
// answer.
func exchangeUDP(t *testing.T, env *netEnv, listen string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := env.dial(ctx, "udp", listen)
	if err != nil {
		t.Fatalf("connecting to nginx: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatalf("sending to nginx: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	t.Logf("client read %q (%v) through nginx", buf[:n], err)
}
