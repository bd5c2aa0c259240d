package discovery

import (
	"context"
	"reflect"
	"testing"
	"unsafe"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// within reports whether s's bytes lie inside whole's.
func within(s, whole string) bool {
	if len(s) == 0 {
		return true
	}
	p, w := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(whole)))
	return p >= w && p+uintptr(len(s)) <= w+uintptr(len(whole))
}

// A target's labels are rendered once, escaped as the text format wants,
// and its Key's strings are slices of them: one copy of each name.
func TestLabels(t *testing.T) {
	cfg := &nginxconf.Config{Servers: []nginxconf.UpstreamServer{
		{Upstream: "app", Server: "127.0.0.1:3000", Host: "127.0.0.1", Port: "3000", Protocol: protocol.HTTP, Settings: settings()},
		{Upstream: "app.internal", Server: "app.internal:80", Host: "app.internal", Port: "80", Protocol: protocol.HTTP, Settings: tlsOn(settings())},
		{Upstream: "odd\"up\\stream\n", Server: "127.0.0.2:3000", Host: "127.0.0.2", Port: "3000", Protocol: protocol.FastCGI, Settings: settings()},
	}}
	set := Build(context.Background(), cfg, Options{Resolver: fakeResolver{"app.internal": {"10.0.0.1"}}})
	if len(set.Targets) != 3 {
		t.Fatalf("%d targets", len(set.Targets))
	}
	want := []string{
		`upstream="app",server="127.0.0.1:3000",address="127.0.0.1:3000",protocol="http"`,
		`upstream="app.internal",server="app.internal:80",address="10.0.0.1:80",protocol="https"`,
		`upstream="odd\"up\\stream\n",server="127.0.0.2:3000",address="127.0.0.2:3000",protocol="fastcgi"`,
	}
	for i, tg := range set.Targets {
		if got := tg.Labels(); got != want[i] {
			t.Errorf("labels\n got %s\nwant %s", got, want[i])
		}
		if !within(tg.Server, tg.Labels()) || !within(tg.Address, tg.Labels()) {
			t.Errorf("%s: server and address are copies, not slices of the labels", tg.Key)
		}
		if !within(tg.Probe.Address, tg.Labels()) {
			t.Errorf("%s: the dialled address %q is a copy", tg.Key, tg.Probe.Address)
		}
	}
	if tg := set.Targets[0]; !within(tg.Upstream, tg.Labels()) || !within(tg.Probe.Host, tg.Labels()) {
		t.Errorf("upstream name and Host header are copies, not slices of the labels")
	}
	if tg := set.Targets[1]; !within(tg.Probe.TLS.VerifyName, tg.Labels()) {
		t.Errorf("TLS name is a copy, not a slice of the labels")
	}
	// The escaped name keeps its raw value in the Key.
	if tg := set.Targets[2]; tg.Upstream != "odd\"up\\stream\n" {
		t.Errorf("upstream %q", tg.Upstream)
	}
}

// Targets with equal settings share one value; different ones do not.
func TestSettingsShared(t *testing.T) {
	verify := tlsOn(settings())
	verify.SSL.Verify = true
	cfg := &nginxconf.Config{Servers: []nginxconf.UpstreamServer{
		{Upstream: "a", Server: "127.0.0.1:1", Host: "127.0.0.1", Port: "1", Protocol: protocol.HTTP, Settings: tlsOn(settings())},
		{Upstream: "a", Server: "127.0.0.1:2", Host: "127.0.0.1", Port: "2", Protocol: protocol.HTTP, Settings: tlsOn(settings())},
		{Upstream: "a", Server: "127.0.0.1:3", Host: "127.0.0.1", Port: "3", Protocol: protocol.HTTP, Settings: verify},
		{Upstream: "a", Server: "127.0.0.1:4", Host: "127.0.0.1", Port: "4", Protocol: protocol.HTTP, Settings: settings(), Params: nginxconf.ServerParams{Weight: 5}},
	}}
	ts := Build(context.Background(), cfg, Options{}).Targets
	if ts[0].ServerSettings != ts[1].ServerSettings || ts[0].Probe.TLS != ts[1].Probe.TLS || ts[0].Probe.Exchange != ts[1].Probe.Exchange {
		t.Error("equal settings are not shared")
	}
	if ts[0].Probe.TLS == ts[2].Probe.TLS || !ts[2].Probe.TLS.Verify {
		t.Error("different TLS settings are shared")
	}
	if ts[0].ServerSettings == ts[3].ServerSettings || ts[3].Params.Weight != 5 {
		t.Error("different server parameters are shared")
	}
	if !ts[0].Probe.TLS.SessionReuse {
		t.Error("shared TLS settings must leave sessions to each peer")
	}
}

