// Package scheduler probes every target once per interval, independent of
// scrapes, so that any number of Prometheus servers scraping the exporter
// never multiplies the load on the backends.
//
// Due times are kept in a heap and spread over the interval by a stable
// hash of each target's labels; a fixed pool of workers runs the probes.
// State (last verdict, counters) is keyed by the target's labels and
// survives configuration reloads for targets that did not change.
package scheduler

import (
	"container/heap"
	"context"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// Options configure a Scheduler.
type Options struct {
	Interval    time.Duration
	Concurrency int
	// Timeout bounds each whole probe.
	Timeout time.Duration
	Probers map[string]prober.Prober
	Logger  *slog.Logger
}

// Status is a copy of one target's state, handed to readers.
type Status struct {
	Target *discovery.Target
	// HasResult is false until the first probe finished (and always for
	// servers marked down).
	HasResult bool
	Result    prober.Result
	Finished  time.Time
	Runs      uint64
	// Failures counts failed probes by reason, indexed like prober.Reasons.
	Failures [len(prober.Reasons)]uint64
}

type state struct {
	mu     sync.Mutex
	status Status

	// Fields below are guarded by Scheduler.mu.
	target  *discovery.Target
	due     time.Time
	offset  time.Duration
	index   int // in the heap, -1 when not queued
	removed bool
}

// Scheduler runs probes. The zero value is not usable; call New.
type Scheduler struct {
	opts   Options
	logger *slog.Logger

	mu     sync.Mutex
	states map[discovery.Key]*state
	order  []*state // configuration order, for stable exposition
	queue  stateHeap
	wake   chan struct{}

	inFlight atomic.Int64
	lag      prometheus.Histogram
}

// New returns a scheduler with no targets.
func New(opts Options) *Scheduler {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{
		opts:   opts,
		logger: opts.Logger,
		states: map[discovery.Key]*state{},
		wake:   make(chan struct{}, 1),
		// Only counts: collector.SelfMetrics names and exposes it.
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
}

// Update replaces the target set. Targets whose labels did not change keep
// their state and schedule; new ones are spread over the next interval.
func (s *Scheduler) Update(set *discovery.Set) {
	now := time.Now()
	s.mu.Lock()
	next := make(map[discovery.Key]*state, len(set.Targets))
	order := make([]*state, 0, len(set.Targets))
	for _, t := range set.Targets {
		st, ok := s.states[t.Key]
		if !ok {
			st = &state{index: -1, offset: jitter(t.Key, s.opts.Interval)}
			st.status.Target = t
			st.due = now.Add(st.offset)
		}
		st.target = t
		st.mu.Lock()
		st.status.Target = t
		st.mu.Unlock()
		next[t.Key] = st
		order = append(order, st)
	}
	for k, st := range s.states {
		if _, ok := next[k]; !ok {
			st.removed = true
		}
	}
	s.states, s.order = next, order
	s.queue = s.queue[:0]
	for _, st := range order {
		st.index = -1
		if st.target.Probe != nil {
			heap.Push(&s.queue, st)
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run dispatches probes until ctx is done, then waits for in-flight probes
// to end.
func (s *Scheduler) Run(ctx context.Context) {
	work := make(chan *dispatch)
	var wg sync.WaitGroup
	for range s.opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r prober.Result
			for d := range work {
				s.probe(ctx, d, &r)
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d, wait := s.next(time.Now())
		if d != nil {
			select {
			case work <- d:
				continue
			case <-ctx.Done():
				return
			}
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-s.wake:
		case <-ctx.Done():
			return
		}
	}
}

type dispatch struct {
	st     *state
	target *discovery.Target
	due    time.Time
}

// next pops the earliest target if it is due, else says how long to wait.
func (s *Scheduler) next(now time.Time) (*dispatch, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return nil, time.Hour
	}
	st := s.queue[0]
	if wait := st.due.Sub(now); wait > 0 {
		return nil, wait
	}
	d := &dispatch{st: st, target: st.target, due: st.due}
	// Keep the grid: the next run is one interval after the scheduled
	// time, not after "now", so lag does not accumulate. A target that fell
	// more than an interval behind skips the runs it missed.
	st.due = st.due.Add(s.opts.Interval)
	if st.due.Before(now) {
		behind := now.Sub(st.due)
		st.due = st.due.Add((behind/s.opts.Interval + 1) * s.opts.Interval)
	}
	heap.Fix(&s.queue, 0)
	return d, 0
}

func (s *Scheduler) probe(ctx context.Context, d *dispatch, r *prober.Result) {
	start := time.Now()
	s.lag.Observe(start.Sub(d.due).Seconds())
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)

	r.Reset()
	pctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	prober.Run(pctx, s.opts.Probers, d.target.Probe, r, s.logger)
	cancel()
	if ctx.Err() != nil {
		// Shutting down: a cancelled probe says nothing about the target.
		return
	}
	s.record(d.st, d.target, r, time.Now())
}

func (s *Scheduler) record(st *state, t *discovery.Target, r *prober.Result, now time.Time) {
	st.mu.Lock()
	wasOK, had := st.status.Result.Success, st.status.HasResult
	oldReason := st.status.Result.Reason
	st.status.Target = t
	st.status.HasResult = true
	st.status.Result = *r
	st.status.Finished = now
	st.status.Runs++
	if !r.Success {
		st.status.Failures[reasonIndex(r.Reason)]++
	}
	st.mu.Unlock()

	switch {
	case !r.Success && (!had || wasOK || oldReason != r.Reason):
		attrs := []any{"upstream", t.Upstream, "server", t.Server, "address", t.Address, "protocol", t.Protocol,
			"reason", string(r.Reason), "nginx_would_log", r.Reason.NginxMessage(), "err", r.Err}
		if r.Detail != "" {
			attrs = append(attrs, "detail", r.Detail)
		}
		s.logger.Warn("upstream server failing", attrs...)
	case r.Success && had && !wasOK:
		s.logger.Info("upstream server recovered", "upstream", t.Upstream, "server", t.Server,
			"address", t.Address, "protocol", t.Protocol)
	default:
		if s.logger.Enabled(context.Background(), slog.LevelDebug) {
			s.logger.Debug("probe finished", "upstream", t.Upstream, "server", t.Server,
				"address", t.Address, "success", r.Success, "reason", string(r.Reason), "duration", r.Duration)
		}
	}
}

func reasonIndex(r prober.Reason) int {
	for i, v := range prober.Reasons {
		if v == r {
			return i
		}
	}
	// An empty reason on failure cannot happen through prober.Run; count
	// it as invalid_response rather than dropping it.
	return reasonIndex(prober.ReasonInvalidResponse)
}

// Each calls fn with a copy of every target's status, in configuration
// order. st is reused between calls: fn must not keep it.
func (s *Scheduler) Each(fn func(st *Status)) {
	s.mu.Lock()
	order := s.order
	s.mu.Unlock()
	var cp Status
	for _, st := range order {
		st.mu.Lock()
		cp = st.status
		st.mu.Unlock()
		fn(&cp)
	}
}

// Lookup returns the target with these labels, if configured.
func (s *Scheduler) Lookup(k discovery.Key) (*discovery.Target, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[k]
	if !ok {
		return nil, false
	}
	return st.target, true
}

// Targets returns the current targets in configuration order.
func (s *Scheduler) Targets() []*discovery.Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*discovery.Target, len(s.order))
	for i, st := range s.order {
		out[i] = st.target
	}
	return out
}

// QueueLength counts probes that are due but not started.
func (s *Scheduler) QueueLength() int {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.queue {
		if !st.due.After(now) {
			n++
		}
	}
	return n
}

// InFlight is the number of probes running now.
func (s *Scheduler) InFlight() int { return int(s.inFlight.Load()) }

// LagHistogram is the schedule lag histogram; collector.SelfMetrics
// exposes its counts.
func (s *Scheduler) LagHistogram() prometheus.Histogram { return s.lag }

// jitter spreads targets over the interval by a stable hash of their
// labels, so a reload or restart does not bunch probes together.
func jitter(k discovery.Key, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(k.Upstream))
	h.Write([]byte{0})
	h.Write([]byte(k.Server))
	h.Write([]byte{0})
	h.Write([]byte(k.Address))
	h.Write([]byte{0})
	h.Write([]byte(k.Protocol))
	return time.Duration(h.Sum64() % uint64(interval))
}

