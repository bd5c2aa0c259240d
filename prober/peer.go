package prober

import (
	"log/slog"
	"time"
	"unsafe"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// Credentials identify nginx's worker process user: what the kernel checks
// when a worker connects to a unix socket.
type Credentials struct {
	User   string
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups, as set by initgroups(3)
}

// Peer is everything one probe needs: where to connect, and the settings
// nginx applies toward that server. It is built once per configuration load
// and must not be modified while probes run.
type Peer struct {
	// Protocol selects the exchange run once connected.
	Protocol protocol.Protocol
	// Network is "tcp", "udp", "unix" or "unixgram": the socket type
	// nginx opens (protocol.Protocol.Network).
	Network string
	// Address is what is dialled: "ip:port" or a socket path. Empty when
	// the host is resolved at run time (see Resolve).
	Address string
	// Resolve is set when nginx resolves the host at run time through its
	// `resolver`; Address is then filled per probe.
	Resolve *RuntimeResolve
	// Host is the Host header nginx sends (proxy_set_header Host, else
	// $proxy_host) when HTTP.Host does not set one; empty means what
	// $proxy_host would be for the address. Kept here rather than in the
	// shared Exchange because it differs per upstream block.
	Host string

	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	SendTimeout    time.Duration
	// BufferSize is nginx's *_buffer_size: the most response header bytes
	// nginx accepts.
	BufferSize int

	// Worker, when set, makes unix socket probes judge permissions as this
	// user rather than as the exporter's own user.
	Worker *Credentials

	// TLS, when set, makes the probe run nginx's TLS handshake with these
	// settings before the protocol exchange, whatever the protocol. It may
	// be shared by every peer with the same settings.
	TLS *TLSSettings

	// Exchange is what the probe sends once connected. A pointer, because
	// most peers of a configuration send the same: discovery shares one
	// value per distinct request. Read it through Request, which also
	// serves a peer without one; write it only before probes run.
	*Exchange

	// Logger carries the target's identity (upstream, server, address,
	// protocol), so every line a prober logs says which server it is
	// about. nil discards. A logger rather than a function returning one:
	// a method value would be one more allocation per peer.
	Logger *slog.Logger

	// sessions is the peer's *Sessions when TLS.SessionReuse keeps one
	// per peer: created when the first session arrives, so that a peer
	// that never completed a handshake holds nothing. Accessed atomically
	// (/probe may probe a configured peer while the scheduler does); an
	// unsafe.Pointer rather than an atomic.Pointer keeps Peer copyable.
	sessions unsafe.Pointer
}

// Exchange selects the request a protocol prober sends.
type Exchange struct {
	HTTP    HTTPSettings
	FastCGI FastCGISettings
	// Memcached selects the key of the memcached probe.
	Memcached MemcachedSettings
	// GRPC selects the gRPC health check.
	GRPC GRPCSettings
}

// noExchange is read-only: the request of a peer built without one.
var noExchange = &Exchange{}

// Request returns what the probe sends: the peer's Exchange, or the zero
// one (nginx-like defaults) when it has none.
func (p *Peer) Request() *Exchange {
	if p.Exchange == nil {
		return noExchange
	}
	return p.Exchange
}

// logger returns the peer's logger, or a discarding one.
func (t *Peer) logger() *slog.Logger {
	if t.Logger == nil {
		return discard
	}
	return t.Logger
}

// discard is read-only: a logger that drops everything.
var discard = slog.New(slog.DiscardHandler)

// RuntimeResolve describes a name nginx resolves while running.
type RuntimeResolve struct {
	Host string
	Port string
	// Resolvers are "ip:port" DNS servers from the `resolver` directive.
	// Empty means nginx has no resolver: every request fails to resolve.
	Resolvers []string
	// System makes the probe use the system resolver instead: for a
	// static name that did not resolve at load time, so the verdict heals
	// as soon as the name resolves again.
	System bool
}

// HTTPSettings shape the request a protocol prober sends, mirroring what
// nginx sends (proxy_http_version, the Host header) plus the probe request
// chosen by the operator.
type HTTPSettings struct {
	Version string // "1.0" or "1.1"
	Host    string
	Method  string
	Path    string
	// Headers are extra probe headers from the exporter's own
	// configuration; never copied from nginx's proxy_set_header.
	Headers [][2]string
	// ExpectStatus, when not empty, lists the statuses counted as success.
	// Empty means any status is success, as for nginx, which passes every
	// status through.
	ExpectStatus []int
}

// TLSSettings are nginx's proxy_ssl_* settings toward a target.
type TLSSettings struct {
	// ServerName is sent as SNI; empty when proxy_ssl_server_name is off.
	ServerName string
	// VerifyName is the name the certificate must match when Verify is set
	// (proxy_ssl_name, else the host of the *_pass address).
	VerifyName         string
	Verify             bool
	VerifyDepth        int
	TrustedCertificate string
	Protocols          []string
	Ciphers            string
	Certificate        string
	CertificateKey     string
	// SessionReuse is proxy_ssl_session_reuse on (nginx's default): every
	// peer using these settings keeps a session of its own, as nginx keeps
	// one per upstream peer, created when its first session arrives, and
	// offers it on the next handshake. Off means a full handshake every
	// time.
	SessionReuse bool
}

// FastCGISettings select the FastCGI exchange.
type FastCGISettings struct {
	// PingPath, when set, makes the probe send a real request for this
	// path (php-fpm ping.path) instead of FCGI_GET_VALUES.
	PingPath string
}

// MemcachedSettings select the memcached exchange.
type MemcachedSettings struct {
	// Key is the key of the "get" nginx sends ($memcached_key, usually
	// the URI). Empty means HTTP.Path, else "/".
	Key string
}

// GRPCSettings select the gRPC exchange.
type GRPCSettings struct {
	// Service is the service name sent in the grpc.health.v1 check; empty
	// asks about the server as a whole.
	Service string
}

// MaxDuration is the longest nginx itself would keep one exchange with
// this peer going without a timer firing: a run-time lookup, the connect
// and the TLS handshake (each under the connect timeout, as nginx arms
// proxy_connect_timeout for both), sending the request and waiting for
// the response. A backend that trickles its header byte by byte can keep
// nginx longer; the exporter stops there and says it stopped waiting
// (InconclusiveProbeTimeout), never that nginx timed out.
func (p *Peer) MaxDuration() time.Duration {
	connect := orDefault(p.ConnectTimeout)
	d := connect + orDefault(p.SendTimeout) + orDefault(p.ReadTimeout)
	if p.Resolve != nil {
		d += connect
	}
	if p.TLS != nil {
		d += connect
	}
	return d + time.Second
}
