package prober

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// tlsBackend answers HTTP over TLS with cfg.
func tlsBackend(t testing.TB, cfg *tls.Config) *backend {
	return serveTCP(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		tc.SetDeadline(time.Now().Add(3 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		if _, err := readHTTPRequest(tc); err != nil {
			return
		}
		tc.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		tc.Close()
	})
}

func TestHTTPSProbe(t *testing.T) {
	dir := t.TempDir()
	year := time.Now().Add(365 * 24 * time.Hour)
	ca := testutil.MustCert(t, "Test CA", testutil.CertOptions{CA: true, NotAfter: year})
	other := testutil.MustCert(t, "Other CA", testutil.CertOptions{CA: true, NotAfter: year})
	inter := testutil.MustCert(t, "Test Intermediate", testutil.CertOptions{Parent: ca, CA: true, NotAfter: year})
	good := testutil.MustCert(t, "backend.test", testutil.CertOptions{Parent: ca, NotAfter: year, Names: []string{"backend.test", "127.0.0.1"}})
	viaInter := testutil.MustCert(t, "backend.test", testutil.CertOptions{Parent: inter, NotAfter: year, Names: []string{"backend.test"}})
	cnOnly := testutil.MustCert(t, "cn.backend.test", testutil.CertOptions{Parent: ca, NotAfter: year})
	expired := testutil.MustCert(t, "backend.test", testutil.CertOptions{Parent: ca, NotAfter: time.Now().Add(-time.Hour), Names: []string{"backend.test"}})
	untrusted := testutil.MustCert(t, "backend.test", testutil.CertOptions{Parent: other, NotAfter: year, Names: []string{"backend.test"}})
	caPath, _ := ca.MustWritePEM(t, dir, "ca")
	client := testutil.MustCert(t, "nginx client", testutil.CertOptions{Parent: ca, NotAfter: year})
	clientCert, clientKey := client.MustWritePEM(t, dir, "client")
	clientPool := x509.NewCertPool()
	clientPool.AddCert(ca.Cert)

	server := func(c tls.Certificate) *tls.Config { return &tls.Config{Certificates: []tls.Certificate{c}} }
	verify := func(name string) *TLSSettings {
		return &TLSSettings{Verify: true, TrustedCertificate: caPath, VerifyName: name, VerifyDepth: 1}
	}

	tests := []struct {
		name   string
		server *tls.Config
		handle func(net.Conn) // instead of a TLS server
		tls    *TLSSettings
		want   Reason
		expiry time.Time
	}{
		{name: "verify off", server: server(untrusted.TLS()), tls: &TLSSettings{}, expiry: untrusted.Cert.NotAfter},
		{name: "verified", server: server(good.TLS()), tls: verify("backend.test"), expiry: good.Cert.NotAfter},
		{name: "verified by IP", server: server(good.TLS()), tls: verify("127.0.0.1")},
		{name: "CN when no SAN", server: server(cnOnly.TLS()), tls: verify("cn.backend.test")},
		{name: "intermediate within depth 1", server: server(viaInter.TLS(inter)), tls: verify("backend.test")},
		{name: "intermediate beyond depth 0", server: server(viaInter.TLS(inter)), tls: &TLSSettings{Verify: true, TrustedCertificate: caPath, VerifyName: "backend.test"}, want: ReasonTLSCertificateInvalid},
		{name: "untrusted", server: server(untrusted.TLS()), tls: verify("backend.test"), want: ReasonTLSCertificateInvalid, expiry: untrusted.Cert.NotAfter},
		{name: "expired", server: server(expired.TLS()), tls: verify("backend.test"), want: ReasonTLSCertificateInvalid, expiry: expired.Cert.NotAfter},
		{name: "wrong name", server: server(good.TLS()), tls: verify("other.test"), want: ReasonTLSCertificateInvalid},
		{name: "expired, verify off", server: server(expired.TLS()), tls: &TLSSettings{}, expiry: expired.Cert.NotAfter},
		{name: "SNI sent", server: &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if h.ServerName != "backend.test" {
				return nil, os.ErrNotExist
			}
			c := good.TLS()
			return &c, nil
		}}, tls: &TLSSettings{ServerName: "backend.test"}},
		{name: "SNI required but off", server: &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if h.ServerName == "" {
				return nil, os.ErrNotExist
			}
			c := good.TLS()
			return &c, nil
		}}, tls: &TLSSettings{}, want: ReasonTLSHandshakeFailed},
		{name: "version mismatch", server: &tls.Config{Certificates: []tls.Certificate{good.TLS()}, MaxVersion: tls.VersionTLS12},
			tls: &TLSSettings{Protocols: []string{"TLSv1.3"}}, want: ReasonTLSHandshakeFailed},
		{name: "client certificate required, none", server: &tls.Config{Certificates: []tls.Certificate{good.TLS()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool},
			tls: &TLSSettings{}, want: ReasonTLSHandshakeFailed},
		{name: "client certificate required, TLS 1.2", server: &tls.Config{Certificates: []tls.Certificate{good.TLS()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool, MaxVersion: tls.VersionTLS12},
			tls: &TLSSettings{}, want: ReasonTLSHandshakeFailed},
		{name: "client certificate sent", server: &tls.Config{Certificates: []tls.Certificate{good.TLS()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool},
			tls: &TLSSettings{Certificate: clientCert, CertificateKey: clientKey}},
		{name: "plain HTTP server", handle: func(c net.Conn) {
			buf := make([]byte, 1)
			c.Read(buf)
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
		}, tls: &TLSSettings{}, want: ReasonProtocolMismatch},
		{name: "stalled handshake", handle: waitClosed, tls: &TLSSettings{}, want: ReasonTLSHandshakeTimeout},
		{name: "closed in handshake", handle: func(c net.Conn) {
			// Read the whole ClientHello so that closing sends a FIN.
			hdr := make([]byte, 5)
			if _, err := io.ReadFull(c, hdr); err == nil {
				io.ReadFull(c, make([]byte, int(hdr[3])<<8|int(hdr[4])))
			}
		}, tls: &TLSSettings{}, want: ReasonTLSHandshakeFailed},
		{name: "reset in handshake", handle: resetClose, tls: &TLSSettings{}, want: ReasonConnectionReset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b *backend
			if tt.handle != nil {
				b = serveTCP(t, tt.handle)
			} else {
				b = tlsBackend(t, tt.server)
			}
			tg := b.target("https")
			tg.ConnectTimeout = 500 * time.Millisecond
			tg.TLS = tt.tls
			r := runProbe(t, tg)
			checkResult(t, r, tt.want)
			if tt.want == ReasonNone && r.HTTPStatus != 200 {
				t.Errorf("status = %d", r.HTTPStatus)
			}
			if !tt.expiry.IsZero() && !r.TLSNotAfter.Equal(tt.expiry) {
				t.Errorf("TLSNotAfter = %v, want %v", r.TLSNotAfter, tt.expiry)
			}
			if tt.want == ReasonProtocolMismatch && !strings.Contains(r.Detail, speaksHTTP) {
				t.Errorf("detail = %q", r.Detail)
			}
		})
	}
}

func TestTLSFilesReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	year := time.Now().Add(365 * 24 * time.Hour)
	ca1 := testutil.MustCert(t, "CA one", testutil.CertOptions{CA: true, NotAfter: year})
	ca2 := testutil.MustCert(t, "CA two", testutil.CertOptions{CA: true, NotAfter: year})
	path, _ := ca1.MustWritePEM(t, dir, "ca")
	f := newTLSFiles()
	p1, err := f.pool(path)
	if err != nil {
		t.Fatal(err)
	}
	if p2, _ := f.pool(path); p2 != p1 {
		t.Fatal("pool not cached")
	}
	ca2.MustWritePEM(t, dir, "ca")
	os.Chtimes(path, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	if p3, _ := f.pool(path); p3 == p1 {
		t.Fatal("pool not reloaded after the file changed")
	}
	if _, err := f.pool(filepath.Join(dir, "missing.pem")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestTLSVersions(t *testing.T) {
	lo, hi := tlsVersions(nil)
	if lo != tls.VersionTLS12 || hi != tls.VersionTLS13 {
		t.Errorf("default = %x..%x", lo, hi)
	}
	lo, hi = tlsVersions([]string{"TLSv1", "TLSv1.1", "SSLv3"})
	if lo != tls.VersionTLS10 || hi != tls.VersionTLS11 {
		t.Errorf("old = %x..%x", lo, hi)
	}
}
