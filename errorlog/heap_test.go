package errorlog

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// TestHeap10k bounds the attribution index of 10,000 targets, the
// counters of 5,000 of them that nginx logged errors for (one or two
// reasons each), per target, and what a scrape's snapshot of them
// allocates.
func TestHeap10k(t *testing.T) {
	testutil.SkipUnlessHeapIsTheExporters(t)
	set := benchSet(10000)
	before := testutil.LiveHeap()
	x := NewIndex(set)
	index := int64(testutil.LiveHeap()) - int64(before)
	if x.Len() != 10000 {
		t.Fatalf("%d targets", x.Len())
	}
	if a := x.Attribute("http", []byte("10.0.39.15:8080/x")); a.Target != set.Targets[9999] {
		t.Fatalf("last target not found: %+v", a)
	}
	runtime.KeepAlive(x)

	r := New(Options{})
	r.Update(set)
	var log strings.Builder
	for i := range 5000 {
		peer := fmt.Sprintf("10.%d.%d.%d:8080", i>>16&255, i>>8&255, i&255)
		fmt.Fprintf(&log, "2026/11/27 08:14:20 [error] 6#6: *%d connect() failed (111: Connection refused) while connecting to upstream, client: 192.0.2.1, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://%s/\", host: \"s\"\n", i, peer)
		if i%2 == 0 {
			fmt.Fprintf(&log, "2026/11/27 08:14:20 [error] 6#6: *%d upstream prematurely closed connection while reading upstream, client: 192.0.2.1, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://%s/\", host: \"s\"\n", i, peer)
		}
	}
	data := []byte(log.String())
	log.Reset()
	var st lineState
	before = testutil.LiveHeap()
	r.consume(&st, data)
	counters := int64(testutil.LiveHeap()) - int64(before)
	s := r.Snapshot()
	if len(s.Targets) != 5000 || s.Lines[LineMatched] != 7500 {
		t.Fatalf("%d targets with errors, %d lines matched", len(s.Targets), s.Lines[LineMatched])
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	s = r.Snapshot()
	runtime.ReadMemStats(&m1)
	snapshot := m1.TotalAlloc - m0.TotalAlloc
	if len(s.Targets) != 5000 {
		t.Fatalf("%d targets in the second snapshot", len(s.Targets))
	}
	runtime.KeepAlive(r)
	runtime.KeepAlive(data)
	t.Logf("index %d B (%.1f B/target); counters %d B (%.1f B per target with errors); a snapshot allocates %d B (%.1f B per target with errors)",
		index, float64(index)/10000, counters, float64(counters)/5000, snapshot, float64(snapshot)/5000)
	// Measured 26.3 B (49.2 with Go maps for the peers and upstreams).
	if index > 32*10000 {
		t.Errorf("index %d B, more than 32 B a target", index)
	}
	// Measured 42.6 B (88.4 with a pointer and two allocations per
	// target).
	if counters > 52*5000 {
		t.Errorf("counters %d B, more than 52 B per target with errors", counters)
	}
	if snapshot > 800*5000 {
		t.Errorf("a snapshot allocates %d B, more than 800 B per target with errors", snapshot)
	}
}

// TestCountersFollowReloads: a target's counters carry on across a load
// that moves it to another position, are dropped when it leaves the set,
// and a key present twice in a set is one target whose counts add up.
func TestCountersFollowReloads(t *testing.T) {
	line := func(peer string) []byte {
		return fmt.Appendf(nil, "2026/11/27 08:14:20 [error] 6#6: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://%s/\", host: \"h\"\n", peer)
	}
	a := target("a", "10.0.0.1:80", "10.0.0.1:80", "http", "tcp")
	b := target("b", "10.0.0.2:80", "10.0.0.2:80", "http", "tcp")
	c := target("c", "10.0.0.3:80", "10.0.0.3:80", "http", "tcp")
	counts := func(r *Reader) map[string]uint64 {
		out := map[string]uint64{}
		for _, te := range r.Snapshot().Targets {
			if _, dup := out[te.Key.Upstream]; dup {
				t.Errorf("%s listed twice", te.Key.Upstream)
			}
			out[te.Key.Upstream] = te.Errors[prober.ReasonConnectionRefused]
		}
		return out
	}
	r := New(Options{})
	var st lineState
	r.Update(&discovery.Set{Targets: []*discovery.Target{a, b, c}})
	r.consume(&st, line("10.0.0.1:80"))
	r.consume(&st, line("10.0.0.3:80"))
	r.consume(&st, line("10.0.0.3:80"))
	if got := counts(r); got["a"] != 1 || got["c"] != 2 || len(got) != 2 {
		t.Fatalf("counts %v", got)
	}
	// c moves to the front, a leaves, b stays without errors.
	r.Update(&discovery.Set{Targets: []*discovery.Target{c, b}})
	r.consume(&st, line("10.0.0.3:80"))
	r.consume(&st, line("10.0.0.2:80"))
	if got := counts(r); got["c"] != 3 || got["b"] != 1 || len(got) != 2 {
		t.Fatalf("after the reload: %v", got)
	}
	// c twice (another *Target with the same key): one target. Its
	// peer is ambiguous now, so count through each copy's position
	// as a reload in between would have left them.
	c2 := target("c", "10.0.0.3:80", "10.0.0.3:80", "http", "tcp")
	r.Update(&discovery.Set{Targets: []*discovery.Target{c, c2}})
	r.c.mu.Lock()
	r.c.counts[1] = r.c.newRecord()
	r.c.add(r.c.counts[1]-1, reasonIndex[prober.ReasonConnectionRefused], false, 4)
	r.c.mu.Unlock()
	if got := counts(r); got["c"] != 7 || len(got) != 1 {
		t.Fatalf("one key twice: %v", got)
	}
	r.Update(&discovery.Set{Targets: []*discovery.Target{c}})
	if got := counts(r); got["c"] != 7 || len(got) != 1 {
		t.Fatalf("merged at the next load: %v", got)
	}
}

// TestCountersKeepLast: the time of a target's last error is the clock's
// at that line, across a reload that moves the target, and a key present
// twice keeps the later of its two times.
func TestCountersKeepLast(t *testing.T) {
	line := fmt.Appendf(nil, "2026/11/27 08:14:20 [error] 6#6: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://10.0.0.3:80/\", host: \"h\"\n")
	at := time.Date(2026, 11, 27, 8, 14, 20, 123456789, time.UTC)
	r := New(Options{Now: func() time.Time { return at }})
	a := target("a", "10.0.0.1:80", "10.0.0.1:80", "http", "tcp")
	c := target("c", "10.0.0.3:80", "10.0.0.3:80", "http", "tcp")
	last := func() time.Time {
		s := r.Snapshot()
		if len(s.Targets) != 1 {
			t.Fatalf("%d targets with errors", len(s.Targets))
		}
		return s.Targets[0].Last
	}
	var st lineState
	r.Update(&discovery.Set{Targets: []*discovery.Target{a, c}})
	r.consume(&st, line)
	if got := last(); !got.Equal(at) {
		t.Fatalf("last %v, want %v", got, at)
	}
	r.Update(&discovery.Set{Targets: []*discovery.Target{c}})
	if got := last(); !got.Equal(at) {
		t.Fatalf("after the reload: last %v, want %v", got, at)
	}
	// c at two positions with records of different times: the later one.
	c2 := target("c", "10.0.0.3:80", "10.0.0.3:80", "http", "tcp")
	r.Update(&discovery.Set{Targets: []*discovery.Target{c, c2}})
	later := at.Add(time.Hour)
	r.c.mu.Lock()
	r.c.counts[1] = r.c.newRecord()
	r.c.add(r.c.counts[1]-1, reasonIndex[prober.ReasonConnectionRefused], true, 1)
	r.c.slab[r.c.counts[1]-1].setLast(later)
	r.c.mu.Unlock()
	if got := last(); !got.Equal(later) {
		t.Fatalf("one key twice: last %v, want %v", got, later)
	}
	r.Update(&discovery.Set{Targets: []*discovery.Target{c}})
	s := r.Snapshot()
	if got := s.Targets[0]; !got.Last.Equal(later) || got.Errors[prober.ReasonConnectionRefused] != 1 || got.BodyErrors[prober.ReasonConnectionRefused] != 1 {
		t.Fatalf("merged at the next load: %+v", got)
	}
}
