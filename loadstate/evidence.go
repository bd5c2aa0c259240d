package loadstate

import (
	"context"
	"net/netip"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxproc"
)

// Peer is an upstream address nginx's workers were seen dialling.
type Peer struct {
	Addr netip.AddrPort
}

// Evidence tells which peers nginx's workers dial now: read from the
// kernel (SockDiag), or from the peers nginx names in its error log (the
// peers of `connect() failed ... upstream: "http://IP:PORT/"` lines that
// belong to no target plug in here as another Evidence). A source reads
// once per call; the Tracker calls each once per interval and keeps what
// it learnt for the current generation: nginx resolved its static names
// once for it, so any address its workers dialled since is one of them.
type Evidence interface {
	// Name says where the evidence comes from, for logs.
	Name() string
	Peers(ctx context.Context, nginx *nginxproc.Snapshot) ([]Peer, error)
}
