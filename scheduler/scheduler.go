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
	"errors"
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
//
// The scheduler keeps the last result compactly (see state) and rebuilds
// it here: durations and phases have microsecond precision (nginx logs
// milliseconds), and Result.Err is only the error's text, kept while the
// target fails for the status page and the API, not the error value with
// everything it wraps.
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

// state is one target's schedule and results. It is kept small because
// there is one per configured server (10,000 and more): the last result
// is the newest entry of the history, reasons and causes are indices,
// times integers, and what only some targets have (failure counters, the
// texts of a failure, a runtime address) is in extra.
type state struct {
	mu sync.Mutex
	// target is written under both Scheduler.mu and mu, so holding either
	// is enough to read it.
	target *discovery.Target

	// Fields below up to index are guarded by Scheduler.mu.
	// due is the grid time of the next run; lagFrom is the time its lag is
	// measured from, earlier than due when runs were skipped. Both are
	// nanoseconds since Scheduler.epoch, which keeps the monotonic clock.
	due     int64
	lagFrom int64

	// Fields below are guarded by mu.
	// runs counts finished probes; the newest history entry is at
	// (runs-1) % HistoryLen.
	runs uint64
	// tlsNotAfter is the last result's certificate expiry in Unix seconds
	// (X.509 times have no fraction), valid when hasTLS.
	tlsNotAfter int64
	extra       *extra
	history     history

	index int32 // in its lane's heap, -1 when not queued; Scheduler.mu
	// httpStatus of the last result: three digits (nginx's parser).
	httpStatus uint16 // mu
	hasTLS     bool   // mu

	// Guarded by Scheduler.mu.
	inSlow  bool // the lane it is queued in or would be queued in
	running bool
	slow    bool
	removed bool
}

// extra holds what few targets need, so that the others pay one pointer.
type extra struct {
	// failures counts failed probes by reason: one or two entries for a
	// target that fails, in the order the reasons first happened.
	failures []failureCount
	skipped  uint64
	// Of the last result: the peer dialled when resolved at run time, and
	// while the target fails, the detail and the error's text.
	address string
	detail  string
	err     *lastError
}

type failureCount struct {
	n      uint64
	reason uint8 // index into prober.Reasons
}

// lastError stands in for a result's error once it has been logged: its
// text, and whether it said the exporter could not check a path as
// nginx's worker user (report marks such verdicts unverified). It is
// never modified, so a Status can hold it after the lock is released.
type lastError struct {
	text        string
	cannotCheck bool
}

func (e *lastError) Error() string { return e.text }

// Is lets errors.Is(err, prober.ErrCannotCheck) answer as it did for the
// original error.
func (e *lastError) Is(target error) bool { return e.cannotCheck && target == prober.ErrCannotCheck }

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
	// epoch is what due times count from; it keeps the monotonic clock.
	epoch time.Time

	mu         sync.Mutex
	states     map[discovery.Key]*state
	order      []*state // configuration order, for stable exposition
	fast, slow lane
	wake       chan struct{}
	// wakeAt is when the dispatcher will next look at the queues by
	// itself (since epoch), guarded by mu: a probe that ends only needs
	// to wake it when it freed a slot that due work waits for, or queued
	// a run due before that. Waking it on every end cost a futex wake of
	// another thread per probe, about 5 % of the exporter's CPU at
	// 10,000 targets.
	wakeAt int64

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
		epoch:  time.Now(),
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

// at is t as nanoseconds since s.epoch, on the monotonic clock.
func (s *Scheduler) at(t time.Time) int64 { return int64(t.Sub(s.epoch)) }

// laneOf is the lane st is queued in or would be queued in. Called with
// s.mu held.
func (s *Scheduler) laneOf(st *state) *lane {
	if st.inSlow {
		return &s.slow
	}
	return &s.fast
}

