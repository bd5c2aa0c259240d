package loadstate

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxproc"
)

// TestSockDiagPeers reads this process's own sockets as if it were
// nginx's worker: the connection it made to a listener is a peer; the
// accepted end (local port = a port it listens on) is a client
// connection, not an upstream.
func TestSockDiagPeers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	snap, _ := selfAsNginx{}.Find()
	peers, err := (&SockDiag{}).Peers(context.Background(), snap)
	if err != nil {
		t.Skipf("sock_diag not available here: %v", err)
	}
	upstream := netip.MustParseAddrPort(l.Addr().String())
	client := netip.MustParseAddrPort(c.LocalAddr().String())
	var sawUpstream bool
	for _, p := range peers {
		if p.Addr == upstream {
			sawUpstream = true
		}
		if p.Addr == client {
			t.Errorf("the accepted client connection was taken for an upstream peer: %v", p)
		}
	}
	if !sawUpstream {
		t.Errorf("the connection to %v is missing from %v", upstream, peers)
	}
}

// busyHost opens n loopback connections held by the test process (2n
// sockets that are not nginx's) and starts a child process, standing in
// for nginx's only worker, that holds a duplicate of one of them. It
// returns the snapshot naming that worker and the connection's upstream
// address.
func busyHost(tb testing.TB, n int) (*nginxproc.Snapshot, netip.AddrPort) {
	tb.Helper()
	if _, err := exec.LookPath("sleep"); err != nil {
		tb.Skip("no sleep(1)")
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	var held net.Conn
	for range n {
		c, err := net.Dial("tcp4", l.Addr().String())
		if err != nil {
			tb.Skipf("%d connections: %v", n, err)
		}
		tb.Cleanup(func() { c.Close() })
		a, err := l.Accept()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { a.Close() })
		if held == nil {
			held = c
		}
	}
	f, err := held.(*net.TCPConn).File()
	if err != nil {
		tb.Fatal(err)
	}
	worker := exec.Command("sleep", "600")
	worker.ExtraFiles = []*os.File{f}
	err = worker.Start()
	f.Close()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = worker.Process.Kill(); _ = worker.Wait() })
	p := nginxproc.Process{PID: worker.Process.Pid, Start: time.Unix(1, 0)}
	return &nginxproc.Snapshot{Master: p, Current: []nginxproc.Process{p}}, netip.MustParseAddrPort(l.Addr().String())
}

// TestSockDiagPeersOnlyWorkers has the host hold 100 connections to one
// listener, of which nginx's worker holds one: that one is the only peer.
func TestSockDiagPeersOnlyWorkers(t *testing.T) {
	snap, want := busyHost(t, 100)
	peers, err := (&SockDiag{}).Peers(context.Background(), snap)
	if err != nil {
		t.Skipf("sock_diag not available here: %v", err)
	}
	if len(peers) != 1 || peers[0].Addr != want {
		t.Errorf("peers %v, want only the worker's connection to %v", peers, want)
	}
}
