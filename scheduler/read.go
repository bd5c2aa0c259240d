package scheduler

import "github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"

// Read copies the status of the target with these labels into cp, as
// Each does, and says whether it is configured. The status page orders
// its rows from a first pass over Each and then reads each row's status
// here when it writes it, so no copy of every status is held.
func (s *Scheduler) Read(k discovery.Key, cp *Status) bool {
	h := s.hashKey(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.lookup(h, k)
	if st == nil {
		return false
	}
	st.read(cp)
	return true
}