// Update replaces the target set. Targets whose labels did not change keep
// their state and schedule; new ones are spread over the next interval.
func (s *Scheduler) Update(set *discovery.Set) {
	now := s.at(time.Now())
	s.mu.Lock()
	next := make(map[discovery.Key]*state, len(set.Targets))
	order := make([]*state, 0, len(set.Targets))
	for _, t := range set.Targets {
		st, ok := s.states[t.Key]
		if !ok {
			st = &state{index: -1, target: t}
			st.due = now + int64(jitter(t.Key, s.opts.Interval))
			st.lagFrom = st.due
		}
		st.mu.Lock()
		st.target = t
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
			heap.Push(&s.laneOf(st).q, st)
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
	lagFrom int64 // since Scheduler.epoch
	lane    *lane // guarded by Scheduler.mu: the lane whose slot it holds
	ended   bool  // guarded by Scheduler.mu
}

// dispatch starts every due probe that has a free slot in its lane and
// says how long to wait for the next due time. A lane without free slots
// is woken by the end or demotion of one of its probes.
func (s *Scheduler) dispatch(ctx context.Context, wg *sync.WaitGroup, now time.Time) time.Duration {
	wait := time.Hour
	nowAt := s.at(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		return wait
	}
	defer func() { s.wakeAt = nowAt + int64(wait) }()
	for _, l := range []*lane{&s.fast, &s.slow} {
		for len(l.q) > 0 {
			st := l.q[0]
			if w := time.Duration(st.due - nowAt); w > 0 {
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
			st.due += int64(s.opts.Interval)
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
	s.lag.Observe(time.Duration(s.at(start) - run.lagFrom).Seconds())

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
	// A full lane may have due work waiting for this slot.
	wake := run.lane.busy >= run.lane.limit
	run.lane.busy--
	st := run.st
	st.running = false
	st.slow = slow
	st.inSlow = slow
	if endAt := s.at(end); !st.removed && st.target.Probe != nil {
		if st.due < endAt {
			st.lagFrom = st.due
			if missed := (endAt - st.due) / int64(s.opts.Interval); missed > 0 {
				st.due += missed * int64(s.opts.Interval)
				s.skipped.Add(uint64(missed))
				st.mu.Lock()
				st.more().skipped += uint64(missed)
				st.mu.Unlock()
			}
		}
		heap.Push(&s.laneOf(st).q, st)
		wake = wake || st.due < s.wakeAt
	}
	s.mu.Unlock()
	if wake {
		s.signal()
	}
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
	had := st.runs > 0
	var old outcome
	if had {
		old = st.history.at(st.runs - 1)
	}
	st.history.put(st.runs, r, now)
	st.runs++
	st.httpStatus = uint16(min(max(r.HTTPStatus, 0), 1<<16-1))
	st.hasTLS = !r.TLSNotAfter.IsZero()
	st.tlsNotAfter = r.TLSNotAfter.Unix()
	st.keepTexts(r)
	if !r.Success && r.Inconclusive == "" {
		st.more().fail(reasonIndex(r.Reason))
	}
	st.mu.Unlock()
	wasOK, oldReason, oldCause := old.success(), old.reason(), old.cause()

	// The target's logger is asked for only to log a line: most targets
	// never log.
	if r.Inconclusive != "" {
		s.inconclusive[inconclusiveIndex(r.Inconclusive)].Add(1)
		s.logInconclusive(t, r, oldCause)
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
		t.Logger().Warn("upstream server failing", attrs...)
	case r.Success && had && !wasOK:
		t.Logger().Info("upstream server recovered")
	default:
		// The scheduler's logger and the targets' come from the same
		// one (main.go): asking the scheduler's first keeps a target that
		// never logs from getting even the stand-in of its logger.
		if !s.logger.Enabled(context.Background(), slog.LevelDebug) {
			return
		}
		if logger := t.Logger(); logger.Enabled(context.Background(), slog.LevelDebug) {
			logger.Debug("probe finished", "success", r.Success, "reason", string(r.Reason), "duration", r.Duration)
		}
	}
}

// more returns st's extra, allocating it. Called with st.mu held.
func (st *state) more() *extra {
	if st.extra == nil {
		st.extra = &extra{}
	}
	return st.extra
}

// fail counts one failed probe of reason (an index into prober.Reasons).
func (e *extra) fail(reason int) {
	for i := range e.failures {
		if int(e.failures[i].reason) == reason {
			e.failures[i].n++
			return
		}
	}
	e.failures = append(e.failures, failureCount{n: 1, reason: uint8(reason)})
}

// keepTexts keeps what the status page and the API show of r's texts: the
// runtime address, and while the target fails the detail and the error's
// text. Unchanged texts keep their strings, so a target failing the same
// way allocates nothing to remember it. Called with st.mu held.
func (st *state) keepTexts(r *prober.Result) {
	var detail, errText string
	cannotCheck := false
	if !r.Success {
		detail = r.Detail
		if r.Err != nil {
			errText = r.Err.Error()
			cannotCheck = errors.Is(r.Err, prober.ErrCannotCheck)
		}
	}
	if st.extra == nil && r.Address == "" && detail == "" && r.Err == nil {
		return
	}
	e := st.more()
	if e.address != r.Address {
		e.address = r.Address
	}
	if e.detail != detail {
		e.detail = detail
	}
	switch {
	case r.Success || r.Err == nil:
		e.err = nil
	case e.err == nil || e.err.text != errText || e.err.cannotCheck != cannotCheck:
		e.err = &lastError{text: errText, cannotCheck: cannotCheck}
	}
}

// read copies st into cp, which it overwrites whole. Called with st.mu
// held.
func (st *state) read(cp *Status) {
	*cp = Status{Target: st.target, Runs: st.runs}
	if e := st.extra; e != nil {
		cp.Skipped = e.skipped
		for _, f := range e.failures {
			cp.Failures[f.reason] = f.n
		}
	}
	if st.runs == 0 {
		return
	}
	cp.HasResult = true
	o := st.history.at(st.runs - 1)
	cp.Finished = time.Unix(0, o.finished)
	r := &cp.Result
	r.Success, r.Reason, r.Inconclusive = o.success(), o.reason(), o.cause()
	r.Duration = time.Duration(o.duration) * time.Microsecond
	for p, us := range o.phases {
		r.Phases[p] = time.Duration(us) * time.Microsecond
	}
	r.HTTPStatus = int(st.httpStatus)
	if st.hasTLS {
		r.TLSNotAfter = time.Unix(st.tlsNotAfter, 0).UTC()
	}
	if e := st.extra; e != nil {
		r.Address, r.Detail = e.address, e.detail
		if e.err != nil {
			r.Err = e.err
		}
	}
}

// logInconclusive says once per target and cause that a probe gave no
// verdict; running out of the exporter's own resources is logged at most
// once a minute over all targets, since it hits them all at once.
func (s *Scheduler) logInconclusive(t *discovery.Target, r *prober.Result, old prober.Inconclusive) {
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
		t.Logger().Info("no verdict: the UDP server neither answered nor drew an ICMP error", "cause", string(r.Inconclusive), "detail", r.Detail)
		return
	}
	t.Logger().Warn("probe stopped by the exporter's own time bound before nginx's timeout: no verdict", "cause", string(r.Inconclusive), "err", r.Err)
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
		st.read(&cp)
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
	nowAt := s.at(time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range []*lane{&s.fast, &s.slow} {
		for _, st := range l.q {
			if st.due <= nowAt {
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
func (h stateHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h stateHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = int32(i)
	h[j].index = int32(j)
}
func (h *stateHeap) Push(x any) {
	st := x.(*state)
	st.index = int32(len(*h))
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
