package prober

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// uwsgiAnswer reads one uwsgi packet, checks it carries the method, and
// answers resp.
func uwsgiAnswer(t *testing.T, resp string, hangUp bool) func(net.Conn) {
	return func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		hdr := make([]byte, 4)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		vars := make([]byte, binary.LittleEndian.Uint16(hdr[1:3]))
		if _, err := io.ReadFull(c, vars); err != nil {
			return
		}
		if !bytes.Contains(vars, []byte("REQUEST_METHOD\x03\x00GET")) {
			t.Errorf("uwsgi vars lack REQUEST_METHOD: %q", vars)
		}
		c.Write([]byte(resp))
		if !hangUp {
			waitClosed(c)
		}
	}
}

func scgiAnswer(t *testing.T, resp string, hangUp bool) func(net.Conn) {
	return func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		br := bufio.NewReader(c)
		ls, err := br.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(ls, ":"))
		if err != nil {
			t.Errorf("bad netstring length %q", ls)
			return
		}
		body := make([]byte, n+1)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		if !bytes.HasPrefix(body, []byte("CONTENT_LENGTH\x000\x00SCGI\x001\x00")) || body[n] != ',' {
			t.Errorf("bad SCGI request %q", body)
		}
		c.Write([]byte(resp))
		if !hangUp {
			waitClosed(c)
		}
	}
}

func TestUWSGIAndSCGIProbes(t *testing.T) {
	tests := []struct {
		name   string
		resp   string
		want   Reason
		status int
	}{
		{name: "status line", resp: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", status: 200},
		{name: "CGI status", resp: "Status: 503 Busy\r\n\r\n", status: 503},
		{name: "CGI default", resp: "Content-Type: text/html\r\n\r\n", status: 200},
		{name: "invalid", resp: " bad\r\n\r\n", want: ReasonInvalidResponse},
		{name: "too big", resp: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: b\r\n", 1000) + "\r\n", want: ReasonHeaderTooBig},
		{name: "FastCGI answer", resp: "\x01\x06\x00\x01\x00\x00\x00\x00", want: ReasonProtocolMismatch},
		{name: "premature", resp: "HTTP/1.1 200 OK\r\n", want: ReasonPrematureClose},
	}
	for _, proto := range []string{"uwsgi", "scgi"} {
		for _, tt := range tests {
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				var h func(net.Conn)
				hangUp := tt.want == ReasonPrematureClose
				if proto == "uwsgi" {
					h = uwsgiAnswer(t, tt.resp, hangUp)
				} else {
					h = scgiAnswer(t, tt.resp, hangUp)
				}
				b := serveTCP(t, h)
				r := runProbe(t, b.target(proto))
				checkResult(t, r, tt.want)
				if r.HTTPStatus != tt.status {
					t.Errorf("status = %d, want %d", r.HTTPStatus, tt.status)
				}
			})
		}
	}
}

func memcachedAnswer(resp string) func(net.Conn) {
	return func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "get /a%20b\r\n" {
			c.Write([]byte("CLIENT_ERROR unexpected " + strconv.Quote(line) + "\r\n"))
			waitClosed(c)
			return
		}
		c.Write([]byte(resp))
		waitClosed(c)
	}
}