// The interner's keys name every field of what they share: a field added
// to one of these types must join its key, or two targets that differ in
// it would share one value.
func TestInternKeysCoverEveryField(t *testing.T) {
	for _, tt := range []struct {
		v    any
		want int
	}{
		{prober.TLSSettings{}, 10},
		{prober.Exchange{}, 4},
		{prober.HTTPSettings{}, 6},
		{prober.FastCGISettings{}, 1},
		{prober.MemcachedSettings{}, 1},
		{prober.GRPCSettings{}, 1},
	} {
		if n := reflect.TypeOf(tt.v).NumField(); n != tt.want {
			t.Errorf("%T has %d fields, the interner's key knows %d (intern.go)", tt.v, n, tt.want)
		}
	}
}

// overrideFor sets a probe path and status for one upstream.
type overrideFor string

func (o overrideFor) Apply(upstream string, p *prober.Peer) {
	if upstream == string(o) {
		p.HTTP.Path = "/healthz"
		p.HTTP.ExpectStatus = []int{200}
	}
}

// Requests changed by the exporter's configuration are shared only with
// equal ones.
func TestOverriddenRequestsShared(t *testing.T) {
	cfg := &nginxconf.Config{Servers: []nginxconf.UpstreamServer{
		{Upstream: "a", Server: "127.0.0.1:1", Host: "127.0.0.1", Port: "1", Protocol: protocol.HTTP, Settings: settings()},
		{Upstream: "a", Server: "127.0.0.1:2", Host: "127.0.0.1", Port: "2", Protocol: protocol.HTTP, Settings: settings()},
		{Upstream: "b", Server: "127.0.0.1:3", Host: "127.0.0.1", Port: "3", Protocol: protocol.HTTP, Settings: settings()},
	}}
	ts := Build(context.Background(), cfg, Options{Overrides: overrideFor("a")}).Targets
	if ts[0].Probe.Exchange != ts[1].Probe.Exchange {
		t.Error("equal requests are not shared")
	}
	if ts[0].Probe.Exchange == ts[2].Probe.Exchange || ts[2].Probe.HTTP.Path != "/" || ts[2].Probe.HTTP.ExpectStatus != nil {
		t.Errorf("upstream b got a's request: %+v", ts[2].Probe.HTTP)
	}
	if ts[0].Probe.HTTP.Path != "/healthz" || len(ts[0].Probe.HTTP.ExpectStatus) != 1 {
		t.Errorf("upstream a lost its override: %+v", ts[0].Probe.HTTP)
	}
}

// A server nginx resolves at run time keeps its resolver even when the
// same name, written without `resolve` elsewhere, resolved at load time.
func TestRuntimeResolveBesideStaticName(t *testing.T) {
	cfg := &nginxconf.Config{Servers: []nginxconf.UpstreamServer{
		{Upstream: "static", Server: "app.internal:80", Host: "app.internal", Port: "80", Protocol: protocol.HTTP, Settings: settings()},
		{Upstream: "dyn", Server: "app.internal:80", Host: "app.internal", Port: "80", Protocol: protocol.HTTP, RuntimeResolve: true, Resolvers: []string{"127.0.0.53"}, Settings: settings()},
	}}
	ts := Build(context.Background(), cfg, Options{Resolver: fakeResolver{"app.internal": {"10.0.0.1"}}}).Targets
	for _, tg := range ts {
		if tg.Upstream == "dyn" && (tg.Probe.Resolve == nil || tg.Probe.Resolve.Host != "app.internal") {
			t.Errorf("dyn: resolver lost: %+v", tg.Probe)
		}
		if tg.Upstream == "static" && (tg.Probe.Resolve != nil || tg.Probe.Address != "10.0.0.1:80") {
			t.Errorf("static: %+v", tg.Probe)
		}
	}
}
