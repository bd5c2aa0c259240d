// Package scheduler probes every target once per interval, independent of
// scrapes, so that any number of Prometheus servers scraping the exporter
// never multiplies the load on the backends.
//
// Due times are kept in heaps and spread over the interval by a stable
// hash of each target's labels. Each probe runs in its own goroutine,
// started when it is due and a slot is free, so memory follows the probes
// actually in flight rather than --probe.concurrency. A target has at most
// one probe in flight: its next run is queued only when the current one
// ends. Slots come in two lanes (see docs/performance.md): targets that
// answer quickly never wait behind targets that hang. State (last verdict,
// counters) is keyed by the target's labels and survives configuration
// reloads for targets that did not change.
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

// Bounds of the options, checked by the command line before New. Nothing
// is allocated per unit of Concurrency any more, so its bound is about
// sockets, not memory: one source address cannot hold more connections to
// one backend address than the ephemeral port range (28,232 ports by
// default on Linux), and every probe in flight holds a file descriptor.
const (
	MaxConcurrency = 65536
	// MaxInterval: a target probed less than once an hour tells nothing
	// about an outage before it is over.
	MaxInterval = time.Hour
	// MaxTimeout: nginx's own timeouts default to 60 s; ten minutes covers
	// any deliberate setting and stops a typo (10h) from pinning a socket.
	MaxTimeout = 10 * time.Minute
)

// Options configure a Scheduler.
type Options struct {
	Interval time.Duration
	// Concurrency bounds probes in the fast lane: probes of targets that
	// answered quickly last time, during their first SlowAfter.
	Concurrency int
	// SlowConcurrency bounds the starts of probes of targets that were slow
	// last time (took SlowAfter or longer, or timed out). Zero means
	// Concurrency.
	SlowConcurrency int
	// SlowAfter is how long a probe may hold a fast slot. A probe still
	// running then moves to the slow lane, which it may overfill: it has
	// already started and is only waiting. Zero means a quarter of the
	// interval, at most one second.
	SlowAfter time.Duration
	// Timeout is the operator's optional cap on one probe (--probe.timeout);
	// 0 means none: a probe waits as long as nginx would (Peer.MaxDuration).
	Timeout time.Duration
	// Prober probes every target: prober.New(), or a fake in tests.
	Prober prober.Prober
	Logger *slog.Logger
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
	// Skipped counts scheduled runs that did not happen because the
	// target's previous probe was still running.
	Skipped uint64
}

type state struct {
	mu      sync.Mutex
	status  Status
	history history // guarded by mu

	// Fields below are guarded by Scheduler.mu.
	target *discovery.Target
	// due is the grid time of the next run; lagFrom is the time its lag is
	// measured from, earlier than due when runs were skipped.
	due     time.Time
	lagFrom time.Time
	index   int   // in its lane's heap, -1 when not queued
	lane    *lane // the lane it is queued in or would be queued in
	running bool
	slow    bool
	removed bool
}

// lane is a queue of due times with its own budget of slots.
type lane struct {
	q     stateHeap
	busy  int
	limit int
}

// Scheduler runs probes. The zero value is not usable; call New.
type Scheduler struct {
	opts   Options
	logger *slog.Logger

	mu         sync.Mutex
	states     map[discovery.Key]*state
	order      []*state // configuration order, for stable exposition
	fast, slow lane
	wake       chan struct{}

	inFlight atomic.Int64
	skipped  atomic.Uint64
	// inconclusive counts probes without a verdict, by cause (indexed
	// like prober.InconclusiveCauses).
	inconclusive    [len(prober.InconclusiveCauses)]atomic.Uint64
	lastResourceLog atomic.Int64
	lag             prometheus.Histogram
	results         sync.Pool
}

