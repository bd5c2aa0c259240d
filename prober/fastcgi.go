package prober

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"
)

var (
	errFCGIStdoutClosed = errors.New("upstream prematurely closed FastCGI stdout")
	errFCGIBadValues    = errors.New("upstream answered FCGI_GET_VALUES with an unexpected record")
)

// fcgiRequestID is the id nginx uses for its one request per connection.
const fcgiRequestID = 1

// After the header, the rest of the response is read only briefly and
// boundedly, so that the backend finishes its write before we close.
const (
	fcgiDrainWait  = 100 * time.Millisecond
	fcgiDrainBytes = 64 << 10
)

// fastcgiExchange talks to a `fastcgi_pass` backend. By default it sends
// FCGI_GET_VALUES, a management record that costs the application nothing
// and is answered by a worker (php-fpm), so a saturated pool times out
// just as a real request would. With FastCGISettings.PingPath it sends a
// real responder request, as nginx would, and reads the CGI header.
func fastcgiExchange(c *conversation, t *Peer) {
	if t.Request().FastCGI.PingPath == "" {
		fcgiGetValuesExchange(c, t.logger())
		return
	}
	fcgiPingExchange(c, t)
}

func fcgiGetValuesExchange(c *conversation, logger *slog.Logger) {
	var content [64]byte
	pairs := appendFCGIPair(content[:0], "FCGI_MAX_CONNS", "")
	pairs = appendFCGIPair(pairs, "FCGI_MAX_REQS", "")
	pairs = appendFCGIPair(pairs, "FCGI_MPXS_CONNS", "")
	var req [96]byte
	if err := c.write(appendFCGIRecord(req[:0], fcgiGetValues, 0, pairs)); err != nil {
		c.fail(err, speaksFastCGI)
		return
	}
	for {
		rec, n, err := parseFCGIRecord(c.buf[:c.n])
		if err != nil {
			c.failWith(outcomeForeign, err, speaksFastCGI, "")
			return
		}
		if n > 0 {
			c.headerDone()
			if rec.RequestID != 0 {
				c.failWith(outcomeInvalidHeader, errFCGIRequestID, speaksFastCGI, "")
				return
			}
			switch rec.Type {
			case fcgiGetValuesResult:
				if err := parseFCGIPairs(rec.Content, func(name, value []byte) {
					if logger.Enabled(context.Background(), slog.LevelDebug) {
						logger.Debug("FastCGI value", "name", string(name), "value", string(value))
					}
				}); err != nil {
					c.failWith(outcomeInvalidHeader, err, speaksFastCGI, "")
					return
				}
			case fcgiUnknownType:
				// The application does not handle management records
				// but answered in FastCGI as the specification asks: it
				// is up and speaks the protocol.
			default:
				c.failWith(outcomeInvalidHeader, errFCGIBadValues, speaksFastCGI, "record type "+strconv.Itoa(int(rec.Type)))
				return
			}
			c.r.Success = true
			return
		}
		if err := c.fill(); err != nil {
			c.fail(err, speaksFastCGI)
			return
		}
	}
}

// appendFCGIParams appends the parameters nginx's stock fastcgi_params and the
// usual SCRIPT_FILENAME line give a request for path.
func appendFCGIParams(b []byte, t *Peer) []byte {
	path := t.Request().FastCGI.PingPath
	b = appendFCGIPair(b, "SCRIPT_FILENAME", path)
	b = appendFCGIPair(b, "QUERY_STRING", "")
	b = appendFCGIPair(b, "REQUEST_METHOD", "GET")
	b = appendFCGIPair(b, "CONTENT_TYPE", "")
	b = appendFCGIPair(b, "CONTENT_LENGTH", "")
	b = appendFCGIPair(b, "SCRIPT_NAME", path)
	b = appendFCGIPair(b, "REQUEST_URI", path)
	b = appendFCGIPair(b, "DOCUMENT_URI", path)
	b = appendFCGIPair(b, "SERVER_PROTOCOL", "HTTP/1.1")
	b = appendFCGIPair(b, "REQUEST_SCHEME", "http")
	b = appendFCGIPair(b, "GATEWAY_INTERFACE", "CGI/1.1")
	b = appendFCGIPair(b, "SERVER_SOFTWARE", "nginx")
	b = appendFCGIPair(b, "REMOTE_ADDR", "127.0.0.1")
	b = appendFCGIPair(b, "SERVER_NAME", hostHeader(t))
	b = appendFCGIPair(b, "REDIRECT_STATUS", "200")
	b = appendFCGIPair(b, "HTTP_HOST", hostHeader(t))
	for _, h := range t.Request().HTTP.Headers {
		b = appendCGIHeaderName(b, h[0])
		b = appendFCGILen(b, len(h[1]))
		b = append(b, h[1]...)
	}
	return b
}