func TestMemcachedProbe(t *testing.T) {
	tests := []struct {
		name   string
		handle func(net.Conn)
		want   Reason
		status int
	}{
		{name: "miss", handle: memcachedAnswer("END\r\n"), status: 404},
		{name: "hit", handle: memcachedAnswer("VALUE /a%20b 0 5\r\nhello\r\nEND\r\n"), status: 200},
		{name: "hit with cas", handle: memcachedAnswer("VALUE /a%20b 0 5 17\r\nhello\r\nEND\r\n"), status: 200},
		{name: "wrong key", handle: memcachedAnswer("VALUE /other 0 5\r\nhello\r\nEND\r\n"), want: ReasonInvalidResponse},
		{name: "bad length", handle: memcachedAnswer("VALUE /a%20b 0 x\r\n"), want: ReasonInvalidResponse},
		{name: "error", handle: memcachedAnswer("SERVER_ERROR out of memory\r\n"), want: ReasonInvalidResponse},
		{name: "line too long", handle: memcachedAnswer(strings.Repeat("x", 5000)), want: ReasonHeaderTooBig},
		{name: "HTTP server", handle: respondAfterRead("HTTP/1.1 400 Bad Request\r\n\r\n"), want: ReasonProtocolMismatch},
		{name: "silent", handle: waitClosed, want: ReasonReadTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := serveTCP(t, tt.handle)
			tg := b.target("memcached")
			tg.Memcached.Key = "/a b"
			r := runProbe(t, tg)
			checkResult(t, r, tt.want)
			if r.HTTPStatus != tt.status {
				t.Errorf("status = %d, want %d", r.HTTPStatus, tt.status)
			}
		})
	}
}

// grpcHandler answers the health check as a server without the health
// service does: trailers-only, grpc-status 12.
var grpcHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != grpcHealthPath || r.Header.Get("Content-Type") != "application/grpc" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Grpc-Status", "12")
	w.WriteHeader(http.StatusOK)
})

func h2Backend(t testing.TB, cfg *tls.Config) *backend {
	srv := &http2.Server{}
	return serveTCP(t, func(c net.Conn) {
		if cfg != nil {
			tc := tls.Server(c, cfg)
			if err := tc.Handshake(); err != nil {
				return
			}
			c = tc
		}
		srv.ServeConn(c, &http2.ServeConnOpts{Handler: grpcHandler})
	})
}

func TestGRPCProbe(t *testing.T) {
	b := h2Backend(t, nil)
	r := runProbe(t, b.target("grpc"))
	checkResult(t, r, ReasonNone)
	if r.HTTPStatus != 200 {
		t.Errorf("status = %d", r.HTTPStatus)
	}

	ca := testutil.MustCert(t, "CA", testutil.CertOptions{CA: true, NotAfter: time.Now().Add(time.Hour)})
	leaf := testutil.MustCert(t, "grpc.test", testutil.CertOptions{Parent: ca, NotAfter: time.Now().Add(time.Hour), Names: []string{"grpc.test"}})
	bs := h2Backend(t, &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}, NextProtos: []string{"h2"}})
	tg := bs.target("grpcs")
	tg.TLS = &TLSSettings{}
	r = runProbe(t, tg)
	checkResult(t, r, ReasonNone)
	if !r.TLSNotAfter.Equal(leaf.Cert.NotAfter) {
		t.Errorf("TLSNotAfter = %v", r.TLSNotAfter)
	}

	tests := []struct {
		name   string
		handle func(net.Conn)
		want   Reason
	}{
		{name: "HTTP/1 server", handle: respondAfterRead("HTTP/1.1 505 HTTP Version Not Supported\r\n\r\n"), want: ReasonProtocolMismatch},
		{name: "goaway", handle: respondAfterRead("\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x08\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"), want: ReasonInvalidResponse},
		{name: "rst stream", handle: respondAfterRead("\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x04\x03\x00\x00\x00\x00\x01\x00\x00\x00\x07"), want: ReasonInvalidResponse},
		{name: "not settings first", handle: respondAfterRead("\x00\x00\x00\x06\x00\x00\x00\x00\x00"), want: ReasonInvalidResponse},
		{name: "silent", handle: waitClosed, want: ReasonReadTimeout},
		{name: "closed", handle: func(c net.Conn) {
			buf := make([]byte, 4096)
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			c.Read(buf)
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			c.Read(buf)
		}, want: ReasonPrematureClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := serveTCP(t, tt.handle)
			r := runProbe(t, b.target("grpc"))
			checkResult(t, r, tt.want)
		})
	}
}
