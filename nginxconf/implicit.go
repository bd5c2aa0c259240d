package nginxconf

import (
	"context"
	"fmt"
	"os"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// Implicit returns the upstream server nginx creates for a *_pass of kind
// to address (written without scheme, "host:port" or "unix:/path") in a
// location of an otherwise empty configuration: nginx's default for every
// setting and server parameter, exactly as Load would give it. /probe uses
// it for servers outside the configuration, so that they are probed the
// way nginx would talk to them, with no defaults copied elsewhere.
// pageSize is the default *_buffer_size; 0 means os.Getpagesize().
func Implicit(address string, kind protocol.Kind, pageSize int) (UpstreamServer, error) {
	if kind.Protocol.Spec().Stream {
		return streamImplicit(address, kind)
	}
	if pageSize <= 0 {
		pageSize = os.Getpagesize()
	}
	sch, ok := schemeOf(kind)
	if !ok {
		return UpstreamServer{}, fmt.Errorf("nginx does not speak %s over TLS", kind.Protocol)
	}
	a, err := parseAddress(address, sch.DefaultPort)
	if err != nil {
		return UpstreamServer{}, fmt.Errorf("%w in %q", err, address)
	}
	if a.port == "" && !a.isUnix() {
		return UpstreamServer{}, fmt.Errorf("no port in upstream %q", a.raw)
	}
	w := newWalker(context.Background(), ".", pageSize)
	set, err := w.settings(&scope{}, kind.Protocol, sch, a, wctx{})
	if err != nil {
		return UpstreamServer{}, err
	}
	return implicitServer(a, kind.Protocol, set), nil
}

// schemeOf is the URL scheme of the protocol table that selects kind.
// Protocols without a *_pass directive (tcp) have no scheme: a bare
// address, never TLS.
func schemeOf(kind protocol.Kind) (protocol.Scheme, bool) {
	schemes := kind.Protocol.Spec().Schemes
	if len(schemes) == 0 {
		return protocol.Scheme{}, !kind.TLS
	}
	for _, s := range schemes {
		if s.TLS == kind.TLS {
			return s, true
		}
	}
	return protocol.Scheme{}, false
}
