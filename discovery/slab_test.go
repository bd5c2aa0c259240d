package discovery

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// adjacent reports whether b starts where a ends in memory.
func adjacent(a, b string) bool {
	return uintptr(unsafe.Pointer(unsafe.StringData(a)))+uintptr(len(a)) == uintptr(unsafe.Pointer(unsafe.StringData(b)))
}

// A set is a few allocations: targets, peers, labels and source
// positions each in one block, in configuration order; a down server has
// no peer, and servers of one block share their positions.
func TestSetAllocatedTogether(t *testing.T) {
	src := []string{"/etc/nginx/nginx.conf:10"}
	cfg := &nginxconf.Config{Servers: []nginxconf.UpstreamServer{
		{Upstream: "app", Server: "app.internal:3000", Host: "app.internal", Port: "3000", Protocol: protocol.HTTP, Settings: settings(), Sources: src[:1:1]},
		{Upstream: "app", Server: "127.0.0.1:3001", Host: "127.0.0.1", Port: "3001", Protocol: protocol.HTTP, Settings: settings(), Params: nginxconf.ServerParams{Down: true}, Sources: src[:1:1]},
		{Upstream: "app", Server: "127.0.0.1:3002", Host: "127.0.0.1", Port: "3002", Protocol: protocol.HTTP, Settings: settings(), Sources: src[:1:1]},
		{Upstream: "unix:/run/php.sock", Implicit: true, Server: "unix:/run/php.sock", SocketPath: "/run/php.sock", Protocol: protocol.FastCGI, Settings: settings(),
			Sources: []string{"/etc/nginx/nginx.conf:20", "/etc/nginx/nginx.conf:30"}},
		// One peer twice (a name resolving to an address written too):
		// one target.
		{Upstream: "app", Server: "127.0.0.1:3002", Host: "127.0.0.1", Port: "3002", Protocol: protocol.HTTP, Settings: settings(), Sources: []string{"/etc/nginx/nginx.conf:40"}},
	}}
	set := Build(context.Background(), cfg, Options{Resolver: fakeResolver{"app.internal": {"10.1.0.1", "10.1.0.2"}}})
	ts := set.Targets
	var got []string
	for _, tg := range ts {
		got = append(got, tg.Address)
	}
	if want := "10.1.0.1:3000 10.1.0.2:3000 127.0.0.1:3001 127.0.0.1:3002 unix:/run/php.sock"; strings.Join(got, " ") != want {
		t.Fatalf("targets %v, want %s", got, want)
	}
	if set.Probed != 4 || set.Down != 1 || ts[2].Probe != nil {
		t.Fatalf("probed %d down %d", set.Probed, set.Down)
	}
	size := unsafe.Sizeof(Target{})
	for i := 1; i < len(ts); i++ {
		if uintptr(unsafe.Pointer(ts[i])) != uintptr(unsafe.Pointer(ts[i-1]))+size {
			t.Errorf("targets %d and %d are not neighbours in one slice", i-1, i)
		}
		if !adjacent(ts[i-1].Labels(), ts[i].Labels()) {
			t.Errorf("labels of targets %d and %d are not one string", i-1, i)
		}
	}
	// The peers of the probed targets, down one skipped.
	probed := []*Target{ts[0], ts[1], ts[3], ts[4]}
	for i := 1; i < len(probed); i++ {
		if uintptr(unsafe.Pointer(probed[i].Probe)) != uintptr(unsafe.Pointer(probed[i-1].Probe))+unsafe.Sizeof(*probed[0].Probe) {
			t.Errorf("peers %d and %d are not neighbours in one slice", i-1, i)
		}
	}
	// Source positions: copies (the model goes), one per distinct
	// position, the servers of the block sharing one list.
	if unsafe.SliceData(ts[0].Sources) != unsafe.SliceData(ts[2].Sources) || unsafe.SliceData(ts[0].Sources) == unsafe.SliceData(src) {
		t.Error("the servers of one block do not share one copy of their positions")
	}
	if unsafe.StringData(ts[0].Sources[0]) == unsafe.StringData(src[0]) {
		t.Error("the position is the model's string")
	}
	if s := ts[4].Sources; len(s) != 2 || s[0] != "/etc/nginx/nginx.conf:20" || s[1] != "/etc/nginx/nginx.conf:30" || !adjacent(ts[0].Sources[0], s[0]) || !adjacent(s[0], s[1]) {
		t.Errorf("positions %q are not in one string", s)
	}
	if ts[3].Sources[0] != "/etc/nginx/nginx.conf:10" || cap(ts[3].Sources) != 1 {
		t.Errorf("the duplicate peer's positions %q (cap %d): appending would write into another list", ts[3].Sources, cap(ts[3].Sources))
	}
	if p := ts[4].Probe; p.Address != "/run/php.sock" || !within(p.Address, ts[4].Labels()) {
		t.Errorf("socket path %q is not a slice of the labels", p.Address)
	}
	if p := ts[3].Probe; p.Address != "127.0.0.1:3002" || !within(p.Address, ts[3].Labels()) {
		t.Errorf("address %q is not a slice of the labels", p.Address)
	}
}

