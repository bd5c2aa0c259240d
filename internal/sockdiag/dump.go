package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockDiagByFamily is SOCK_DIAG_BY_FAMILY (linux/sock_diag.h).
const sockDiagByFamily = 20

// dumpBufBytes is the receive buffer of a dump: the kernel fills each
// datagram of a dump up to 32 KiB (netlink_dump's skb, or a page when
// larger), so 64 KiB is never short.
const dumpBufBytes = 64 << 10

// recvTimeoutSec bounds the wait for each datagram of a dump.
const recvTimeoutSec = 5

// ErrTruncated is returned when a datagram of the dump did not fit in the
// receive buffer.
var ErrTruncated = errors.New("sock_diag datagram larger than the receive buffer")

// Dump sends the sock_diag request req (struct inet_diag_req_v2 or
// struct unix_diag_req, without the netlink header) as a dump from the
// calling thread's network namespace and calls fn with the payload of
// each answer until fn returns false. msg is valid only during the call.
//
// The dump is read into one buffer and walked in place: the netlink
// library's reader (syscall.ParseNetlinkMessage) allocates a slice of
// messages for every datagram, so its garbage grows with the host's
// sockets, every one of them, although callers keep a few. Here a dump
// allocates the same whatever the number of sockets.
//
// A dump the kernel marks as interrupted (a socket came or went while it
// walked its tables) is not an error: what was read is still each
// socket's truth.
func Dump(req []byte, fn func(msg []byte) bool) error {
	return dump(req, dumpBufBytes, fn)
}

func dump(req []byte, bufBytes int, fn func(msg []byte) bool) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	kernel := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}
	// The kernel answers at once; a reader that waited forever for a lost
	// answer would stop the signal that dumps for good.
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: recvTimeoutSec}); err != nil {
		return fmt.Errorf("netlink receive timeout: %w", err)
	}
	const seq = 1
	ne := binary.NativeEndian
	buf := make([]byte, max(bufBytes, unix.NLMSG_HDRLEN+len(req)))
	msg := buf[:unix.NLMSG_HDRLEN+len(req)]
	ne.PutUint32(msg[0:4], uint32(len(msg)))
	ne.PutUint16(msg[4:6], sockDiagByFamily)
	ne.PutUint16(msg[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(msg[8:12], seq)
	ne.PutUint32(msg[12:16], 0)
	copy(msg[unix.NLMSG_HDRLEN:], req)
	if err := unix.Sendto(fd, msg, 0, kernel); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	for {
		n, err := recvTrunc(fd, buf)
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		if n > len(buf) {
			return fmt.Errorf("%w (%d bytes, buffer %d)", ErrTruncated, n, len(buf))
		}
		for b := buf[:n]; len(b) > 0; {
			if len(b) < unix.NLMSG_HDRLEN {
				return fmt.Errorf("netlink: %d bytes after the last message", len(b))
			}
			l := int(ne.Uint32(b[0:4]))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return fmt.Errorf("netlink message of length %d in %d bytes", l, len(b))
			}
			typ, m := ne.Uint16(b[4:6]), b[unix.NLMSG_HDRLEN:l]
			own := ne.Uint32(b[8:12]) == seq
			b = b[min((l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), len(b)):]
			if !own {
				continue // not an answer to this request
			}
			switch typ {
			case unix.NLMSG_DONE:
				// A dump's end carries the dump's error, 0 when none.
				if len(m) >= 4 {
					if e := int32(ne.Uint32(m[0:4])); e < 0 {
						return fmt.Errorf("sock_diag dump: %w", syscall.Errno(-e))
					}
				}
				return nil
			case unix.NLMSG_ERROR:
				if len(m) < 4 {
					return errors.New("sock_diag: short error message")
				}
				if e := int32(ne.Uint32(m[0:4])); e < 0 {
					return fmt.Errorf("sock_diag: %w", syscall.Errno(-e))
				}
				// An acknowledgement: nothing to read in it.
			case unix.NLMSG_NOOP:
			default:
				if !fn(m) {
					return nil
				}
			}
		}
	}
}

// recvTrunc reads one datagram into buf and returns its whole length,
// which is more than len(buf) when it was cut (MSG_TRUNC). The raw
// system call because unix.Recvfrom returns the sender's address, one
// allocation per datagram.
func recvTrunc(fd int, buf []byte) (int, error) {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), unix.MSG_TRUNC, 0, 0)
		switch errno {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, errno
	}
}
