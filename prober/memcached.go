package prober

import (
	"bytes"
	"errors"
)

var (
	errMemcachedResponse = errors.New("memcached sent invalid response")
	errMemcachedKey      = errors.New("memcached sent invalid key in response")
	errMemcachedLength   = errors.New("memcached sent invalid length in response")
)

// memcachedExchange sends the "get <key>" nginx's memcached_pass sends and
// reads the first response line as ngx_http_memcached_process_header
// does: "VALUE <key> <flags> <length>" is a hit (200), "END" a miss
// (404), and anything else "memcached sent invalid response". A get is a
// read: it changes nothing on the server.
func memcachedExchange(c *conversation, t *Peer) {
	rb := getBuf(defaultBufferSize)
	req := append((*rb)[:0], "get "...)
	req = appendMemcachedKey(req, memcachedKey(t))
	req = append(req, "\r\n"...)
	err := c.write(req)
	// The request is not kept while the answer is awaited: the key is
	// escaped again once a line has arrived.
	*rb = req
	putBuf(rb)
	if err != nil {
		c.fail(err, speaksMemcached)
		return
	}
	for {
		if i := bytes.IndexByte(c.buf[:c.n], '\n'); i >= 0 {
			c.headerDone()
			line := c.buf[:i+1]
			kb := getBuf(defaultBufferSize)
			key := appendMemcachedKey((*kb)[:0], memcachedKey(t))
			status, err := parseMemcachedLine(line, key)
			*kb = key
			putBuf(kb)
			if err != nil {
				c.failWith(outcomeInvalidHeader, err, speaksMemcached, "")
				return
			}
			finishStatus(c, t, status)
			return
		}
		if err := c.fill(); err != nil {
			c.fail(err, speaksMemcached)
			return
		}
	}
}

func memcachedKey(t *Peer) string {
	switch {
	case t.Request().Memcached.Key != "":
		return t.Request().Memcached.Key
	case t.Request().HTTP.Path != "":
		return t.Request().HTTP.Path
	}
	return "/"
}

// appendMemcachedKey escapes the key as ngx_escape_uri(NGX_ESCAPE_MEMCACHED)
// does: space, control characters and '%' become %XX.
func appendMemcachedKey(b []byte, key string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(key); i++ {
		ch := key[i]
		if ch <= ' ' || ch == '%' || ch >= 0x7f {
			b = append(b, '%', hex[ch>>4], hex[ch&0xf])
			continue
		}
		b = append(b, ch)
	}
	return b
}

// parseMemcachedLine judges the first response line (ending in LF).
func parseMemcachedLine(line, key []byte) (status int, err error) {
	if string(line) == "END\r\n" {
		return 404, nil // "key was not found by memcached"
	}
	rest, ok := bytes.CutPrefix(line, []byte("VALUE "))
	if !ok {
		return 0, errMemcachedResponse
	}
	rest, ok = bytes.CutPrefix(rest, key)
	if !ok || len(rest) == 0 || rest[0] != ' ' {
		return 0, errMemcachedKey
	}
	rest = rest[1:]
	// flags
	i := 0
	for i < len(rest) && isDigit(rest[i]) {
		i++
	}
	if i == 0 || i >= len(rest) || rest[i] != ' ' {
		return 0, errMemcachedResponse
	}
	rest = rest[i+1:]
	// length, up to CR (or a space before a CAS value)
	j := 0
	for j < len(rest) && rest[j] != '\r' && rest[j] != ' ' && rest[j] != '\n' {
		j++
	}
	if !isOffset(rest[:j]) {
		return 0, errMemcachedLength
	}
	return 200, nil
}
