package prober

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// FastCGI record framing (FastCGI specification 1.0, section 3.3), kept
// apart from the exchange so it can be fuzzed.

const (
	fcgiHeaderLen = 8
	fcgiVersion1  = 1

	fcgiBeginRequest    = 1
	fcgiEndRequest      = 3
	fcgiParams          = 4
	fcgiStdin           = 5
	fcgiStdout          = 6
	fcgiStderr          = 7
	fcgiGetValues       = 9
	fcgiGetValuesResult = 10
	fcgiUnknownType     = 11

	fcgiResponder = 1
)

// fcgiRecord is one record parsed in place: Content aliases the buffer.
type fcgiRecord struct {
	Type      uint8
	RequestID uint16
	Content   []byte
}

// fcgiVersionError is nginx's "upstream sent unsupported FastCGI protocol
// version: N"; N is 72 ('H') when an HTTP server answers.
type fcgiVersionError struct{ Version byte }

func (e *fcgiVersionError) Error() string {
	return fmt.Sprintf("upstream sent unsupported FastCGI protocol version: %d", e.Version)
}

var (
	errFCGIRecordType = errors.New("upstream sent invalid FastCGI record type")
	errFCGIRequestID  = errors.New("upstream sent unexpected FastCGI request id")
	errFCGIPairs      = errors.New("upstream sent malformed FastCGI name-value pairs")
	errFCGIEndRequest = errors.New("upstream sent malformed FastCGI end request")
)

// parseFCGIRecord parses the record at the start of b. It returns the
// record and its full length (header, content and padding), or n == 0 when
// b does not hold the whole record yet. The version is checked on the
// first byte alone, as soon as it arrives.
func parseFCGIRecord(b []byte) (rec fcgiRecord, n int, err error) {
	if len(b) > 0 && b[0] != fcgiVersion1 {
		return rec, 0, &fcgiVersionError{Version: b[0]}
	}
	if len(b) < fcgiHeaderLen {
		return rec, 0, nil
	}
	clen := int(binary.BigEndian.Uint16(b[4:6]))
	total := fcgiHeaderLen + clen + int(b[6])
	if len(b) < total {
		return rec, 0, nil
	}
	rec.Type = b[1]
	rec.RequestID = binary.BigEndian.Uint16(b[2:4])
	rec.Content = b[fcgiHeaderLen : fcgiHeaderLen+clen : fcgiHeaderLen+clen]
	return rec, total, nil
}

// fcgiRecordLen returns the full length of the record whose header starts
// b, or 0 when the header is incomplete.
func fcgiRecordLen(b []byte) int {
	if len(b) < fcgiHeaderLen {
		return 0
	}
	return fcgiHeaderLen + int(binary.BigEndian.Uint16(b[4:6])) + int(b[6])
}

// checkResponseRecord applies nginx's checks to a record of a request's
// response (ngx_http_fastcgi_process_record): only STDOUT, STDERR and
// END_REQUEST, only for our request id.
func checkResponseRecord(rec fcgiRecord, id uint16) error {
	switch rec.Type {
	case fcgiStdout, fcgiStderr, fcgiEndRequest:
	default:
		return errFCGIRecordType
	}
	if rec.RequestID != id {
		return errFCGIRequestID
	}
	return nil
}

// appendFCGIRecord appends a record with content c, padded to a multiple of
// eight bytes as nginx pads. len(c) must be below 65536.
func appendFCGIRecord(b []byte, typ uint8, id uint16, c []byte) []byte {
	pad := (8 - len(c)%8) % 8
	b = append(b, fcgiVersion1, typ, byte(id>>8), byte(id), byte(len(c)>>8), byte(len(c)), byte(pad), 0)
	b = append(b, c...)
	for i := 0; i < pad; i++ {
		b = append(b, 0)
	}
	return b
}

// appendFCGIPair appends one name-value pair with 1- or 4-byte lengths.
func appendFCGIPair(b []byte, name, value string) []byte {
	b = appendFCGILen(b, len(name))
	b = appendFCGILen(b, len(value))
	b = append(b, name...)
	return append(b, value...)
}

func appendFCGILen(b []byte, n int) []byte {
	if n < 128 {
		return append(b, byte(n))
	}
	return append(b, byte(n>>24)|0x80, byte(n>>16), byte(n>>8), byte(n))
}

// parseFCGIPairs walks the name-value pairs of c, calling fn for each.
func parseFCGIPairs(c []byte, fn func(name, value []byte)) error {
	for len(c) > 0 {
		nl, m := fcgiLen(c)
		if m == 0 {
			return errFCGIPairs
		}
		c = c[m:]
		vl, m := fcgiLen(c)
		if m == 0 {
			return errFCGIPairs
		}
		c = c[m:]
		if nl > len(c) || vl > len(c)-nl {
			return errFCGIPairs
		}
		fn(c[:nl], c[nl:nl+vl])
		c = c[nl+vl:]
	}
	return nil
}

func fcgiLen(c []byte) (n, used int) {
	if len(c) == 0 {
		return 0, 0
	}
	if c[0]&0x80 == 0 {
		return int(c[0]), 1
	}
	if len(c) < 4 {
		return 0, 0
	}
	return int(binary.BigEndian.Uint32(c[:4]) & 0x7fffffff), 4
}

// parseFCGIEndRequest returns the protocolStatus of an END_REQUEST body.
func parseFCGIEndRequest(c []byte) (protocolStatus byte, err error) {
	if len(c) < 8 {
		return 0, errFCGIEndRequest
	}
	return c[4], nil
}

// fcgiProtocolStatus names an END_REQUEST protocolStatus.
func fcgiProtocolStatus(s byte) string {
	switch s {
	case 0:
		return "FCGI_REQUEST_COMPLETE"
	case 1:
		return "FCGI_CANT_MPX_CONN"
	case 2:
		return "FCGI_OVERLOADED"
	case 3:
		return "FCGI_UNKNOWN_ROLE"
	}
	return fmt.Sprintf("protocolStatus %d", s)
}
