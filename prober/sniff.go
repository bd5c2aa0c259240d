package prober

import "bytes"

// Names of the protocols sniff recognises, used in Result.Detail on a
// protocol_mismatch.
const (
	speaksHTTP      = "HTTP/1.x"
	speaksHTTP2     = "HTTP/2"
	speaksTLS       = "TLS"
	speaksFastCGI   = "FastCGI"
	speaksMemcached = "memcached"
)

// sniff names the protocol a backend's first bytes belong to, among those
// nginx itself speaks to upstreams, or "" when they fit none (a banner,
// garbage, or too few bytes to tell). It only looks at bytes the backend
// sent first in answer to our request, so it never guesses from our own
// protocol's framing.
func sniff(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	switch {
	case (b[0] == 0x15 || b[0] == 0x16) && (len(b) < 2 || b[1] == 0x03):
		// A TLS alert or handshake record: "\x15\x03\x01..." is what an
		// OpenSSL server answers to plain text.
		return speaksTLS
	case bytes.HasPrefix(b, []byte("HTTP/")):
		return speaksHTTP
	case b[0] == 1 && (len(b) < 2 || (b[1] >= 1 && b[1] <= 11)):
		// FastCGI version 1 and a record type in 1..11.
		return speaksFastCGI
	case len(b) >= 9 && b[0] == 0 && (b[3] == 0x04 || b[3] == 0x07) && b[5]&0x7f == 0 && b[6] == 0 && b[7] == 0 && b[8] == 0:
		// An HTTP/2 SETTINGS or GOAWAY frame on stream 0: what an h2-only
		// server (gRPC) sends first.
		return speaksHTTP2
	case bytes.HasPrefix(b, []byte("ERROR\r\n")), bytes.HasPrefix(b, []byte("CLIENT_ERROR ")),
		bytes.HasPrefix(b, []byte("SERVER_ERROR ")):
		return speaksMemcached
	}
	return ""
}
