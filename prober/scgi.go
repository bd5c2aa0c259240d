package prober

import (
	"strconv"
)

// scgiExchange sends an SCGI request as `scgi_pass` does (a netstring of
// variables, CONTENT_LENGTH first and SCGI=1) and reads the response
// header like ngx_http_scgi_module: a status line, else a CGI-style header.
func scgiExchange(c *conversation, t *Peer) {
	headerExchange(c, t, appendSCGIRequest, true)
}

// appendSCGIRequest frames the variables as a netstring, CONTENT_LENGTH
// first as the SCGI specification requires.
func appendSCGIRequest(b []byte, t *Peer) []byte {
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
