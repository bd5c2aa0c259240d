// Package sockdiag reads the kernel's TCP sockets through netlink
// sock_diag (linux/inet_diag.h) one message at a time.
//
// The netlink library's own helper (netlink.SocketDiagTCP) returns every
// socket of the namespace as an object with its addresses as net.IP
// slices; on a host with tens of thousands of connections that is
// megabytes of short-lived heap per dump, which shows as RSS spikes in a
// process that wants only a few of them. Here the dump is walked message
// by message and each socket is decoded into a value on the stack: the
// caller keeps what it needs and nothing else is allocated per socket.
package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// TCP states (include/net/tcp_states.h), as Socket.State reports them
// and as the bits of a dump's state mask.
const (
	StateEstablished = 1
	StateSynSent     = 2
	StateListen      = 10
)

// Sizes of the request and of the fixed part of an answer.
const (
	sizeofInetDiagReqV2 = 56
	sizeofInetDiagMsg   = 72

	attrSKV6Only = 11 // INET_DIAG_SKV6ONLY
)

// ErrShort is returned for a message shorter than struct inet_diag_msg.
var ErrShort = errors.New("short sock_diag message")

// Socket is one struct inet_diag_msg and the attributes read from it.
type Socket struct {
	Family uint8 // unix.AF_INET or unix.AF_INET6
	State  uint8 // one of the State constants
	Src    netip.AddrPort
	Dst    netip.AddrPort
	// RQueue and WQueue are idiag_rqueue and idiag_wqueue: for a
	// listener, the accept queue's length and the backlog it was given.
	RQueue uint32
	WQueue uint32
	Inode  uint32
	// V6Only is INET_DIAG_SKV6ONLY, reported for IPv6 sockets.
	V6Only bool
}

// tcpRequest is struct inet_diag_req_v2 for TCP sockets of family in
// the given states.
func tcpRequest(family uint8, states uint32) []byte {
	b := make([]byte, sizeofInetDiagReqV2)
	b[0] = family
	b[1] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(b[4:8], states)
	return b
}

// StateMask is the dump's idiag_states for the given states.
func StateMask(states ...uint8) uint32 {
	var m uint32
	for _, s := range states {
		m |= 1 << s
	}
	return m
}

// DumpTCP walks the TCP sockets of the calling thread's network
// namespace whose family is family (unix.AF_INET or unix.AF_INET6) and
// whose state is in the mask states (StateMask), calling fn for each
// until fn returns false. The Socket fn gets is reused for the next
// message: fn copies what it keeps. A dump the kernel reports as interrupted (a
// socket came or went while it walked its tables) is not an error: what
// was read is still each socket's truth. Unprivileged processes may dump:
// the kernel answers sock_diag for any user.
func DumpTCP(family uint8, states uint32, fn func(*Socket) bool) error {
	var perr error
	var s Socket
	err := Dump(tcpRequest(family, states), func(msg []byte) bool {
		if perr = Parse(msg, &s); perr != nil {
			return false
		}
		return fn(&s)
	})
	if perr != nil {
		err = perr
	}
	if err != nil {
		return fmt.Errorf("sock_diag dump: %w", err)
	}
	return nil
}

// Parse reads struct inet_diag_msg and its attributes from b into s.
func Parse(b []byte, s *Socket) error {
	*s = Socket{}
	if len(b) < sizeofInetDiagMsg {
		return ErrShort
	}
	ne := binary.NativeEndian
	s.Family = b[0]
	s.State = b[1]
	// struct inet_diag_sockid at offset 4: ports in network order, then
	// the source and destination addresses in four 32-bit words each.
	sport := binary.BigEndian.Uint16(b[4:6])
	dport := binary.BigEndian.Uint16(b[6:8])
	var src, dst netip.Addr
	if s.Family == unix.AF_INET {
		src = netip.AddrFrom4([4]byte(b[8:12]))
		dst = netip.AddrFrom4([4]byte(b[24:28]))
	} else {
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
	}
	s.Src = netip.AddrPortFrom(src, sport)
	s.Dst = netip.AddrPortFrom(dst, dport)
	s.RQueue = ne.Uint32(b[56:60])
	s.WQueue = ne.Uint32(b[60:64])
	s.Inode = ne.Uint32(b[68:72])
	return WalkAttrs(b[sizeofInetDiagMsg:], func(typ uint16, v []byte) {
		if typ == attrSKV6Only && len(v) > 0 {
			s.V6Only = v[0] != 0
		}
	})
}

// WalkAttrs calls fn for each netlink attribute (struct nlattr: length,
// type, value padded to 4 bytes) of b without allocating: a dump of
// 10,000 sockets would otherwise allocate a slice per socket.
func WalkAttrs(b []byte, fn func(typ uint16, value []byte)) error {
	ne := binary.NativeEndian
	for len(b) >= 4 {
		l := int(ne.Uint16(b[0:2]))
		if l < 4 || l > len(b) {
			return fmt.Errorf("sock_diag attribute of length %d in %d bytes", l, len(b))
		}
		fn(ne.Uint16(b[2:4])&0x3fff, b[4:l])
		b = b[min((l+3)&^3, len(b)):]
	}
	return nil
}
