package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestFinishWakesOnlyWhenNeeded: a probe that frees the slot of a full
// lane wakes the dispatcher, as due work may wait for it; one that ends
// with slots free and its next run due after the dispatcher's own next
// look does not (a wake costs a futex call on another thread per probe).
func TestFinishWakesOnlyWhenNeeded(t *testing.T) {
	s := New(Options{Interval: time.Hour, Concurrency: 1, Timeout: time.Second, Prober: newCountingProber()})
	s.Update(set(target("u", "a", false), target("u", "b", false), target("u", "later", false)))
	// a and b are due now; "later" in ten minutes, so the dispatcher's
	// next look is at most ten minutes away.
	now := s.at(time.Now())
	s.mu.Lock()
	for i := range s.states {
		st := &s.states[i]
		st.due, st.lagFrom = now, now
		if st.target.Server == "later" {
			st.due, st.lagFrom = now+int64(10*time.Minute), now+int64(10*time.Minute)
		}
	}
	s.fast.q = s.fast.q[:0]
	for i := range s.states {
		s.push(&s.fast, int32(i))
	}
	s.mu.Unlock()
	woken := func() bool {
		select {
		case <-s.wake:
			return true
		default:
			return false
		}
	}
	woken()

	var wg sync.WaitGroup
	// Concurrency 1: one probe starts, the other due one waits in the
	// full lane.
	s.dispatch(context.Background(), &wg, time.Now())
	wg.Wait()
	if !woken() {
		t.Fatal("a probe ending in a full lane, with due work waiting, did not wake the dispatcher")
	}
	// With free slots the second starts and ends without a wake: its next
	// run is an hour away, after "later".
	s.mu.Lock()
	s.fast.limit = 4
	s.mu.Unlock()
	s.dispatch(context.Background(), &wg, time.Now())
	wg.Wait()
	if woken() {
		t.Error("a probe ending with slots free and its next run an hour away, after the dispatcher's next look, woke the dispatcher")
	}
	probed := 0
	s.Each(func(st *Status) {
		if st.HasResult {
			probed++
		}
	})
	if probed != 2 {
		t.Errorf("%d targets probed, want a and b", probed)
	}
}