// The dialled address of an IP literal is the server as written when
// that is how JoinHostPort writes it, else built.
func TestDialledAddressOfLiteral(t *testing.T) {
	cfg := &nginxconf.Config{Servers: []nginxconf.UpstreamServer{
		{Upstream: "a", Server: "[::1]:8443", Host: "[::1]", Port: "8443", Protocol: protocol.HTTP, Settings: settings()},
		{Upstream: "a", Server: "127.0.0.1", Host: "127.0.0.1", Port: "80", Protocol: protocol.HTTP, Settings: settings()},
		{Upstream: "a", Server: "[::1]", Host: "[::1]", Port: "80", Protocol: protocol.HTTP, Settings: settings()},
		{Upstream: "a", Server: "127.0.0.1:81", Host: "127.0.0.1", Port: "81", Protocol: protocol.HTTP, Settings: settings()},
	}}
	want := []string{"[::1]:8443", "127.0.0.1:80", "[::1]:80", "127.0.0.1:81"}
	for i, tg := range Build(context.Background(), cfg, Options{}).Targets {
		if tg.Probe.Address != want[i] {
			t.Errorf("%s: dials %q, want %q", tg.Server, tg.Probe.Address, want[i])
		}
	}
	for _, tt := range []struct{ s, host, port string }{
		{"[::1]:8443", "::1", "8443"}, {"127.0.0.1:80", "127.0.0.1", "80"}, {"[fe80::1]:1", "fe80::1", "1"},
		{"127.0.0.1:8", "127.0.0.1", "80"}, {"127.0.0.1", "127.0.0.1", "80"}, {"::1:80", "::1", "80"}, {"[::1]80", "::1", "80"},
	} {
		if got, want := joinsTo(tt.s, tt.host, tt.port), tt.s == net.JoinHostPort(tt.host, tt.port); got != want {
			t.Errorf("joinsTo(%q, %q, %q) = %v, want %v", tt.s, tt.host, tt.port, got, want)
		}
	}
}

