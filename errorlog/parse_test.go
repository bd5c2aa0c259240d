package errorlog

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const fields = `, client: 127.0.0.1, server: example.org, request: "GET /x HTTP/1.1", upstream: "http://10.0.0.5:8080/x", host: "example.org"`

// golden lines: what nginx writes, per version, TLS library and C
// library. Each names where the format comes from; lines Debian 12's
// nginx 1.22.1 produces are also checked against real nginx in e2e/.
var golden = []struct {
	name, line string
	kind       Kind
	reason     prober.Reason
	stage      Stage
	level      Level
	protocol   string
	peer       string
}{
	{
		// ngx_event_connect_peer (src/event/ngx_event_connect.c):
		// "connect() to %V failed" when connect() fails at once.
		name: "connect refused at once",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 connect() to 10.0.0.5:8080 failed (111: Connection refused) while connecting to upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonConnectionRefused, stage: StageConnect, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// ngx_http_upstream_test_connect: "connect() failed" once the
		// asynchronous connect reports SO_ERROR.
		name: "connect refused asynchronously",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 connect() failed (111: Connection refused) while connecting to upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonConnectionRefused, stage: StageConnect, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// musl (Alpine images) words errno 11 "Operation would block"
		// (musl src/errno/__strerror.h); the number is the same. EAGAIN is
		// among the errnos ngx_event_connect_peer logs at error, not crit.
		name: "musl EAGAIN on a unix socket",
		line: `2026/11/27 08:14:20 [error] 1#1: *3 connect() to unix:/run/php/fpm.sock failed (11: Operation would block) while connecting to upstream, client: 10.1.0.1, server: _, request: "POST /index.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/fpm.sock:", host: "a"`,
		kind: KindUpstreamError, reason: prober.ReasonBacklogFull, stage: StageConnect, level: LevelError, protocol: "fastcgi", peer: "unix:/run/php/fpm.sock:",
	},
	{
		// glibc wording of the same errno.
		name: "glibc EAGAIN on a unix socket",
		line: `2026/11/27 08:14:20 [error] 1#1: *3 connect() to unix:/run/php/fpm.sock failed (11: Resource temporarily unavailable) while connecting to upstream, client: 10.1.0.1, server: _, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/fpm.sock:", host: "a"`,
		kind: KindUpstreamError, reason: prober.ReasonBacklogFull, stage: StageConnect, level: LevelError, protocol: "fastcgi", peer: "unix:/run/php/fpm.sock:",
	},
	{
		// ngx_event_connect_peer: ENOENT is not in its list of errors logged
		// at error level, hence crit; AF_UNIX peers get ":" before the URI
		// (ngx_http_log_error_handler).
		name: "musl ENOENT wording",
		line: `2026/11/27 08:14:20 [crit] 1#1: *3 connect() to unix:/run/app.sock failed (2: No such file or directory) while connecting to upstream, client: 10.1.0.1, server: _, request: "GET / HTTP/1.1", upstream: "http://unix:/run/app.sock:/", host: "a"`,
		kind: KindUpstreamError, reason: prober.ReasonSocketNotFound, stage: StageConnect, level: LevelCrit, protocol: "http", peer: "unix:/run/app.sock:/",
	},
	{
		// ngx_event_connect_peer: EACCES, at crit.
		name: "permission denied",
		line: `2026/11/27 08:14:20 [crit] 1#1: *3 connect() to unix:/run/app.sock failed (13: Permission denied) while connecting to upstream, client: 10.1.0.1, server: _, request: "GET / HTTP/1.1", upstream: "http://unix:/run/app.sock:/", host: "a"`,
		kind: KindUpstreamError, reason: prober.ReasonPermissionDenied, stage: StageConnect, level: LevelCrit, protocol: "http", peer: "unix:/run/app.sock:/",
	},
	{
		// ngx_http_upstream_test_connect, via ngx_connection_error.
		name: "no route to host",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 connect() failed (113: No route to host) while connecting to upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonNoRouteToHost, stage: StageConnect, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// musl: "Host is unreachable".
		name: "musl no route to host",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 connect() failed (113: Host is unreachable) while connecting to upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonNoRouteToHost, stage: StageConnect, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// ngx_event_connect_peer / ngx_http_upstream_test_connect.
		name: "network unreachable",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 connect() failed (101: Network is unreachable) while connecting to upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonNetworkUnreachable, stage: StageConnect, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// ngx_http_upstream_next with NGX_HTTP_UPSTREAM_FT_TIMEOUT:
		// "upstream timed out" (ngx_http_upstream_connect_handler …).
		name: "connect timeout",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 upstream timed out (110: Connection timed out) while connecting to upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonConnectTimeout, stage: StageConnect, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// musl: "Operation timed out".
		name: "musl read timeout",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 upstream timed out (110: Operation timed out) while reading response header from upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonReadTimeout, stage: StageHeader, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// ngx_http_upstream_send_request_handler: the write timer fires,
		// ngx_http_upstream_next(NGX_HTTP_UPSTREAM_FT_TIMEOUT).
		name: "send timeout reads as read_timeout",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 upstream timed out (110: Connection timed out) while sending request to upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonReadTimeout, stage: StageSend, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// ngx_http_upstream_ssl_handshake_handler under the connect timer.
		name: "TLS handshake timeout",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 upstream timed out (110: Connection timed out) while SSL handshaking to upstream, client: 127.0.0.1, server: s, request: "GET / HTTP/1.1", upstream: "https://10.0.0.5:8443/", host: "h"`,
		kind: KindUpstreamError, reason: prober.ReasonTLSHandshakeTimeout, stage: StageTLSHandshake, level: LevelError, protocol: "https", peer: "10.0.0.5:8443/",
	},
	{
		// ngx_ssl_error (src/event/ngx_event_openssl.c), OpenSSL 1.1:
		// error code 1408F10B.
		name: "OpenSSL 1.1 wrong version number",
		line: `2026/11/27 08:14:20 [crit] 6#6: *2 SSL_do_handshake() failed (SSL: error:1408F10B:SSL routines:ssl3_get_record:wrong version number) while SSL handshaking to upstream, client: 127.0.0.1, server: s, request: "GET / HTTP/1.1", upstream: "https://10.0.0.5:8443/", host: "h"`,
		kind: KindUpstreamError, reason: prober.ReasonProtocolMismatch, stage: StageTLSHandshake, level: LevelCrit, protocol: "https", peer: "10.0.0.5:8443/",
	},
	{
		// OpenSSL 3: 0A00010B, no function name.
		name: "OpenSSL 3 wrong version number",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream, client: 127.0.0.1, server: s, request: "GET / HTTP/1.1", upstream: "https://10.0.0.5:8443/", host: "h"`,
		kind: KindUpstreamError, reason: prober.ReasonProtocolMismatch, stage: StageTLSHandshake, level: LevelError, protocol: "https", peer: "10.0.0.5:8443/",
	},
	{
		name: "OpenSSL 1.1 handshake failure",
		line: `2026/11/27 08:14:20 [crit] 6#6: *2 SSL_do_handshake() failed (SSL: error:14094410:SSL routines:ssl3_read_bytes:sslv3 alert handshake failure:SSL alert number 40) while SSL handshaking to upstream, client: 127.0.0.1, server: s, request: "GET / HTTP/1.1", upstream: "https://10.0.0.5:8443/", host: "h"`,
		kind: KindUpstreamError, reason: prober.ReasonTLSHandshakeFailed, stage: StageTLSHandshake, level: LevelCrit, protocol: "https", peer: "10.0.0.5:8443/",
	},
	{
		// ngx_ssl_handshake: "peer closed connection in SSL handshake"
		// with the errno of the read.
		name: "peer closed in handshake",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 peer closed connection in SSL handshake (104: Connection reset by peer) while SSL handshaking to upstream, client: 127.0.0.1, server: s, request: "GET / HTTP/1.1", upstream: "https://10.0.0.5:8443/", host: "h"`,
		kind: KindUpstreamError, reason: prober.ReasonTLSHandshakeFailed, stage: StageTLSHandshake, level: LevelError, protocol: "https", peer: "10.0.0.5:8443/",
	},
	{
		// ngx_http_upstream_ssl_handshake (verify on).
		name: "certificate verify error",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 upstream SSL certificate verify error: (10:certificate has expired) while SSL handshaking to upstream, client: 127.0.0.1, server: s, request: "GET / HTTP/1.1", upstream: "https://10.0.0.5:8443/", host: "h"`,
		kind: KindUpstreamError, reason: prober.ReasonTLSCertificateInvalid, stage: StageTLSHandshake, level: LevelError, protocol: "https", peer: "10.0.0.5:8443/",
	},
	{
		// ngx_http_upstream_process_header: recv() returned 0.
		name: "premature close",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 upstream prematurely closed connection while reading response header from upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonPrematureClose, stage: StageHeader, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// ngx_http_upstream_process_non_buffered_request / process_upstream:
		// the body stage, the status was already sent.
		name: "premature close in the body",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 upstream prematurely closed connection while reading upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonPrematureClose, stage: StageBody, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// ngx_http_fastcgi_input_filter_init / process_header
		// (src/http/modules/ngx_http_fastcgi_module.c).
		name: "FastCGI stdout closed",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 upstream prematurely closed FastCGI stdout while reading response header from upstream, client: 127.0.0.1, server: s, request: "GET /i.php HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", host: "h"`,
		kind: KindUpstreamError, reason: prober.ReasonPrematureClose, stage: StageHeader, level: LevelError, protocol: "fastcgi", peer: "127.0.0.1:9000",
	},
	{
		// ngx_unix_recv (src/os/unix/ngx_recv.c) via ngx_connection_error.
		name: "reset while reading",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 recv() failed (104: Connection reset by peer) while reading response header from upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonConnectionReset, stage: StageHeader, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// ngx_writev (src/os/unix/ngx_writev_chain.c) via ngx_connection_error.
		name: "broken pipe while sending",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 writev() failed (32: Broken pipe) while sending request to upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonConnectionReset, stage: StageSend, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// ngx_http_upstream_process_header: the buffer is full.
		name: "too big header",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 upstream sent too big header while reading response header from upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonHeaderTooBig, stage: StageHeader, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// Before 1.21.1 (ngx_http_proxy_process_header): no bytes.
		name: "invalid header, nginx before 1.21.1",
		line: `2020/11/27 08:14:20 [error] 6#6: *2 upstream sent invalid header while reading response header from upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonInvalidResponse, stage: StageHeader, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// 1.21.1+: the offending bytes, with the bad byte in hex.
		name: "invalid header, nginx 1.21.1 and later",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 upstream sent invalid header: "X-A\x00..." while reading response header from upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonInvalidResponse, stage: StageHeader, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// 1.23.0+ only: not in Debian 12's 1.22.1.
		name: "duplicate header line, nginx 1.23.0 and later",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 upstream sent duplicate header line: "Content-Length: 5", previous value: "Content-Length: 4" while reading response header from upstream` + fields,
		kind: KindUpstreamError, reason: prober.ReasonInvalidResponse, stage: StageHeader, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/x",
	},
	{
		// ngx_http_fastcgi_process_record: "upstream sent unsupported
		// FastCGI protocol version: %d".
		name: "FastCGI to an HTTP server",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 upstream sent unsupported FastCGI protocol version: 72 while reading response header from upstream, client: 127.0.0.1, server: s, request: "GET / HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", host: "h"`,
		kind: KindUpstreamError, reason: prober.ReasonProtocolMismatch, stage: StageHeader, level: LevelError, protocol: "fastcgi", peer: "127.0.0.1:9000",
	},
	{
		// ngx_http_grpc_module: RST_STREAM.
		name: "gRPC rejected",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 upstream rejected request with error 2 while reading response header from upstream, client: 127.0.0.1, server: s, request: "POST /p.S/M HTTP/2.0", upstream: "grpc://127.0.0.1:50051", host: "h"`,
		kind: KindUpstreamError, reason: prober.ReasonInvalidResponse, stage: StageHeader, level: LevelError, protocol: "grpc", peer: "127.0.0.1:50051",
	},
	{
		name: "IPv6 peer",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 connect() failed (111: Connection refused) while connecting to upstream, client: ::1, server: s, request: "GET / HTTP/1.1", upstream: "http://[::1]:8080/", host: "h"`,
		kind: KindUpstreamError, reason: prober.ReasonConnectionRefused, stage: StageConnect, level: LevelError, protocol: "http", peer: "[::1]:8080/",
	},
	{
		// ngx_http_upstream_get_round_robin_peer: pc->name is the
		// group's name.
		name: "no live upstreams",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 no live upstreams while connecting to upstream, client: 127.0.0.1, server: s, request: "GET /x HTTP/1.1", upstream: "http://backend/x", host: "h"`,
		kind: KindNoLiveUpstreams, stage: StageConnect, level: LevelError, protocol: "http", peer: "backend/x",
	},
	{
		// ngx_http_upstream_resolve_handler.
		name: "runtime resolver",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 backend.test could not be resolved (3: Host not found), client: 127.0.0.1, server: s, request: "GET / HTTP/1.1", host: "h"`,
		kind: KindUpstreamError, reason: prober.ReasonDNSError, level: LevelError,
	},
	{
		// A request line longer than the entry: the upstream field is
		// cut off (NGX_MAX_ERROR_STR).
		name: "cut line has a reason but no peer",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: s, request: "GET /aaaaaaaaaaaaaaaaaaaaa`,
		kind: KindUpstreamError, reason: prober.ReasonConnectionRefused, stage: StageConnect, level: LevelError,
	},
	{
		// ngx_http_fastcgi_process_header: "FastCGI sent in stderr: \"%*s\"".
		name: "FastCGI stderr is the application's",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 FastCGI sent in stderr: "Primary script unknown" while reading response header from upstream, client: 127.0.0.1, server: s, request: "GET / HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", host: "h"`,
		kind: KindOther, stage: StageHeader, level: LevelError,
	},
	{
		// ngx_signal_handler (src/os/unix/ngx_process.c), no connection.
		name: "reload notice",
		line: `2026/11/27 08:14:20 [notice] 1#1: signal 1 (SIGHUP) received from 20, reconfiguring`,
		kind: KindOther, level: LevelNotice,
	},
	{
		// ngx_http_upstream_check_broken_connection and the body filters,
		// at info: the client, not the upstream.
		name: "client closed",
		line: `2026/11/27 08:14:20 [info] 6#6: *2 client prematurely closed connection while reading upstream` + fields,
		kind: KindOther, stage: StageBody, level: LevelInfo,
	},
	{
		// A message this version does not know: counted unparsed, not guessed.
		name: "unknown upstream error at level error",
		line: `2026/11/27 08:14:20 [error] 6#6: *2 something new happened while reading response header from upstream` + fields,
		kind: KindUnparsed, stage: StageHeader, level: LevelError,
	},
	{
		// Not an entry at all: no "YYYY/MM/DD HH:MM:SS [" header (ngx_log_error_core).
		name: "garbage",
		line: "\x00\xff\xfe garbage [error] while connecting to upstream, upstream: \"http://10.0.0.5:8080/\"",
		kind: KindUnparsed,
	},
	{
		// ngx_stream_proxy_log_error (src/stream/ngx_stream_proxy_module.c):
		// no request, the bare peer, byte counts.
		name: "stream module",
		line: `2026/11/27 08:14:20 [error] 6#6: *3 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: 0.0.0.0:5432, upstream: "10.0.0.5:5432", bytes from/to client:0/0, bytes from/to upstream:0/0`,
		kind: KindUpstreamError, reason: prober.ReasonConnectionRefused, stage: StageConnect, level: LevelError, protocol: "tcp", peer: "10.0.0.5:5432",
	},
	{
		// ngx_stream_log_error: "udp client" for a UDP session; the
		// proxy's own action while it relays.
		name: "stream module, UDP",
		line: `2026/11/27 08:14:20 [error] 7#7: *7 recv() failed (111: Connection refused) while proxying and reading from upstream, udp client: 127.0.0.1, server: 127.0.0.1:5353, upstream: "127.0.0.1:53", bytes from/to client:4/0, bytes from/to upstream:0/4`,
		kind: KindUpstreamError, reason: prober.ReasonConnectionRefused, stage: StageHeader, level: LevelError, protocol: "udp", peer: "127.0.0.1:53",
	},
	{
		// ngx_stream_proxy_ssl_handshake: the stage says TLS.
		name: "stream module, TLS",
		line: `2026/11/27 08:14:20 [error] 7#7: *9 SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream, client: 127.0.0.1, server: 127.0.0.1:6443, upstream: "127.0.0.1:6000", bytes from/to client:0/0, bytes from/to upstream:0/0`,
		kind: KindUpstreamError, reason: prober.ReasonProtocolMismatch, stage: StageTLSHandshake, level: LevelError, protocol: "tls", peer: "127.0.0.1:6000",
	},
	{
		// nginx before 1.21.1 accepted spaces in the URI: the one
		// possible end of the request line is taken.
		name: "space in the URI, nginx before 1.21.1",
		line: `2020/11/27 08:14:20 [error] 6#6: *2 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: s, request: "GET /a b HTTP/1.1", upstream: "http://10.0.0.5:8080/a b", host: "h"`,
		kind: KindUpstreamError, reason: prober.ReasonConnectionRefused, stage: StageConnect, level: LevelError, protocol: "http", peer: "10.0.0.5:8080/a b",
	},
}

