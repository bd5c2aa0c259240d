package main

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/errorlog"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxproc"
)

type fakePeers map[string][]errorlog.UnknownPeer

func (f fakePeers) UnknownPeers() map[string][]errorlog.UnknownPeer { return f }

// The error log's peers that no target yields are evidence of what nginx
// dials, but only those logged by the current generation of workers.
func TestLogEvidence(t *testing.T) {
	gen := time.Now().Add(-time.Minute)
	peers := fakePeers{"app": {
		{Upstream: "app", Protocol: "http", Address: "127.0.0.2:3000", Last: gen.Add(10 * time.Second)},
		{Upstream: "app", Protocol: "http", Address: "127.0.0.9:3000", Last: gen.Add(-time.Second)}, // an earlier load
		{Upstream: "app", Protocol: "fastcgi", Address: "unix:/run/php.sock", Last: gen.Add(time.Second)},
	}}
	current := &nginxproc.Snapshot{Current: []nginxproc.Process{{PID: 2, Start: gen}}}
	got, err := logEvidence{peers}.Peers(context.Background(), current)
	if err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddrPort("127.0.0.2:3000")
	if len(got) != 1 || got[0].Addr != want {
		t.Errorf("peers = %v, want only %v", got, want)
	}
	// While an older generation still runs, its lines cannot be told
	// apart: no evidence rather than a guess.
	draining := &nginxproc.Snapshot{Current: current.Current, Old: []nginxproc.Process{{PID: 1, Start: gen.Add(-time.Hour)}}}
	if got, _ := (logEvidence{peers}).Peers(context.Background(), draining); len(got) != 0 {
		t.Errorf("peers while an old generation drains = %v", got)
	}
	if got, _ := (logEvidence{peers}).Peers(context.Background(), &nginxproc.Snapshot{}); !slices.Equal(got, nil) {
		t.Errorf("peers without workers = %v", got)
	}
}