// New returns a scheduler with no targets.
func New(opts Options) *Scheduler {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.SlowConcurrency <= 0 {
		opts.SlowConcurrency = opts.Concurrency
	}
	if opts.SlowAfter <= 0 {
		opts.SlowAfter = min(time.Second, opts.Interval/4)
		if opts.SlowAfter <= 0 {
			opts.SlowAfter = time.Second
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{
		opts:   opts,
		logger: opts.Logger,
		states: map[discovery.Key]*state{},
		wake:   make(chan struct{}, 1),
		// Only counts: collector.SelfMetrics names and exposes it.
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		results: sync.Pool{New: func() any { return new(prober.Result) }},
	}
	s.fast.limit, s.slow.limit = opts.Concurrency, opts.SlowConcurrency
	return s
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
			st = &state{index: -1, lane: &s.fast}
			st.status.Target = t
			st.due = now.Add(jitter(t.Key, s.opts.Interval))
			st.lagFrom = st.due
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
	for _, l := range []*lane{&s.fast, &s.slow} {
		for _, st := range l.q {
			st.index = -1
		}
		clear(l.q)
		l.q = l.q[:0]
	}
	for _, st := range order {
		// A running target is queued again when its probe ends.
		if st.target.Probe != nil && !st.running {
			heap.Push(&st.lane.q, st)
		}
	}
	s.mu.Unlock()
	s.signal()
}

func (s *Scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run dispatches probes until ctx is done, then waits for in-flight probes
// to end.
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(s.dispatch(ctx, &wg, time.Now()))
		select {
		case <-timer.C:
		case <-s.wake:
		case <-ctx.Done():
			return
		}
	}
}

// run is one probe of one target.
type run struct {
	st      *state
	target  *discovery.Target
	lagFrom time.Time
	lane    *lane // guarded by Scheduler.mu: the lane whose slot it holds
	ended   bool  // guarded by Scheduler.mu
}

// dispatch starts every due probe that has a free slot in its lane and
// says how long to wait for the next due time. A lane without free slots
// is woken by the end or demotion of one of its probes.
func (s *Scheduler) dispatch(ctx context.Context, wg *sync.WaitGroup, now time.Time) time.Duration {
	wait := time.Hour
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		return wait
	}
	for _, l := range []*lane{&s.fast, &s.slow} {
		for len(l.q) > 0 {
			st := l.q[0]
			if w := st.due.Sub(now); w > 0 {
				wait = min(wait, w)
				break
			}
			if l.busy >= l.limit {
				break
			}
			heap.Pop(&l.q)
			l.busy++
			st.running = true
			r := &run{st: st, target: st.target, lagFrom: st.lagFrom, lane: l}
			// Keep the grid: the next run is one interval after the
			// scheduled time, not after "now", so lag does not accumulate.
			st.due = st.due.Add(s.opts.Interval)
			st.lagFrom = st.due
			s.inFlight.Add(1)
			wg.Add(1)
			go s.probe(ctx, wg, r)
		}
	}
	return wait
}

func (s *Scheduler) probe(ctx context.Context, wg *sync.WaitGroup, run *run) {
	defer wg.Done()
	defer s.inFlight.Add(-1)
	start := time.Now()
	s.lag.Observe(start.Sub(run.lagFrom).Seconds())

	var demote *time.Timer
	if run.lane == &s.fast {
		// Waiting on a backend that does not answer must not keep a slot
		// that a target answering in a millisecond needs.
		demote = time.AfterFunc(s.opts.SlowAfter, func() { s.demote(run) })
	}
	r := s.results.Get().(*prober.Result)
	r.Reset()
	pctx, cancel := context.WithTimeout(ctx, probeBound(run.target.Probe, s.opts.Timeout))
	s.opts.Prober.Probe(pctx, run.target.Probe, r)
	cancel()
	if demote != nil {
		demote.Stop()
	}
	end := time.Now()
	// Shutting down: a cancelled probe says nothing about the target.
	if ctx.Err() == nil {
		s.record(run.st, run.target, r, end)
	}
	slow := r.Duration >= s.opts.SlowAfter || timedOut(r)
	r.Err = nil // do not keep addresses alive in the pool
	s.results.Put(r)
	s.finish(run, end, slow)
}

// demote moves a probe that has run for SlowAfter from the fast lane to
// the slow one, freeing its fast slot.
func (s *Scheduler) demote(run *run) {
	s.mu.Lock()
	if run.ended || run.lane != &s.fast {
		s.mu.Unlock()
		return
	}
	s.fast.busy--
	s.slow.busy++
	run.lane = &s.slow
	s.mu.Unlock()
	s.signal()
}

// finish frees the probe's slot and queues the target's next run: at the
// next grid time, or now if that passed while the probe ran. Grid times
// that passed before the probe ended are skipped, and the late start is
// measured from the first of them, so the lag histogram shows it.
func (s *Scheduler) finish(run *run, end time.Time, slow bool) {
	s.mu.Lock()
	run.ended = true
	run.lane.busy--
	st := run.st
	st.running = false
	st.slow = slow
	st.lane = &s.fast
	if slow {
		st.lane = &s.slow
	}
	if !st.removed && st.target.Probe != nil {
		if st.due.Before(end) {
			st.lagFrom = st.due
			if missed := end.Sub(st.due) / s.opts.Interval; missed > 0 {
				st.due = st.due.Add(missed * s.opts.Interval)
				s.skipped.Add(uint64(missed))
				st.mu.Lock()
				st.status.Skipped += uint64(missed)
				st.mu.Unlock()
			}
		}
		heap.Push(&st.lane.q, st)
	}
	s.mu.Unlock()
	s.signal()
}

// timedOut: a probe that ended on a timeout waited on the backend, however
// short nginx's timeout for that phase is.
func timedOut(r *prober.Result) bool {
	switch r.Reason {
	case prober.ReasonConnectTimeout, prober.ReasonTLSHandshakeTimeout, prober.ReasonReadTimeout:
		return true
	}
	return r.Inconclusive == prober.InconclusiveProbeTimeout
}

