package report

import (
	"fmt"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// RunbookURL is the runbook section for a failure reason, relative to the
// repository root; each section is named after the reason.
func RunbookURL(r prober.Reason) string {
	if r == prober.ReasonNone {
		return ""
	}
	return "docs/runbook.md#" + string(r)
}

// Hint is a one-line first step for a failure of reason r on a target of
// this protocol label and network ("tcp" or "unix"), ending with the runbook
// section. It is empty for success.
func Hint(r prober.Reason, label, network string) string {
	h := hintText(r, label, network)
	if h == "" {
		return ""
	}
	return h + "; see " + RunbookURL(r)
}

// inconclusiveHint explains a probe without a verdict: nothing is known
// about the backend, and what to change to learn it.
func inconclusiveHint(c prober.Inconclusive, capSeconds float64, t *Target) string {
	if c == prober.InconclusiveNoAnswer {
		return "the UDP server neither answered the probe's empty datagram nor drew an ICMP port unreachable: it may be listening (most servers ignore such a datagram) or a firewall drops datagrams or ICMP; see docs/metrics.md#stream-upstreams"
	}
	if c == prober.InconclusiveExporterResources {
		return "the exporter ran out of its own file descriptors, local ports or memory before reaching the server: raise its open files limit (LimitNOFILE=) or lower --probe.concurrency; nothing is known about the server"
	}
	nginx := t.Settings.ConnectTimeoutSeconds + t.Settings.SendTimeoutSeconds + t.Settings.ReadTimeoutSeconds
	if capSeconds > 0 {
		return fmt.Sprintf("the exporter stopped waiting after --probe.timeout=%gs while nginx would wait up to %gs (connect+send+read); rerun without --probe.timeout for nginx's verdict", capSeconds, nginx)
	}
	return "the server kept the probe busy longer than nginx's timeouts add up to (a header trickled byte by byte); nginx may still be waiting on it"
}

func hintText(r prober.Reason, label, network string) string {
	unix := network == "unix" || network == "unixgram"
	kind, _ := protocol.ParseLabel(label)
	b := kind.Protocol.Spec().Backend
	if b == "" {
		b = "the backend"
	}
	fastcgi := kind.Protocol == protocol.FastCGI
	switch r {
	case prober.ReasonNone:
		return ""
	case prober.ReasonDNSError:
		return "the name does not resolve: check the host name, /etc/hosts and the `resolver` directive nginx uses for it"
	case prober.ReasonConnectionRefused:
		if unix {
			return "stale socket file with no listener: " + b + " died without removing it; restart it and check its log"
		}
		if network == "udp" {
			return "nothing is bound to that UDP port (ICMP port unreachable): start " + b + " or make the port in the config match the one it binds (ss -lunp)"
		}
		return "nothing listens there: start " + b + " or make the port in the config match the one it listens on (ss -ltnp)"
	case prober.ReasonSocketNotFound:
		if fastcgi {
			return "php-fpm not running or listen path differs: compare `listen` in the pool config with fastcgi_pass"
		}
		return b + " not running or listening on another path: compare its socket setting with the *_pass path"
	case prober.ReasonPermissionDenied:
		if fastcgi {
			return "nginx's worker user cannot open the socket: set listen.owner/listen.group/listen.mode in the pool to the nginx user, and make every parent directory searchable"
		}
		return "nginx's worker user cannot open the socket: fix the socket's owner/mode or a parent directory's search bit (namei -l <path>), or SELinux (httpd_can_network_connect)"
	case prober.ReasonBacklogFull:
		return b + " accepts too slowly: its listen queue is full; add workers (pm.max_children for php-fpm) or raise its listen backlog"
	case prober.ReasonNoRouteToHost:
		return "a firewall rejects the connection or the host is down: check iptables/nftables and security groups on the way"
	case prober.ReasonNetworkUnreachable:
		return "no route to that network from here: check the address and this host's routing table (ip route)"
	case prober.ReasonConnectTimeout:
		return "SYNs are dropped or the host is down: check firewalls that drop rather than reject, and the host itself"
	case prober.ReasonTLSHandshakeTimeout:
		return "TCP connects but TLS never completes: the port may not speak TLS, or the backend is overloaded"
	case prober.ReasonTLSHandshakeFailed:
		return "TLS handshake rejected: compare proxy_ssl_protocols/ciphers with the backend, send SNI (proxy_ssl_server_name on), or supply the client certificate it requires"
	case prober.ReasonTLSCertificateInvalid:
		return "certificate not trusted or for another name: check proxy_ssl_trusted_certificate and proxy_ssl_name against the backend's certificate (openssl s_client)"
	case prober.ReasonConnectionReset:
		return b + " resets connections: it is crashing or restarting, or a proxy/firewall in between kills them; check its log"
	case prober.ReasonPrematureClose:
		return b + " closed the connection before answering: look for crashes, worker timeouts or memory limits in its log"
	case prober.ReasonReadTimeout:
		return b + " accepts but does not answer within the read timeout: it is overloaded or stuck; check its workers and slow log"
	case prober.ReasonHeaderTooBig:
		return "the response header exceeds the *_buffer_size nginx allows: raise proxy_buffer_size/fastcgi_buffer_size or shrink cookies and headers"
	case prober.ReasonInvalidResponse:
		return "the backend answers with something nginx cannot parse: check that the right service listens on that port"
	case prober.ReasonProtocolMismatch:
		return "the backend speaks another protocol than the *_pass directive (e.g. HTTP on a fastcgi_pass port, plain HTTP behind https://): fix the directive or the port"
	}
	return "see the runbook"
}
