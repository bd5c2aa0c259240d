// Package nginxconf turns an nginx configuration tree into the list of
// upstream servers nginx talks to, with the settings nginx applies to each.
//
// It is pure: files are read through an FS, nothing is resolved or
// dialled here. Name resolution and probing live in other packages.
//
// # What is read
//
// Load parses the main file with crossplane, follows `include` (globs may
// match nothing, plain names must exist; relative names are resolved
// against the conf prefix, the directory of the main file, as nginx does
// even with -p). A file included from two places is seen in both, as
// nginx parses it twice. The http and stream modules are read (stream{}:
// see stream.go); mail{} has no upstreams. Directives crossplane does not
// know (third-party modules) are accepted; *_by_lua_block bodies are
// delimited by Lua's lexical grammar (lua.go).
// As nginx, Load requires one events{} block in the main context, so that
// a truncated main file fails rather than loads empty. Only regular files
// are read, within the LoadOptions bounds (limits.go), counting what
// nginx would parse: a file included n times counts n times.
//
// # Servers
//
// Every proxy_pass, fastcgi_pass, uwsgi_pass, scgi_pass, grpc_pass and
// memcached_pass in a location, an `if` in a location, or limit_except
// yields targets. When the host of its address names an upstream{} block
// (and no port is written), each `server` of the block is a target with
// the protocol of the directive; servers marked `down` are included with
// Params.Down set. Otherwise the address is an implicit upstream: one
// target with Implicit set and nginx's default server parameters.
//
// Ports: an upstream{} `server` without port uses 80 whatever the
// protocol (ngx_http_upstream_server). proxy_pass defaults to 80 for
// http:// and 443 for https://. fastcgi_pass, uwsgi_pass, scgi_pass,
// grpc_pass and memcached_pass have no default port: nginx refuses such
// an implicit upstream ("no port in upstream") unless an earlier *_pass
// of the same host gave it one, and so does Load.
// https://, grpcs:// and suwsgi:// select the protocol with SSL.Enabled:
// the schemes and default ports come from the protocol package's table.
//
// # Variables
//
// Variables that only make up the URI ("http://app:8080$request_uri";
// $request_uri, $uri, $document_uri and $is_args start the URI) leave the
// address static. Variables in the address are replaced by every value
// they can take when all of them are written in the configuration
// (finite.go): `set` in the server block and in the location itself
// (rewrite directives are not inherited by nested locations), with the
// `if` blocks around the *_pass taken and the others either way, and
// `map` or `split_clients` blocks whose values are all literal. Each
// resulting address is a target (or the upstream{} block it names);
// when a value is unknown the *_pass is a Config.Dynamic entry. Any
// *_pass with variables is resolved by nginx at run time through
// `resolver`: such a target of a host name has RuntimeResolve set, as
// has an upstream server with the `resolve` parameter. An upstream{}
// balanced by Lua (balancer_by_lua_*) has placeholder servers: a *_pass
// to it is a Config.Dynamic entry with its reason.
//
// # nginx -t
//
// Load refuses what nginx refuses among the errors that concern
// upstreams, with nginx's message (parity.go): a duplicate *_pass,
// `backup` after ip_hash/hash/random, an implicit upstream without port,
// missing TLS files. Of two different *_pass in one location only the
// last, which nginx uses, is read; a *_pass without port shares the
// implicit upstream of an earlier one of the same host, as nginx does.
//
// # Settings
//
// Settings are inherited http -> server -> location -> nested location /
// if / limit_except, using the directives of the *_pass in use
// (fastcgi_pass reads fastcgi_read_timeout and so on). Defaults: 60s for
// the connect, read and send timeouts, one memory page for the buffer,
// proxy_http_version 1.0, TLS verification off with depth 1, no SNI,
// ciphers "DEFAULT", protocols TLSv1.2 and TLSv1.3 (the default since
// nginx 1.23.4; nginx 1.22 also enabled TLSv1 and TLSv1.1). Relative
// certificate paths are resolved against the conf prefix.
//
// The Host header (http, https, grpc, grpcs) is $proxy_host: the host of
// the *_pass address, with the port unless it is the scheme's default,
// the block name for an upstream{} block, "localhost" for a unix socket.
// proxy_set_header Host (grpc_set_header for gRPC) overrides it with the
// usual array-directive inheritance: a literal is used as is; $host,
// $http_host and $server_name stand for the first plain server_name of
// the server block (not a wildcard, regex or "_"), or "localhost";
// $proxy_host and $proxy_port keep their meaning. A value built from
// other variables falls back to the default. No other header value is
// kept anywhere: they may hold credentials.
//
// # One target, several locations
//
// Servers are unique by (Upstream, Server, Protocol, TLS), in the order of the
// first *_pass that uses them; Sources lists every such *_pass. When
// several locations use one target its settings are the strictest, those
// that fail first: the shortest of each timeout, the smallest buffer, and
// the SSL settings of a location that verifies certificates if any does
// (else of the first location), with session reuse on if any location
// reuses sessions. HTTPVersion, HostHeader and Resolvers
// are those of the first location.
package nginxconf

