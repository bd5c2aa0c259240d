package dnstest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func resolverFor(addr string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

func TestServer(t *testing.T) {
	s := Start(t, map[string][]netip.Addr{
		"backend.test.": {netip.MustParseAddr("127.0.0.7"), netip.MustParseAddr("127.0.0.8")},
		"v6.test":       {netip.MustParseAddr("::1")},
	})
	r := resolverFor(s.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	tests := []struct {
		name     string
		network  string
		want     []string
		notFound bool
	}{
		{name: "backend.test", network: "ip4", want: []string{"127.0.0.7", "127.0.0.8"}},
		{name: "BACKEND.test.", network: "ip4", want: []string{"127.0.0.7", "127.0.0.8"}},
		{name: "v6.test", network: "ip6", want: []string{"::1"}},
		{name: "missing.invalid", network: "ip4", notFound: true},
		{name: "backend.test", network: "ip6", notFound: true}, // NOERROR, no AAAA
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.network, func(t *testing.T) {
			ips, err := r.LookupIP(ctx, tt.network, tt.name)
			if tt.notFound {
				var dnsErr *net.DNSError
				if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
					t.Fatalf("LookupIP(%q) = %v, %v; want not found", tt.name, ips, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LookupIP(%q): %v", tt.name, err)
			}
			var got []string
			for _, ip := range ips {
				got = append(got, ip.String())
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("LookupIP(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
	if q := s.Queries(); !slices.Contains(q, "missing.invalid A") {
		t.Errorf("Queries() = %v, want it to contain %q", q, "missing.invalid A")
	}
}

func TestMalformedQueriesAreIgnoredOrRefused(t *testing.T) {
	s := Start(t, nil)
	c, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A header claiming one question but carrying a truncated name.
	if _, err := c.Write([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 'a'}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no answer to a malformed query: %v", err)
	}
	if n < 12 || buf[3]&0xf != rcodeFormErr {
		t.Fatalf("answer % x, want FORMERR", buf[:n])
	}
}

// TestSet: a name moves, then disappears, while the server runs.
func TestSet(t *testing.T) {
	s := Start(t, map[string][]netip.Addr{"app.test": {netip.MustParseAddr("127.0.0.2")}})
	r := resolverFor(s.Addr())
	lookup := func() ([]string, error) { return r.LookupHost(context.Background(), "app.test") }
	if got, err := lookup(); err != nil || len(got) != 1 || got[0] != "127.0.0.2" {
		t.Fatalf("before Set: %v, %v", got, err)
	}
	s.Set("app.test", netip.MustParseAddr("127.0.0.3"))
	if got, err := lookup(); err != nil || len(got) != 1 || got[0] != "127.0.0.3" {
		t.Fatalf("after Set: %v, %v", got, err)
	}
	s.Set("app.test")
	var de *net.DNSError
	if _, err := lookup(); !errors.As(err, &de) || !de.IsNotFound {
		t.Fatalf("after removal: %v, want NXDOMAIN", err)
	}
}
