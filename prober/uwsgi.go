package prober

import (
	"encoding/binary"
)

// uwsgiExchange sends a uwsgi packet as `uwsgi_pass` does (modifier1 0,
// the variables of nginx's stock uwsgi_params) and reads the response
// header: a status line, or a CGI-style header when there is none
// (ngx_http_uwsgi_process_status_line falls back to process_header).
func uwsgiExchange(c *conversation, t *Peer) {
	headerExchange(c, t, appendUWSGIRequest, true)
}

func appendUWSGIRequest(b []byte, t *Peer) []byte {
	b = append(b, 0, 0, 0, 0) // modifier1, datasize (filled below), modifier2
	b = appendCGIVars(b, t, appendUWSGIVar)
	size := len(b) - 4
	if size > 0xffff {
		size = 0xffff // cannot happen with sane probe settings
	}
	binary.LittleEndian.PutUint16(b[1:3], uint16(size))
	return b
}

func appendUWSGIVar(b []byte, name, value string) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(name)))
	b = append(b, name...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(value)))
	return append(b, value...)
}

// appendCGIVars appends the variables nginx's stock uwsgi_params and
// scgi_params send for a GET of the probe path, plus the Host and probe
// headers as HTTP_* variables (*_pass_request_headers).
func appendCGIVars(b []byte, t *Peer, add func(b []byte, name, value string) []byte) []byte {
	path := t.Request().HTTP.Path
	if path == "" {
		path = "/"
	}
	uri, query := path, ""
	for i := 0; i < len(path); i++ {
		if path[i] == '?' {
			uri, query = path[:i], path[i+1:]
			break
		}
	}
	method := t.Request().HTTP.Method
	if method == "" {
		method = "GET"
	}
	b = add(b, "REQUEST_METHOD", method)
	b = add(b, "REQUEST_URI", path)
	b = add(b, "PATH_INFO", uri)
	b = add(b, "DOCUMENT_URI", uri)
	b = add(b, "QUERY_STRING", query)
	b = add(b, "SERVER_PROTOCOL", "HTTP/1.1")
	b = add(b, "REQUEST_SCHEME", "http")
	b = add(b, "REMOTE_ADDR", "127.0.0.1")
	b = add(b, "SERVER_NAME", hostHeader(t))
	b = add(b, "SERVER_PORT", "80")
	b = add(b, "HTTP_HOST", hostHeader(t))
	var name [128]byte
	for _, h := range t.Request().HTTP.Headers {
		n := append(name[:0], "HTTP_"...)
		for i := 0; i < len(h[0]); i++ {
			ch := h[0][i]
			switch {
			case ch >= 'a' && ch <= 'z':
				ch -= 'a' - 'A'
			case ch == '-':
				ch = '_'
			}
			n = append(n, ch)
		}
		b = add(b, string(n), h[1])
	}
	return b
}
