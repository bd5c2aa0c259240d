package capacity

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
)

// Explain: the routine an operator runs by hand at a 502 (`ss -lnt`,
// `ss -xl`, the php-fpm status page, `ps -o lstart`, `journalctl -k |
// grep -i oom`), as one line per server for `diagnose`.

// Verdicts of Summary.Verdict.
const (
	VerdictFull      = "full, not down"
	VerdictDown      = "down: nothing listens"
	VerdictListening = "listening, not full"
	VerdictUnknown   = "unknown: cannot read the socket"
)

// Summary is a target's capacity state for reports (diagnose's JSON).
type Summary struct {
	Verdict     string     `json:"verdict"`
	Why         string     `json:"why,omitempty"`
	ListenState string     `json:"listen_state"`
	QueueLength *uint32    `json:"queue_length,omitempty"`
	QueueLimit  *uint32    `json:"queue_limit,omitempty"`
	Saturated   *bool      `json:"saturated,omitempty"`
	Pool        string     `json:"phpfpm_pool,omitempty"`
	PoolActive  *uint64    `json:"phpfpm_active,omitempty"`
	PoolMax     int        `json:"phpfpm_max_children,omitempty"`
	StatusCause string     `json:"phpfpm_status_failure,omitempty"`
	Started     *time.Time `json:"process_start_time,omitempty"`
	Restarts    uint64     `json:"restarts"`
	LastRestart *time.Time `json:"last_restart,omitempty"`
	OOMKills    *uint64    `json:"oom_kills,omitempty"`
	// Line is the one-line explanation diagnose prints.
	Line string `json:"line"`
}

// Summarize explains st as of now.
func (st *State) Summarize(now time.Time) Summary {
	s := Summary{ListenState: st.Listen.String(), Restarts: st.Restarts, StatusCause: st.StatusCause}
	switch {
	case st.SaturationKnown && st.Saturated:
		s.Verdict = VerdictFull
	case st.Listen == NotListening:
		s.Verdict = VerdictDown
	case st.Listen == Listening:
		s.Verdict = VerdictListening
	default:
		s.Verdict = VerdictUnknown
	}
	s.Why = st.SaturationWhy
	// On the stack: the status page and the API summarize every local
	// server per answer, and a server that is down has one part, which
	// Join returns without allocating.
	var arr [8]string
	parts := arr[:0]
	if st.Listen == Listening {
		q, l := st.Listener.Queue, st.Listener.Limit
		s.QueueLength, s.QueueLimit = &q, &l
		parts = append(parts, fmt.Sprintf("queue %d/%d", q, l))
	}
	if st.SaturationKnown {
		v := st.Saturated
		s.Saturated = &v
	}
	if p := st.Pool; p != nil {
		s.Pool, s.PoolMax = p.Name, p.MaxChildren
		if a, ok := st.ActiveProcesses(); ok {
			s.PoolActive = &a
			parts = append(parts, fmt.Sprintf("pool %s %d/%d busy", p.Name, a, p.MaxChildren))
		} else if st.StatusCause != "" {
			parts = append(parts, fmt.Sprintf("pool %s ?/%d busy (status: %s)", p.Name, p.MaxChildren, st.StatusCause))
		} else {
			parts = append(parts, fmt.Sprintf("pool %s max %d", p.Name, p.MaxChildren))
		}
	}
	parts = append(parts, s.Verdict)
	if st.Owner != nil {
		t := st.Owner.Start
		s.Started = &t
		parts = append(parts, fmt.Sprintf("started %s (%s ago)", t.Format(time.DateTime), ago(now.Sub(t))))
	}
	if st.Restarts > 0 {
		t := st.LastRestart
		s.LastRestart = &t
		parts = append(parts, fmt.Sprintf("%d restart(s), last %s ago", st.Restarts, ago(now.Sub(t))))
	}
	if st.OOMKnown {
		n := st.OOMKills
		s.OOMKills = &n
		parts = append(parts, fmt.Sprintf("OOM kills in its cgroup: %d", n))
	} else if st.Owner != nil {
		parts = append(parts, "OOM kills: unknown")
	}
	s.Line = strings.Join(parts, "; ")
	return s
}

func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// Check reads the capacity of targets once, for a one-shot report: one
// dump, one /proc pass, the php-fpm status pages under statusTimeout.
// Targets not on this host are absent from the result.
func Check(ctx context.Context, targets []*discovery.Target, statusTimeout time.Duration) map[discovery.Key]Summary {
	m := New(Options{Targets: func() []*discovery.Target { return targets }, StatusTimeout: statusTimeout})
	m.Refresh(ctx)
	now := time.Now()
	out := map[discovery.Key]Summary{}
	m.Each(func(t *discovery.Target, st *State) { out[t.Key] = st.Summarize(now) })
	return out
}
