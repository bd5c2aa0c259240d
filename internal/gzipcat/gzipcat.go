// Package gzipcat builds one gzip member out of deflate segments
// compressed independently, so that several goroutines can compress the
// parts of one response at once and a writer can send them in order.
//
// Each segment is a deflate stream ended with a sync flush (an empty
// stored block, which leaves the stream byte-aligned and not final), so
// segments concatenate into one valid stream (RFC 1951 3.2.4; it is how
// pigz compresses in parallel). The stream is ended by an empty final
// stored block; the gzip header and trailer (RFC 1952) are written here,
// the trailer's CRC-32 combined from the segments' own.
//
// One member, not one per segment: RFC 1952 allows several members, but
// some clients read only the first and drop the rest without an error.
package gzipcat

import (
	"encoding/binary"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/flate"
)

// header is the gzip header a Member writes: deflate, no name or
// time, XFL 4 (fastest compression) and OS 255 (unknown), as
// compress/gzip writes it at BestSpeed.
var header = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255}

// final is an empty stored block with BFINAL set: byte-aligned after a
// sync flush, its three header bits and padding are one byte, then LEN 0
// and NLEN 0xffff.
var final = [5]byte{1, 0, 0, 0xff, 0xff}

// Member writes one gzip member to w from segments handed to it in order.
// The zero value is not usable; call NewMember.
type Member struct {
	w    io.Writer
	crc  uint32
	size uint32 // ISIZE: the plain length modulo 2^32
	err  error
}

// NewMember writes the gzip header to w and returns the member.
func NewMember(w io.Writer) *Member {
	m := &Member{w: w}
	_, m.err = w.Write(header[:])
	return m
}

// Write writes compressed bytes of the next segment, which covers plain
// bytes of CRC-32 crc and length n (bytes may be a part of a segment and
// crc and n those of any part of its plain bytes, as long as the parts
// come in order).
func (m *Member) Write(compressed []byte, crc uint32, n int64) error {
	if m.err != nil {
		return m.err
	}
	m.crc = Combine(m.crc, crc, n)
	m.size += uint32(n)
	if len(compressed) > 0 {
		_, m.err = m.w.Write(compressed)
	}
	return m.err
}

// Close ends the deflate stream and writes the trailer.
func (m *Member) Close() error {
	if m.err != nil {
		return m.err
	}
	var b [len(final) + 8]byte
	copy(b[:], final[:])
	binary.LittleEndian.PutUint32(b[len(final):], m.crc)
	binary.LittleEndian.PutUint32(b[len(final)+4:], m.size)
	_, m.err = m.w.Write(b[:])
	return m.err
}

// Segment compresses one segment into a byte slice; reusable (Reset).
// BestSpeed, as the exporter always compressed /metrics: the page of
// 10,000 targets is 20-30 MB of text that compresses tenfold either way,
// higher levels triple the CPU for a few percent.
type Segment struct {
	fw  *flate.Writer
	out []byte
	crc uint32
	n   int64
}

// NewSegment returns a segment compressor.
func NewSegment() *Segment {
	s := &Segment{}
	s.fw, _ = flate.NewWriter((*appender)(s), flate.BestSpeed) // BestSpeed is a valid level
	return s
}

// appender collects the flate writer's output in the segment's buffer.
type appender Segment

func (a *appender) Write(p []byte) (int, error) {
	a.out = append(a.out, p...)
	return len(p), nil
}

// Reset starts a new segment whose compressed bytes are appended to out.
func (s *Segment) Reset(out []byte) {
	s.out, s.crc, s.n = out, 0, 0
	s.fw.Reset((*appender)(s))
}

// Write compresses plain bytes of the segment.
func (s *Segment) Write(p []byte) (int, error) {
	s.crc = crc32.Update(s.crc, crc32.IEEETable, p)
	s.n += int64(len(p))
	return s.fw.Write(p)
}

// Len is the number of compressed bytes not yet taken.
func (s *Segment) Len() int { return len(s.out) }

// Take returns the compressed bytes so far with the CRC-32 and length of
// the plain bytes written since the last Take, and continues the segment
// in out (empty, for reuse).
func (s *Segment) Take(out []byte) (compressed []byte, crc uint32, n int64) {
	compressed, crc, n = s.out, s.crc, s.n
	s.out, s.crc, s.n = out, 0, 0
	return compressed, crc, n
}

// End sync-flushes the segment: its bytes, once taken, end byte-aligned
// and may be followed by another segment's.
func (s *Segment) End() error { return s.fw.Flush() }

// Combine returns the CRC-32 (IEEE) of the concatenation of two byte
// strings from their CRCs and the second one's length, as zlib's
// crc32_combine: crc1 is advanced over len2 zero bytes by multiplying
// with x^(8*len2) modulo the polynomial, then crc2 is added.
func Combine(crc1, crc2 uint32, len2 int64) uint32 {
	if len2 <= 0 {
		return crc1
	}
	return multModP(x2nModP(uint64(len2), 3), crc1) ^ crc2
}

// poly is the IEEE polynomial, reflected.
const poly = 0xedb88320

// multModP multiplies a and b modulo poly (reflected bit order: the
// highest bit is x^0).
func multModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				break
			}
		}
		if b&1 != 0 {
			b = b>>1 ^ poly
		} else {
			b >>= 1
		}
	}
	return p
}

// x2nTable[k] is x^(2^k) modulo poly.
var x2nTable = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	t[0] = p
	for k := 1; k < len(t); k++ {
		p = multModP(p, p)
		t[k] = p
	}
	return t
}()

// x2nModP is x^(n*2^k) modulo poly.
func x2nModP(n uint64, k int) uint32 {
	p := uint32(1) << 31 // x^0
	for n != 0 {
		if n&1 != 0 {
			p = multModP(x2nTable[k&31], p)
		}
		n >>= 1
		k++
	}
	return p
}
