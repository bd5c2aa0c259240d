package loadstate

import (
	"context"
	"net"
	"net/netip"
	"testing"
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
