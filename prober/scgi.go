package prober

import (
	"context"
	"log/slog"
	"strconv"
)

// SCGIProber sends an SCGI request as `scgi_pass` does (a netstring of
// variables, CONTENT_LENGTH first and SCGI=1) and reads the response header
// like ngx_http_scgi_module: a status line, else a CGI-style header.
type SCGIProber struct{}

var _ Prober = SCGIProber{}

// Probe implements Prober.
func (SCGIProber) Probe(ctx context.Context, t *Target, r *Result, _ *slog.Logger) {
	converse(ctx, t, r, func(c *conversation) {

		headerExchange(c, t, appendSCGIRequest, true)
	})
}

// appendSCGIRequest frames the variables as a netstring, CONTENT_LENGTH
// first as the SCGI specification requires.
func appendSCGIRequest(b []byte, t *Target) []byte {
	vb := getBuf(defaultBufferSize)
	vars := appendSCGIVar((*vb)[:0], "CONTENT_LENGTH", "0")
	vars = appendSCGIVar(vars, "SCGI", "1")
	vars = appendCGIVars(vars, t, appendSCGIVar)
	b = strconv.AppendInt(b, int64(len(vars)), 10)
	b = append(b, ':')
	b = append(b, vars...)
	b = append(b, ',')
	*vb = vars
	putBuf(vb)
	return b
}

func appendSCGIVar(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, value...)
	return append(b, 0)
}
