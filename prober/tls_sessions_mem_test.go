package prober

import (
	"runtime"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// TestTLSSessionMemory measures what a peer's TLS session keeps: nothing
// before a handshake, then the session Go hands back (ticket, secrets and
// the chain of the full handshake).
func TestTLSSessionMemory(t *testing.T) {
	testutil.SkipUnlessHeapIsTheExporters(t)
	const n = 200
	srv := httpsOK(t)
	shared := &TLSSettings{SessionReuse: true}
	peers := make([]*Peer, n)
	for i := range peers {
		peers[i] = srv.target("https")
		peers[i].TLS = shared
	}
	p := New()
	base := testutil.LiveHeap()
	for _, tg := range peers {
		r := &Result{}
		runOn(t, p, tg, r)
		checkResult(t, r, ReasonNone)
	}
	after := testutil.LiveHeap()
	for _, tg := range peers {
		if tg.peerSessions() == nil {
			t.Fatal("no session kept")
		}
	}
	runtime.KeepAlive(peers)
	per := (int64(after) - int64(base)) / n
	t.Logf("%d B per peer with a session", per)
	// Measured 535 B (Go 1.26, this chain: Go shares the parsed
	// certificates between connections); 2,500 TLS targets with a session
	// each keep about 1.3 MB. The bound catches keeping a handshake's
	// state or a copy of the chain per peer.
	if per > 2048 {
		t.Errorf("%d B per peer session, over the 2048 B bound", per)
	}
}
