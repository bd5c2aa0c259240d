package prober

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// udpServer is an in-process UDP (or unixgram) server: handle gets each
// datagram and may answer it. Cleanup closes it and waits.
func udpServer(t *testing.T, pc net.PacketConn, answer bool) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if answer && from != nil {
				pc.WriteTo([]byte("pong"), from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
}

func udpPeer(network, address string) *Peer {
	return &Peer{Protocol: protocol.UDP, Network: network, Address: address,
		ConnectTimeout: 300 * time.Millisecond, ReadTimeout: 10 * time.Minute, SendTimeout: 10 * time.Minute}
}

// TestUDPProbe: an ICMP port unreachable is connection_refused, an answer
// is success, silence is no verdict (InconclusiveNoAnswer), never success.
func TestUDPProbe(t *testing.T) {
	listen := func(network, addr string) net.PacketConn {
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		return pc
	}
	answering := listen("udp", "127.0.0.1:0")
	udpServer(t, answering, true)
	silent := listen("udp", "127.0.0.1:0")
	udpServer(t, silent, false)
	closed := listen("udp", "127.0.0.1:0")
	closedAddr := closed.LocalAddr().String()
	closed.Close()

	dir := testutil.ShortDir(t)
	silentUnix := listen("unixgram", filepath.Join(dir, "silent.sock"))
	udpServer(t, silentUnix, false)
	stale := filepath.Join(dir, "stale.sock")
	st := listen("unixgram", stale)
	st.Close()

	tests := []struct {
		name    string
		peer    *Peer
		want    Reason
		unknown bool
	}{
		{"answer", udpPeer("udp", answering.LocalAddr().String()), ReasonNone, false},
		{"ICMP port unreachable", udpPeer("udp", closedAddr), ReasonConnectionRefused, false},
		{"silence", udpPeer("udp", silent.LocalAddr().String()), ReasonNone, true},
		{"unixgram silence", udpPeer("unixgram", filepath.Join(dir, "silent.sock")), ReasonNone, true},
		{"unixgram missing", udpPeer("unixgram", filepath.Join(dir, "missing.sock")), ReasonSocketNotFound, false},
		{"unixgram stale", udpPeer("unixgram", stale), ReasonConnectionRefused, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r := runProbe(t, tt.peer)
			if got := r.Inconclusive == InconclusiveNoAnswer; r.Reason != tt.want || got != tt.unknown {
				t.Fatalf("reason %q inconclusive %q (err %v), want %q no answer %v", r.Reason, r.Inconclusive, r.Err, tt.want, tt.unknown)
			}
			if wantSuccess := tt.want == ReasonNone && !tt.unknown; r.Success != wantSuccess {
				t.Fatalf("success = %v, want %v", r.Success, wantSuccess)
			}
			if tt.unknown {
				// Silence waits the shorter timeout (connect, here),
				// not proxy_timeout.
				if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
					t.Errorf("silent probe took %v, want about the connect timeout (300ms)", d)
				}
				if r.Detail == "" {
					t.Error("no detail on a probe without a verdict")
				}
			}
		})
	}
}

// TestStreamTCPProbe: a "tcp" target is a connect; a "tls" target adds
// nginx's handshake (proxy_ssl on), which a plain port fails.
func TestStreamTCPProbe(t *testing.T) {
	year := time.Now().Add(365 * 24 * time.Hour)
	ca := testutil.MustCert(t, "Test CA", testutil.CertOptions{CA: true, NotAfter: year})
	leaf := testutil.MustCert(t, "db.test", testutil.CertOptions{Parent: ca, NotAfter: year, Names: []string{"db.test"}})
	tlsServer := serveTCP(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}})
		tc.SetDeadline(time.Now().Add(3 * time.Second))
		if tc.Handshake() == nil {
			waitClosed(tc)
		}
	})
	// A plain-text server that greets first, as PostgreSQL's or SMTP's
	// peers do: the TLS client reads its banner as a broken record.
	banner := serveTCP(t, func(c net.Conn) {
		c.Write([]byte("220 mail.test ESMTP\r\n"))
		waitClosed(c)
	})
	refused := testutil.FreeAddr(t)

	tests := []struct {
		name string
		peer *Peer
		want Reason
	}{
		{"tcp healthy", banner.target("tcp"), ReasonNone},
		{"tcp refused", connectTarget("tcp", refused), ReasonConnectionRefused},
		{"tls healthy", tlsServer.target("tls"), ReasonNone},
		{"tls to a plain port", banner.target("tls"), ReasonProtocolMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, runProbe(t, tt.peer), tt.want)
		})
	}
}

// A unix datagram socket is judged for nginx's worker user like a stream
// socket: connect(2) needs write permission on it.
func TestUnixgramWorkerPermissions(t *testing.T) {
	requireRoot(t)
	dir := testutil.ShortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(dir, "ro.sock")
	pc, err := net.ListenPacket("unixgram", ro)
	if err != nil {
		t.Fatal(err)
	}
	udpServer(t, pc, false)
	if err := os.Chmod(ro, 0o644); err != nil {
		t.Fatal(err)
	}
	p := udpPeer("unixgram", ro)
	p.Worker = nobody
	r := runProbe(t, p)
	if r.Reason != ReasonPermissionDenied || r.Inconclusive != "" {
		t.Fatalf("reason %q inconclusive %q (%v), want permission_denied for the worker user", r.Reason, r.Inconclusive, r.Err)
	}
	// The same socket writable by everyone: no verdict (silence), not a
	// permission failure.
	if err := os.Chmod(ro, 0o666); err != nil {
		t.Fatal(err)
	}
	if r := runProbe(t, p); r.Reason != ReasonNone || r.Inconclusive != InconclusiveNoAnswer {
		t.Fatalf("writable socket: reason %q inconclusive %q (%v)", r.Reason, r.Inconclusive, r.Err)
	}
}

func TestNginxMessageOverUDP(t *testing.T) {
	if m := ReasonConnectionRefused.NginxMessageOver("udp"); m != `recv() failed (111: Connection refused) while proxying and reading from upstream` {
		t.Errorf("udp: %q", m)
	}
	if m := ReasonConnectionRefused.NginxMessageOver("tcp"); m != ReasonConnectionRefused.NginxMessage() {
		t.Errorf("tcp: %q", m)
	}
}
