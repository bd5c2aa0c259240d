package prober

import (
	"crypto/tls"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// TestTLSGroupsAsNginx checks the key-exchange groups the probe offers
// (those of OpenSSL 3.0's client defaults that Go implements; Go chooses
// their order) and what follows for backends that accept only some groups.
func TestTLSGroupsAsNginx(t *testing.T) {
	year := time.Now().Add(365 * 24 * time.Hour)
	ca := testutil.MustCert(t, "Test CA", testutil.CertOptions{CA: true, NotAfter: year})
	leaf := testutil.MustCert(t, "backend.test", testutil.CertOptions{Parent: ca, NotAfter: year, Names: []string{"backend.test"}})

	t.Run("offered", func(t *testing.T) {
		var mu sync.Mutex
		var offered []tls.CurveID
		srv := tlsBackend(t, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			mu.Lock()
			offered = slices.Clone(h.SupportedCurves)
			mu.Unlock()
			return &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}, nil
		}})
		tg := srv.target("https")
		checkResult(t, runProbe(t, tg), ReasonNone)
		mu.Lock()
		defer mu.Unlock()
		want := []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}
		slices.Sort(offered)
		slices.Sort(want)
		if !slices.Equal(offered, want) {
			t.Errorf("offered groups %v, want %v (OpenSSL 3.0's defaults less X448)", offered, want)
		}
	})

	for _, tc := range []struct {
		name   string
		groups []tls.CurveID
		want   Reason
	}{
		// OpenSSL offers these too: nginx completes the handshake
		// (after a HelloRetryRequest for the NIST curves).
		{"X25519 only", []tls.CurveID{tls.X25519}, ReasonNone},
		{"P-256 only", []tls.CurveID{tls.CurveP256}, ReasonNone},
		{"P-384 only", []tls.CurveID{tls.CurveP384}, ReasonNone},
		// Debian's nginx (OpenSSL 3.0) offers no post-quantum group, so
		// it fails against a backend that requires one; Go's default
		// would have succeeded.
		{"X25519MLKEM768 only", []tls.CurveID{tls.X25519MLKEM768}, ReasonTLSHandshakeFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tlsBackend(t, &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}, CurvePreferences: tc.groups, MinVersion: tls.VersionTLS13})
			checkResult(t, runProbe(t, srv.target("https")), tc.want)
		})
	}
}