type stateHeap []*state

func (h stateHeap) Len() int           { return len(h) }
func (h stateHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h stateHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *stateHeap) Push(x any) {
	st := x.(*state)
	st.index = len(*h)
	*h = append(*h, st)
}
func (h *stateHeap) Pop() any {
	old := *h
	n := len(old)
	st := old[n-1]
	old[n-1] = nil
	st.index = -1
	*h = old[:n-1]
	return st
}

// ProbeOnce probes every probeable target of set once with at most
// concurrency probes in flight and returns the statuses in set order. It
// serves one-shot uses: the diagnose command and on-demand probes.
func ProbeOnce(ctx context.Context, set []*discovery.Target, probers map[string]prober.Prober, concurrency int, timeout time.Duration, logger *slog.Logger, progress func(done, total int)) []Status {
	if concurrency <= 0 {
		concurrency = 1
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	out := make([]Status, len(set))
	sem := make(chan struct{}, concurrency)
	var (
		wg   sync.WaitGroup
		done atomic.Int64
	)
	for i, t := range set {
		out[i].Target = t
		if t.Probe == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			var r prober.Result
			prober.Run(pctx, probers, t.Probe, &r, logger)
			out[i].HasResult = true
			out[i].Result = r
			out[i].Finished = time.Now()
			out[i].Runs = 1
			if !r.Success {
				out[i].Failures[reasonIndex(r.Reason)]++
			}
			if progress != nil {
				progress(int(done.Add(1)), len(set))
			}
		}()
	}
	wg.Wait()
	return out
}
