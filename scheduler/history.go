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

// history is a target's last HistoryLen outcomes, guarded by state.mu:
// entry n%HistoryLen holds the outcome of the target's n-th probe (from
// 0, state.runs counts them). It is kept column-wise, times as integers,
// durations in microseconds (nginx logs milliseconds; a phase saturates
// at ~71 min) and verdicts as one code: 168 bytes, the bulk of a
// target's state.
type history struct {
	finished [HistoryLen]int64 // UnixNano
	duration [HistoryLen]uint32
	phases   [HistoryLen][len(prober.PhaseNames)]uint32
	code     [HistoryLen]uint8
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

// outcome is one entry of a history, decoded on demand.
type outcome struct {
	finished int64
	duration uint32
	phases   [len(prober.PhaseNames)]uint32
	code     uint8
}

func (o *outcome) success() bool { return o.code == codeSuccess }

func (o *outcome) reason() prober.Reason {
	if o.code >= codeReason && int(o.code) < codeCause {
		return prober.Reasons[o.code-codeReason]
	}
	return ""
}

func (o *outcome) cause() prober.Inconclusive {
	if int(o.code) >= codeCause && int(o.code) < codeCause+len(prober.InconclusiveCauses) {
		return prober.InconclusiveCauses[int(o.code)-codeCause]
	}
	return ""
}

func micros(d time.Duration) uint32 { return uint32(min(max(d/time.Microsecond, 0), 1<<32-1)) }

// put records r, the outcome of probe number n.
func (h *history) put(n uint64, r *prober.Result, finished time.Time) {
	i := n % HistoryLen
	h.finished[i] = finished.UnixNano()
	h.duration[i] = micros(r.Duration)
	for p, d := range r.Phases {
		h.phases[i][p] = micros(d)
	}
	h.code[i] = encode(r)
}

// at returns the outcome of probe number n, one of the last HistoryLen.
func (h *history) at(n uint64) outcome {
	i := n % HistoryLen
	return outcome{finished: h.finished[i], duration: h.duration[i], phases: h.phases[i], code: h.code[i]}
}

// list returns the outcomes of a target that ran runs probes, newest
// first.
func (h *history) list(runs uint64) []Outcome {
	n := min(runs, HistoryLen)
	out := make([]Outcome, 0, n)
	for i := range n {
		o := h.at(runs - 1 - i)
		x := Outcome{Finished: time.Unix(0, o.finished), Success: o.success(), Reason: o.reason(), Inconclusive: o.cause(),
			Duration: time.Duration(o.duration) * time.Microsecond}
		for p, us := range o.phases {
			x.Phases[p] = time.Duration(us) * time.Microsecond
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
	return st.history.list(st.runs)
}
