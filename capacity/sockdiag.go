package capacity

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/sockdiag"
)

// The kernel's listen queues, read through netlink sock_diag: one dump of
// the listening TCP sockets (IPv4 and IPv6) and one of the listening unix
// sockets per refresh, whatever the number of targets. Both are
// internal/sockdiag's dumps (one receive buffer, messages walked in
// place); the request asks for listeners only (the netlink library's
// helpers dump every socket in every state, established connections
// included, which on a busy host is most of the cost), and the small
// request structure of linux/unix_diag.h is written here.

// Listener is one listening socket as the kernel reports it.
type Listener struct {
	// Inode is the socket's inode: what /proc/<pid>/fd links name as
	// socket:[inode], so the process holding it can be found.
	Inode uint32
	// Queue is the accept queue's length now: connections the kernel
	// completed that the application has not accepted yet.
	Queue uint32
	// Limit is the backlog the application passed to listen(2), capped
	// by net.core.somaxconn. TCP lets the queue reach Limit+1 before it
	// drops SYNs (connect then times out); a unix socket refuses with
	// EAGAIN once the queue holds more than Limit.
	Limit uint32
}

// tcpListener is a listening TCP socket and the address it is bound to.
type tcpListener struct {
	Listener
	addr     netip.AddrPort
	v6only   bool
	dualAddr bool // bound to the IPv6 wildcard and accepting IPv4 too
}

// unixListener is a listening unix socket with the inode of the file it
// is bound to, which tells a live socket from a stale one at one path.
type unixListener struct {
	Listener
	name   string
	vfsIno uint32
}

// Listeners is one dump of the namespace's listening sockets.
type Listeners struct {
	tcp  map[netip.AddrPort]tcpListener
	unix map[unixKey]Listener
}

// unixKey is a unix listener's bound path and the inode of the file
// bound (a path may have several sockets, all stale but one). Keying by
// both spares a slice per path.
type unixKey struct {
	name   string
	vfsIno uint32
}

// sock_diag constants (linux/inet_diag.h, linux/unix_diag.h,
// include/net/tcp_states.h).
const (
	tcpListen = 10

	unixDiagName  = 0 // UNIX_DIAG_NAME
	unixDiagVFS   = 1 // UNIX_DIAG_VFS
	unixDiagRQLen = 4 // UNIX_DIAG_RQLEN

	udiagShowName  = 0x01
	udiagShowVFS   = 0x02
	udiagShowRQLen = 0x10

	sizeofUnixDiagReq = 24
	sizeofUnixDiagMsg = 16
)

// unixDiagReq is struct unix_diag_req asking for listeners with their
// name, bound file and queue.
func unixDiagReq() []byte {
	b := make([]byte, sizeofUnixDiagReq)
	b[0] = unix.AF_UNIX
	ne := binary.NativeEndian
	ne.PutUint32(b[4:8], 1<<tcpListen)
	ne.PutUint32(b[12:16], udiagShowName|udiagShowVFS|udiagShowRQLen)
	return b
}

// DumpListeners reads every listening TCP and unix socket of the calling
// thread's network namespace. Unprivileged processes may do this: the
// kernel answers sock_diag dumps for any user.
func DumpListeners() (*Listeners, error) {
	return dumpListeners(0, 0)
}

// dumpListeners is DumpListeners with the maps sized for the number of
// TCP and unix listeners expected (those of the previous dump), so that
// they are allocated once rather than grown.
func dumpListeners(tcpHint, unixHint int) (*Listeners, error) {
	l := &Listeners{tcp: make(map[netip.AddrPort]tcpListener, tcpHint), unix: make(map[unixKey]Listener, unixHint)}
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		err := sockdiag.DumpTCP(fam, sockdiag.StateMask(sockdiag.StateListen), func(s *sockdiag.Socket) bool {
			t := tcpListenerOf(s)
			l.tcp[t.addr] = t
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("dumping TCP listeners (family %d): %w", fam, err)
		}
	}
	var perr error
	err := sockdiag.Dump(unixDiagReq(), func(msg []byte) bool {
		u, ok, err := parseUnixDiagMsg(msg)
		if err != nil {
			perr = err
			return false
		}
		if k := (unixKey{u.name, u.vfsIno}); ok {
			// The first of two sockets at one file, as the kernel
			// lists them (there is none: a file is bound once).
			if _, dup := l.unix[k]; !dup {
				l.unix[k] = u.Listener
			}
		}
		return true
	})
	if perr != nil {
		err = perr
	}
	if err != nil {
		return nil, fmt.Errorf("sock_diag dump of unix listeners: %w", err)
	}
	return l, nil
}

