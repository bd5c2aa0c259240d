package protocol

import (
	"slices"
	"testing"
)

func TestLabels(t *testing.T) {
	want := []string{"http", "https", "fastcgi", "uwsgi", "suwsgi", "scgi", "grpc", "grpcs", "memcached", "tcp", "tls", "udp"}
	if got := Labels(); !slices.Equal(got, want) {
		t.Fatalf("Labels() = %v, want %v", got, want)
	}
	for _, l := range want {
		k, ok := ParseLabel(l)
		if !ok || k.Label() != l {
			t.Errorf("ParseLabel(%q) = %+v, %v; Label() = %q", l, k, ok, k.Label())
		}
	}
	if _, ok := ParseLabel("gopher"); ok {
		t.Error("ParseLabel accepted an unknown protocol")
	}
}

func TestSchemes(t *testing.T) {
	tests := []struct {
		directive, arg string
		label, rest    string
		port           string
		wantErr        bool
	}{
		{"proxy_pass", "http://app:8080/x", "http", "app:8080/x", "80", false},
		{"proxy_pass", "HTTPS://app", "https", "app", "443", false},
		{"proxy_pass", "app:8080", "", "", "", true}, // "invalid URL prefix"
		{"uwsgi_pass", "suwsgi://10.0.0.1:3031", "suwsgi", "10.0.0.1:3031", "", false},
		{"uwsgi_pass", "uwsgi://10.0.0.1:3031", "uwsgi", "10.0.0.1:3031", "", false},
		{"uwsgi_pass", "10.0.0.1:3031", "uwsgi", "10.0.0.1:3031", "", false},
		{"grpc_pass", "grpcs://g:443", "grpcs", "g:443", "", false},
		{"fastcgi_pass", "unix:/run/php.sock", "fastcgi", "unix:/run/php.sock", "", false},
		{"memcached_pass", "127.0.0.1:11211", "memcached", "127.0.0.1:11211", "", false},
	}
	for _, tt := range tests {
		p, ok := ByDirective(tt.directive)
		if !ok {
			t.Fatalf("no protocol for %s", tt.directive)
		}
		sch, rest, err := p.SplitScheme(tt.arg)
		if (err != nil) != tt.wantErr {
			t.Fatalf("%s %s: err %v", tt.directive, tt.arg, err)
		}
		if err != nil {
			continue
		}
		if got := (Kind{Protocol: p, TLS: sch.TLS}).Label(); got != tt.label || rest != tt.rest || sch.DefaultPort != tt.port {
			t.Errorf("%s %s: label %q rest %q port %q; want %q %q %q", tt.directive, tt.arg, got, rest, sch.DefaultPort, tt.label, tt.rest, tt.port)
		}
	}
}

func TestTextRoundTrip(t *testing.T) {
	for p := Protocol(1); p < numProtocols; p++ {
		b, err := p.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var q Protocol
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Errorf("%s: round trip gave %v, %v", p, q, err)
		}
	}
	if _, err := Unknown.MarshalText(); err == nil {
		t.Error("Unknown marshalled")
	}
	var q Protocol
	if err := q.UnmarshalText([]byte("https")); err == nil {
		t.Error(`"https" is a label, not a protocol`)
	}
}

// Every *_pass directive selects one protocol, and every protocol that
// can speak TLS has a scheme for it.
func TestTable(t *testing.T) {
	for _, d := range Directives() {
		p, _ := ByDirective(d)
		s := p.Spec()
		if s.Prefix == "" || len(s.Schemes) == 0 {
			t.Errorf("%s: entry incomplete: %+v", d, s)
		}
		hasTLS := slices.ContainsFunc(s.Schemes, func(sc Scheme) bool { return sc.TLS })
		if hasTLS != p.SupportsTLS() {
			t.Errorf("%s: TLS scheme %v but TLS label %q", d, hasTLS, s.TLSName)
		}
	}
}

// stream{} targets: tcp, tls (tcp with proxy_ssl on) and udp, each with
// the socket type nginx opens.
func TestStreamKinds(t *testing.T) {
	tests := []struct {
		kind             Kind
		label            string
		network, unixNet string
	}{
		{Kind{Protocol: TCP}, "tcp", "tcp", "unix"},
		{Kind{Protocol: TCP, TLS: true}, "tls", "tcp", "unix"},
		{Kind{Protocol: UDP}, "udp", "udp", "unixgram"},
		{Kind{Protocol: HTTP}, "http", "tcp", "unix"},
	}
	for _, tt := range tests {
		if got := tt.kind.Label(); got != tt.label {
			t.Errorf("%+v: label %q, want %q", tt.kind, got, tt.label)
		}
		if k, ok := ParseLabel(tt.label); !ok || k != tt.kind {
			t.Errorf("ParseLabel(%q) = %+v, %v", tt.label, k, ok)
		}
		if got := tt.kind.Protocol.Network(false); got != tt.network {
			t.Errorf("%s: network %q, want %q", tt.label, got, tt.network)
		}
		if got := tt.kind.Protocol.Network(true); got != tt.unixNet {
			t.Errorf("%s: unix network %q, want %q", tt.label, got, tt.unixNet)
		}
	}
	if UDP.SupportsTLS() {
		t.Error("nginx never speaks TLS to a UDP upstream")
	}
	if !TCP.Spec().Stream || !UDP.Spec().Stream || HTTP.Spec().Stream {
		t.Error("only tcp and udp are stream protocols")
	}
	if _, ok := ByDirective("proxy_pass"); !ok {
		t.Fatal("proxy_pass")
	}
	if p, _ := ByDirective("proxy_pass"); p != HTTP {
		t.Errorf("proxy_pass selects %s: the http module's directive must stay http", p)
	}
}
