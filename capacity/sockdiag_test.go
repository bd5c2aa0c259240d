package capacity

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

func TestMain(m *testing.M) {
	if os.Getenv(oomChildEnv) != "" {
		oomChild()
		return
	}
	if os.Getenv(unprivEnv) != "" {
		unprivChild()
		return
	}
	goleak.VerifyTestMain(m)
}

// listenBacklog opens a socket that listens with the given backlog and
// never accepts. network is "tcp" (127.0.0.1, port 0) or "unix" (path).
func listenBacklog(t *testing.T, network, path string, backlog int) (fd int, addr string) {
	t.Helper()
	var err error
	if network == "unix" {
		fd, err = syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err == nil {
			err = syscall.Bind(fd, &syscall.SockaddrUnix{Name: path})
		}
		addr = path
	} else {
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err == nil {
			err = syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	if network == "tcp" {
		sa, err := syscall.Getsockname(fd)
		if err != nil {
			t.Fatal(err)
		}
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	}
	return fd, addr
}

// fill connects n times without anyone accepting; it returns how many
// connects completed. TCP completes backlog+1 and then drops SYNs (the
// connect times out); a unix socket refuses with EAGAIN.
func fill(t *testing.T, network, addr string, n int) int {
	t.Helper()
	ok := 0
	for range n {
		c, err := net.DialTimeout(network, addr, 200*time.Millisecond)
		if err != nil {
			continue
		}
		ok++
		t.Cleanup(func() { c.Close() })
	}
	return ok
}

func target(t *testing.T, network, addr string, p protocol.Protocol) *discovery.Target {
	t.Helper()
	server := addr
	if network == "unix" {
		server = "unix:" + addr
	}
	tg, err := discovery.Arbitrary(server, "backend", protocol.Kind{Protocol: p}, discovery.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func newMonitor(targets ...*discovery.Target) *Monitor {
	return New(Options{Targets: func() []*discovery.Target { return targets }, Interval: time.Second})
}

// ssQueue runs ss(8) with -H (no header) for one listener and returns its Recv-Q and Send-Q:
// for a listening socket, the accept queue's length and limit.
func ssQueue(t *testing.T, args ...string) (q, limit uint32) {
	t.Helper()
	out, err := exec.Command("ss", args...).CombinedOutput()
	if err != nil {
		t.Skipf("ss(8) unavailable: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 {
		t.Fatalf("ss %v printed %d lines, want one socket:\n%s", args, len(lines), out)
	}
	f := strings.Fields(lines[0])
	// ss -l: State Recv-Q Send-Q Local Peer (-x adds Netid first).
	i := 1
	if f[0] == "u_str" {
		i = 2
	}
	a, err1 := strconv.ParseUint(f[i], 10, 32)
	b, err2 := strconv.ParseUint(f[i+1], 10, 32)
	if err1 != nil || err2 != nil {
		t.Fatalf("ss output: %q", lines[0])
	}
	return uint32(a), uint32(b)
}

// TestTCPNeverAccepting fills a TCP listener that never accepts: the
// queue reaches backlog+1, and the monitor's numbers are those ss -lnt
// prints for the same socket.
func TestTCPNeverAccepting(t *testing.T) {
	const backlog = 3
	_, addr := listenBacklog(t, "tcp", "", backlog)
	tg := target(t, "tcp", addr, protocol.HTTP)
	m := newMonitor(tg)

	m.Refresh(context.Background())
	st, ok := m.Lookup(tg.Key)
	if !ok || st.Listen != Listening || st.Listener.Queue != 0 || st.Listener.Limit != backlog {
		t.Fatalf("empty listener: ok=%v %+v", ok, st)
	}
	if !st.SaturationKnown || st.Saturated {
		t.Errorf("empty queue: saturated=%v known=%v", st.Saturated, st.SaturationKnown)
	}

	if n := fill(t, "tcp", addr, backlog+3); n != backlog+1 {
		t.Errorf("%d connects completed, want backlog+1 = %d", n, backlog+1)
	}
	m.Refresh(context.Background())
	st, _ = m.Lookup(tg.Key)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	q, limit := ssQueue(t, "-Hlnt", "sport = :"+port)
	if st.Listener.Queue != q || st.Listener.Limit != limit {
		t.Errorf("sock_diag says %d/%d, ss -lnt says %d/%d", st.Listener.Queue, st.Listener.Limit, q, limit)
	}
	if st.Listener.Queue != backlog+1 {
		t.Errorf("queue %d, want backlog+1 = %d", st.Listener.Queue, backlog+1)
	}
	if !st.Saturated {
		t.Errorf("a full queue is not saturated: %+v", st)
	}
	// The test process holds the socket: it is the owner.
	if st.Owner == nil || st.Owner.PID != os.Getpid() {
		t.Errorf("owner %+v, want this process %d", st.Owner, os.Getpid())
	}
	ns, ok := m.NetStat()
	if !ok || ns.ListenOverflows == 0 || ns.ListenDrops < ns.ListenOverflows {
		t.Errorf("netstat after dropped SYNs: %+v ok=%v", ns, ok)
	}
}

// TestUnixNeverAccepting fills a unix listener: EAGAIN beyond the
// backlog, and the queue ss -xl prints.
func TestUnixNeverAccepting(t *testing.T) {
	const backlog = 2
	path := filepath.Join(testutil.ShortDir(t), "s.sock")
	_, addr := listenBacklog(t, "unix", path, backlog)
	tg := target(t, "unix", addr, protocol.FastCGI)
	m := newMonitor(tg)

	n := fill(t, "unix", addr, backlog+4)
	m.Refresh(context.Background())
	st, ok := m.Lookup(tg.Key)
	if !ok || st.Listen != Listening {
		t.Fatalf("unix listener not found: %+v", st)
	}
	q, limit := ssQueue(t, "-Hxl", "src", path)
	if st.Listener.Queue != q || st.Listener.Limit != limit {
		t.Errorf("sock_diag says %d/%d, ss -xl says %d/%d", st.Listener.Queue, st.Listener.Limit, q, limit)
	}
	if uint32(n) != st.Listener.Queue || st.Listener.Queue < backlog {
		t.Errorf("%d connects completed, queue %d/%d", n, st.Listener.Queue, st.Listener.Limit)
	}
	if !st.Saturated {
		t.Errorf("full unix queue not saturated: %+v", st)
	}

	// The same path with a new socket (a restarted backend) is a new
	// inode: a restart, and the stale socket is not the one measured.
	os.Remove(path)
	_, _ = listenBacklog(t, "unix", path, 7)
	m.Refresh(context.Background())
	st2, _ := m.Lookup(tg.Key)
	if st2.Listener.Limit != 7 || st2.Listener.Queue != 0 || st2.Listener.Inode == st.Listener.Inode {
		t.Errorf("after re-creating the socket: %+v (before %+v)", st2.Listener, st.Listener)
	}
	if st2.Restarts != 1 {
		t.Errorf("restarts %d after a new socket at the same path, want 1", st2.Restarts)
	}

	// Removed: not listening, not unknown.
	os.Remove(path)
	m.Refresh(context.Background())
	if st3, _ := m.Lookup(tg.Key); st3.Listen != NotListening || st3.SaturationKnown {
		t.Errorf("removed socket: %+v", st3)
	}
}

// TestRemoteTargetIgnored: an address of another host has no state.
func TestRemoteTargetIgnored(t *testing.T) {
	tg := target(t, "tcp", "192.0.2.1:80", protocol.HTTP)
	m := newMonitor(tg)
	m.Refresh(context.Background())
	if st, ok := m.Lookup(tg.Key); ok {
		t.Errorf("remote target has state %+v", st)
	}
	// A local address where nothing listens is down, not unknown.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tg = target(t, "tcp", addr, protocol.HTTP)
	m = newMonitor(tg)
	m.Refresh(context.Background())
	if st, ok := m.Lookup(tg.Key); !ok || st.Listen != NotListening {
		t.Errorf("closed local port: ok=%v %+v", ok, st)
	}
}

// TestWildcardListener: a target at 127.0.0.1 reaches a socket bound to
// 0.0.0.0.
func TestWildcardListener(t *testing.T) {
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	tg := target(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port), protocol.HTTP)
	m := newMonitor(tg)
	m.Refresh(context.Background())
	st, ok := m.Lookup(tg.Key)
	if !ok || st.Listen != Listening {
		t.Fatalf("wildcard listener not matched: %+v", st)
	}
	lis, err := DumpListeners()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lis.TCP(netip.MustParseAddrPort(fmt.Sprintf("192.0.2.1:%d", port)), func(netip.Addr) bool { return false }); ok {
		t.Error("a non-local address matched a wildcard listener")
	}
}
