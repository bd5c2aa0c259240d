package discovery

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeResolver answers from a table so no lookup leaves the test.
type fakeResolver map[string][]string

func (f fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if ips, ok := f[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func settings() nginxconf.Settings {
	return nginxconf.Settings{ConnectTimeout: 60 * time.Second, ReadTimeout: 60 * time.Second, SendTimeout: 60 * time.Second, BufferSize: 4096, HTTPVersion: "1.0"}
}

func tlsOn(s nginxconf.Settings) nginxconf.Settings {
	s.SSL.Enabled = true
	return s
}

func TestBuild(t *testing.T) {
	cfg := &nginxconf.Config{
		Servers: []nginxconf.UpstreamServer{
			{Upstream: "app", Server: "app.internal:3000", Host: "app.internal", Port: "3000", Protocol: protocol.HTTP, Settings: settings()},
			{Upstream: "app", Server: "gone.internal:3000", Host: "gone.internal", Port: "3000", Protocol: protocol.HTTP, Settings: settings()},
			{Upstream: "app", Server: "127.0.0.1:3001", Host: "127.0.0.1", Port: "3001", Protocol: protocol.HTTP, Settings: settings(), Params: nginxconf.ServerParams{Down: true}},
			{Upstream: "unix:/run/php.sock", Implicit: true, Server: "unix:/run/php.sock", SocketPath: "/run/php.sock", Protocol: protocol.FastCGI, Settings: settings()},
			{Upstream: "dyn", Server: "svc.internal:80", Host: "svc.internal", Port: "80", Protocol: protocol.HTTP, RuntimeResolve: true, Resolvers: []string{"127.0.0.53", "[::1]:5353"}, Settings: settings()},
			{Upstream: "[::1]:8443", Implicit: true, Server: "[::1]:8443", Host: "[::1]", Port: "8443", Protocol: protocol.HTTP, Settings: tlsOn(settings())},
			{Upstream: "secure", Server: "10.0.0.1:443", Host: "10.0.0.1", Port: "443", Protocol: protocol.HTTP,
				Settings: func() nginxconf.Settings {
					s := settings()
					s.SSL = nginxconf.SSLSettings{Enabled: true, Verify: true, ServerName: true}
					return s
				}()},
		},
		Dynamic: []nginxconf.DynamicPass{{Directive: "proxy_pass"}},
	}
	worker := &prober.Credentials{User: "nobody", UID: 65534, GID: 65534}
	set := Build(context.Background(), cfg, Options{
		Resolver: fakeResolver{"app.internal": {"10.1.0.1", "10.1.0.2"}},
		Worker:   worker,
	})

	byAddr := map[string]*Target{}
	for _, tg := range set.Targets {
		byAddr[tg.Address] = tg
	}
	if set.Probed != 7 || set.Down != 1 || set.Dynamic != 1 {
		t.Errorf("counts probed=%d down=%d dynamic=%d, want 7/1/1", set.Probed, set.Down, set.Dynamic)
	}
	for _, addr := range []string{"10.1.0.1:3000", "10.1.0.2:3000"} {
		tg := byAddr[addr]
		if tg == nil {
			t.Fatalf("no target for resolved peer %s", addr)
		}
		if tg.Server != "app.internal:3000" || tg.Probe.Address != addr || tg.Probe.Resolve != nil {
			t.Errorf("%s: %+v", addr, tg.Probe)
		}
		if tg.Probe.ReadTimeout != 60*time.Second || tg.ReadTimeout != 60*time.Second {
			t.Errorf("%s: the probe must wait as long as nginx (%v), got %v", addr, tg.ReadTimeout, tg.Probe.ReadTimeout)
		}
	}
	if tg := byAddr["gone.internal:3000"]; tg == nil || tg.Probe.Resolve == nil || !tg.Probe.Resolve.System {
		t.Errorf("unresolvable static name must keep address=server and resolve per probe: %+v", tg)
	}
	if tg := byAddr["127.0.0.1:3001"]; tg == nil || tg.Probe != nil {
		t.Errorf("down server must be listed without a probe: %+v", tg)
	}
	if tg := byAddr["unix:/run/php.sock"]; tg == nil || tg.Probe.Network != "unix" || tg.Probe.Address != "/run/php.sock" || tg.Probe.Worker != worker {
		t.Errorf("unix target: %+v", tg.Probe)
	}
	if tg := byAddr["svc.internal:80"]; tg == nil || tg.Probe.Resolve == nil ||
		tg.Probe.Resolve.Resolvers[0] != "127.0.0.53:53" || tg.Probe.Resolve.Resolvers[1] != "[::1]:5353" {
		t.Errorf("runtime-resolved target: %+v", tg.Probe.Resolve)
	}
	if tg := byAddr["[::1]:8443"]; tg == nil || tg.Probe.Address != "[::1]:8443" || tg.Probe.TLS.VerifyName != "::1" || tg.Probe.TLS.ServerName != "" {
		t.Errorf("ipv6 implicit https: %+v %+v", tg.Probe, tg.Probe.TLS)
	}
	if tg := byAddr["[::1]:8443"]; tg == nil || tg.Protocol != "https" || tg.Kind != (protocol.Kind{Protocol: protocol.HTTP, TLS: true}) {
		t.Errorf("the protocol label of HTTP over TLS is https: %+v", tg)
	}
	// proxy_ssl_name defaults to $proxy_host: the upstream block's name.
	if tg := byAddr["10.0.0.1:443"]; tg == nil || tg.Probe.TLS.VerifyName != "secure" || tg.Probe.TLS.ServerName != "secure" || !tg.Probe.TLS.Verify {
		t.Errorf("upstream https: %+v", tg.Probe.TLS)
	}
}

func TestBuildDeduplicatesPeers(t *testing.T) {
	cfg := &nginxconf.Config{Servers: []nginxconf.UpstreamServer{
		{Upstream: "u", Server: "a.internal:80", Host: "a.internal", Port: "80", Protocol: protocol.HTTP, Settings: settings()},
		{Upstream: "u", Server: "a.internal:80", Host: "a.internal", Port: "80", Protocol: protocol.HTTP, Settings: settings()},
	}}
	set := Build(context.Background(), cfg, Options{Resolver: fakeResolver{"a.internal": {"10.0.0.5"}}})
	if len(set.Targets) != 1 {
		t.Errorf("want one target for one peer, got %d", len(set.Targets))
	}
}

// pinned is what nginx resolved at its last load, per host.
type pinned map[string][]string

func (p pinned) NginxAddresses(host string) ([]string, bool) {
	ips, ok := p[host]
	return ips, ok
}

// TestBuildNginxAddresses: a static name is probed at the address nginx
// dials, not at what the name resolves to now; names nginx's addresses
// are unknown for, and names resolved at run time, are looked up as
// before.
func TestBuildNginxAddresses(t *testing.T) {
	cfg := &nginxconf.Config{Servers: []nginxconf.UpstreamServer{
		{Upstream: "app", Server: "app.test:3000", Host: "app.test", Port: "3000", Protocol: protocol.HTTP, Settings: settings()},
		{Upstream: "other", Server: "other.test:3000", Host: "other.test", Port: "3000", Protocol: protocol.HTTP, Settings: settings()},
		{Upstream: "dyn", Server: "dyn.test:80", Host: "dyn.test", Port: "80", Protocol: protocol.HTTP, RuntimeResolve: true, Settings: settings()},
	}}
	set := Build(context.Background(), cfg, Options{
		Resolver: fakeResolver{"app.test": {"127.0.0.3"}, "other.test": {"127.0.0.4"}, "dyn.test": {"127.0.0.5"}},
		Nginx:    pinned{"app.test": {"127.0.0.2"}, "dyn.test": {"127.0.0.9"}},
	})
	got := map[string]string{}
	for _, tg := range set.Targets {
		got[tg.Server] = tg.Address
	}
	want := map[string]string{"app.test:3000": "127.0.0.2:3000", "other.test:3000": "127.0.0.4:3000", "dyn.test:80": "dyn.test:80"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s probed at %q, want %q", k, got[k], v)
		}
	}
}