// appendCGIHeaderName appends the length and the CGI name of a request
// header (HTTP_ + upper case, '-' as '_') as nginx's
// fastcgi_pass_request_headers does; used for the probe's own headers.
func appendCGIHeaderName(b []byte, name string) []byte {
	b = appendFCGILen(b, len("HTTP_")+len(name))
	b = append(b, "HTTP_"...)
	for i := 0; i < len(name); i++ {
		ch := name[i]
		switch {
		case ch >= 'a' && ch <= 'z':
			ch -= 'a' - 'A'
		case ch == '-':
			ch = '_'
		}
		b = append(b, ch)
	}
	return b
}

func fcgiPingExchange(c *conversation, t *Peer) {
	rb := getBuf(defaultBufferSize)
	pb := getBuf(defaultBufferSize)

	req := appendFCGIRecord((*rb)[:0], fcgiBeginRequest, fcgiRequestID, []byte{0, fcgiResponder, 0, 0, 0, 0, 0, 0})
	params := appendFCGIParams((*pb)[:0], t)
	for len(params) > 0 {
		chunk := params
		if len(chunk) > 65528 {
			chunk = chunk[:65528]
		}
		req = appendFCGIRecord(req, fcgiParams, fcgiRequestID, chunk)
		params = params[len(chunk):]
	}
	req = appendFCGIRecord(req, fcgiParams, fcgiRequestID, nil)
	req = appendFCGIRecord(req, fcgiStdin, fcgiRequestID, nil)
	err := c.write(req)
	// The request is not needed again: a probe waiting for the answer
	// holds no copy of it.
	*rb = req[:0]
	putBuf(rb)
	putBuf(pb)
	if err != nil {
		c.fail(err, speaksFastCGI)
		return
	}

	// The CGI header is gathered from STDOUT records into hdr, taken at
	// the first STDOUT record; the raw buffer (BufferSize, like
	// fastcgi_buffer_size) bounds the header.
	var hb *[]byte
	defer func() {
		if hb != nil {
			putBuf(hb)
		}
	}()
	var hdr []byte
	hn := 0
	var p respParser
	p.reset(true)
	pos := 0
	for {
		for {
			rec, n, err := parseFCGIRecord(c.buf[pos:c.n])
			if err != nil {
				c.failWith(outcomeForeign, err, speaksFastCGI, "")
				return
			}
			if n == 0 {
				break
			}
			if err := checkResponseRecord(rec, fcgiRequestID); err != nil {
				c.failWith(outcomeInvalidHeader, err, speaksFastCGI,
					"record type "+strconv.Itoa(int(rec.Type))+", request id "+strconv.Itoa(int(rec.RequestID)))
				return
			}
			pos += n
			switch rec.Type {
			case fcgiStdout:
				if len(rec.Content) == 0 {
					c.failWith(outcomeStreamClosed, errFCGIStdoutClosed, speaksFastCGI, "")
					return
				}
				if hb == nil {
					hb = getBuf(c.size)
					hdr = *hb
				}
				hn += copy(hdr[hn:], rec.Content)
				switch p.parse(hdr[:hn]) {
				case parseDone:
					c.headerDone()
					finishStatus(c, t, p.Status())
					fcgiDrain(c, pos)
					return
				case parseInvalid:
					// The CGI header inside FastCGI stdout: its bytes are
					// the application's, never another protocol's.
					c.r.fail(event{outcome: outcomeInvalidHeader, phase: PhaseProcessing, err: errInvalidHeader, detail: p.Why})
					return
				}
			case fcgiEndRequest:
				detail := ""
				if ps, err := parseFCGIEndRequest(rec.Content); err == nil && ps != 0 {
					detail = fcgiProtocolStatus(ps)
				}
				c.failWith(outcomeStreamClosed, errFCGIStdoutClosed, speaksFastCGI, detail)
				return
			}
			// STDERR: nginx logs it ("FastCGI sent in stderr") and reads on.
		}
		if err := c.fill(); err != nil {
			c.fail(err, speaksFastCGI)
			return
		}
	}
}

// fcgiDrain reads the rest of the response up to END_REQUEST, briefly and
// boundedly; the verdict is already made.
func fcgiDrain(c *conversation, pos int) {
	drained := 0
	for drained < fcgiDrainBytes {
		for {
			rec, n, err := parseFCGIRecord(c.buf[pos:c.n])
			if err != nil {
				return
			}
			if n == 0 {
				break
			}
			if rec.Type == fcgiEndRequest {
				return
			}
			pos += n
		}
		if pos == 0 && c.n == c.size {
			return // a record larger than the buffer: stop here
		}
		copy(c.buf, c.buf[pos:c.n])
		c.n -= pos
		drained += pos
		pos = 0
		c.conn.SetReadDeadline(c.until(fcgiDrainWait))
		c.armed()
		m, err := c.conn.Read(c.buf[c.n:])
		c.n += m
		if err != nil {
			return
		}
	}
}
