package e2e

import (
	"crypto/tls"
	"slices"
	"sync"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// helloRecorder keeps the key-exchange groups of every ClientHello a TLS
// backend receives, from nginx and from the exporter alike.
type helloRecorder struct {
	mu     sync.Mutex
	hellos [][]tls.CurveID
}

func (h *helloRecorder) tweak(c *tls.Config) {
	c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		h.mu.Lock()
		h.hellos = append(h.hellos, slices.Clone(hello.SupportedCurves))
		h.mu.Unlock()
		return nil, nil
	}
}

// goGroups are the groups Go implements: the only ones the exporter could
// offer.
var goGroups = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521, tls.X25519MLKEM768, tls.SecP256r1MLKEM768, tls.SecP384r1MLKEM1024}

// TestTLSGroupsAsNginx compares the groups nginx's OpenSSL offers a TLS
// upstream with the exporter's, and runs the verdicts for backends that
// accept a single group through nginx and the exporter.
func TestTLSGroupsAsNginx(t *testing.T) {
	table, err := loadMapping(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	rec := &helloRecorder{}
	t.Run("offered", func(t *testing.T) {
		runScenario(t, table, scenario{
			name:    "tls_groups_offered",
			servers: []server{{"app", tlsHTTP(goodCert, rec.tweak), prober.ReasonNone}},
			conf:    `location / { proxy_pass https://{{.app}}; }`,
		})
		rec.mu.Lock()
		defer rec.mu.Unlock()
		// nginx's hello carries a group Go does not implement (X448);
		// the exporter's does not. Of the groups Go implements,
		// both must offer the same.
		var fromNginx, fromExporter [][]tls.CurveID
		for _, h := range rec.hellos {
			if slices.ContainsFunc(h, func(c tls.CurveID) bool { return !slices.Contains(goGroups, c) }) {
				fromNginx = append(fromNginx, h)
			} else {
				fromExporter = append(fromExporter, h)
			}
		}
		if len(fromNginx) == 0 || len(fromExporter) == 0 {
			t.Fatalf("hellos from nginx %d, from the exporter %d, want both: %v", len(fromNginx), len(fromExporter), rec.hellos)
		}
		want := common(fromNginx[0])
		for _, h := range append(fromNginx, fromExporter...) {
			if got := common(h); !slices.Equal(got, want) {
				t.Errorf("groups Go implements in a hello: %v, nginx offers %v (nginx's full list %v)", got, want, fromNginx[0])
			}
		}
		if slices.Contains(want, tls.X25519MLKEM768) {
			t.Logf("this nginx offers X25519MLKEM768 (OpenSSL ≥ 3.5): the exporter does not")
		}
	})
	for _, sc := range []scenario{
		{
			// OpenSSL offers P-384 without a key share: the backend asks
			// for one (HelloRetryRequest) and both complete. TLS 1.3 is
			// named because nginx 1.22 leaves it out by default.
			name:    "tls_groups_p384_only",
			servers: []server{{"app", tlsHTTP(goodCert, onlyGroup(tls.CurveP384)), prober.ReasonNone}},
			conf:    `location / { proxy_pass https://{{.app}}; proxy_ssl_protocols TLSv1.2 TLSv1.3; }`,
		},
		{
			// Debian's nginx (OpenSSL 3.0) offers no post-quantum group:
			// it fails against a backend that requires one, and so must
			// the probe (Go's default would have succeeded).
			name:    "tls_groups_mlkem_only",
			servers: []server{{"app", tlsHTTP(goodCert, onlyGroup(tls.X25519MLKEM768)), prober.ReasonTLSHandshakeFailed}},
			conf:    `location / { proxy_pass https://{{.app}}; proxy_ssl_protocols TLSv1.2 TLSv1.3; }`,
		},
	} {
		t.Run(sc.name, func(t *testing.T) { runScenario(t, table, sc) })
	}
}

func onlyGroup(g tls.CurveID) func(*tls.Config) {
	return func(c *tls.Config) {
		c.CurvePreferences = []tls.CurveID{g}
		c.MinVersion = tls.VersionTLS13
	}
}

// common is the sorted part of groups that Go implements.
func common(groups []tls.CurveID) []tls.CurveID {
	var out []tls.CurveID
	for _, g := range groups {
		if slices.Contains(goGroups, g) {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return out
}
