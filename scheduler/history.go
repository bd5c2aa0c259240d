package scheduler

import (
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// HistoryLen is how many past probes of each target History returns: what
// the status page's per-target view shows to tell a flapping server from
// a dead one.
const HistoryLen = 5

// Outcome is one past probe of a target.
type Outcome struct {
	Finished time.Time
	Success  bool
	// Reason is the failure reason, Inconclusive the cause of a probe
	// without a verdict; both empty on success.
	Reason       prober.Reason
	Inconclusive prober.Inconclusive
	Duration     time.Duration
	Phases       [len(prober.PhaseNames)]time.Duration
}

// outcome is Outcome as kept in memory: reasons as indices, times as
// integers, phases in microseconds: 40 bytes, so the ring of a target
// costs about 210 bytes, 2.1 MB at 10,000 targets.
type outcome struct {
	finished int64 // UnixNano
	duration int64
	phases   [len(prober.PhaseNames)]uint32 // µs, saturating at ~71 min
	reason   uint8                          // 0: none, else prober.Reasons[reason-1]
	cause    uint8                          // 0: none, else prober.InconclusiveCauses[cause-1]
	success  bool
}

// history is a ring of a target's last outcomes, guarded by state.mu.
type history struct {
	ring [HistoryLen]outcome
	n    uint64 // outcomes recorded so far
}

func (h *history) add(r *prober.Result, finished time.Time) {
	o := outcome{finished: finished.UnixNano(), duration: int64(r.Duration), success: r.Success}
	for i, d := range r.Phases {
		o.phases[i] = uint32(min(d/time.Microsecond, 1<<32-1))
	}
	for i, v := range prober.Reasons {
		if v == r.Reason {
			o.reason = uint8(i + 1)
		}
	}
	for i, v := range prober.InconclusiveCauses {
		if v == r.Inconclusive {
			o.cause = uint8(i + 1)
		}
	}
	h.ring[h.n%HistoryLen] = o
	h.n++
}

// list returns the outcomes, newest first.
func (h *history) list() []Outcome {
	n := min(h.n, HistoryLen)
	out := make([]Outcome, 0, n)
	for i := range n {
		o := &h.ring[(h.n-1-i)%HistoryLen]
		x := Outcome{Finished: time.Unix(0, o.finished), Success: o.success, Duration: time.Duration(o.duration)}
		for p, us := range o.phases {
			x.Phases[p] = time.Duration(us) * time.Microsecond
		}
		if o.reason > 0 {
			x.Reason = prober.Reasons[o.reason-1]
		}
		if o.cause > 0 {
			x.Inconclusive = prober.InconclusiveCauses[o.cause-1]
		}
		out = append(out, x)
	}
	return out
}

// History returns the last HistoryLen probes of the target with these
// labels, newest first; nil for a target not configured or not probed.
func (s *Scheduler) History(k discovery.Key) []Outcome {
	s.mu.Lock()
	st, ok := s.states[k]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.history.list()
}
