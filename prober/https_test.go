package prober

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

var serial int64

func newCert(t testing.TB, cn string, parent *testCert, isCA bool, notAfter time.Time, names ...string) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-2 * time.Hour),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: c, key: key, der: der}
}

func (c *testCert) tlsCert(chain ...*testCert) tls.Certificate {
	tc := tls.Certificate{Certificate: [][]byte{c.der}, PrivateKey: c.key}
	for _, p := range chain {
		tc.Certificate = append(tc.Certificate, p.der)
	}
	return tc
}

func writePEM(t testing.TB, dir, name string, c *testCert) (certPath, keyPath string) {
	t.Helper()
	certPath = filepath.Join(dir, name+".crt")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der}), 0o600); err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath = filepath.Join(dir, name+".key")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

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
	ca := newCert(t, "Test CA", nil, true, year)
	other := newCert(t, "Other CA", nil, true, year)
	inter := newCert(t, "Test Intermediate", ca, true, year)
	good := newCert(t, "backend.test", ca, false, year, "backend.test", "127.0.0.1")
	viaInter := newCert(t, "backend.test", inter, false, year, "backend.test")
	cnOnly := newCert(t, "cn.backend.test", ca, false, year)
	expired := newCert(t, "backend.test", ca, false, time.Now().Add(-time.Hour), "backend.test")
	untrusted := newCert(t, "backend.test", other, false, year, "backend.test")
	caPath, _ := writePEM(t, dir, "ca", ca)
	client := newCert(t, "nginx client", ca, false, year)
	clientCert, clientKey := writePEM(t, dir, "client", client)
	clientPool := x509.NewCertPool()
	clientPool.AddCert(ca.cert)

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
		{name: "verify off", server: server(untrusted.tlsCert()), tls: &TLSSettings{}, expiry: untrusted.cert.NotAfter},
		{name: "verified", server: server(good.tlsCert()), tls: verify("backend.test"), expiry: good.cert.NotAfter},
		{name: "verified by IP", server: server(good.tlsCert()), tls: verify("127.0.0.1")},
		{name: "CN when no SAN", server: server(cnOnly.tlsCert()), tls: verify("cn.backend.test")},
		{name: "intermediate within depth 1", server: server(viaInter.tlsCert(inter)), tls: verify("backend.test")},
		{name: "intermediate beyond depth 0", server: server(viaInter.tlsCert(inter)), tls: &TLSSettings{Verify: true, TrustedCertificate: caPath, VerifyName: "backend.test"}, want: ReasonTLSCertificateInvalid},
		{name: "untrusted", server: server(untrusted.tlsCert()), tls: verify("backend.test"), want: ReasonTLSCertificateInvalid, expiry: untrusted.cert.NotAfter},
		{name: "expired", server: server(expired.tlsCert()), tls: verify("backend.test"), want: ReasonTLSCertificateInvalid, expiry: expired.cert.NotAfter},
		{name: "wrong name", server: server(good.tlsCert()), tls: verify("other.test"), want: ReasonTLSCertificateInvalid},
		{name: "expired, verify off", server: server(expired.tlsCert()), tls: &TLSSettings{}, expiry: expired.cert.NotAfter},
		{name: "SNI sent", server: &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if h.ServerName != "backend.test" {
				return nil, os.ErrNotExist
			}
			c := good.tlsCert()
			return &c, nil
		}}, tls: &TLSSettings{ServerName: "backend.test"}},
		{name: "SNI required but off", server: &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if h.ServerName == "" {
				return nil, os.ErrNotExist
			}
			c := good.tlsCert()
			return &c, nil
		}}, tls: &TLSSettings{}, want: ReasonTLSHandshakeFailed},
		{name: "version mismatch", server: &tls.Config{Certificates: []tls.Certificate{good.tlsCert()}, MaxVersion: tls.VersionTLS12},
			tls: &TLSSettings{Protocols: []string{"TLSv1.3"}}, want: ReasonTLSHandshakeFailed},
		{name: "client certificate required, none", server: &tls.Config{Certificates: []tls.Certificate{good.tlsCert()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool},
			tls: &TLSSettings{}, want: ReasonTLSHandshakeFailed},
		{name: "client certificate required, TLS 1.2", server: &tls.Config{Certificates: []tls.Certificate{good.tlsCert()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool, MaxVersion: tls.VersionTLS12},
			tls: &TLSSettings{}, want: ReasonTLSHandshakeFailed},
		{name: "client certificate sent", server: &tls.Config{Certificates: []tls.Certificate{good.tlsCert()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool},
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
	ca1 := newCert(t, "CA one", nil, true, year)
	ca2 := newCert(t, "CA two", nil, true, year)
	path, _ := writePEM(t, dir, "ca", ca1)
	f := newTLSFiles()
	p1, err := f.pool(path)
	if err != nil {
		t.Fatal(err)
	}
	if p2, _ := f.pool(path); p2 != p1 {
		t.Fatal("pool not cached")
	}
	writePEM(t, dir, "ca", ca2)
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
