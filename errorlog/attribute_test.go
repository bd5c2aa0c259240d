package errorlog

import (
	"fmt"
	"net"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

func target(upstream, server, address, protocol, network string) *discovery.Target {
	return &discovery.Target{Key: discovery.Key{Upstream: upstream, Server: server, Address: address, Protocol: protocol}, Network: network}
}

func testIndex(t testing.TB) *Index {
	t.Helper()
	return NewIndex(&discovery.Set{Targets: []*discovery.Target{
		target("app", "10.0.0.5:8080", "10.0.0.5:8080", "http", "tcp"),
		target("other", "10.9.9.9:80", "10.9.9.9:80", "http", "tcp"),
		target("php", "unix:/run/php/fpm.sock", "unix:/run/php/fpm.sock", "fastcgi", "unix"),
		target("odd", "unix:/run/a:b.sock", "unix:/run/a:b.sock", "http", "unix"),
		target("noport", "10.0.0.7", "10.0.0.7", "http", "tcp"),
		// One server in two upstream blocks: never counted twice.
		target("shared1", "10.0.0.8:80", "10.0.0.8:80", "http", "tcp"),
		target("shared2", "10.0.0.8:80", "10.0.0.8:80", "http", "tcp"),
		// A server given by name, resolved at load time.
		target("dns", "backend.test:8080", "10.0.1.1:8080", "http", "tcp"),
		target("v6", "[::1]:8080", "[::1]:8080", "http", "tcp"),
		runtimeTarget("rt", "rt.test:9090"),
		target("db", "10.0.2.1:5432", "10.0.2.1:5432", "tcp", "tcp"),
		target("dbtls", "10.0.2.2:5432", "10.0.2.2:5432", "tls", "tcp"),
		target("both", "10.0.2.3:5432", "10.0.2.3:5432", "tcp", "tcp"),
		target("both", "10.0.2.3:5432", "10.0.2.3:5432", "tls", "tcp"),
		target("dns", "10.0.2.4:53", "10.0.2.4:53", "udp", "udp"),
		target("sock", "unix:/run/dgram.sock", "unix:/run/dgram.sock", "udp", "unixgram"),
	}})
}

// runtimeTarget is a target whose name nginx resolves per request.
func runtimeTarget(upstream, server string) *discovery.Target {
	t := target(upstream, server, server, "http", "tcp")
	host, port, _ := net.SplitHostPort(server)
	t.Probe = &prober.Peer{Network: "tcp", Resolve: &prober.RuntimeResolve{Host: host, Port: port}}
	return t
}

func TestAttribute(t *testing.T) {
	x := testIndex(t)
	cases := []struct {
		protocol, peer string
		upstream       string // of the target, "" for none
		known          string // the upstream of an unknown peer
	}{
		{"http", "10.0.0.5:8080/x", "app", ""},
		{"https", "10.0.0.5:8080/x", "", ""}, // protocol is part of the key
		{"fastcgi", "unix:/run/php/fpm.sock:", "php", ""},
		{"http", "unix:/run/a:b.sock:/x", "odd", ""},
		{"http", "10.0.0.7:80/", "noport", ""},
		{"http", "10.0.0.8:80/", "", ""},
		{"http", "10.0.1.1:8080/", "dns", ""},
		{"http", "10.0.1.2:8080/", "", "dns"}, // stale DNS answer
		{"http", "10.0.1.2:9999/", "", ""},
		{"http", "[::1]:8080/", "v6", ""},
		{"http", "[0:0::1]:8080/", "v6", ""},
		{"", "10.0.0.5:8080/x", "", ""},
		// A stream line over TCP does not say whether TLS wraps it.
		{"tcp", "10.0.2.1:5432\", bytes", "db", ""},
		{"tcp", "10.0.2.2:5432\", bytes", "dbtls", ""},
		{"tcp", "10.0.2.3:5432\", bytes", "", ""},
		{"tls", "10.0.2.3:5432\", bytes", "both", ""},
		{"udp", "10.0.2.4:53\", bytes", "dns", ""},
		{"udp", "unix:/run/dgram.sock\", bytes", "sock", ""},
		{"tcp", "10.0.2.4:53\", bytes", "", ""},
	}
	for _, tc := range cases {
		a := x.Attribute(tc.protocol, []byte(tc.peer))
		got := ""
		if a.Target != nil {
			got = a.Target.Upstream
		}
		if got != tc.upstream || a.Upstream != tc.known {
			t.Errorf("Attribute(%s, %s) = target %q, known upstream %q; want %q, %q", tc.protocol, tc.peer, got, a.Upstream, tc.upstream, tc.known)
		}
	}
	if a := x.AttributeHost([]byte("rt.test")); a.Target == nil || a.Target.Upstream != "rt" {
		t.Errorf("AttributeHost(rt.test) = %+v", a)
	}
	if a := x.AttributeHost([]byte("other.test")); a.Target != nil {
		t.Errorf("AttributeHost(other.test) = %+v", a.Target.Key)
	}
	if u, ok := x.Upstream([]byte("app/x")); !ok || u != "app" {
		t.Errorf("Upstream(app/x) = %q, %v", u, ok)
	}
	if _, ok := x.Upstream([]byte("nope/x")); ok {
		t.Error("unknown upstream name accepted")
	}
}

// TestAttributeNoDoubleCount runs lines through a Reader and checks every
// line is counted once, in exactly one place.
func TestAttributeNoDoubleCount(t *testing.T) {
	r := New(Options{})
	r.index.Store(testIndex(t))
	lines := ""
	for _, peer := range []string{"http://10.0.0.5:8080/", "http://10.0.0.8:80/", "http://10.0.1.2:8080/", "https://10.0.0.5:8080/"} {
		lines += fmt.Sprintf("2026/11/27 08:14:20 [error] 6#6: *2 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: s, request: \"GET / HTTP/1.1\", upstream: %q, host: \"h\"\n", peer)
	}
	var st lineState
	r.consume(&st, []byte(lines))
	s := r.Snapshot()
	if s.Lines[LineMatched] != 1 || s.Lines[LineUnattributed] != 3 {
		t.Errorf("lines = %v, want 1 matched, 3 unattributed", s.Lines)
	}
	if len(s.Targets) != 1 || s.Targets[0].Key.Upstream != "app" || s.Targets[0].Errors[prober.ReasonConnectionRefused] != 1 {
		t.Errorf("targets = %+v", s.Targets)
	}
	if s.Unattributed[prober.ReasonConnectionRefused] != 3 {
		t.Errorf("unattributed = %v", s.Unattributed)
	}
	if len(s.UnknownPeers) != 1 || s.UnknownPeers[0].Upstream != "dns" || s.UnknownPeers[0].Count != 1 {
		t.Errorf("unknown peers = %+v", s.UnknownPeers)
	}
	up := r.UnknownPeers()
	if len(up["dns"]) != 1 || up["dns"][0].Address != "10.0.1.2:8080" {
		t.Errorf("UnknownPeers() = %+v", up)
	}
}

func BenchmarkAttribute10k(b *testing.B) {
	set := &discovery.Set{}
	for i := range 10000 {
		addr := fmt.Sprintf("10.%d.%d.%d:8080", i>>16&255, i>>8&255, i&255)
		set.Targets = append(set.Targets, target(fmt.Sprintf("u%d", i/10), addr, addr, "http", "tcp"))
	}
	x := NewIndex(set)
	peer := []byte("10.0.39.15:8080/some/path")
	b.ReportAllocs()
	for b.Loop() {
		if a := x.Attribute("http", peer); a.Target == nil {
			b.Fatal("not attributed")
		}
	}
}

// TestIndexTablesAtScale: in tables filled to their bound, every IPv4
// and IPv6 peer is found at its target for its protocol only, a peer
// two targets share is nobody's, absent peers and upstreams are not
// found, and every upstream name is.
func TestIndexTablesAtScale(t *testing.T) {
	var targets []*discovery.Target
	for i := range 3000 {
		addr := fmt.Sprintf("10.%d.%d.%d:%d", i>>16&255, i>>8&255, i&255, 8000+i%7)
		targets = append(targets, target(fmt.Sprintf("u%d", i/3), addr, addr, "http", "tcp"))
	}
	targets = append(targets,
		target("v6", "[2001:db8::1]:80", "[2001:db8::1]:80", "http", "tcp"),
		target("dup1", "10.200.0.1:80", "10.200.0.1:80", "grpc", "tcp"),
		target("dup2", "10.200.0.1:80", "10.200.0.1:80", "grpc", "tcp"))
	x := NewIndex(&discovery.Set{Targets: targets})
	for i, tg := range targets[:3001] {
		if a := x.Attribute("http", []byte(tg.Address+"/x")); a.Target != tg {
			t.Fatalf("peer %s: %+v, want target %d", tg.Address, a, i)
		}
		if a := x.Attribute("grpc", []byte(tg.Address)); a.Target != nil {
			t.Fatalf("peer %s found for another protocol: %+v", tg.Address, a)
		}
		if u, ok := x.Upstream([]byte(tg.Upstream + "/x")); !ok || u != tg.Upstream {
			t.Fatalf("upstream %s: %q %v", tg.Upstream, u, ok)
		}
	}
	if a := x.Attribute("grpc", []byte("10.200.0.1:80")); a.Target != nil || a.Peer != "10.200.0.1:80" {
		t.Errorf("shared peer attributed: %+v", a)
	}
	for _, p := range []string{"10.0.0.0:8001", "10.99.0.1:8000", "[2001:db8::2]:80", "[::ffff:10.0.0.1]:8001"} {
		if a := x.Attribute("http", []byte(p)); a.Target != nil {
			t.Errorf("absent peer %s attributed: %+v", p, a)
		}
	}
	for _, u := range []string{"u1000", "u", "v", ""} {
		if _, ok := x.Upstream([]byte(u)); ok || x.hasUpstream(u) {
			t.Errorf("absent upstream %q found", u)
		}
	}
	if !x.hasUpstream("dup2") {
		t.Error("upstream dup2 not found")
	}
}
