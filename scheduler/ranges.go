package scheduler

// rangeBatch is how many states Ranges copies under one taking of the
// scheduler's lock: one lock per state made the parallel /metrics
// workers (12 families × 10,000 targets) contend with each other and
// with every probe that ends, while a batch of 16 copies holds the lock
// about a microsecond, no longer than a probe's own bookkeeping.
const rangeBatch = 16

// Ranges returns the number of targets and a function that calls fn, as
// Each does, with a copy of the status of each target in [from, to) of
// the configuration order as it was when Ranges was called. Several
// goroutines may call it at once on disjoint ranges: together they read
// one target set even if a reload lands meanwhile (Update replaces the
// slab of states, it never reorders one in place), so /metrics can render
// the parts of a family in parallel without a target missing or twice.
// st is reused between calls: fn must not keep it.
func (s *Scheduler) Ranges() (int, func(from, to int, fn func(st *Status))) {
	s.mu.Lock()
	states := s.states
	s.mu.Unlock()
	return len(states), func(from, to int, fn func(st *Status)) {
		var batch [rangeBatch]Status
		for from < to {
			n := min(to-from, rangeBatch)
			s.mu.Lock()
			for i := range n {
				states[from+i].read(&batch[i])
			}
			s.mu.Unlock()
			for i := range n {
				fn(&batch[i])
			}
			from += n
		}
	}
}
