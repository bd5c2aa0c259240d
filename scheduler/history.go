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

// history is a target's last HistoryLen outcomes but their verdicts
// (state.code): entry n%HistoryLen holds the outcome of the target's n-th
// probe (from 0, state.runs counts them). It is kept column-wise, times as
// integers and durations in microseconds (nginx logs milliseconds; a
// phase saturates at ~71 min): 160 bytes, the bulk of a target's state.
type history struct {
	finished [HistoryLen]int64 // UnixNano
	duration [HistoryLen]uint32
	phases   [HistoryLen][len(prober.PhaseNames)]uint32
}

// Verdict codes: success, then a reason (prober.Reasons[code-codeReason]),
// then a cause (prober.InconclusiveCauses[code-codeCause]).
const (
	codeSuccess = 0
	codeReason  = 1
	codeCause   = codeReason + len(prober.Reasons)
	// codeNoReason: a failure without a reason, which prober.Table never
	// reports; kept as it came rather than given one.
	codeNoReason = 255
)

func encode(r *prober.Result) uint8 {
	switch {
	case r.Inconclusive != "":
		for i, v := range prober.InconclusiveCauses {
			if v == r.Inconclusive {
				return uint8(codeCause + i)
			}
		}
		return uint8(codeCause)
	case r.Success:
		return codeSuccess
	}
	for i, v := range prober.Reasons {
		if v == r.Reason {
			return uint8(codeReason + i)
		}
	}
	return codeNoReason
}

// codeReasonOf is the failure reason of verdict code c, if any.
func codeReasonOf(c uint8) prober.Reason {
	if c >= codeReason && int(c) < codeCause {
		return prober.Reasons[c-codeReason]
	}
	return ""
}

// codeCauseOf is the cause of a probe without a verdict, if c is one.
func codeCauseOf(c uint8) prober.Inconclusive {
	if int(c) >= codeCause && int(c) < codeCause+len(prober.InconclusiveCauses) {
		return prober.InconclusiveCauses[int(c)-codeCause]
	}
	return ""
}

func micros(d time.Duration) uint32 { return uint32(min(max(d/time.Microsecond, 0), 1<<32-1)) }

// put records r, finished then, as the outcome of probe number st.runs,
// and counts it. Called with Scheduler.mu held.
func (st *state) put(r *prober.Result, finished time.Time) {
	i := st.runs % HistoryLen
	h := &st.history
	h.finished[i] = finished.UnixNano()
	h.duration[i] = micros(r.Duration)
	for p, d := range r.Phases {
		h.phases[i][p] = micros(d)
	}
	st.code[i] = encode(r)
	st.runs++
}

// list returns st's last outcomes, newest first.
func (st *state) list() []Outcome {
	n := min(st.runs, HistoryLen)
	out := make([]Outcome, 0, n)
	h := &st.history
	for k := range n {
		i := (st.runs - 1 - k) % HistoryLen
		c := st.code[i]
		x := Outcome{Finished: time.Unix(0, h.finished[i]), Success: c == codeSuccess, Reason: codeReasonOf(c), Inconclusive: codeCauseOf(c),
			Duration: time.Duration(h.duration[i]) * time.Microsecond}
		for p, us := range h.phases[i] {
			x.Phases[p] = time.Duration(us) * time.Microsecond
		}
		out = append(out, x)
	}
	return out
}

// History returns the last HistoryLen probes of the target with these
// labels, newest first; nil for a target not configured or not probed.
func (s *Scheduler) History(k discovery.Key) []Outcome {
	h := s.hashKey(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.lookup(h, k)
	if st == nil {
		return nil
	}
	return st.list()
}
