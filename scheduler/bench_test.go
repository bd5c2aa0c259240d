package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// instantProber answers at once: every other address refused.
type instantProber struct{}

func (instantProber) Probe(_ context.Context, p *prober.Peer, r *prober.Result) {
	r.Duration = time.Millisecond
	if p.Address[len(p.Address)-1]%2 == 0 {
		r.Success = true
		return
	}
	r.Fail(prober.ReasonConnectionRefused, nil)
}

// BenchmarkEach10kUnderProbes is one scrape's reads of the scheduler (20
// families, each reading all 10,000 targets through Each) while probes
// end at 5,000 a second, seven times what 10,000 targets every 15 s
// make: every read and every probe's end take the scheduler's lock.
func BenchmarkEach10kUnderProbes(b *testing.B) {
	ts := memoryTargets(10000)
	s := New(Options{Interval: 2 * time.Second, Concurrency: 64, Prober: instantProber{}})
	s.Update(&discovery.Set{Targets: ts, Probed: len(ts)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(b, "every target probed", func() bool {
		all := true
		s.Each(func(st *Status) { all = all && st.HasResult })
		return all
	})
	var runs uint64
	b.ReportAllocs()
	for b.Loop() {
		for range 20 {
			s.Each(func(st *Status) { runs += st.Runs })
		}
	}
	if runs == 0 {
		b.Fatal("no target was probed")
	}
}
