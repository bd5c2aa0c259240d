// Package protocol is the one table of the protocols nginx speaks to
// upstream servers. Every stage reads it: the configuration model (which
// *_pass directive and URL scheme select a protocol, its default port),
// discovery (the `protocol` label), the prober (which exchange to run),
// /probe (which protocols a request may name) and diagnose (the noun for a
// backend). Adding a protocol is one entry here and one prober file.
//
// TLS is not a protocol: it is a property of a target, selected by the URL
// scheme (https://, grpcs://, suwsgi://) or, in stream{}, by `proxy_ssl
// on`, and any target with TLS on gets nginx's handshake before its
// protocol exchange. Only the label keeps the scheme's name ("https",
// "grpcs", "suwsgi"; "tls" for stream), because that is what operators
// read in nginx's configuration.
package protocol

import (
	"fmt"
	"strings"
)

// Protocol is how nginx talks to an upstream server once connected.
type Protocol uint8

// The protocols nginx speaks to upstream servers. Unknown is the zero
// value, so a Protocol that was never set is never mistaken for HTTP.
const (
	Unknown Protocol = iota
	// HTTP is ngx_http_proxy_module (proxy_pass).
	HTTP
	// FastCGI is ngx_http_fastcgi_module (fastcgi_pass).
	FastCGI
	// UWSGI is ngx_http_uwsgi_module (uwsgi_pass).
	UWSGI
	// SCGI is ngx_http_scgi_module (scgi_pass).
	SCGI
	// GRPC is ngx_http_grpc_module (grpc_pass).
	GRPC
	// Memcached is ngx_http_memcached_module (memcached_pass).
	Memcached
	// TCP is a bare connection with no exchange: ngx_stream_proxy_module
	// over a TCP listener (proxy_pass in stream{}), and what /probe does
	// for a host:port given without a protocol. With `proxy_ssl on` nginx
	// runs its TLS handshake first: the label is then "tls".
	TCP
	// UDP is ngx_stream_proxy_module behind a `listen … udp` socket:
	// datagrams, never TLS (nginx only runs proxy_ssl over stream
	// sockets).
	UDP
	numProtocols
)

// Scheme is one URL prefix a *_pass directive accepts.
type Scheme struct {
	// Prefix is the lower-case URL prefix ("https://"), "" for a bare
	// address.
	Prefix string
	// TLS: nginx speaks TLS to servers reached through this scheme.
	TLS bool
	// DefaultPort is the port of an address written without one, "" when
	// nginx refuses such an address ("no port in upstream").
	DefaultPort string
}

// Spec is one protocol's entry in the table.
type Spec struct {
	// Name is the `protocol` label value in plain text.
	Name string
	// TLSName is the label value over TLS (the scheme's name), "" when
	// nginx never speaks TLS for this protocol.
	TLSName string
	// Noun names the kind of server for messages ("a FastCGI server").
	Noun string
	// Backend names the process that usually serves the protocol, for
	// hints on what to restart or inspect.
	Backend string
	// Directive is the *_pass directive of the http module, "" for none.
	Directive string
	// Prefix starts the directives that configure it: "proxy" for
	// proxy_read_timeout, proxy_ssl_verify and so on.
	Prefix string
	// HostHeaderDirective is the *_set_header directive that can override
	// the Host header (":authority" for gRPC), "" when the protocol sends
	// no Host header of its own.
	HostHeaderDirective string
	// URIPart: the address may be followed by a URI, as for proxy_pass
	// (ngx_url_t.uri_part).
	URIPart bool
	// Schemes are the URL prefixes the directive accepts; a Prefix of ""
	// means a bare address is accepted.
	Schemes []Scheme
	// ALPN lists the application protocols offered in the TLS handshake
	// (nginx's grpc module offers "h2").
	ALPN []string
	// Stream: the protocol of ngx_stream_proxy_module (proxy_pass inside
	// stream{}), whose settings and defaults are the stream module's.
	Stream bool
	// Datagram: the protocol runs over datagram sockets ("udp",
	// "unixgram"), where connect() only fixes the peer: a closed port is
	// learnt from an ICMP error on a later read, and silence proves
	// nothing.
	Datagram bool
}

// table is read-only after package initialisation.
var table = [numProtocols]Spec{
	HTTP: {
		Name: "http", TLSName: "https", Noun: "HTTP server", Backend: "the backend",
		Directive: "proxy_pass", Prefix: "proxy", HostHeaderDirective: "proxy_set_header", URIPart: true,
		Schemes: []Scheme{
			{Prefix: "http://", DefaultPort: "80"},
			{Prefix: "https://", TLS: true, DefaultPort: "443"},
		},
	},
	FastCGI: {
		Name: "fastcgi", Noun: "FastCGI server", Backend: "php-fpm (or the FastCGI server)",
		Directive: "fastcgi_pass", Prefix: "fastcgi",
		Schemes: []Scheme{{Prefix: ""}},
	},
	UWSGI: {
		Name: "uwsgi", TLSName: "suwsgi", Noun: "uwsgi server", Backend: "uWSGI",
		Directive: "uwsgi_pass", Prefix: "uwsgi",
		Schemes: []Scheme{{Prefix: ""}, {Prefix: "uwsgi://"}, {Prefix: "suwsgi://", TLS: true}},
	},
	SCGI: {
		Name: "scgi", Noun: "SCGI server", Backend: "the SCGI server",
		Directive: "scgi_pass", Prefix: "scgi",
		Schemes: []Scheme{{Prefix: ""}},
	},
	GRPC: {
		Name: "grpc", TLSName: "grpcs", Noun: "gRPC server", Backend: "the gRPC server",
		Directive: "grpc_pass", Prefix: "grpc", HostHeaderDirective: "grpc_set_header",
		Schemes: []Scheme{{Prefix: ""}, {Prefix: "grpc://"}, {Prefix: "grpcs://", TLS: true}},
		ALPN:    []string{"h2"},
	},
	Memcached: {
		Name: "memcached", Noun: "memcached server", Backend: "memcached",
		Directive: "memcached_pass", Prefix: "memcached",
		Schemes: []Scheme{{Prefix: ""}},
	},
	TCP: {
		Name: "tcp", TLSName: "tls", Noun: "TCP server", Backend: "the backend",
		Prefix: "proxy", Stream: true,
	},
	UDP: {
		Name: "udp", Noun: "UDP server", Backend: "the backend",
		Prefix: "proxy", Stream: true, Datagram: true,
	},
}

