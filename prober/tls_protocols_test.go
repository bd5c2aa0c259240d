package prober

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// TLS is a property of the target, not of the protocol: every protocol
// whose scheme allows it gets nginx's handshake before its exchange. A
// backend speaking the protocol over TLS passes; the same backend without
// TLS is the "wrong version number" nginx logs, protocol_mismatch.
func TestTLSWrapsAnyProtocol(t *testing.T) {
	ca := testutil.MustCert(t, "CA", testutil.CertOptions{CA: true, NotAfter: time.Now().Add(time.Hour)})
	leaf := testutil.MustCert(t, "backend", testutil.CertOptions{Parent: ca, NotAfter: time.Now().Add(time.Hour), Names: []string{"backend.test"}})
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}
	overTLS := func(handle func(net.Conn)) func(net.Conn) {
		return func(c net.Conn) {
			tc := tls.Server(c, cfg)
			tc.SetDeadline(time.Now().Add(3 * time.Second))
			if tc.Handshake() != nil {
				return
			}
			handle(tc)
		}
	}
	tests := []struct {
		label  string // the protocol label, as the scheme names it
		handle func(net.Conn)
	}{
		{"suwsgi", uwsgiAnswer(t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false)},
		{"https", respond("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.label+"/tls backend", func(t *testing.T) {
			b := serveTCP(t, overTLS(tt.handle))
			tg := b.target(tt.label)
			if tg.TLS == nil {
				t.Fatalf("%s target without TLS", tt.label)
			}
			r := runProbe(t, tg)
			checkResult(t, r, ReasonNone)
			if r.Phases[PhaseTLS] == 0 || r.TLSNotAfter.IsZero() {
				t.Errorf("no TLS phase (%v) or certificate (%v) recorded", r.Phases[PhaseTLS], r.TLSNotAfter)
			}
		})
		t.Run(tt.label+"/plain backend", func(t *testing.T) {
			// A plain-text server answers the ClientHello as garbage,
			// as HTTP servers and uWSGI do.
			b := serveTCP(t, func(c net.Conn) {
				buf := make([]byte, 512)
				if _, err := c.Read(buf); err != nil {
					return
				}
				c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			})
			r := runProbe(t, b.target(tt.label))
			checkResult(t, r, ReasonProtocolMismatch)
		})
	}
	t.Run("uwsgi without TLS to a TLS backend", func(t *testing.T) {
		b := serveTCP(t, overTLS(uwsgiAnswer(t, "HTTP/1.1 200 OK\r\n\r\n", false)))
		r := runProbe(t, b.target("uwsgi"))
		if r.Success {
			t.Fatalf("plain uwsgi to a TLS listener succeeded")
		}
	})
}
