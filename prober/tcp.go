package prober

import (
	"context"
	"log/slog"
)

// ConnectProber only opens and closes the connection, over TCP or a unix
// socket. It catches every failure nginx logs "while connecting to
// upstream" and serves protocols whose exchange would cost the backend
// more than it tells (memcached's ordering, plain TCP).
type ConnectProber struct{}

var _ Prober = ConnectProber{}

// Probe implements Prober.
func (ConnectProber) Probe(ctx context.Context, t *Target, r *Result, _ *slog.Logger) {
	conn := Dial(ctx, t, r)
	if conn == nil {
		return
	}
	conn.Close()
	r.Success = true
}
