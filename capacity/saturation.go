package capacity

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"
)

// The saturation rule (docs/metrics.md, nginx_upstream_backend_saturated):
// a backend is saturated, full rather than down, when
//
//   - its listen queue is full or nearly full: length ≥ limit, or, for a
//     limit of 10 or more, length ≥ 90% of it. A full queue is when nginx
//     gets EAGAIN on a unix socket (502) or its SYN is dropped on TCP
//     (connect timeout, 504);
//   - or it is a php-fpm pool (pm static or dynamic) with connections
//     waiting in its listen queue: an idle worker of those pools blocks
//     in accept(2), so a waiting connection means every worker is busy;
//   - or its php-fpm status page says so: active processes reach
//     pm.max_children (not counting the worker that serves the status
//     page itself when it is read through the pool's own socket), or
//     php-fpm's own listen queue is not empty.
//
// It is unknown when neither the kernel's queue nor the status page could
// be read.

// nearlyFull applies the queue part of the rule.
func nearlyFull(q, limit uint32) bool {
	if q == 0 {
		return false
	}
	if q >= limit {
		return true
	}
	return limit >= 10 && uint64(q)*10 >= uint64(limit)*9
}

// saturation sets st's verdict from what was read.
func saturation(st *State) {
	st.SaturationKnown = st.Listen == Listening || st.Status != nil
	st.Saturated, st.SaturationWhy = false, ""
	if st.Listen == Listening {
		l := st.Listener
		if nearlyFull(l.Queue, l.Limit) {
			st.Saturated, st.SaturationWhy = true, fmt.Sprintf("listen queue %d/%d", l.Queue, l.Limit)
			return
		}
		if st.Pool != nil && st.Pool.PM != "ondemand" && l.Queue > 0 {
			st.Saturated, st.SaturationWhy = true, fmt.Sprintf("%d connections wait in the listen queue of php-fpm pool %s: every worker is busy", l.Queue, st.Pool.Name)
			return
		}
	}
	if s := st.Status; s != nil && st.Pool != nil {
		active := s.ActiveProcesses
		if st.statusSelf && active > 0 {
			active--
		}
		if st.Pool.MaxChildren > 0 && active >= uint64(st.Pool.MaxChildren) {
			st.Saturated, st.SaturationWhy = true, fmt.Sprintf("php-fpm pool %s: %d/%d workers busy", st.Pool.Name, active, st.Pool.MaxChildren)
			return
		}
		if s.ListenQueue > 0 {
			st.Saturated, st.SaturationWhy = true, fmt.Sprintf("php-fpm pool %s: %d requests wait in its queue", st.Pool.Name, s.ListenQueue)
		}
	}
}

// ActiveProcesses returns the pool's busy workers, not counting the one
// that served the status page itself; ok is false without a status.
func (st *State) ActiveProcesses() (n uint64, ok bool) {
	if st.Status == nil {
		return 0, false
	}
	n = st.Status.ActiveProcesses
	if st.statusSelf && n > 0 {
		n--
	}
	return n, true
}

// IdleProcesses returns the pool's idle workers, counting the one that
// served the status page through the pool's own socket as idle.
func (st *State) IdleProcesses() (n uint64, ok bool) {
	if st.Status == nil {
		return 0, false
	}
	n = st.Status.IdleProcesses
	if st.statusSelf && st.Status.ActiveProcesses > 0 {
		n++
	}
	return n, true
}

// statusReads reads each pool's status page once per refresh, however
// many targets share the pool, all at once under one deadline.
type statusReads struct {
	byPool map[statusKey][]*State
}

type statusKey struct{ listen, path string }

func (r *statusReads) add(st *State) {
	if r.byPool == nil {
		r.byPool = map[statusKey][]*State{}
	}
	k := statusKey{listen: st.Pool.StatusListen, path: st.Pool.StatusPath}
	if k.listen == "" {
		k.listen = st.Pool.Listen
	}
	r.byPool[k] = append(r.byPool[k], st)
}

// maxStatusReads bounds the status reads in flight.
const maxStatusReads = 16

func (r *statusReads) run(ctx context.Context, timeout time.Duration, logger *slog.Logger) {
	if len(r.byPool) == 0 {
		return
	}
	deadline := time.Now().Add(timeout)
	sem := make(chan struct{}, maxStatusReads)
	var wg sync.WaitGroup
	for k, states := range r.byPool {
		first := states[0]
		self := first.Pool.StatusListen == ""
		// Through the pool's own socket the page needs a free worker:
		// with connections already waiting there is none, and asking
		// would only queue one more.
		if self && first.Listen == Listening && first.Listener.Queue > 0 {
			for _, st := range states {
				st.StatusCause = CausePoolFull
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			s, err := readFPMStatus(ctx, k.listen, k.path, deadline)
			cause := ""
			if err != nil {
				cause = statusCause(err, self)
				logger.Debug("cannot read php-fpm status", "listen", k.listen, "path", k.path, "cause", cause, "err", err)
			}
			for _, st := range states {
				st.Status, st.StatusCause, st.statusSelf = s, cause, self
			}
		}()
	}
	wg.Wait()
}

// statusCause names why a status read failed.
func statusCause(err error, self bool) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		if self {
			// The pool's own workers serve the page: a silent pool
			// whose socket is listening is a busy one.
			return CausePoolFull
		}
		return CauseTimeout
	case errors.As(err, &errno) && (errno == syscall.ECONNREFUSED || errno == syscall.ENOENT || errno == syscall.EACCES || errno == syscall.EAGAIN):
		if self && errno == syscall.EAGAIN {
			return CausePoolFull
		}
		return CauseUnreachable
	case errors.Is(err, fs.ErrNotExist):
		return CauseUnreachable
	}
	return CauseInvalidResponse
}