// With verification off each block names its own server, so its TLS
// settings are its own; they are still one value per block, their
// protocol list one copy for all, not the model's.
func TestTLSSettingsPerBlock(t *testing.T) {
	var servers []nginxconf.UpstreamServer
	for i := range 100 {
		s := tlsOn(settings())
		s.SSL.Protocols = nginxconf.DefaultSSLProtocols()
		for j := range 2 {
			servers = append(servers, nginxconf.UpstreamServer{Upstream: fmt.Sprintf("b%d", i), Server: fmt.Sprintf("127.0.0.%d:%d", 1+j, 1000+i),
				Host: fmt.Sprintf("127.0.0.%d", 1+j), Port: fmt.Sprint(1000 + i), Protocol: protocol.HTTP, Settings: s})
		}
	}
	cfg := &nginxconf.Config{Servers: servers}
	ts := Build(context.Background(), cfg, Options{}).Targets
	for i := range cfg.Servers {
		cfg.Servers[i].Settings.SSL.Protocols[0] = "changed"
	}
	seen := map[any]bool{}
	for i, tg := range ts {
		s := tg.Probe.TLS
		if s.VerifyName != tg.Upstream || strings.Join(s.Protocols, " ") != "TLSv1.2 TLSv1.3" || s.Ciphers != "" || !s.SessionReuse {
			t.Fatalf("%s: %+v", tg.Key, s)
		}
		if unsafe.SliceData(s.Protocols) != unsafe.SliceData(ts[0].Probe.TLS.Protocols) {
			t.Errorf("%s: a protocol list of its own", tg.Key)
		}
		if i%2 == 1 {
			if s != ts[i-1].Probe.TLS {
				t.Errorf("%s: the servers of a block do not share their TLS settings", tg.Key)
			}
			continue
		}
		if seen[s] {
			t.Errorf("%s: TLS settings handed out twice", tg.Key)
		}
		seen[s] = true
	}
}

// derivedCounter counts the handlers derived with attributes.
type derivedCounter struct {
	slog.Handler
	n *atomic.Int64
}

func (h derivedCounter) WithAttrs(as []slog.Attr) slog.Handler {
	h.n.Add(1)
	return derivedCounter{h.Handler.WithAttrs(as), h.n}
}

func (h derivedCounter) WithGroup(name string) slog.Handler {
	return derivedCounter{h.Handler.WithGroup(name), h.n}
}

// A target's logger writes every line exactly as a logger built with the
// target's attributes would, and keeps nothing: the attributes are added
// for each line, none is derived to ask about a level, and asking for the
// logger costs nothing.
func TestTargetLoggerKeepsNothing(t *testing.T) {
	cfg := &nginxconf.Config{Servers: []nginxconf.UpstreamServer{
		{Upstream: "app", Server: "127.0.0.1:3000", Host: "127.0.0.1", Port: "3000", Protocol: protocol.HTTP, Settings: settings()},
	}}
	var buf, ref bytes.Buffer
	var n atomic.Int64
	base := slog.New(derivedCounter{slog.NewTextHandler(&buf, nil), &n}).With("component", "scheduler").WithGroup("g")
	n.Store(0)
	tg := Build(context.Background(), cfg, Options{Logger: base}).Targets[0]
	refBase := slog.New(slog.NewTextHandler(&ref, nil)).With("component", "scheduler").WithGroup("g")
	want := refBase.With("upstream", tg.Upstream, "server", tg.Server, "address", tg.Address, "protocol", tg.Protocol)

	l := tg.Logger()
	if l != tg.Logger() || l != tg.Probe.Logger {
		t.Fatal("the target and its peer have different loggers")
	}
	if l.Enabled(context.Background(), slog.LevelDebug) || !l.Enabled(context.Background(), slog.LevelInfo) || n.Load() != 0 {
		t.Fatalf("levels are not the base logger's, or asking built a handler (%d)", n.Load())
	}
	l.Warn("upstream server failing", "reason", "connection_refused", "err", "connect: refused")
	want.Warn("upstream server failing", "reason", "connection_refused", "err", "connect: refused")
	l.Debug("not logged")
	if n.Load() != 1 {
		t.Errorf("%d handlers derived for one line", n.Load())
	}
	// A logger derived from the target's is the caller's to keep: its
	// own attributes on top of the target's.
	l.With("k", "v").WithGroup("sub").Info("recovered", "x", 1)
	want.With("k", "v").WithGroup("sub").Info("recovered", "x", 1)
	if n.Load() != 3 {
		t.Errorf("%d handlers derived for a line and a With", n.Load())
	}
	stamp := regexp.MustCompile(`time=\S+ `)
	if got, exp := stamp.ReplaceAllString(buf.String(), ""), stamp.ReplaceAllString(ref.String(), ""); got != exp || !strings.Contains(got, "g.upstream=app g.server=127.0.0.1:3000") {
		t.Errorf("lines\n%s\nwant\n%s", got, exp)
	}
	if testutil.RaceEnabled {
		return
	}
	if a := testing.AllocsPerRun(100, func() {
		_ = tg.Logger().Enabled(context.Background(), slog.LevelInfo)
		_ = tg.Probe.Logger.Enabled(context.Background(), slog.LevelDebug)
	}); a != 0 {
		t.Errorf("asking for the logger and its level allocates %.0f times", a)
	}
	// A target built by hand has no base logger: it logs nothing.
	if (&Target{}).Logger().Enabled(context.Background(), slog.LevelError) {
		t.Error("a target built by hand logs")
	}
}

