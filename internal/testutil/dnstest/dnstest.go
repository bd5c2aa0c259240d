// Package dnstest is a minimal authoritative DNS responder for tests. It
// answers A (and AAAA) queries from a fixed map and NXDOMAIN for every other
// name, over UDP on a local address, so that name resolution in a test never
// leaves the machine.
//
// It implements just enough of RFC 1035 for stub resolvers (glibc, Go's
// resolver, nginx's `resolver`): one question per query, no compression in
// queries, answers that point back at the question with a compression
// pointer.
package dnstest

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Record types and classes this responder knows.
const (
	typeA    = 1
	typeAAAA = 28
	classIN  = 1

	rcodeNoError  = 0
	rcodeFormErr  = 1
	rcodeNXDomain = 3
	rcodeNotImp   = 4
)

// Server answers DNS queries on one PacketConn.
type Server struct {
	pc      net.PacketConn
	records map[string][]netip.Addr
	ttl     uint32

	mu      sync.Mutex
	queries []string
	done    chan struct{}
}

// NewServer serves queries arriving on pc until Close. records maps a name
// (with or without the trailing dot, case-insensitive) to its addresses;
// IPv4 addresses answer A queries and IPv6 addresses AAAA queries. A known
// name with no address of the asked type gets an empty NOERROR answer, an
// unknown name NXDOMAIN.
func NewServer(pc net.PacketConn, records map[string][]netip.Addr) *Server {
	s := &Server{
		pc:      pc,
		records: make(map[string][]netip.Addr, len(records)),
		ttl:     1,
		done:    make(chan struct{}),
	}
	for name, addrs := range records {
		s.records[canonical(name)] = append([]netip.Addr(nil), addrs...)
	}
	go s.serve()
	return s
}

// Start listens on 127.0.0.1 at a random UDP port and serves records until
// the test ends.
func Start(tb testing.TB, records map[string][]netip.Addr) *Server {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("dnstest: listen: %v", err)
	}
	s := NewServer(pc, records)
	tb.Cleanup(func() { s.Close() })
	return s
}

// Addr returns the "ip:port" the server answers on.
func (s *Server) Addr() string { return s.pc.LocalAddr().String() }

// Queries returns the names asked so far, in order, as "name TYPE".
func (s *Server) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

// Set replaces the addresses of name, as when a backend moves; no
// addresses make the name unknown (NXDOMAIN). Answers are given with a
// TTL of one second.
func (s *Server) Set(name string, addrs ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(addrs) == 0 {
		delete(s.records, canonical(name))
		return
	}
	s.records[canonical(name)] = append([]netip.Addr(nil), addrs...)
}

// Close stops the server and waits for its goroutine to end.
func (s *Server) Close() error {
	err := s.pc.Close()
	<-s.done
	return err
}

func (s *Server) serve() {
	defer close(s.done)
	buf := make([]byte, 65535)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		resp := s.answer(buf[:n])
		if resp != nil {
			_, _ = s.pc.WriteTo(resp, from)
		}
	}
}

// answer builds the response to one query message, or nil when the message
// is too broken to answer at all.
func (s *Server) answer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	id := binary.BigEndian.Uint16(q[0:2])
	flags := binary.BigEndian.Uint16(q[2:4])
	if flags&0x8000 != 0 { // a response, not a query
		return nil
	}
	qdcount := binary.BigEndian.Uint16(q[4:6])
	opcode := (flags >> 11) & 0xf
	rd := flags & 0x0100

	header := func(rcode uint16, qd, an uint16) []byte {
		h := make([]byte, 12)
		binary.BigEndian.PutUint16(h[0:2], id)
		// QR=1, AA=1, RD copied, RA=1.
		binary.BigEndian.PutUint16(h[2:4], 0x8000|0x0400|rd|0x0080|rcode)
		binary.BigEndian.PutUint16(h[4:6], qd)
		binary.BigEndian.PutUint16(h[6:8], an)
		return h
	}
	if opcode != 0 {
		return header(rcodeNotImp, 0, 0)
	}
	if qdcount != 1 {
		return header(rcodeFormErr, 0, 0)
	}
	name, end, ok := readName(q, 12)
	if !ok || end+4 > len(q) {
		return header(rcodeFormErr, 0, 0)
	}
	qtype := binary.BigEndian.Uint16(q[end : end+2])
	qclass := binary.BigEndian.Uint16(q[end+2 : end+4])
	question := q[12 : end+4]

	s.mu.Lock()
	s.queries = append(s.queries, name+" "+typeName(qtype))
	addrs, known := s.records[canonical(name)]
	s.mu.Unlock()

	if !known || qclass != classIN {
		return append(header(rcodeNXDomain, 1, 0), question...)
	}
	var answers [][]byte
	for _, a := range addrs {
		switch {
		case qtype == typeA && a.Is4():
			b := a.As4()
			answers = append(answers, b[:])
		case qtype == typeAAAA && a.Is6() && !a.Is4In6():
			b := a.As16()
			answers = append(answers, b[:])
		}
	}
	msg := append(header(rcodeNoError, 1, uint16(len(answers))), question...)
	for _, rdata := range answers {
		rr := make([]byte, 12, 12+len(rdata))
		binary.BigEndian.PutUint16(rr[0:2], 0xc00c) // pointer to the question name
		binary.BigEndian.PutUint16(rr[2:4], qtype)
		binary.BigEndian.PutUint16(rr[4:6], classIN)
		binary.BigEndian.PutUint32(rr[6:10], s.ttl)
		binary.BigEndian.PutUint16(rr[10:12], uint16(len(rdata)))
		msg = append(msg, append(rr, rdata...)...)
	}
	return msg
}

// readName decodes an uncompressed domain name starting at off and returns
// it in dotted form without the trailing dot, with the offset just past it.
func readName(msg []byte, off int) (string, int, bool) {
	var labels []string
	for {
		if off >= len(msg) {
			return "", 0, false
		}
		l := int(msg[off])
		off++
		if l == 0 {
			break
		}
		if l&0xc0 != 0 || off+l > len(msg) {
			return "", 0, false
		}
		labels = append(labels, string(msg[off:off+l]))
		off += l
	}
	return strings.Join(labels, "."), off, true
}

func canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

func typeName(t uint16) string {
	switch t {
	case typeA:
		return "A"
	case typeAAAA:
		return "AAAA"
	}
	return "TYPE" + strconv.Itoa(int(t))
}
