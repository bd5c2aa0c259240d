package discovery

import (
	"context"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// stream{} servers become targets with the socket type of their listener
// and stream's settings: proxy_connect_timeout, proxy_timeout (read and
// send), proxy_ssl_* for "tls", resolver.
func TestLoadStream(t *testing.T) {
	conf := writeConf(t, `
events {}
stream {
	proxy_connect_timeout 3s;
	resolver 127.0.0.53;
	upstream dns {
		server 127.0.0.1:53;
		server unix:/run/dns.sock;
		server ns.internal:53 resolve;
	}
	server {
		listen 127.0.0.1:5353;
		listen 127.0.0.1:5353 udp;
		proxy_pass dns;
		proxy_timeout 30s;
	}
	server {
		listen 127.0.0.1:6379;
		proxy_pass 127.0.0.1:16379;
		proxy_ssl on;
		proxy_ssl_name cache.internal;
		proxy_ssl_server_name on;
		proxy_ssl_verify on;
	}
}`)
	loaded, err := Load(context.Background(), Options{NginxConfig: conf, Resolver: fakeResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[Key]*Target{}
	for _, tg := range loaded.Set.Targets {
		got[tg.Key] = tg
	}
	tests := []struct {
		key     Key
		network string
		address string // what the probe dials
		connect time.Duration
		read    time.Duration
	}{
		{Key{"dns", "127.0.0.1:53", "127.0.0.1:53", "tcp"}, "tcp", "127.0.0.1:53", 3 * time.Second, 30 * time.Second},
		{Key{"dns", "127.0.0.1:53", "127.0.0.1:53", "udp"}, "udp", "127.0.0.1:53", 3 * time.Second, 30 * time.Second},
		{Key{"dns", "unix:/run/dns.sock", "unix:/run/dns.sock", "tcp"}, "unix", "/run/dns.sock", 3 * time.Second, 30 * time.Second},
		{Key{"dns", "unix:/run/dns.sock", "unix:/run/dns.sock", "udp"}, "unixgram", "/run/dns.sock", 3 * time.Second, 30 * time.Second},
		{Key{"dns", "ns.internal:53", "ns.internal:53", "udp"}, "udp", "", 3 * time.Second, 30 * time.Second},
		// proxy_timeout's default, 10m.
		{Key{"127.0.0.1:16379", "127.0.0.1:16379", "127.0.0.1:16379", "tls"}, "tcp", "127.0.0.1:16379", 3 * time.Second, 10 * time.Minute},
	}
	if len(got) != len(tests)+1 {
		t.Errorf("%d targets, want %d: %v", len(got), len(tests)+1, got)
	}
	for _, tt := range tests {
		tg := got[tt.key]
		if tg == nil {
			t.Errorf("no target %s", tt.key)
			continue
		}
		if tg.Network != tt.network || tg.Probe.Network != tt.network || tg.Probe.Address != tt.address {
			t.Errorf("%s: network %q/%q address %q, want %q %q", tt.key, tg.Network, tg.Probe.Network, tg.Probe.Address, tt.network, tt.address)
		}
		if tg.ConnectTimeout != tt.connect || tg.ReadTimeout != tt.read || tg.SendTimeout != tt.read {
			t.Errorf("%s: nginx's timeouts %v/%v/%v, want %v/%v", tt.key, tg.ConnectTimeout, tg.ReadTimeout, tg.SendTimeout, tt.connect, tt.read)
		}
		// The probe waits as long as nginx would.
		if tg.Probe.ConnectTimeout != tt.connect || tg.Probe.ReadTimeout != tt.read || tg.Probe.SendTimeout != tt.read {
			t.Errorf("%s: probe timeouts %v/%v/%v", tt.key, tg.Probe.ConnectTimeout, tg.Probe.ReadTimeout, tg.Probe.SendTimeout)
		}
	}
	ns := got[Key{"dns", "ns.internal:53", "ns.internal:53", "udp"}]
	if ns != nil && (ns.Probe.Resolve == nil || len(ns.Probe.Resolve.Resolvers) != 1 || ns.Probe.Resolve.Resolvers[0] != "127.0.0.53:53") {
		t.Errorf("server … resolve in stream: resolved through stream's resolver, got %+v", ns.Probe.Resolve)
	}
	tls := got[Key{"127.0.0.1:16379", "127.0.0.1:16379", "127.0.0.1:16379", "tls"}]
	if tls == nil {
		t.Fatal("no tls target")
	}
	if tls.Kind != (protocol.Kind{Protocol: protocol.TCP, TLS: true}) || tls.Probe.TLS == nil {
		t.Fatalf("proxy_ssl on: %+v", tls)
	}
	if s := tls.Probe.TLS; s.VerifyName != "cache.internal" || s.ServerName != "cache.internal" || !s.Verify {
		t.Errorf("proxy_ssl_*: %+v", s)
	}
	for k, tg := range got {
		if k.Protocol == "udp" && tg.Probe.TLS != nil {
			t.Errorf("%s: nginx never runs TLS over UDP", k)
		}
	}
}

// /probe's targets outside the configuration get stream's defaults.
func TestArbitraryStream(t *testing.T) {
	for _, tt := range []struct {
		label   string
		target  string
		network string
		tls     bool
	}{
		{"tcp", "127.0.0.1:5432", "tcp", false},
		{"tls", "127.0.0.1:5432", "tcp", true},
		{"udp", "127.0.0.1:53", "udp", false},
		{"udp", "unix:/run/x.sock", "unixgram", false},
	} {
		kind, ok := protocol.ParseLabel(tt.label)
		if !ok {
			t.Fatalf("label %q", tt.label)
		}
		tg, err := Arbitrary(tt.target, "", kind, Options{})
		if err != nil {
			t.Fatalf("%s %s: %v", tt.label, tt.target, err)
		}
		if tg.Protocol != tt.label || tg.Probe.Network != tt.network || (tg.Probe.TLS != nil) != tt.tls {
			t.Errorf("%s %s: %+v", tt.label, tt.target, tg.Probe)
		}
		if tg.ConnectTimeout != time.Minute || tg.ReadTimeout != 10*time.Minute {
			t.Errorf("%s: timeouts %v/%v, want stream's 60s/10m", tt.label, tg.ConnectTimeout, tg.ReadTimeout)
		}
	}
	if _, err := Arbitrary("127.0.0.1:53", "", protocol.Kind{Protocol: protocol.UDP, TLS: true}, Options{}); err == nil {
		t.Error("TLS over UDP accepted")
	}
	if _, err := Arbitrary("127.0.0.1", "", protocol.Kind{Protocol: protocol.TCP}, Options{}); err == nil {
		t.Error("a stream address without port accepted")
	}
}