// Servers resolved at run time under one `resolver` share its
// addresses; another `resolver` has its own.
func TestResolversShared(t *testing.T) {
	rs, other := []string{"127.0.0.53", "[::1]:5353"}, []string{"127.0.0.54"}
	cfg := &nginxconf.Config{Servers: []nginxconf.UpstreamServer{
		{Upstream: "a", Server: "a.internal:80", Host: "a.internal", Port: "80", Protocol: protocol.HTTP, RuntimeResolve: true, Resolvers: rs, Settings: settings()},
		{Upstream: "b", Server: "b.internal:80", Host: "b.internal", Port: "80", Protocol: protocol.HTTP, RuntimeResolve: true, Resolvers: slices.Clone(rs), Settings: settings()},
		{Upstream: "c", Server: "c.internal:80", Host: "c.internal", Port: "80", Protocol: protocol.HTTP, RuntimeResolve: true, Resolvers: other, Settings: settings()},
		{Upstream: "d", Server: "d.internal:80", Host: "d.internal", Port: "80", Protocol: protocol.HTTP, RuntimeResolve: true, Settings: settings()},
	}}
	ts := Build(context.Background(), cfg, Options{}).Targets
	got := func(i int) []string { return ts[i].Probe.Resolve.Resolvers }
	if strings.Join(got(0), " ") != "127.0.0.53:53 [::1]:5353" || strings.Join(got(2), " ") != "127.0.0.54:53" || got(3) == nil || len(got(3)) != 0 {
		t.Fatalf("resolvers %q %q %q", got(0), got(2), got(3))
	}
	if unsafe.SliceData(got(0)) != unsafe.SliceData(got(1)) {
		t.Error("one resolver's addresses are not shared")
	}
}

// Each target gets exactly the protocol list of its settings, nil, empty
// and [""] told apart, however the lists follow each other.
func TestTLSProtocolListsExact(t *testing.T) {
	lists := [][]string{nil, {}, {""}, {"TLSv1.2"}, {"TLSv1.2"}, {"TLSv1.2", "TLSv1.3"}, nil, {""}, {}}
	var servers []nginxconf.UpstreamServer
	for i, l := range lists {
		s := tlsOn(settings())
		s.SSL.Protocols = l
		servers = append(servers, nginxconf.UpstreamServer{Upstream: "a", Server: fmt.Sprintf("127.0.0.1:%d", 1+i), Host: "127.0.0.1", Port: fmt.Sprint(1 + i), Protocol: protocol.HTTP, Settings: s})
	}
	ts := Build(context.Background(), &nginxconf.Config{Servers: servers}, Options{}).Targets
	for i, tg := range ts {
		got := tg.Probe.TLS.Protocols
		if !slices.Equal(got, lists[i]) || (got == nil) != (lists[i] == nil) {
			t.Errorf("target %d: protocols %#v, want %#v", i, got, lists[i])
		}
	}
	if ts[3].Probe.TLS != ts[4].Probe.TLS || ts[0].Probe.TLS != ts[6].Probe.TLS || ts[1].Probe.TLS == ts[0].Probe.TLS {
		t.Error("TLS settings shared wrongly")
	}
}
