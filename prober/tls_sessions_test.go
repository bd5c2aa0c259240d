package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// resumingBackend answers HTTP over TLS 1.3 and records, per connection,
// whether the handshake resumed a session. broken makes it abort every
// handshake that offers a session, as a backend with broken ticket keys.
func resumingBackend(t *testing.T, broken bool) (*backend, func() []bool) {
	year := time.Now().Add(365 * 24 * time.Hour)
	ca := testutil.MustCert(t, "Test CA", testutil.CertOptions{CA: true, NotAfter: year})
	leaf := testutil.MustCert(t, "backend.test", testutil.CertOptions{Parent: ca, NotAfter: year, Names: []string{"backend.test"}})
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}, MinVersion: tls.VersionTLS13}
	if broken {
		cfg.UnwrapSession = func([]byte, tls.ConnectionState) (*tls.SessionState, error) {
			return nil, errors.New("broken session resumption")
		}
	}
	var mu sync.Mutex
	var resumed []bool
	srv := serveTCP(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		tc.SetDeadline(time.Now().Add(3 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		mu.Lock()
		resumed = append(resumed, tc.ConnectionState().DidResume)
		mu.Unlock()
		if _, err := readHTTPRequest(tc); err != nil {
			return
		}
		tc.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		tc.Close()
	})
	return srv, func() []bool {
		mu.Lock()
		defer mu.Unlock()
		return append([]bool(nil), resumed...)
	}
}

func TestTLSSessionReuse(t *testing.T) {
	t.Run("resumes, with a full handshake every so often", func(t *testing.T) {
		srv, resumed := resumingBackend(t, false)
		tg := srv.target("https")
		tg.TLS.SessionReuse = true
		p := New()
		for i := range fullHandshakeEvery + 3 {
			r := &Result{}
			runOn(t, p, tg, r)
			checkResult(t, r, ReasonNone)
			if r.TLSNotAfter.IsZero() {
				t.Errorf("probe %d: no certificate expiry (resumed handshakes keep the original chain)", i)
			}
		}
		// Full, 10 resumed, full, resumed.
		want := []bool{false}
		for range fullHandshakeEvery {
			want = append(want, true)
		}
		want = append(want, false, true)
		if got := resumed(); !slices.Equal(got, want) {
			t.Errorf("resumed per probe %v, want %v", got, want)
		}
	})
	t.Run("broken resumption fails every probe after the first, as in nginx", func(t *testing.T) {
		srv, _ := resumingBackend(t, true)
		tg := srv.target("https")
		tg.TLS.SessionReuse = true
		p := New()
		for i := range fullHandshakeEvery + 3 {
			r := &Result{}
			runOn(t, p, tg, r)
			want := ReasonTLSHandshakeFailed
			if i == 0 {
				want = ReasonNone
			}
			if r.Reason != want {
				t.Fatalf("probe %d: reason %q, want %q (err %v)", i, r.Reason, want, r.Err)
			}
		}
	})
	t.Run("reuse off", func(t *testing.T) {
		srv, resumed := resumingBackend(t, true)
		tg := srv.target("https")
		p := New()
		for range 3 {
			r := &Result{}
			runOn(t, p, tg, r)
			checkResult(t, r, ReasonNone)
		}
		if got := resumed(); !slices.Equal(got, []bool{false, false, false}) {
			t.Errorf("resumed per probe %v, want none", got)
		}
	})
}

func runOn(t *testing.T, p *Table, tg *Peer, r *Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.Probe(ctx, tg, r)
}
