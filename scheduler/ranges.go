package scheduler

// Ranges returns the number of targets and a function that calls fn, as
// Each does, with a copy of the status of each target in [from, to) of
// the configuration order as it was when Ranges was called. Several
// goroutines may call it at once on disjoint ranges: together they read
// one target set even if a reload lands meanwhile (Update replaces the
// order, it never changes one in place), so /metrics can render the parts
// of a family in parallel without a target missing or twice. st is
// reused between calls: fn must not keep it.
func (s *Scheduler) Ranges() (int, func(from, to int, fn func(st *Status))) {
	s.mu.Lock()
	order := s.order
	s.mu.Unlock()
	return len(order), func(from, to int, fn func(st *Status)) {
		var cp Status
		for _, st := range order[from:to] {
			st.mu.Lock()
			st.read(&cp)
			st.mu.Unlock()
			fn(&cp)
		}
	}
}