func TestParseGolden(t *testing.T) {
	for _, tc := range golden {
		t.Run(tc.name, func(t *testing.T) {
			var e Entry
			Parse([]byte(tc.line), &e)
			if e.Kind != tc.kind || e.Reason != tc.reason || e.Stage != tc.stage || e.Level != tc.level || e.Protocol != tc.protocol || string(cut(e.Peer, `"`)) != tc.peer {
				t.Errorf("Parse(%q)\n got kind=%d reason=%q stage=%q level=%q protocol=%q peer=%q\nwant kind=%d reason=%q stage=%q level=%q protocol=%q peer=%q",
					tc.line, e.Kind, e.Reason, e.Stage, e.Level, e.Protocol, cut(e.Peer, `"`), tc.kind, tc.reason, tc.stage, tc.level, tc.protocol, tc.peer)
			}
		})
	}
}

// TestParseForgedFields: text a client controls (request line, Host,
// referrer) never decides the peer.
func TestParseForgedFields(t *testing.T) {
	const head = `2026/11/27 08:14:20 [error] 6#6: *2 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: s, `
	cases := []struct{ name, rest, peer string }{
		{"forged in URI", `request: "GET /a",+upstream:+"http://10.9.9.9:80/ HTTP/1.1", upstream: "http://10.0.0.5:8080/a",+upstream:+"http://10.9.9.9:80/", host: "h"`, "10.0.0.5:8080/a"},
		{"forged with a space, nginx before 1.21.1", `request: "GET /a", upstream: "http://10.9.9.9:80/ HTTP/1.1", upstream: "http://10.0.0.5:8080/", host: "h"`, "10.0.0.5:8080/"},
		{"forged in Host", `request: "GET / HTTP/1.1", upstream: "http://10.0.0.5:8080/", host: "x", upstream: "http://10.9.9.9:80/"`, "10.0.0.5:8080/"},
		{"forged in referrer", `request: "GET / HTTP/1.1", upstream: "http://10.0.0.5:8080/", host: "h", referrer: "r", upstream: "http://10.9.9.9:80/"`, "10.0.0.5:8080/"},
		{"no upstream field, forged in Host", `request: "GET / HTTP/1.1", host: "x", upstream: "http://10.9.9.9:80/"`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e Entry
			Parse([]byte(head+tc.rest), &e)
			if e.Reason != prober.ReasonConnectionRefused {
				t.Fatalf("reason %q", e.Reason)
			}
			if string(cut(e.Peer, `"`)) != tc.peer {
				t.Errorf("peer = %q, want %q", e.Peer, tc.peer)
			}
			x := testIndex(t)
			a := x.Attribute(e.Protocol, e.Peer)
			if a.Target != nil && a.Target.Address == "10.9.9.9:80" {
				t.Errorf("forged peer attributed: %v", a.Target.Key)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, g := range golden {
		f.Add([]byte(g.line))
	}
	if b, err := os.ReadFile("testdata/sample.log"); err == nil {
		f.Add(b)
	}
	x := NewIndex(nil)
	f.Fuzz(func(t *testing.T, line []byte) {
		var e Entry
		Parse(line, &e)
		if len(e.Peer) > len(line) {
			t.Fatalf("peer longer than the line")
		}
		if e.Kind == KindUpstreamError && e.Reason == prober.ReasonNone {
			t.Fatalf("upstream error without reason: %q", line)
		}
		if e.Reason != prober.ReasonNone {
			if _, ok := reasonIndex[e.Reason]; !ok {
				t.Fatalf("reason %q outside the vocabulary", e.Reason)
			}
		}
		x.Attribute(e.Protocol, e.Peer)
	})
}
