package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// gateProber holds every probe until release is closed; the first probe
// of each address fails (refused), later ones succeed, so that a result
// says which probe it came from.
type gateProber struct {
	mu      sync.Mutex
	started map[string]int
	release chan struct{}
}

func (g *gateProber) Probe(ctx context.Context, p *prober.Peer, r *prober.Result) {
	g.mu.Lock()
	g.started[p.Address]++
	first := g.started[p.Address] == 1
	g.mu.Unlock()
	select {
	case <-g.release:
	case <-ctx.Done():
	}
	if first {
		r.Fail(prober.ReasonConnectionRefused, nil)
		return
	}
	r.Success = true
}

func (g *gateProber) total() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, c := range g.started {
		n += c
	}
	return n
}

// makeDue makes every target that is not running due now.
func makeDue(s *Scheduler) {
	now := s.at(time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fast.q, s.slow.q = s.fast.q[:0], s.slow.q[:0]
	for i := range s.states {
		st := &s.states[i]
		if st.is(flagRunning) {
			continue
		}
		st.due, st.lagFrom = now, now
		s.push(s.laneOf(st), int32(i))
	}
}

// TestUpdateWhileProbing: a probe in flight when the target set changes
// records into its target's state in the new set, wherever that moved,
// and queues its next run once; the probe of a target the new set
// removed records nowhere that is exported, even when a target with the
// same labels comes back before it ends.
func TestUpdateWhileProbing(t *testing.T) {
	g := &gateProber{started: map[string]int{}, release: make(chan struct{})}
	s := New(Options{Interval: time.Hour, Concurrency: 8, Timeout: 10 * time.Second, Prober: g})
	s.Update(set(target("u", "a", false), target("u", "b", false)))
	makeDue(s)
	var wg sync.WaitGroup
	s.dispatch(context.Background(), &wg, time.Now())
	waitFor(t, "a and b probed", func() bool { return g.total() == 2 })

	// a stays (as a new Target with the same labels) and moves; b goes.
	a2, c := target("u", "a", false), target("u", "c", false)
	s.Update(set(c, a2))
	// b comes back, as a new server, while its old probe still runs.
	b2 := target("u", "b", false)
	s.Update(set(c, a2, b2))
	makeDue(s)
	s.dispatch(context.Background(), &wg, time.Now())
	waitFor(t, "c and the new b probed", func() bool { return g.total() == 4 })
	s.mu.Lock()
	if len(s.active) != 4 {
		t.Errorf("%d probes in flight, want 4", len(s.active))
	}
	s.mu.Unlock()
	close(g.release)
	wg.Wait()

	st := statuses(s)
	refused := reasonIndex(prober.ReasonConnectionRefused)
	if a := st["a"]; a.Target != a2 || a.Runs != 1 || a.Result.Reason != prober.ReasonConnectionRefused || a.Failures[refused] != 1 {
		t.Errorf("a: the probe started before the update did not land in its new state: %+v", a)
	}
	// Had the old probe of b recorded into the new b, it would show its
	// failure and two runs.
	if b := st["b"]; b.Target != b2 || b.Runs != 1 || !b.Result.Success || b.Failures[refused] != 0 {
		t.Errorf("b: want only the new server's own probe, a success: %+v", b)
	}
	if c := st["c"]; c.Runs != 1 {
		t.Errorf("c: %d runs, want 1", c.Runs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.active) != 0 {
		t.Errorf("%d probes still listed in flight", len(s.active))
	}
	queued := map[int32]int{}
	for _, l := range []*lane{&s.fast, &s.slow} {
		for _, i := range l.q {
			queued[i]++
		}
		if l.busy != 0 {
			t.Errorf("lane has %d busy slots after every probe ended", l.busy)
		}
	}
	for i := range s.states {
		if queued[int32(i)] != 1 || s.states[i].is(flagRunning) {
			t.Errorf("%s queued %d times (running %v), want once", s.states[i].target.Server, queued[int32(i)], s.states[i].is(flagRunning))
		}
	}
	if len(queued) != len(s.states) {
		t.Errorf("queues hold %d slots for %d targets", len(queued), len(s.states))
	}
}

// TestFindTellsCollidingHashesApart: labels whose hashes collide are
// found by comparing the labels, and every one of 10,000 targets is found
// by its own.
func TestFindTellsCollidingHashesApart(t *testing.T) {
	ts := []*discovery.Target{target("u", "a", false), target("u", "b", false), target("u", "c", false)}
	states := make([]state, len(ts))
	index := make([]slot, len(ts))
	for i, tg := range ts {
		states[i].target = tg
		index[i] = slot{hash: 7, i: int32(i)}
	}
	index = append([]slot{{hash: 3, i: 2}}, index...)
	for i, tg := range ts {
		if got := find(index, states, 7, tg.Key); got != int32(i) {
			t.Errorf("%s: slot %d, want %d", tg.Server, got, i)
		}
	}
	if got := find(index, states, 7, discovery.Key{Upstream: "u", Server: "d"}); got != -1 {
		t.Errorf("labels not configured found at slot %d", got)
	}

	many := memoryTargets(10000)
	s := New(Options{Interval: time.Second, Prober: newCountingProber()})
	s.Update(&discovery.Set{Targets: many})
	var st Status
	for _, tg := range many {
		if !s.Read(tg.Key, &st) || st.Target != tg {
			t.Fatalf("%v: not found by its labels", tg.Key)
		}
	}
}

// TestUpdateWithLabelsTwice: a set holding the same labels twice (which
// discovery never builds) while a probe of them runs: the probe ends in
// one of the two states, and both are queued once afterwards, neither
// left running.
func TestUpdateWithLabelsTwice(t *testing.T) {
	g := &gateProber{started: map[string]int{}, release: make(chan struct{})}
	s := New(Options{Interval: time.Hour, Concurrency: 8, Timeout: 10 * time.Second, Prober: g})
	s.Update(set(target("u", "a", false)))
	makeDue(s)
	var wg sync.WaitGroup
	s.dispatch(context.Background(), &wg, time.Now())
	waitFor(t, "a probed", func() bool { return g.total() == 1 })
	s.Update(set(target("u", "a", false), target("u", "a", false)))
	close(g.release)
	wg.Wait()

	s.mu.Lock()
	defer s.mu.Unlock()
	queued := map[int32]int{}
	for _, l := range []*lane{&s.fast, &s.slow} {
		for _, i := range l.q {
			queued[i]++
		}
	}
	runs := uint64(0)
	for i := range s.states {
		runs += s.states[i].runs
		if queued[int32(i)] != 1 || s.states[i].is(flagRunning) {
			t.Errorf("state %d queued %d times (running %v), want once", i, queued[int32(i)], s.states[i].is(flagRunning))
		}
	}
	if runs != 1 {
		t.Errorf("%d results recorded for one probe", runs)
	}
}