var errShortDiag = errors.New("short sock_diag message")

// tcpListenerOf is the listener a sock_diag dump reports: for a
// listening socket the kernel's read queue is the accept queue and its
// write queue the backlog.
func tcpListenerOf(s *sockdiag.Socket) tcpListener {
	return tcpListener{
		Listener: Listener{Inode: s.Inode, Queue: s.RQueue, Limit: s.WQueue},
		addr:     s.Src,
		v6only:   s.V6Only,
		dualAddr: s.Family == unix.AF_INET6 && s.Src.Addr().IsUnspecified() && !s.V6Only,
	}
}

// parseUnixDiagMsg reads struct unix_diag_msg and its attributes. ok is
// false for a listener with no path (abstract or unbound names cannot be
// nginx's unix: targets, which are paths).
func parseUnixDiagMsg(b []byte) (u unixListener, ok bool, err error) {
	if len(b) < sizeofUnixDiagMsg {
		return u, false, errShortDiag
	}
	ne := binary.NativeEndian
	if b[0] != unix.AF_UNIX || b[2] != tcpListen {
		return u, false, nil
	}
	u.Inode = ne.Uint32(b[4:8])
	err = sockdiag.WalkAttrs(b[sizeofUnixDiagMsg:], func(typ uint16, value []byte) {
		switch typ {
		case unixDiagName:
			// The value is the sun_path bytes the socket was bound
			// with, with the terminating NUL when the binder counted
			// it (Go does). (The library's own unix helper slices past
			// the attribute, which is why its names carry stray bytes.)
			v := value
			if i := bytes.IndexByte(v, 0); i > 0 {
				v = v[:i]
			}
			u.name = string(v)
		case unixDiagVFS:
			if len(value) >= 8 {
				u.vfsIno = ne.Uint32(value[0:4])
			}
		case unixDiagRQLen:
			if len(value) >= 8 {
				u.Queue = ne.Uint32(value[0:4])
				u.Limit = ne.Uint32(value[4:8])
			}
		}
	})
	if err != nil {
		return u, false, err
	}
	if u.name == "" || u.name[0] == 0 {
		return u, false, nil
	}
	return u, true, nil
}

// TCP returns the listener that accepts connections to addr: one bound to
// addr itself, else one bound to the wildcard address of addr's family
// (an IPv6 wildcard without IPV6_V6ONLY also takes IPv4), provided that
// addr is an address of this namespace (local reports that).
func (l *Listeners) TCP(addr netip.AddrPort, local func(netip.Addr) bool) (Listener, bool) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if t, ok := l.tcp[addr]; ok {
		return t.Listener, true
	}
	if !local(addr.Addr()) {
		return Listener{}, false
	}
	if addr.Addr().Is4() {
		if t, ok := l.tcp[netip.AddrPortFrom(netip.IPv4Unspecified(), addr.Port())]; ok {
			return t.Listener, true
		}
		if t, ok := l.tcp[netip.AddrPortFrom(netip.IPv6Unspecified(), addr.Port())]; ok && t.dualAddr {
			return t.Listener, true
		}
		return Listener{}, false
	}
	if t, ok := l.tcp[netip.AddrPortFrom(netip.IPv6Unspecified(), addr.Port())]; ok {
		return t.Listener, true
	}
	return Listener{}, false
}

// Unix returns the listener bound to path whose bound file is the inode
// vfsIno (from stat(2) of path): another socket once bound to the same
// path, whose file was removed and replaced, is not the one nginx reaches.
func (l *Listeners) Unix(path string, vfsIno uint64) (Listener, bool) {
	// The kernel reports the low 32 bits of the inode.
	u, ok := l.unix[unixKey{path, uint32(vfsIno)}]
	return u, ok
}

// Len returns the number of listening sockets read.
func (l *Listeners) Len() int {
	return len(l.tcp) + len(l.unix)
}
