package errorlog

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// flat renders counts for comparison.
func flat(c *Counts) string {
	var b strings.Builder
	for i := range c.Targets {
		t := &c.Targets[i]
		fmt.Fprintf(&b, "%v last=%d:", t.Key, t.Last.UnixNano())
		for _, rc := range c.Reasons(t) {
			fmt.Fprintf(&b, " %s/%v=%d", rc.Reason, rc.Body, rc.N)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// TestReadCountsAsSnapshot: the flat copy holds what the snapshot's maps
// hold, target by target and reason by reason, through reloads that move
// counters, share them between two positions of one key (follow) or give
// one key two counters; Find finds exactly the targets with errors, and
// a reused Counts allocates nothing.
func TestReadCountsAsSnapshot(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var targets []*discovery.Target
	for i := range 40 {
		addr := fmt.Sprintf("10.0.%d.%d:80", i/7, i)
		targets = append(targets, target(fmt.Sprintf("u%d", i%5), addr, addr, "http", "tcp"))
	}
	lines := []string{
		"2026/11/27 08:14:20 [error] 6#6: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://%s/\", host: \"h\"\n",
		"2026/11/27 08:14:20 [error] 6#6: *1 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://%s/\", host: \"h\"\n",
		"2026/11/27 08:14:20 [error] 6#6: *1 upstream prematurely closed connection while reading upstream, client: 127.0.0.1, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://%s/\", host: \"h\"\n",
		"2026/11/27 08:14:20 [error] 6#6: *1 recv() failed (104: Connection reset by peer) while reading upstream, client: 127.0.0.1, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://%s/\", host: \"h\"\n",
	}
	r := New(Options{})
	var st lineState
	var c Counts
	for round := range 30 {
		// A random subset of the targets, in random order, some twice
		// (another *Target with the same key).
		var set []*discovery.Target
		for _, tg := range targets {
			if rng.IntN(4) > 0 {
				set = append(set, tg)
			}
			if rng.IntN(10) == 0 {
				set = append(set, target(tg.Upstream, tg.Server, tg.Address, tg.Protocol, "tcp"))
			}
		}
		rng.Shuffle(len(set), func(i, j int) { set[i], set[j] = set[j], set[i] })
		r.Update(&discovery.Set{Targets: set})
		for range 1 + rng.IntN(60) {
			tg := targets[rng.IntN(len(targets))]
			r.consume(&st, fmt.Appendf(nil, lines[rng.IntN(len(lines))], tg.Address))
		}
		if round%3 == 2 && len(set) > 1 {
			// Two counters for one key, as two positions counted
			// between loads.
			r.c.mu.Lock()
			if r.c.counts != nil {
				for i := range set {
					for j := range set {
						if i != j && set[i].Key == set[j].Key {
							r.c.counts[j] = r.c.newRecord()
							r.c.add(r.c.counts[j]-1, reasonIndex[prober.ReasonReadTimeout], false, 5)
						}
					}
				}
			}
			r.c.mu.Unlock()
		}
		s := r.Snapshot()
		var want Counts
		CountsOf(&s, &want)
		r.ReadCounts(&c)
		if got, w := flat(&c), flat(&want); got != w {
			t.Fatalf("round %d:\n got %s\nwant %s", round, got, w)
		}
		with := map[discovery.Key]bool{}
		for _, te := range s.Targets {
			with[te.Key] = true
		}
		for _, tg := range targets {
			if f := c.Find(tg.Key); (f != nil) != with[tg.Key] || (f != nil && f.Key != tg.Key) {
				t.Fatalf("round %d: Find(%v) = %v", round, tg.Key, f)
			}
		}
		tot := r.Totals()
		s.Targets = tot.Targets
		if len(tot.Targets) != 0 || !reflect.DeepEqual(tot, s) {
			t.Fatalf("round %d: totals %+v, want %+v without targets", round, tot, s)
		}
	}
	if len(c.Targets) == 0 {
		t.Fatal("no target ever had errors: the test tests nothing")
	}
	if n := testing.AllocsPerRun(10, func() { r.ReadCounts(&c) }); n != 0 {
		t.Errorf("a reused Counts: %.0f allocations", n)
	}
}
