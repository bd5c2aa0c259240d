package prober

import (
	"net"
	"slices"
	"testing"
)

// Settings shared by several peers (TLSSettings.SessionReuse) give each
// peer a session of its own, as nginx keeps one per upstream peer, and
// nothing is allocated for a peer before its first session arrives.
func TestTLSSessionReusePerPeer(t *testing.T) {
	t.Run("each peer resumes its own session", func(t *testing.T) {
		srv, resumed := resumingBackend(t, false)
		shared := &TLSSettings{SessionReuse: true}
		a, b := srv.target("https"), srv.target("https")
		a.TLS, b.TLS = shared, shared
		if a.peerSessions() != nil {
			t.Fatal("sessions allocated before any handshake")
		}
		p := New()
		for range fullHandshakeEvery + 3 {
			r := &Result{}
			runOn(t, p, a, r)
			checkResult(t, r, ReasonNone)
		}
		if a.peerSessions() == nil {
			t.Fatal("no sessions kept after successful handshakes")
		}
		// The other peer never had a session: a full handshake.
		r := &Result{}
		runOn(t, p, b, r)
		checkResult(t, r, ReasonNone)
		want := []bool{false}
		for range fullHandshakeEvery {
			want = append(want, true)
		}
		want = append(want, false, true, false)
		if got := resumed(); !slices.Equal(got, want) {
			t.Errorf("resumed per probe %v, want %v", got, want)
		}
		if b.peerSessions() == nil {
			t.Error("the second peer kept no session of its own after its handshake")
		}
	})
	t.Run("no handshake, no allocation", func(t *testing.T) {
		srv := serveTCP(t, func(c net.Conn) { c.Close() })
		tg := srv.target("https")
		tg.TLS = &TLSSettings{SessionReuse: true}
		r := &Result{}
		runOn(t, New(), tg, r)
		if r.Success {
			t.Fatal("a backend that hangs up passed the handshake")
		}
		if tg.peerSessions() != nil {
			t.Error("sessions allocated for a peer that never completed a handshake")
		}
	})
}
