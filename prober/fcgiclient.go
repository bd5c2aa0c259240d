package prober

import (
	"errors"
	"fmt"
	"io"
	"net"
)

// This file exports the FastCGI framing for callers that are not probes
// (php-fpm's status page, read by the capacity package). It reuses the
// record code of fcgirecord.go and names no failure reason: a status read
// is not a verdict about the server.

// ErrFastCGIResponseTooBig is returned by FastCGIGet when the response
// does not fit the caller's bound.
var ErrFastCGIResponseTooBig = errors.New("FastCGI response larger than the limit")

// FastCGIGet sends one responder GET request for path (with query, without
// '?') over conn, the parameters nginx's fastcgi_params gives a request,
// and returns the application's STDOUT stream: the CGI header and the
// body. It reads until END_REQUEST and at most limit bytes of STDOUT.
// Deadlines are the caller's, set on conn.
func FastCGIGet(conn net.Conn, path, query string, limit int) ([]byte, error) {
	var params []byte
	params = appendFCGIPair(params, "SCRIPT_FILENAME", path)
	params = appendFCGIPair(params, "SCRIPT_NAME", path)
	params = appendFCGIPair(params, "REQUEST_URI", path)
	params = appendFCGIPair(params, "DOCUMENT_URI", path)
	params = appendFCGIPair(params, "QUERY_STRING", query)
	params = appendFCGIPair(params, "REQUEST_METHOD", "GET")
	params = appendFCGIPair(params, "SERVER_PROTOCOL", "HTTP/1.1")
	params = appendFCGIPair(params, "GATEWAY_INTERFACE", "CGI/1.1")
	params = appendFCGIPair(params, "SERVER_SOFTWARE", "nginx")
	params = appendFCGIPair(params, "REMOTE_ADDR", "127.0.0.1")
	if len(params) > 65535 {
		return nil, fmt.Errorf("FastCGI parameters of %d bytes do not fit one record", len(params))
	}
	req := appendFCGIRecord(nil, fcgiBeginRequest, fcgiRequestID, []byte{0, fcgiResponder, 0, 0, 0, 0, 0, 0})
	req = appendFCGIRecord(req, fcgiParams, fcgiRequestID, params)
	req = appendFCGIRecord(req, fcgiParams, fcgiRequestID, nil)
	req = appendFCGIRecord(req, fcgiStdin, fcgiRequestID, nil)
	if _, err := conn.Write(req); err != nil {
		return nil, fmt.Errorf("writing FastCGI request: %w", err)
	}

	var out []byte
	buf := make([]byte, 0, 16<<10)
	tmp := make([]byte, 8<<10)
	for {
		for {
			rec, n, err := parseFCGIRecord(buf)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				break
			}
			if err := checkResponseRecord(rec, fcgiRequestID); err != nil {
				return nil, err
			}
			switch rec.Type {
			case fcgiStdout:
				if len(out)+len(rec.Content) > limit {
					return nil, ErrFastCGIResponseTooBig
				}
				out = append(out, rec.Content...)
			case fcgiEndRequest:
				if ps, err := parseFCGIEndRequest(rec.Content); err != nil {
					return nil, err
				} else if ps != 0 {
					return nil, fmt.Errorf("FastCGI request ended with %s", fcgiProtocolStatus(ps))
				}
				return out, nil
			}
			buf = buf[:copy(buf, buf[n:])]
		}
		if len(buf) > limit+fcgiHeaderLen+255 {
			return nil, ErrFastCGIResponseTooBig
		}
		m, err := conn.Read(tmp)
		buf = append(buf, tmp[:m]...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("FastCGI connection closed before END_REQUEST: %w", io.ErrUnexpectedEOF)
			}
			return nil, fmt.Errorf("reading FastCGI response: %w", err)
		}
	}
}
