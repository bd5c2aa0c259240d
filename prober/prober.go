// Package prober talks to upstream servers the way nginx does and reduces
// each exchange to a verdict and a failure reason named after nginx's own
// error-log messages.
//
// A probe has the stages nginx has: resolve (for names nginx resolves at
// run time), connect, nginx's TLS handshake when the target has TLS on
// (whatever its protocol), then the protocol's exchange. Table runs the
// shared stages and looks up the exchange of the target's protocol: one
// file per protocol, one entry in exchanges. What goes wrong is reported
// as an outcome, and classify (classify.go) alone names the reason.
package prober

import (
	"context"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// Prober probes one target. Implementations fill r (which the caller has
// reset) and must return within the deadline of ctx, having closed every
// connection and ended every goroutine they started.
type Prober interface {
	Probe(ctx context.Context, t *Peer, r *Result)
}

// ProberFunc adapts a function to the Prober interface.
type ProberFunc func(ctx context.Context, t *Peer, r *Result)

// Probe implements Prober.
func (f ProberFunc) Probe(ctx context.Context, t *Peer, r *Result) { f(ctx, t, r) }

// exchange is one protocol's conversation over a connection that is open
// and, for a target with TLS, past nginx's handshake.
type exchange func(c *conversation, t *Peer)

// exchanges is the prober side of the protocol table. protocol.TCP has
// no exchange: connecting (and the TLS handshake, when on) is the probe,
// as nginx's stream proxy has nothing more to check before it relays
// bytes.
var exchanges = map[protocol.Protocol]exchange{
	protocol.HTTP:      httpExchange,
	protocol.FastCGI:   fastcgiExchange,
	protocol.UWSGI:     uwsgiExchange,
	protocol.SCGI:      scgiExchange,
	protocol.GRPC:      grpcExchange,
	protocol.Memcached: memcachedExchange,
	protocol.UDP:       udpExchange,
}

// Table probes every protocol of the table. Its TLS stage keeps one cache
// of the certificate files nginx's *_ssl_* directives name.
type Table struct {
	files *tlsFiles
}

var _ Prober = (*Table)(nil)

// New returns a Table with its own certificate cache; there is no global
// one.
func New() *Table { return &Table{files: newTLSFiles()} }

// Probe implements Prober: it times the whole probe and makes a failure's
// reason and the verdict agree.
func (p *Table) Probe(ctx context.Context, t *Peer, r *Result) {
	start := time.Now()
	p.probe(ctx, t, r)
	r.Duration = time.Since(start)
	if r.Reason != ReasonNone || r.Inconclusive != "" {
		r.Success = false
	}
}

func (p *Table) probe(ctx context.Context, t *Peer, r *Result) {
	// A protocol without an exchange (tcp, or one this build does not
	// know) is probed by connecting: that still catches every failure
	// nginx logs "while connecting to upstream".
	ex := exchanges[t.Protocol]
	conn := Dial(ctx, t, r)
	if conn == nil {
		return
	}
	defer conn.Close()
	if ex == nil && t.TLS == nil {
		r.Success = true
		return
	}
	c := newConversation(ctx, conn, t, r)
	defer c.release()
	if t.TLS != nil && !p.files.handshake(c, t, t.Protocol.Spec().ALPN) {
		return
	}
	if ex == nil {
		r.Success = true
		return
	}
	ex(c, t)
}
