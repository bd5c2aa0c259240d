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
	conn := Dial(ctx, t, r)
	if conn == nil {
		return
	}
	defer conn.Close()
	c := newConversation(ctx, conn, t, r)
	defer c.release()

	rb := getBuf(defaultBufferSize)
	vb := getBuf(defaultBufferSize)
	vars := appendSCGIVar((*vb)[:0], "CONTENT_LENGTH", "0")
	vars = appendSCGIVar(vars, "SCGI", "1")
	vars = appendCGIVars(vars, t, appendSCGIVar)
	req := strconv.AppendInt((*rb)[:0], int64(len(vars)), 10)
	req = append(req, ':')
	req = append(req, vars...)
	req = append(req, ',')
	err := c.write(req)
	*rb, *vb = req, vars
	putBuf(rb)
	putBuf(vb)
	if err != nil {
		c.fail(err, speaksHTTP)
		return
	}
	var p respParser
	if readHeader(c, &p, true, speaksHTTP) {
		finishStatus(c.r, t, p.Status())
	}
}

func appendSCGIVar(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, value...)
	return append(b, 0)
}
