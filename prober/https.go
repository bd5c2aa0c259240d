package prober

import (
	"context"
	"log/slog"
)

// HTTPSProber speaks HTTP/1.x over TLS as `proxy_pass https://` does.
type HTTPSProber struct {
	files *tlsFiles
}

var _ Prober = (*HTTPSProber)(nil)

// NewHTTPSProber returns an HTTPS prober with its own certificate cache.
func NewHTTPSProber() *HTTPSProber { return &HTTPSProber{files: newTLSFiles()} }

// Probe implements Prober.
func (p *HTTPSProber) Probe(ctx context.Context, t *Target, r *Result, _ *slog.Logger) {
	converse(ctx, t, r, func(c *conversation) {
		if !p.files.handshake(c, t, nil) {
			return
		}
		headerExchange(c, t, appendHTTPRequest, false)
	})
}
