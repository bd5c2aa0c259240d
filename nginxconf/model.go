// Package nginxconf turns an nginx configuration tree into the list of
// upstream servers nginx talks to, with the settings nginx applies to each.
//
// It is pure: files are read through an Opener, nothing is resolved or
// dialled here. Name resolution and probing live in other packages.
package nginxconf

import "time"

// Protocol is how nginx talks to an upstream server, derived from the
// *_pass directive and the scheme of its address.
type Protocol string

// The protocols nginx speaks to upstream servers.
const (
	ProtocolHTTP      Protocol = "http"
	ProtocolHTTPS     Protocol = "https"
	ProtocolFastCGI   Protocol = "fastcgi"
	ProtocolUWSGI     Protocol = "uwsgi"
	ProtocolSCGI      Protocol = "scgi"
	ProtocolGRPC      Protocol = "grpc"
	ProtocolGRPCS     Protocol = "grpcs"
	ProtocolMemcached Protocol = "memcached"
)

// Config is everything derived from one nginx configuration tree.
type Config struct {
	// Files lists every file that was read, main file first, so that a
	// watcher can follow exactly the tree nginx would load.
	Files []string
	// User and Group are the worker process credentials from the `user`
	// directive. nginx's default is "nobody" and, for the group, the
	// user's name (ngx_core_module); empty User means the directive was absent.
	User  string
	Group string
	// Targets holds one entry per (upstream, server, protocol), deduplicated
	// across locations, in configuration order.
	Targets []Target
	// Dynamic lists *_pass directives whose address depends on request
	// variables and therefore cannot be probed.
	Dynamic []DynamicPass
}

// Target is one upstream server as nginx will use it.
type Target struct {
	// Upstream is the upstream{} block name; for an implicit upstream
	// (a *_pass with a literal address) the address as written, without scheme.
	Upstream string
	// Implicit is true when the target comes from a *_pass address rather
	// than an upstream{} block.
	Implicit bool
	// Server is the address as written: "127.0.0.1:3000",
	// "unix:/run/php/php8.2-fpm.sock", "app:3000".
	Server string
	// Host and Port split Server for TCP targets (Port defaulted as nginx
	// does); both are empty for unix sockets.
	Host string
	Port string
	// SocketPath is the filesystem path for "unix:" servers.
	SocketPath string
	Protocol   Protocol
	Params     ServerParams
	Settings   Settings
	// RuntimeResolve is true when nginx resolves Host at run time
	// (`server ... resolve`, or a *_pass address built from variables
	// whose values are static) through Resolvers.
	RuntimeResolve bool
	// Resolvers are the `resolver` addresses in force for the context that
	// uses this target, as written ("127.0.0.53", "[::1]:5353").
	Resolvers []string
	// Sources are "file:line" positions of the directives that use this
	// target, for log messages.
	Sources []string
}

// ServerParams are the parameters of a `server` line in an upstream{} block.
// Implicit upstreams have nginx's defaults (Weight 1, MaxFails 1, FailTimeout 10s).
type ServerParams struct {
	Weight      int
	MaxFails    int
	FailTimeout time.Duration
	MaxConns    int
	Backup      bool
	Down        bool
	Resolve     bool
	// Service is the `service=` name (SRV lookups), empty when absent.
	Service   string
	SlowStart time.Duration
}

// Settings are the effective settings nginx applies toward a target,
// after inheritance http -> server -> location. When several locations use
// one target, each field holds the strictest value (the one that fails
// first): the shortest timeout, the smallest buffer, verification on if any
// location verifies.
type Settings struct {
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	SendTimeout    time.Duration
	// BufferSize is *_buffer_size in bytes: the limit for the response header.
	BufferSize int
	// HTTPVersion is proxy_http_version ("1.0" or "1.1").
	HTTPVersion string
	// HostHeader is the Host header nginx sends for http/https/grpc
	// targets ($proxy_host unless proxy_set_header Host overrides it with a
	// value that is known statically).
	HostHeader string
	SSL        SSLSettings
}

// SSLSettings are the proxy_ssl_* (or grpc_ssl_*, uwsgi_ssl_*) settings.
type SSLSettings struct {
	Verify             bool
	VerifyDepth        int
	TrustedCertificate string
	// Name is proxy_ssl_name; empty means the host of the *_pass address.
	Name string
	// ServerName is proxy_ssl_server_name: whether SNI is sent.
	ServerName bool
	// Protocols from proxy_ssl_protocols, e.g. ["TLSv1.2", "TLSv1.3"].
	Protocols      []string
	Ciphers        string
	Certificate    string
	CertificateKey string
}

// DynamicPass is a *_pass whose address is only known per request.
type DynamicPass struct {
	Directive string // "proxy_pass"
	Source    string // "file:line"
	// Address is the argument with variables left in place; it may hold
	// request data patterns but never header values.
	Address string
}
