package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

func benchProbe(b *testing.B, tg *Peer) {
	b.Helper()
	p := New()
	ctx := context.Background()
	r := &Result{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Reset()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		p.Probe(cctx, tg, r)
		cancel()
		if !r.Success {
			b.Fatalf("probe failed: %s %v", r.Reason, r.Err)
		}
	}
}

// keepAnswering serves HTTP/1.0 responses as fast as possible.
func httpOK(c net.Conn) {
	buf := make([]byte, 1024)
	c.Read(buf)
	c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	io.Copy(io.Discard, c)
}

func BenchmarkProbeTCP(b *testing.B) {
	srv := serveTCP(b, func(c net.Conn) { io.Copy(io.Discard, c) })
	benchProbe(b, srv.target("tcp"))
}

func BenchmarkProbeHTTP(b *testing.B) {
	srv := serveTCP(b, httpOK)
	benchProbe(b, srv.target("http"))
}

func BenchmarkProbeHTTPUnix(b *testing.B) {
	srv, _ := serveUnix(b, httpOK)
	benchProbe(b, srv.target("http"))
}

// httpsOK is an HTTPS backend answering 200 as fast as it can, with a
// certificate made for the run.
func httpsOK(tb testing.TB) *backend {
	ca := testutil.MustCert(tb, "CA", testutil.CertOptions{CA: true, NotAfter: time.Now().Add(time.Hour)})
	leaf := testutil.MustCert(tb, "x", testutil.CertOptions{Parent: ca, NotAfter: time.Now().Add(time.Hour), Names: []string{"x"}})
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}
	return serveTCP(tb, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if tc.Handshake() != nil {
			return
		}
		httpOK(tc)
	})
}

func BenchmarkProbeHTTPS(b *testing.B) {
	benchProbe(b, httpsOK(b).target("https"))
}

func BenchmarkProbeFastCGI(b *testing.B) {
	answer := appendFCGIRecord(nil, fcgiGetValuesResult, 0, appendFCGIPair(nil, "FCGI_MPXS_CONNS", "0"))
	srv := serveTCP(b, func(c net.Conn) {
		buf := make([]byte, 1024)
		c.Read(buf)
		c.Write(answer)
		io.Copy(io.Discard, c)
	})
	benchProbe(b, srv.target("fastcgi"))
}

func BenchmarkProbeFastCGIPing(b *testing.B) {
	answer := append(rec(fcgiStdout, 1, "Content-type: text/plain\r\n\r\npong"), rec(fcgiStdout, 1, "")...)
	answer = append(answer, endRequest(0)...)
	srv := serveTCP(b, func(c net.Conn) {
		if _, err := readFCGIRequest(c); err != nil {
			return
		}
		c.Write(answer)
		io.Copy(io.Discard, c)
	})
	tg := srv.target("fastcgi")
	tg.FastCGI.PingPath = "/ping"
	benchProbe(b, tg)
}

func BenchmarkProbeMemcached(b *testing.B) {
	srv := serveTCP(b, func(c net.Conn) {
		buf := make([]byte, 1024)
		c.Read(buf)
		c.Write([]byte("END\r\n"))
		io.Copy(io.Discard, c)
	})
	benchProbe(b, srv.target("memcached"))
}

func BenchmarkProbeGRPC(b *testing.B) {
	srv := h2Backend(b, nil)
	benchProbe(b, srv.target("grpc"))
}

func BenchmarkClassify(b *testing.B) {
	errs := []error{
		&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)},
		&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded},
		io.EOF,
		errors.New("something else"),
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Classify(errs[i%len(errs)], PhaseProcessing)
	}
}