// probeBound is how long one probe may run: as long as nginx would wait
// (the sum of its timeouts for the peer), or the operator's cap
// (--probe.timeout) when one is set and shorter. A probe the cap ends is
// reported as inconclusive, never as nginx's timeout.
func probeBound(p *prober.Peer, limit time.Duration) time.Duration {
	d := p.MaxDuration()
	if limit > 0 && limit < d {
		return limit
	}
	return d
}

func (s *Scheduler) record(st *state, t *discovery.Target, r *prober.Result, now time.Time) {
	st.mu.Lock()
	wasOK, had := st.status.Result.Success, st.status.HasResult
	oldReason, oldCause := st.status.Result.Reason, st.status.Result.Inconclusive
	st.status.Target = t
	st.status.HasResult = true
	st.status.Result = *r
	st.status.Finished = now
	st.status.Runs++
	if !r.Success && r.Inconclusive == "" {
		st.status.Failures[reasonIndex(r.Reason)]++
	}
	st.history.add(r, now)
	st.mu.Unlock()

	logger := t.Logger()
	if r.Inconclusive != "" {
		s.inconclusive[inconclusiveIndex(r.Inconclusive)].Add(1)
		s.logInconclusive(logger, r, oldCause)
		return
	}
	switch {
	case !r.Success && (!had || wasOK || oldReason != r.Reason || oldCause != ""):
		attrs := []any{"reason", string(r.Reason), "nginx_would_log", r.Reason.NginxMessageOver(t.Network), "err", r.Err}
		if r.Detail != "" {
			attrs = append(attrs, "detail", r.Detail)
		}
		if r.Address != "" {
			attrs = append(attrs, "dialled", r.Address)
		}
		logger.Warn("upstream server failing", attrs...)
	case r.Success && had && !wasOK:
		logger.Info("upstream server recovered")
	default:
		if logger.Enabled(context.Background(), slog.LevelDebug) {
			logger.Debug("probe finished", "success", r.Success, "reason", string(r.Reason), "duration", r.Duration)
		}
	}
}

// logInconclusive says once per target and cause that a probe gave no
// verdict; running out of the exporter's own resources is logged at most
// once a minute over all targets, since it hits them all at once.
func (s *Scheduler) logInconclusive(logger *slog.Logger, r *prober.Result, old prober.Inconclusive) {
	if r.Inconclusive == prober.InconclusiveExporterResources {
		now := time.Now().UnixNano()
		last := s.lastResourceLog.Load()
		if now-last < int64(time.Minute) || !s.lastResourceLog.CompareAndSwap(last, now) {
			return
		}
		s.logger.Error("the exporter could not probe: it ran out of its own resources (file descriptors, local ports, memory); verdicts of affected servers are withheld, not blamed on them",
			"err", r.Err, "example_upstream", r.Address)
		return
	}
	if old == r.Inconclusive {
		return
	}
	if r.Inconclusive == prober.InconclusiveNoAnswer {
		// Usual for a healthy UDP server: most ignore the probe's empty
		// datagram. Not a warning.
		logger.Info("no verdict: the UDP server neither answered nor drew an ICMP error", "cause", string(r.Inconclusive), "detail", r.Detail)
		return
	}
	logger.Warn("probe stopped by the exporter's own time bound before nginx's timeout: no verdict", "cause", string(r.Inconclusive), "err", r.Err)
}

// Inconclusive counts probes without a verdict for cause since start.
func (s *Scheduler) Inconclusive(cause prober.Inconclusive) uint64 {
	return s.inconclusive[inconclusiveIndex(cause)].Load()
}

func inconclusiveIndex(c prober.Inconclusive) int {
	for i, v := range prober.InconclusiveCauses {
		if v == c {
			return i
		}
	}
	return 0
}

func reasonIndex(r prober.Reason) int {
	for i, v := range prober.Reasons {
		if v == r {
			return i
		}
	}
	// An empty reason on failure cannot happen through prober.Table; count
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
	for _, l := range []*lane{&s.fast, &s.slow} {
		for _, st := range l.q {
			if !st.due.After(now) {
				n++
			}
		}
	}
	return n
}

// InFlight is the number of probes running now.
func (s *Scheduler) InFlight() int { return int(s.inFlight.Load()) }

// Skipped counts scheduled runs skipped because the target's previous
// probe was still running, over all targets since start.
func (s *Scheduler) Skipped() uint64 { return s.skipped.Load() }

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
func ProbeOnce(ctx context.Context, set []*discovery.Target, p prober.Prober, concurrency int, timeout time.Duration, progress func(done, total int)) []Status {
	if concurrency <= 0 {
		concurrency = 1
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
			pctx, cancel := context.WithTimeout(ctx, probeBound(t.Probe, timeout))
			defer cancel()
			var r prober.Result
			p.Probe(pctx, t.Probe, &r)
			if ctx.Err() != nil {
				// Interrupted: a cancelled probe says nothing about the
				// target, and the caller must not count it as probed.
				return
			}
			out[i].HasResult = true
			out[i].Result = r
			out[i].Finished = time.Now()
			out[i].Runs = 1
			if !r.Success && r.Inconclusive == "" {
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
