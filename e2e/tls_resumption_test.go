package e2e

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// brokenResumption makes a TLS backend abort every handshake that offers
// a session to resume (a TLS 1.3 PSK), while full handshakes succeed: a
// server whose session-ticket keys or cache are broken.
func brokenResumption(c *tls.Config) {
	c.UnwrapSession = func([]byte, tls.ConnectionState) (*tls.SessionState, error) {
		return nil, errors.New("broken session resumption")
	}
}

// TestNginxSessionReuseAgainstBrokenResumption records what nginx does with
// proxy_ssl_session_reuse (on by default) against a backend that cannot
// resume: the first request (full handshake) succeeds, nginx keeps the
// session and offers it on every later connection, and every later request
// fails ("peer closed connection in SSL handshake", 502). With the
// directive off every request succeeds. The exporter, on the same
// nginx.conf, must agree after a few probes: tls_handshake_failed with
// reuse on, healthy with it off.
func TestNginxSessionReuseAgainstBrokenResumption(t *testing.T) {
	requireNginx(t)
	for _, tc := range []struct {
		name, directive string
		want            []int
		reason          string
	}{
		{"reuse on (default)", "", []int{200, 502, 502, 502}, "tls_handshake_failed"},
		{"reuse off", "proxy_ssl_session_reuse off;", []int{200, 200, 200, 200}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := &netEnv{}
			dir, err := os.MkdirTemp(baseDir, "tls_resumption-")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			s := &senv{t: t, net: env, dir: dir}
			backend := tlsHTTP(goodCert, brokenResumption)(s)
			data := map[string]string{"Dir": dir, "app": backend, "Listen": fmt.Sprintf("127.0.0.1:%d", env.freePort(t))}
			// TLS 1.3 named: nginx 1.22's default proxy_ssl_protocols
			// stops at TLS 1.2.
			conf := writeNginxConf(t, dir, data, "", `location / {
				proxy_pass https://{{.app}};
				proxy_ssl_protocols TLSv1.2 TLSv1.3;
				`+tc.directive+`
			}`)
			ngx, started := startNginx(t, env, dir, conf, data["Listen"])
			if !started {
				t.Fatalf("nginx did not start:\n%s", ngx.proc.output())
			}
			var got []int
			for range tc.want {
				got = append(got, ngx.get(t))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("nginx answered %v, want %v; error lines:\n%v", got, tc.want, ngx.errorLines())
			}

			requireExporter(t)
			x := startExporter(t, env, dir, conf)
			targets := []target{{server: backend, address: backend, match: []string{backend}}}
			deadline := time.Now().Add(30 * time.Second)
			for {
				v := x.waitForRuns(t, targets)[targets[0].key()]
				if v.runs >= 3 {
					if v.reason() != tc.reason {
						t.Errorf("exporter after %g probes: %v, want reason %q as nginx", v.runs, v, tc.reason)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("exporter: %v after 30 s", v)
				}
				time.Sleep(500 * time.Millisecond)
			}
		})
	}
}
