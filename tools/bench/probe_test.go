package bench

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/farm"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/tools/bench/floor"
)

// BenchmarkProbe runs the exporter's prober and the floor's exchange for
// each kind against the same in-process farm. The farm's CPU is counted
// too, so only the difference between the two rows of a kind means
// something; the harness measures the real processes separately.
func BenchmarkProbe(b *testing.B) {
	labels := map[string]string{farm.KindTCP: "memcached", farm.KindHTTP: "http", farm.KindHTTPS: "https", farm.KindFastCGI: "fastcgi"}
	for _, kind := range farm.Kinds {
		f, err := farm.Start(farm.Spec{Counts: map[string]int{kind: 20}})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(kind+"/exporter", func(b *testing.B) {
			probers := prober.New()
			pk, _ := protocol.ParseLabel(labels[kind])
			var ts []*prober.Peer
			for _, ft := range f.Targets {
				p := &prober.Peer{
					Protocol: pk.Protocol, Network: "tcp", Address: ft.Addr,
					ConnectTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, SendTimeout: 5 * time.Second,
					BufferSize: 4096, Exchange: &prober.Exchange{HTTP: prober.HTTPSettings{Version: "1.0", Host: "t1"}},
				}
				if pk.TLS {
					p.TLS = &prober.TLSSettings{}
				}
				ts = append(ts, p)
			}
			var r prober.Result
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.Reset()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				probers.Probe(ctx, ts[i%len(ts)], &r)
				cancel()
				if !r.Success {
					b.Fatalf("probe failed: %s %v", r.Reason, r.Err)
				}
			}
		})
		b.Run(kind+"/floor", func(b *testing.B) {
			fk := kind
			if kind == farm.KindTCP {
				fk = "memcached"
			}
			p := &floor.Prober{Timeout: 5 * time.Second, TLS: &tls.Config{InsecureSkipVerify: true}}
			var ts []floor.Target
			for _, ft := range f.Targets {
				ts = append(ts, floor.Target{Kind: fk, Addr: ft.Addr, Name: "t1"})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !p.ProbeOnce(&ts[i%len(ts)]) {
					b.Fatal("probe failed")
				}
			}
		})
		f.Close()
	}
}
