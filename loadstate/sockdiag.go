package loadstate

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/sockdiag"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxproc"
)

// SockDiag is Evidence from the kernel: the TCP sockets of nginx's
// workers, found by matching the inodes of their file descriptors
// (/proc/PID/fd) with a sock_diag dump of the exporter's network
// namespace. Listening and client sockets are told apart from upstream
// ones by state and by the local port: nginx's listeners' ports are
// those of the sockets in LISTEN state that the workers hold.
type SockDiag struct {
	// Proc is the proc filesystem's mount point; "" means /proc.
	Proc string
}

var _ Evidence = (*SockDiag)(nil)

// Name implements Evidence.
func (*SockDiag) Name() string { return "sock_diag" }

// Peers implements Evidence: two netlink dumps per family and one
// readlink per worker descriptor, whatever the number of targets.
func (s *SockDiag) Peers(_ context.Context, n *nginxproc.Snapshot) ([]Peer, error) {
	proc := s.Proc
	if proc == "" {
		proc = "/proc"
	}
	inodes := map[uint32]bool{}
	for _, w := range append(append([]nginxproc.Process(nil), n.Current...), n.Old...) {
		dir := filepath.Join(proc, strconv.Itoa(w.PID), "fd")
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("reading nginx worker's descriptors: %w", err)
		}
		for _, e := range ents {
			l, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			if v, ok := strings.CutPrefix(l, "socket:["); ok {
				if ino, err := strconv.ParseUint(strings.TrimSuffix(v, "]"), 10, 32); err == nil {
					inodes[uint32(ino)] = true
				}
			}
		}
	}
	if len(inodes) == 0 {
		return nil, nil
	}
	// Two passes over the kernel's sockets, keeping only the workers':
	// the first finds the ports nginx listens on, so that the second can
	// tell the workers' client connections (local port = a listening
	// port) from their upstream ones. Nothing is kept of the other
	// sockets of the host, which on a busy one are tens of thousands.
	listening := map[uint16]bool{}
	var out []Peer
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		err := sockdiag.DumpTCP(fam, sockdiag.StateMask(sockdiag.StateListen), func(sk *sockdiag.Socket) bool {
			if inodes[sk.Inode] {
				listening[sk.Src.Port()] = true
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("reading nginx's listening sockets: %w", err)
		}
	}
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		err := sockdiag.DumpTCP(fam, sockdiag.StateMask(sockdiag.StateEstablished, sockdiag.StateSynSent), func(sk *sockdiag.Socket) bool {
			if inodes[sk.Inode] && !listening[sk.Src.Port()] {
				out = append(out, Peer{Addr: netip.AddrPortFrom(sk.Dst.Addr().Unmap(), sk.Dst.Port())})
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("reading nginx workers' connections: %w", err)
		}
	}
	return out, nil
}