// byLabel and byDirective index the table.
var (
	byLabel     = map[string]Kind{}
	byDirective = map[string]Protocol{}
)

func init() {
	for p := Protocol(1); p < numProtocols; p++ {
		s := &table[p]
		byLabel[s.Name] = Kind{Protocol: p}
		if s.TLSName != "" {
			byLabel[s.TLSName] = Kind{Protocol: p, TLS: true}
		}
		if s.Directive != "" {
			byDirective[s.Directive] = p
		}
	}
}

// Spec returns the table entry of p; Unknown has an empty entry.
func (p Protocol) Spec() *Spec {
	if p >= numProtocols {
		return &table[Unknown]
	}
	return &table[p]
}

// String is the protocol's plain-text name.
func (p Protocol) String() string {
	if n := p.Spec().Name; n != "" {
		return n
	}
	return fmt.Sprintf("protocol(%d)", uint8(p))
}

// SupportsTLS reports whether nginx can speak TLS to servers of p.
func (p Protocol) SupportsTLS() bool { return p.Spec().TLSName != "" }

// Network is the socket type nginx opens to a server of p: "tcp" or
// "udp", and for a unix socket "unix" or "unixgram" (in stream{}, nginx
// connects to a unix upstream with the socket type of the listener).
func (p Protocol) Network(unixSocket bool) string {
	switch {
	case unixSocket && p.Spec().Datagram:
		return "unixgram"
	case unixSocket:
		return "unix"
	case p.Spec().Datagram:
		return "udp"
	}
	return "tcp"
}

// Kind is a protocol together with whether TLS wraps it: what the
// `protocol` label names.
type Kind struct {
	Protocol Protocol
	TLS      bool
}

// Label is the `protocol` label value: the scheme's name ("https") when
// TLS is on, else the protocol's name.
func (t Kind) Label() string {
	s := t.Protocol.Spec()
	if t.TLS && s.TLSName != "" {
		return s.TLSName
	}
	return s.Name
}

// ParseLabel is the inverse of Kind.Label, for /probe's protocol
// parameter.
func ParseLabel(label string) (Kind, bool) {
	t, ok := byLabel[strings.ToLower(label)]
	return t, ok
}

// Labels lists every label value in table order, for messages.
func Labels() []string {
	out := make([]string, 0, 2*int(numProtocols))
	for p := Protocol(1); p < numProtocols; p++ {
		s := &table[p]
		out = append(out, s.Name)
		if s.TLSName != "" {
			out = append(out, s.TLSName)
		}
	}
	return out
}

// ByDirective returns the protocol a *_pass directive of the http module
// selects.
func ByDirective(directive string) (Protocol, bool) {
	p, ok := byDirective[directive]
	return p, ok
}

// Directives lists the *_pass directives of the table.
func Directives() []string {
	out := make([]string, 0, len(byDirective))
	for p := Protocol(1); p < numProtocols; p++ {
		if d := table[p].Directive; d != "" {
			out = append(out, d)
		}
	}
	return out
}

// SplitScheme removes the URL prefix of a *_pass argument and returns the
// scheme it selects. Without a known prefix, the bare-address scheme
// applies when the directive has one; otherwise nginx says "invalid URL
// prefix".
func (p Protocol) SplitScheme(arg string) (Scheme, string, error) {
	s := p.Spec()
	lower := strings.ToLower(arg)
	for _, sc := range s.Schemes {
		if sc.Prefix != "" && strings.HasPrefix(lower, sc.Prefix) {
			return sc, arg[len(sc.Prefix):], nil
		}
	}
	for _, sc := range s.Schemes {
		if sc.Prefix == "" {
			return sc, arg, nil
		}
	}
	return Scheme{}, "", fmt.Errorf("invalid URL prefix in %q", arg)
}

// MarshalText writes the protocol's plain-text name, so that JSON
// renderings (golden files, diagnose) read "fastcgi", not a number.
func (p Protocol) MarshalText() ([]byte, error) {
	if p == Unknown || p >= numProtocols {
		return nil, fmt.Errorf("cannot marshal %s", p)
	}
	return []byte(p.Spec().Name), nil
}

// UnmarshalText parses a plain-text protocol name.
func (p *Protocol) UnmarshalText(b []byte) error {
	t, ok := byLabel[strings.ToLower(string(b))]
	if !ok || t.TLS {
		return fmt.Errorf("unknown protocol %q", b)
	}
	*p = t.Protocol
	return nil
}
