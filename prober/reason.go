package prober

// Reason is a failure reason from the closed vocabulary documented in
// docs/metrics.md. Each value stands for one family of nginx error-log
// messages; it is never free-form error text, so label cardinality stays
// bounded whatever a backend does.
type Reason string

// The failure-reason vocabulary. ReasonNone means the probe succeeded.
// Every other reason is chosen in exactly one function, classify (in
// classify.go), from the outcome protocol code reports.
const (
	ReasonNone                  Reason = ""
	ReasonDNSError              Reason = "dns_error"
	ReasonConnectionRefused     Reason = "connection_refused"
	ReasonSocketNotFound        Reason = "socket_not_found"
	ReasonPermissionDenied      Reason = "permission_denied"
	ReasonBacklogFull           Reason = "backlog_full"
	ReasonNoRouteToHost         Reason = "no_route_to_host"
	ReasonNetworkUnreachable    Reason = "network_unreachable"
	ReasonConnectTimeout        Reason = "connect_timeout"
	ReasonTLSHandshakeTimeout   Reason = "tls_handshake_timeout"
	ReasonTLSHandshakeFailed    Reason = "tls_handshake_failed"
	ReasonTLSCertificateInvalid Reason = "tls_certificate_invalid"
	ReasonConnectionReset       Reason = "connection_reset"
	ReasonPrematureClose        Reason = "premature_close"
	ReasonReadTimeout           Reason = "read_timeout"
	ReasonHeaderTooBig          Reason = "header_too_big"
	ReasonInvalidResponse       Reason = "invalid_response"
	ReasonProtocolMismatch      Reason = "protocol_mismatch"
)

// Reasons lists every failure reason in documentation order.
var Reasons = [...]Reason{
	ReasonDNSError,
	ReasonConnectionRefused,
	ReasonSocketNotFound,
	ReasonPermissionDenied,
	ReasonBacklogFull,
	ReasonNoRouteToHost,
	ReasonNetworkUnreachable,
	ReasonConnectTimeout,
	ReasonTLSHandshakeTimeout,
	ReasonTLSHandshakeFailed,
	ReasonTLSCertificateInvalid,
	ReasonConnectionReset,
	ReasonPrematureClose,
	ReasonReadTimeout,
	ReasonHeaderTooBig,
	ReasonInvalidResponse,
	ReasonProtocolMismatch,
}

// NginxMessageOver is NginxMessage for a server nginx reaches over
// network (a Peer's Network): over UDP nginx learns of an ICMP error only
// when it reads, and says so (ngx_stream_proxy_process).
func (r Reason) NginxMessageOver(network string) string {
	if (network == "udp" || network == "unixgram") && r == ReasonConnectionRefused {
		return `recv() failed (111: Connection refused) while proxying and reading from upstream`
	}
	return r.NginxMessage()
}

// NginxMessage returns the start of the error-log line nginx writes for a
// failure of this reason, for humans (diagnose output, logs).
func (r Reason) NginxMessage() string {
	switch r {
	case ReasonDNSError:
		return `host not found in upstream / could not be resolved`
	case ReasonConnectionRefused:
		return `connect() failed (111: Connection refused) while connecting to upstream`
	case ReasonSocketNotFound:
		return `connect() to unix:… failed (2: No such file or directory) while connecting to upstream`
	case ReasonPermissionDenied:
		return `connect() to unix:… failed (13: Permission denied) while connecting to upstream`
	case ReasonBacklogFull:
		return `connect() to unix:… failed (11: Resource temporarily unavailable) while connecting to upstream`
	case ReasonNoRouteToHost:
		return `connect() failed (113: No route to host) while connecting to upstream`
	case ReasonNetworkUnreachable:
		return `connect() failed (101: Network is unreachable) while connecting to upstream`
	case ReasonConnectTimeout:
		return `upstream timed out (110: Connection timed out) while connecting to upstream`
	case ReasonTLSHandshakeTimeout:
		return `upstream timed out (110: Connection timed out) while SSL handshaking to upstream`
	case ReasonTLSHandshakeFailed:
		return `SSL_do_handshake() failed while SSL handshaking to upstream`
	case ReasonTLSCertificateInvalid:
		return `upstream SSL certificate verify error / does not match while SSL handshaking to upstream`
	case ReasonConnectionReset:
		return `recv() failed (104: Connection reset by peer) while reading response header from upstream`
	case ReasonPrematureClose:
		return `upstream prematurely closed connection while reading response header from upstream`
	case ReasonReadTimeout:
		return `upstream timed out (110: Connection timed out) while reading response header from upstream`
	case ReasonHeaderTooBig:
		return `upstream sent too big header while reading response header from upstream`
	case ReasonInvalidResponse:
		return `upstream sent invalid header while reading response header from upstream`
	case ReasonProtocolMismatch:
		return `upstream speaks another protocol (e.g. unsupported FastCGI protocol version: 72, SSL wrong version number)`
	}
	return ""
}
