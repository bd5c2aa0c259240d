package loadstate

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxproc"
)

// TCP states of interest (include/net/tcp_states.h): a worker's socket
// to an upstream is ESTABLISHED while it talks, SYN_SENT while it waits
// for an answer that does not come (a stale address that drops SYNs).
const (
	tcpEstablished = 1
	tcpSynSent     = 2
	tcpListen      = 10
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

// Peers implements Evidence: one netlink dump per family and one
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
	var socks []*netlink.Socket
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		ss, err := netlink.SocketDiagTCP(fam)
		if err != nil && len(ss) == 0 {
			return nil, fmt.Errorf("sock_diag dump: %w", err)
		}
		socks = append(socks, ss...)
	}
	listening := map[uint16]bool{}
	for _, sk := range socks {
		if inodes[sk.INode] && sk.State == tcpListen {
			listening[sk.ID.SourcePort] = true
		}
	}
	var out []Peer
	for _, sk := range socks {
		if !inodes[sk.INode] || (sk.State != tcpEstablished && sk.State != tcpSynSent) || listening[sk.ID.SourcePort] {
			continue
		}
		ip, ok := netip.AddrFromSlice(sk.ID.Destination)
		if !ok {
			continue
		}
		out = append(out, Peer{Addr: netip.AddrPortFrom(ip.Unmap(), sk.ID.DestinationPort)})
	}
	return out, nil
}
