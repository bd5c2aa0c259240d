package prober

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// BenchmarkProbeHTTPSResumed is BenchmarkProbeHTTPS with session reuse on,
// as nginx's default: ten of every eleven handshakes resume.
func BenchmarkProbeHTTPSResumed(b *testing.B) {
	ca := testutil.MustCert(b, "CA", testutil.CertOptions{CA: true, NotAfter: time.Now().Add(time.Hour)})
	leaf := testutil.MustCert(b, "x", testutil.CertOptions{Parent: ca, NotAfter: time.Now().Add(time.Hour), Names: []string{"x"}})
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}
	srv := serveTCP(b, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if tc.Handshake() != nil {
			return
		}
		httpOK(tc)
	})
	tg := srv.target("https")
	tg.TLS.Sessions = &Sessions{}
	benchProbe(b, tg)
}
