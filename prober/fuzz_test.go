package prober

import (
	"testing"
)

// FuzzResponseHeader checks the header parser never panics, never reads
// past what it was given, and gives the same verdict whether the bytes
// arrive at once or split in two reads.
func FuzzResponseHeader(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 404 Not Found\nServer: x\n\n",
		"HTTP/1.1 403.1 Forbidden\r\nX_Y: z\r\nNoColon\r\nHTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
		"Status: 503 Busy\r\nLocation: /x\r\n\r\n",
		"SSH-2.0-OpenSSH\r\n",
		"\x15\x03\x01\x00\x02\x02\x46",
		"HTTP/1.1 200 OK\r\nA: b\rC\r\n\r\n",
	} {
		f.Add([]byte(s), uint16(3), false)
		f.Add([]byte(s), uint16(17), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16, cgi bool) {
		var whole respParser
		whole.reset(cgi)
		r1 := whole.parse(data)
		if whole.pos > len(data) {
			t.Fatalf("parser went past the input: %d > %d", whole.pos, len(data))
		}
		var parts respParser
		parts.reset(cgi)
		cut := int(split) % (len(data) + 1)
		r2 := parts.parse(data[:cut])
		if r2 == parseAgain {
			r2 = parts.parse(data)
		}
		if r1 != r2 {
			t.Fatalf("verdict depends on the split at %d: %v vs %v", cut, r1, r2)
		}
		if r1 == parseDone {
			if s := whole.Status(); s < 0 || s > 999 || s != parts.Status() {
				t.Fatalf("status %d / %d", s, parts.Status())
			}
		}
	})
}

// FuzzFCGIRecords walks a byte stream as the FastCGI exchanges do and
// checks the record reader's bounds.
func FuzzFCGIRecords(f *testing.F) {
	f.Add(appendFCGIRecord(nil, fcgiGetValuesResult, 0, appendFCGIPair(nil, "FCGI_MPXS_CONNS", "0")))
	f.Add(append(rec(fcgiStdout, 1, "Status: 200\r\n\r\npong"), endRequest(0)...))
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\n"))
	f.Add([]byte{1, 6, 0, 1, 0xff, 0xff, 0xff, 0})
	f.Add(appendFCGIPair(nil, string(make([]byte, 200)), "v"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pos := 0
		for pos < len(data) {
			rec, n, err := parseFCGIRecord(data[pos:])
			if err != nil || n == 0 {
				if n == 0 && err == nil && fcgiRecordLen(data[pos:]) != 0 && fcgiRecordLen(data[pos:]) <= len(data)-pos {
					t.Fatalf("complete record not parsed at %d", pos)
				}
				break
			}
			if n < fcgiHeaderLen || n > len(data)-pos || len(rec.Content) > n-fcgiHeaderLen {
				t.Fatalf("bad record length %d (content %d) at %d of %d", n, len(rec.Content), pos, len(data))
			}
			checkResponseRecord(rec, 1)
			parseFCGIPairs(rec.Content, func(name, value []byte) {})
			parseFCGIEndRequest(rec.Content)
			pos += n
		}
		// The same bytes as a pair list must not panic either.
		parseFCGIPairs(data, func(name, value []byte) {})
	})
}