import (
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// Config is everything derived from one nginx configuration tree.
type Config struct {
	// Files lists every file that was read, main file first, so that a
	// watcher can follow exactly the tree nginx would load.
	Files []string
	// GlobDirs are the directories of include globs, matched or not: a
	// file created there later may join the tree, so a watcher follows
	// them too.
	GlobDirs []string `json:",omitempty"`
	// User and Group are the worker process credentials from the `user`
	// directive. nginx's default is "nobody" and, for the group, the
	// user's name (ngx_core_module); empty User means the directive was absent.
	User  string
	Group string
	// PIDFile is the `pid` directive's argument as written (nginx
	// resolves a relative one against its -p prefix, not the conf
	// prefix); empty when absent (nginx then uses its compiled-in path,
	// /run/nginx.pid on Debian).
	PIDFile string `json:",omitempty"`
	// Servers holds one entry per (upstream, server, protocol), deduplicated
	// across locations, in configuration order.
	Servers []UpstreamServer
	// Dynamic lists *_pass directives whose address depends on request
	// variables and therefore cannot be probed.
	Dynamic []DynamicPass
	// UnusedUpstreams names the upstream{} blocks that no *_pass with a
	// static address uses, in configuration order. nginx only reaches
	// them through a *_pass built from variables (see Dynamic), or not at
	// all; their servers are not in Servers because the protocol is not
	// known.
	UnusedUpstreams []string
	// ErrorLogs lists every error_log directive of the main, http,
	// server and location contexts, in configuration order.
	ErrorLogs []ErrorLog `json:",omitempty"`
}

// UpstreamServer is one upstream server as nginx will use it.
type UpstreamServer struct {
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
	// Protocol is what the *_pass directive speaks; whether TLS wraps it
	// is Settings.SSL.Enabled (see Proto).
	Protocol protocol.Protocol
	Params   ServerParams
	Settings Settings
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

// Proto is the target's protocol with its TLS flag: what the `protocol`
// label names.
func (t *UpstreamServer) Kind() protocol.Kind {
	return protocol.Kind{Protocol: t.Protocol, TLS: t.Settings.SSL.Enabled}
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
	// Enabled is true when nginx speaks TLS to the target: a scheme of
	// the protocol table with TLS (https://, grpcs://, suwsgi://). The
	// other fields are only filled in when Enabled is true.
	Enabled            bool
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
	// CRL is *_ssl_crl: nginx loads it, as the trusted certificates,
	// only when verification is on.
	CRL string `json:",omitempty"`
	// NoSessionReuse is proxy_ssl_session_reuse off. nginx's default (on)
	// offers a peer the TLS session of the last connection to it.
	NoSessionReuse bool `json:",omitempty"`
}

// DynamicPass is a *_pass whose address is only known per request.
type DynamicPass struct {
	Directive string // "proxy_pass"
	Source    string // "file:line"
	// Address is the argument with variables left in place; it may hold
	// request data patterns but never header values.
	Address string
	// Reason says why the address is not known, as a sentence for logs
	// (ReasonVariables, or an upstream balanced by Lua).
	Reason string
}

// ReasonVariables is the Reason of a DynamicPass whose address is built
// from variables whose values are not all known.
const ReasonVariables = "the address is built from request variables"
