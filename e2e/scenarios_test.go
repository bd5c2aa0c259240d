package e2e

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil/dnstest"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// server is one upstream server of a scenario: how to build it and what
// nginx (and so the exporter) must say about it. want is ReasonNone for a
// server nginx reaches without error.
type server struct {
	name    string
	backend backend
	want    prober.Reason
}

// scenario is one end-to-end case. The nginx configuration is a template:
// {{.NAME}} is the address of the server called NAME, {{.Dir}} the
// scenario's directory, {{.CA}} the CA nginx trusts and, in a private
// namespace, {{.DNS}} the scenario's DNS responder.
type scenario struct {
	name    string
	needs   []prereq
	servers []server
	http    string // text inside http {}, before the server block (upstream blocks)
	conf    string // text inside server {}
	// requests sent through nginx; 0 means 1.
	requests int
	// status nginx must answer when it differs from the mapping table's
	// (a healthy peer took over); 0 means the table's.
	status int
}

func (sc scenario) needsNetns() bool { return slices.Contains(sc.needs, needNetns) }

var scenarios = []scenario{
	// ---- healthy ---------------------------------------------------------
	{
		name:    "http_healthy",
		servers: []server{{"app", healthyHTTP(), prober.ReasonNone}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		name:    "https_healthy_verified",
		servers: []server{{"app", tlsHTTP(goodCert, nil), prober.ReasonNone}},
		conf: `location / {
			proxy_pass https://{{.app}};
			proxy_ssl_verify on;
			proxy_ssl_trusted_certificate {{.CA}};
			proxy_ssl_name backend.test;
		}`,
	},
	{
		name:    "unix_http_healthy",
		servers: []server{{"app", healthyUnixHTTP(), prober.ReasonNone}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		name:    "php_fpm_unix_healthy",
		needs:   []prereq{needPHPFPM},
		servers: []server{{"php", phpFPM(), prober.ReasonNone}},
		conf: `location / {
			fastcgi_param SCRIPT_FILENAME {{.Dir}}/www/index.php;
			fastcgi_param REQUEST_METHOD $request_method;
			fastcgi_param QUERY_STRING $query_string;
			fastcgi_pass {{.php}};
		}`,
	},
	{
		// nginx passes any status through: a 500 is the application's
		// answer, not an unreachable server, and logs no error.
		name:    "http_500_is_an_answer",
		servers: []server{{"app", tcpServer(respond("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")), prober.ReasonNone}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
		status:  500,
	},
	{
		name: "upstream_one_healthy_one_dead",
		servers: []server{
			{"good", healthyHTTP(), prober.ReasonNone},
			{"dead", refused(), prober.ReasonConnectionRefused},
		},
		http: `upstream app {
			server {{.dead}};
			server {{.good}};
		}`,
		conf: `location / { proxy_pass http://app; }`,
		// Round robin sends the first request to the dead server, then
		// nginx retries on the healthy one: the client sees 200 while
		// the error log names the dead server.
		requests: 2,
		status:   200,
	},
	{
		name:    "dns_name_resolved_locally",
		needs:   []prereq{needNetns},
		servers: []server{{"app", named("backend.test", healthyHTTP()), prober.ReasonNone}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},

	// ---- while connecting ------------------------------------------------
	{
		name:    "tcp_nothing_listening",
		servers: []server{{"app", refused(), prober.ReasonConnectionRefused}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		name:    "unix_missing_socket",
		servers: []server{{"app", missingSocket(), prober.ReasonSocketNotFound}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		name:    "unix_stale_socket",
		servers: []server{{"app", staleSocket(), prober.ReasonConnectionRefused}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		name:    "unix_permission_denied_for_worker",
		needs:   []prereq{needRoot},
		servers: []server{{"app", privateSocket(), prober.ReasonPermissionDenied}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		name:    "unix_socket_not_writable_for_worker",
		needs:   []prereq{needRoot},
		servers: []server{{"app", readOnlySocket(), prober.ReasonPermissionDenied}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		name:    "unix_backlog_full",
		servers: []server{{"app", fullBacklog(), prober.ReasonBacklogFull}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		name:    "connect_timeout_syn_dropped",
		needs:   []prereq{needNetns},
		servers: []server{{"app", filtered("-A", "INPUT", "-d", "127.0.0.2", "-p", "tcp", "--dport", "{{port}}", "--syn", "-j", "DROP"), prober.ReasonConnectTimeout}},
		conf: `location / {
			proxy_pass http://{{.app}};
			proxy_connect_timeout 1s;
		}`,
	},
	{
		name:    "no_route_to_host",
		needs:   []prereq{needNetns},
		servers: []server{{"app", filtered("-A", "INPUT", "-d", "127.0.0.2", "-p", "tcp", "--dport", "{{port}}", "-j", "REJECT", "--reject-with", "icmp-host-unreachable"), prober.ReasonNoRouteToHost}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		name:    "network_unreachable",
		needs:   []prereq{needNetns},
		servers: []server{{"app", filtered("-A", "INPUT", "-d", "127.0.0.2", "-p", "tcp", "--dport", "{{port}}", "-j", "REJECT", "--reject-with", "icmp-net-unreachable"), prober.ReasonNetworkUnreachable}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		name:    "dns_host_not_found_at_load",
		needs:   []prereq{needNetns},
		servers: []server{{"app", unresolvable(), prober.ReasonDNSError}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},

	{
		// One server line, one name, two addresses: nginx makes a peer
		// of each, and so must the exporter (label address).
		name:  "dns_name_with_one_dead_address",
		needs: []prereq{needNetns},
		servers: []server{
			{"app", named("multi.test", healthyHTTPAt("127.0.0.3")), prober.ReasonNone},
			{"app2", named("multi.test", refusedAt("127.0.0.4", true)), prober.ReasonConnectionRefused},
		},
		http: `upstream app {
			server {{.app}};
		}`,
		conf:     `location / { proxy_pass http://app; }`,
		requests: 2,
		status:   200,
	},
	{
		// A *_pass with variables makes nginx resolve the host per
		// request through `resolver`: here the scenario's own responder.
		name:    "dns_runtime_resolver_healthy",
		needs:   []prereq{needNetns},
		servers: []server{{"app", resolvedAtRuntime("backend.test", healthyHTTP()), prober.ReasonNone}},
		conf: `location / {
			resolver {{.DNS}};
			proxy_pass http://{{.app}}$request_uri;
		}`,
	},
	{
		name:    "dns_runtime_resolver_not_found",
		needs:   []prereq{needNetns},
		servers: []server{{"app", unresolvable(), prober.ReasonDNSError}},
		conf: `location / {
			resolver {{.DNS}};
			proxy_pass http://{{.app}}$request_uri;
		}`,
	},

	// ---- TLS -------------------------------------------------------------
	{
		name:    "https_to_plain_http",
		servers: []server{{"app", healthyHTTP(), prober.ReasonProtocolMismatch}},
		conf:    `location / { proxy_pass https://{{.app}}; }`,
	},
	{
		// TLS is a property of the target, whatever the protocol.
		name:    "suwsgi_healthy",
		servers: []server{{"app", uwsgiServer(goodCert), prober.ReasonNone}},
		conf: `location / {
			uwsgi_pass suwsgi://{{.app}};
			uwsgi_ssl_verify on;
			uwsgi_ssl_trusted_certificate {{.CA}};
			uwsgi_ssl_name backend.test;
		}`,
	},
	{
		name:    "suwsgi_to_plain_uwsgi",
		servers: []server{{"app", uwsgiServer(nil), prober.ReasonProtocolMismatch}},
		conf:    `location / { uwsgi_pass suwsgi://{{.app}}; }`,
	},
	{
		name:    "uwsgi_healthy",
		servers: []server{{"app", uwsgiServer(nil), prober.ReasonNone}},
		conf:    `location / { uwsgi_pass {{.app}}; }`,
	},
	{
		name:    "tls_untrusted_ca",
		servers: []server{{"app", tlsHTTP(untrustedCert, nil), prober.ReasonTLSCertificateInvalid}},
		conf: `location / {
			proxy_pass https://{{.app}};
			proxy_ssl_verify on;
			proxy_ssl_trusted_certificate {{.CA}};
			proxy_ssl_name backend.test;
		}`,
	},
	{
		name:    "tls_name_mismatch",
		servers: []server{{"app", tlsHTTP(wrongNameCert, nil), prober.ReasonTLSCertificateInvalid}},
		conf: `location / {
			proxy_pass https://{{.app}};
			proxy_ssl_verify on;
			proxy_ssl_trusted_certificate {{.CA}};
			proxy_ssl_name backend.test;
		}`,
	},
	{
		name: "tls_protocol_version_mismatch",
		servers: []server{{"app", tlsHTTP(goodCert, func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }),
			prober.ReasonTLSHandshakeFailed}},
		conf: `location / {
			proxy_pass https://{{.app}};
			proxy_ssl_protocols TLSv1.2;
		}`,
	},
	{
		// nginx sends no SNI unless proxy_ssl_server_name is on: a
		// backend that needs it fails the handshake, whatever curl says.
		name:    "tls_sni_required_not_sent",
		servers: []server{{"app", tlsHTTP(goodCert, requireSNI), prober.ReasonTLSHandshakeFailed}},
		conf:    `location / { proxy_pass https://{{.app}}; }`,
	},
	{
		name:    "tls_sni_required_and_sent",
		servers: []server{{"app", tlsHTTP(goodCert, requireSNI), prober.ReasonNone}},
		conf: `location / {
			proxy_pass https://{{.app}};
			proxy_ssl_server_name on;
			proxy_ssl_name backend.test;
		}`,
	},
	{
		name:    "tls_peer_closes_in_handshake",
		servers: []server{{"app", closesAfterRequest(), prober.ReasonTLSHandshakeFailed}},
		conf:    `location / { proxy_pass https://{{.app}}; }`,
	},
	{
		name:    "tls_handshake_never_answered",
		servers: []server{{"app", hangs(), prober.ReasonTLSHandshakeTimeout}},
		conf: `location / {
			proxy_pass https://{{.app}};
			proxy_connect_timeout 1s;
		}`,
	},

	// ---- reading the response header -------------------------------------
	{
		name:    "closes_after_request",
		servers: []server{{"app", closesAfterRequest(), prober.ReasonPrematureClose}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		name:    "resets_after_request",
		servers: []server{{"app", resets(), prober.ReasonConnectionReset}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		name:    "never_answers",
		servers: []server{{"app", hangs(), prober.ReasonReadTimeout}},
		conf: `location / {
			proxy_pass http://{{.app}};
			proxy_read_timeout 1s;
		}`,
	},
	{
		name:    "header_too_big",
		servers: []server{{"app", bigHeader(), prober.ReasonHeaderTooBig}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		// The same server behind two locations: the one with the
		// default proxy_buffer_size fails, so the exporter must judge
		// by the strictest location (docs/metrics.md), not the last.
		name:    "header_too_big_in_strictest_location",
		servers: []server{{"app", bigHeader(), prober.ReasonHeaderTooBig}},
		conf: `location / {
			proxy_pass http://{{.app}};
		}
		location /large/ {
			proxy_pass http://{{.app}};
			proxy_buffer_size 64k;
			proxy_buffers 4 64k;
			proxy_busy_buffers_size 128k;
		}`,
	},
	{
		name:    "invalid_header",
		servers: []server{{"app", tcpServer(respond("HTTP/1.1 200 OK\r\nX-Bad\x01Name: 1\r\nContent-Length: 0\r\n\r\n")), prober.ReasonInvalidResponse}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		name:    "not_http_banner",
		servers: []server{{"app", tcpServer(respond("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")), prober.ReasonInvalidResponse}},
		conf:    `location / { proxy_pass http://{{.app}}; }`,
	},
	{
		name:    "fastcgi_pass_to_http_server",
		servers: []server{{"app", strictHTTP(), prober.ReasonProtocolMismatch}},
		conf: `location / {
			fastcgi_param SCRIPT_FILENAME /index.php;
			fastcgi_pass {{.app}};
		}`,
	},
	{
		name:    "fastcgi_invalid_record_type",
		servers: []server{{"app", fastcgiGarbage(), prober.ReasonInvalidResponse}},
		conf: `location / {
			fastcgi_param SCRIPT_FILENAME /index.php;
			fastcgi_pass {{.app}};
		}`,
	},
}

// requireSNI makes a TLS backend refuse clients that send no server name,
// like a virtual-hosting frontend.
func requireSNI(c *tls.Config) {
	certs := c.Certificates
	c.Certificates = nil
	c.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hello.ServerName == "" {
			return nil, errors.New("no SNI")
		}
		return &certs[0], nil
	}
}

func goodCert(c *certSet) tls.Certificate      { return c.good }
func untrustedCert(c *certSet) tls.Certificate { return c.untrusted }
func wrongNameCert(c *certSet) tls.Certificate { return c.wrongName }

// TestScenarios runs every scenario: the fault, nginx's verdict, the
// exporter's verdict, compared through docs/metrics.md.
func TestScenarios(t *testing.T) {
	table, err := loadMapping(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, sc := range scenarios {
		if seen[sc.name] {
			t.Fatalf("duplicate scenario name %q", sc.name)
		}
		seen[sc.name] = true
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, table, sc)
		})
	}
}

// target is one upstream peer as the exporter labels it, with the strings
// that identify it in nginx's error log.
type target struct {
	server  string // as written in nginx.conf
	address string // the peer: the resolved ip:port, else server
	match   []string
	// runtime: nginx resolves the name per request, so the peer it logs
	// is no target's address (docs/metrics.md: unattributed).
	runtime bool
}

func (tg target) key() string { return tg.server + " " + tg.address }

func (tg target) String() string {
	if tg.address == tg.server {
		return tg.server
	}
	return tg.server + " (" + tg.address + ")"
}

// observed is nginx's side of one server.
type observed struct {
	line   string // nginx's error-log line about the server, "" when none
	reason prober.Reason
}

// newScenarioEnv checks a scenario's prerequisites, skipping or failing
// as skipOrFail decides, then gives it a network (a namespace of its own
// when netns) and a directory for its nginx and backends.
func newScenarioEnv(t *testing.T, name string, needs []prereq, netns bool) *senv {
	t.Helper()
	for _, need := range needs {
		if err := checkPrereqs()[need]; err != nil {
			skipOrFail(t, "scenario %s: %v", name, err)
		}
	}
	env := &netEnv{}
	if netns {
		env = newNetns(t)
	}
	return &senv{t: t, net: env, dir: nginxDir(t, name+"-"), dns: map[string][]netip.Addr{}}
}

func runScenario(t *testing.T, table mappingTable, sc scenario) {
	requireNginx(t)
	needs := sc.needs
	if sc.needsNetns() {
		needs = append(needs, needRoot)
	}
	s := newScenarioEnv(t, sc.name, needs, sc.needsNetns())
	env, dir := s.net, s.dir

	// 1. The backends (healthy or faulty).
	data := map[string]string{"Dir": dir}
	var targets []target
	for _, srv := range sc.servers {
		s.peer, s.match, s.runtime = "", nil, false
		server := srv.backend(s)
		data[srv.name] = server
		tg := target{server: server, address: server, match: []string{server}, runtime: s.runtime}
		if s.peer != "" {
			tg.match = []string{s.peer}
			if !s.runtime {
				tg.address = s.peer
			}
		}
		tg.match = append(tg.match, s.match...)
		targets = append(targets, tg)
	}
	if sc.needsNetns() {
		// The namespace's resolv.conf points at 127.0.0.1:53: answer
		// there, from the names the backends registered.
		pc, err := env.listenPacket("udp", "127.0.0.1:53")
		if err != nil {
			t.Fatalf("DNS responder in %s: %v", env.name, err)
		}
		dns := dnstest.NewServer(pc, s.dns)
		t.Cleanup(func() { dns.Close() })
		data["DNS"] = dns.Addr()
	}
	if strings.Contains(sc.conf, "{{.CA}}") {
		data["CA"] = testCerts(t).trustedCAFile
	}
	data["Listen"] = fmt.Sprintf("127.0.0.1:%d", env.freePort(t))
	conf := writeNginxConf(t, dir, data, sc.http, sc.conf)

	// 2-3. nginx: start it, and the exporter on the same nginx.conf, so
	// that it reads nginx's error log from before the requests; send the
	// requests, collect nginx's error lines.
	ngx, started := startNginx(t, env, dir, conf, data["Listen"])
	requireExporter(t)
	x := startExporter(t, env, dir, conf)
	var statuses []int
	if started {
		x.waitTailing(t)
		n := max(sc.requests, 1)
		for range n {
			statuses = append(statuses, ngx.get(t))
		}
	} else {
		statuses = []int{noStart}
	}
	nginxSaw := observeNginx(t, table, sc, ngx, targets)
	checkNginxStatus(t, table, sc, ngx, statuses, nginxSaw)

	// 4-5. The exporter's probes, then what it read in nginx's log.
	got := x.waitForRuns(t, targets)
	for i := range sc.servers {
		want := nginxSaw[i]
		v, ok := got[targets[i].key()]
		if !ok {
			t.Errorf("scenario %s, server %s: the exporter has no series with address=%q (docs/metrics.md: the resolved ip:port), it labels this server with address %q",
				sc.name, targets[i].server, targets[i].address, addressesOf(got, targets[i].server))
			continue
		}
		wantSuccess := 0.0
		if want.reason == prober.ReasonNone {
			wantSuccess = 1
		}
		if v.reason() != string(want.reason) || v.success != wantSuccess {
			nginxSays := "no error (request served)"
			if want.line != "" {
				nginxSays = fmt.Sprintf("%q", message(want.line))
			}
			wantReason := string(want.reason)
			if wantReason == "" {
				wantReason = "none"
			}
			t.Errorf("scenario %s, server %s: the exporter disagrees with nginx\n  nginx logged:  %s\n  mapping table: reason=%s (docs/metrics.md)\n  exporter:      %s",
				sc.name, targets[i], nginxSays, wantReason, v)
		}
	}
	if started {
		checkLogged(t, sc, x, targets, nginxSaw)
	}
	if t.Failed() {
		t.Logf("exporter log:\n%s", tail(x.proc.output(), 40))
	}
}

// observeNginx attributes nginx's error lines to the scenario's servers,
// maps each through the table and checks that nginx saw the fault the
// scenario built. It returns nginx's verdict per server.
func observeNginx(t *testing.T, table mappingTable, sc scenario, ngx *nginx, targets []target) []observed {
	t.Helper()
	out := make([]observed, len(sc.servers))
	// nginx writes the line before it answers, but give the file a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := ngx.errorLines()
		missing := false
		for i, srv := range sc.servers {
			mine := linesFor(lines, targets[i].match...)
			if srv.want != prober.ReasonNone && len(mine) == 0 {
				missing = true
				continue
			}
			if len(mine) > 0 {
				out[i].line = mine[0]
			}
		}
		if !missing || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, srv := range sc.servers {
		o := &out[i]
		if o.line == "" {
			if srv.want != prober.ReasonNone {
				t.Fatalf("scenario %s, server %s: expected nginx to log a %s error, found none; nginx's error lines:\n%s",
					sc.name, targets[i], srv.want, strings.Join(ngx.errorLines(), "\n"))
			}
			continue
		}
		reason, msg, ok := table.classify(o.line)
		if !ok {
			t.Fatalf("scenario %s, server %s: nginx logged %q, which matches no message of docs/metrics.md", sc.name, targets[i], o.line)
		}
		if reason != srv.want {
			t.Fatalf("scenario %s, server %s: the fault is not what the scenario meant to build: nginx logged %q (%q: reason %s), scenario expects %s",
				sc.name, targets[i], o.line, msg, reason, orNone(srv.want))
		}
		o.reason = reason
		t.Logf("server %s: nginx: %s → %s", targets[i], message(o.line), reason)
	}
	return out
}

// checkNginxStatus checks what nginx answered the client against the
// status column of the mapping table.
func checkNginxStatus(t *testing.T, table mappingTable, sc scenario, ngx *nginx, statuses []int, saw []observed) {
	t.Helper()
	var allowed []int
	switch {
	case sc.status != 0:
		allowed = []int{sc.status}
	default:
		allowed = []int{200}
		for _, o := range saw {
			if o.reason != prober.ReasonNone {
				allowed = table.statuses(o.reason)
			}
		}
	}
	// With several requests only the last must show the final verdict;
	// every status must still be one the table allows.
	for _, st := range statuses {
		if !slices.Contains(allowed, st) {
			t.Fatalf("scenario %s: nginx answered %s, the mapping table allows %v; nginx's error lines:\n%s\nnginx output:\n%s",
				sc.name, statusText(st), allowed, strings.Join(ngx.errorLines(), "\n"), ngx.proc.output())
		}
	}
	var texts []string
	for _, st := range statuses {
		texts = append(texts, statusText(st))
	}
	t.Logf("nginx answered %s", strings.Join(texts, ", "))
}

func statusText(st int) string {
	if st == noStart {
		return "nothing (it refused to start)"
	}
	return fmt.Sprint(st)
}

func orNone(r prober.Reason) string {
	if r == prober.ReasonNone {
		return "no error"
	}
	return string(r)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
