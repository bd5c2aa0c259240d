// Package prober talks to upstream servers the way nginx does and reduces
// each exchange to a verdict and a failure reason named after nginx's own
// error-log messages.
//
// Each protocol lives in one file behind the Prober interface; dialing,
// bounded reading and error classification are shared.
package prober

import (
	"context"
	"log/slog"
	"time"
)

// Prober probes one target. Implementations fill r (which the caller has
// reset) and must return within the deadline of ctx, having closed every
// connection and ended every goroutine they started.
type Prober interface {
	Probe(ctx context.Context, t *Target, r *Result, logger *slog.Logger)
}

// ProberFunc adapts a function to the Prober interface.
type ProberFunc func(ctx context.Context, t *Target, r *Result, logger *slog.Logger)

// Probe implements Prober.
func (f ProberFunc) Probe(ctx context.Context, t *Target, r *Result, logger *slog.Logger) {
	f(ctx, t, r, logger)
}

// Run probes t with the prober registered for its protocol and times the
// whole probe. Unknown protocols fall back to a connect-only probe, which
// still catches every connect-level failure.
func Run(ctx context.Context, probers map[string]Prober, t *Target, r *Result, logger *slog.Logger) {
	p, ok := probers[t.Protocol]
	if !ok {
		p = ConnectProber{}
	}
	start := time.Now()
	p.Probe(ctx, t, r, logger)
	r.Duration = time.Since(start)
	if r.Reason != ReasonNone {
		r.Success = false
	}
}

// New returns the table of probers by protocol name. It is a plain table,
// not init-time registration, so tests and callers can swap entries.
// The TLS probers share one cache of certificate files.
func New() map[string]Prober {
	files := newTLSFiles()
	return map[string]Prober{
		"tcp":       ConnectProber{},
		"http":      HTTPProber{},
		"https":     &HTTPSProber{files: files},
		"fastcgi":   FastCGIProber{},
		"uwsgi":     UWSGIProber{},
		"scgi":      SCGIProber{},
		"grpc":      &GRPCProber{files: files},
		"grpcs":     &GRPCProber{files: files, secure: true},
		"memcached": MemcachedProber{},
	}
}
