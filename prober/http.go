package prober

import (
	"errors"
	"strconv"
)

// Failure causes recorded in Result.Err; the details are in Result.Detail.
var (
	errInvalidHeader    = errors.New("upstream sent invalid header")
	errNoValidHeader    = errors.New("upstream sent no valid HTTP/1.0 header")
	errOtherProtocol    = errors.New("upstream speaks another protocol")
	errUnexpectedStatus = errors.New("upstream status is not an expected one")
)

// httpExchange sends the request ngx_http_proxy_module would send for
// proxy_pass and reads the response header as nginx does.
func httpExchange(c *conversation, t *Peer) {
	headerExchange(c, t, appendHTTPRequest, false)
}

// headerExchange writes the request that build appends and reads an
// HTTP-style response header; with cgi, a header without a status line is
// accepted as nginx's uwsgi and scgi modules accept it. It serves http,
// https, uwsgi and scgi, which differ only in how the request is framed.
func headerExchange(c *conversation, t *Peer, build func(b []byte, t *Peer) []byte, cgi bool) {
	rb := getBuf(defaultBufferSize)
	req := build((*rb)[:0], t)
	err := c.write(req)
	*rb = req
	putBuf(rb)
	if err != nil {
		c.fail(err, speaksHTTP)
		return
	}
	var p respParser
	if readHeader(c, &p, cgi, speaksHTTP) {
		finishStatus(c, t, p.Status())
	}
}

// appendHTTPRequest appends what nginx sends upstream: the request line with
// proxy_http_version (1.0 by default), Host, "Connection: close" (nginx's
// default proxy_set_header Connection close), then the probe's own headers.
func appendHTTPRequest(b []byte, t *Peer) []byte {
	method, path := t.Request().HTTP.Method, t.Request().HTTP.Path
	if method == "" {
		method = "GET"
	}
	if path == "" {
		path = "/"
	}
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	if t.Request().HTTP.Version == "1.1" {
		b = append(b, " HTTP/1.1\r\nHost: "...)
	} else {
		b = append(b, " HTTP/1.0\r\nHost: "...)
	}
	b = append(b, hostHeader(t)...)
	b = append(b, "\r\nConnection: close\r\n"...)
	for _, h := range t.Request().HTTP.Headers {
		b = append(b, h[0]...)
		b = append(b, ": "...)
		b = append(b, h[1]...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// hostHeader is Peer.HTTP.Host, else Peer.Host, else what nginx's
// $proxy_host would be: the address, or "localhost" for a unix socket.
func hostHeader(t *Peer) string {
	switch {
	case t.Request().HTTP.Host != "":
		return t.Request().HTTP.Host
	case t.Host != "":
		return t.Host
	case t.Network == "unix":
		return "localhost"
	case t.Address != "":
		return t.Address
	case t.Resolve != nil:
		return t.Resolve.Host
	}
	return "localhost"
}

// readHeader reads until p has a complete header, recording any failure.
// With cgiFallback, a response without a status line is parsed again as a
// CGI-style header, as ngx_http_scgi_module and ngx_http_uwsgi_module do.
func readHeader(c *conversation, p *respParser, cgiFallback bool, self string) bool {
	for {
		if c.n > p.pos {
			switch p.parse(c.buf[:c.n]) {
			case parseDone:
				c.headerDone()
				return true
			case parseInvalid:
				c.failWith(outcomeInvalidHeader, errInvalidHeader, self, p.Why)
				return false
			case parseNoStatus:
				if cgiFallback && foreign(c.buf[:c.n], self) == "" {
					p.reset(true)
					continue
				}
				c.failWith(outcomeInvalidHeader, errNoValidHeader, self, "no valid HTTP/1.0 header")
				return false
			}
		}
		if err := c.fill(); err != nil {
			c.fail(err, self)
			return false
		}
	}
}

// finishStatus records the status and judges it against ExpectStatus.
func finishStatus(c *conversation, t *Peer, status int) {
	r := c.r
	r.HTTPStatus = status
	if len(t.Request().HTTP.ExpectStatus) > 0 {
		ok := false
		for _, s := range t.Request().HTTP.ExpectStatus {
			if s == status {
				ok = true
				break
			}
		}
		if !ok {
			// nginx would pass the status on; the operator asked for
			// others, and the closest reason is an unusable response.
			c.failWith(outcomeUnexpectedStatus, errUnexpectedStatus, "", "unexpected status "+strconv.Itoa(status))
			return
		}
	}
	r.Success = true
}
