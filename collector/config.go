package collector

import (
	"sync"
	"time"
)

// ConfigState records the outcome of configuration loads; SelfMetrics
// exposes it.
// It is safe for concurrent use.
type ConfigState struct {
	mu          sync.Mutex
	ok          bool
	lastSuccess time.Time
	probed      int
	down        int
	dynamic     int
}

// Succeeded records a successful load and the target counts it produced.
func (s *ConfigState) Succeeded(at time.Time, probed, down, dynamic int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ok, s.lastSuccess = true, at
	s.probed, s.down, s.dynamic = probed, down, dynamic
}

// Failed records a failed load; the counts of the last good load stay.
func (s *ConfigState) Failed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ok = false
}

// OK reports whether the last load succeeded.
func (s *ConfigState) OK() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok
}

// LastSuccess reports whether the last load succeeded and when the last
// successful one happened (zero before the first), for the status page.
func (s *ConfigState) LastSuccess() (ok bool, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok, s.lastSuccess
}
