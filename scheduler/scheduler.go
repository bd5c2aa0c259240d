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
	"cmp"
	"context"
	"errors"
	"hash/fnv"
	"hash/maphash"
	"log/slog"
	"slices"
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
// there is one per configured server (10,000 and more), and all of them
// live in one slab per target set (Scheduler.states), so that this
// long-lived memory is one large allocation rather than 10,000 small
// ones sharing spans with each probe's garbage. The last result is the
// newest entry of the history, reasons and causes are indices, times
// integers, and what only some targets have (failure counters, the texts
// of a failure, a runtime address) is in extra. Every field is guarded by
// Scheduler.mu.
type state struct {
	target *discovery.Target
	// due is the grid time of the next run; lagFrom is the time its lag is
	// measured from, earlier than due when runs were skipped. Both are
	// nanoseconds since Scheduler.epoch, which keeps the monotonic clock.
	due     int64
	lagFrom int64
	// runs counts finished probes; the newest history entry is at
	// (runs-1) % HistoryLen.
	runs uint64
	// tlsNotAfter is the last result's certificate expiry in Unix seconds
	// (X.509 times have no fraction), valid with flagTLS.
	tlsNotAfter int64
	extra       *extra
	history     history
	// httpStatus of the last result: three digits (nginx's parser).
	httpStatus uint16
	// code is the verdict of each history entry (see encode); kept here
	// rather than in history so that it and the fields around it fill one
	// word instead of each padding its own: 216 bytes in all.
	code  [HistoryLen]uint8
	flags uint8
}

// Bits of state.flags.
const (
	// flagSlow: the lane it is queued in or would be queued in is the slow
	// one (its last probe was slow).
	flagSlow uint8 = 1 << iota
	// flagRunning: a probe of it is in flight.
	flagRunning
	// flagTLS: the last result had a certificate (tlsNotAfter is valid).
	flagTLS
)

func (st *state) is(f uint8) bool { return st.flags&f != 0 }

func (st *state) set(f uint8, on bool) {
	if on {
		st.flags |= f
	} else {
		st.flags &^= f
	}
}

// extra holds what only some targets need, so that the others pay one
// pointer: what a failing target keeps (64 bytes with its first two
// failure counters), and in rare what fewer still have.
type extra struct {
	// err stands in for the last result's error while the target fails
	// (hasErr). A Status may hold a pointer to it after the lock is
	// released, so it is never modified: a different error gets a new
	// extra (see keepTexts).
	err lastError
	// failures counts failed probes by reason (see failureCount), in the
	// order the reasons first happened; a target failing in more ways
	// has the others in rare.
	failures [2]failureCount
	skipped  uint64
	rare     *rare
	hasErr   bool
}

// rare holds what few targets have: the peer dialled when resolved at
// run time, the detail of a failure, and counters of a third failure
// reason and more.
type rare struct {
	address  string
	detail   string
	failures []failureCount
}

// failureCount is the count of failed probes of one reason: the reason's
// index into prober.Reasons in the top byte (plus one, so that zero is no
// entry), the count below it (2^56 probes outlast any exporter).
type failureCount uint64

const failureShift = 56

func (f failureCount) reason() int { return int(f>>failureShift) - 1 }
func (f failureCount) n() uint64   { return uint64(f) & (1<<failureShift - 1) }

// lastError stands in for a result's error once it has been logged: its
// text, and whether it said the exporter could not check a path as
// nginx's worker user (report marks such verdicts unverified).
type lastError struct {
	text        string
	cannotCheck bool
}

func (e *lastError) Error() string { return e.text }

// Is lets errors.Is(err, prober.ErrCannotCheck) answer as it did for the
// original error.
func (e *lastError) Is(target error) bool { return e.cannotCheck && target == prober.ErrCannotCheck }

// lane is a queue of due times with its own budget of slots. q holds
// slots of Scheduler.states, a min-heap by due time.
type lane struct {
	q     []int32
	busy  int
	limit int
}

// Scheduler runs probes. The zero value is not usable; call New.
type Scheduler struct {
	opts   Options
	logger *slog.Logger
	// epoch is what due times count from; it keeps the monotonic clock.
	epoch time.Time
	// seed hashes labels for index.
	seed maphash.Seed

	mu sync.Mutex
	// states is the slab of the current target set, in configuration
	// order (the order of exposition). Update allocates a new one and
	// copies the states of unchanged targets into it; the old one is
	// never written again, so a reader that took it before may finish
	// reading it.
	states []state
	// index finds a state by its target's labels: the hashes of the
	// labels, sorted, with the slot of each. A map keyed by labels cost
	// about 100 bytes a target; this is 8. Hashes that collide are told
	// apart by the labels.
	index      []slot
	fast, slow lane
	// active are the probes in flight, so that Update can tell each
	// where its target's state went.
	active []*run
	wake   chan struct{}
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

// slot is one entry of Scheduler.index.
type slot struct {
	hash uint32
	i    int32
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
		seed:   maphash.MakeSeed(),
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
	if st.is(flagSlow) {
		return &s.slow
	}
	return &s.fast
}

// hashKey is the hash of k that index is sorted by.
func (s *Scheduler) hashKey(k discovery.Key) uint32 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	for _, v := range [...]string{k.Upstream, k.Server, k.Address, k.Protocol} {
		h.WriteString(v)
		h.WriteByte(0)
	}
	return uint32(h.Sum64())
}

// find returns the slot of the state with labels k (hashed to h) in
// states, indexed by index, or -1.
func find(index []slot, states []state, h uint32, k discovery.Key) int32 {
	i, _ := slices.BinarySearchFunc(index, h, func(e slot, h uint32) int { return cmp.Compare(e.hash, h) })
	for ; i < len(index) && index[i].hash == h; i++ {
		if states[index[i].i].target.Key == k {
			return index[i].i
		}
	}
	return -1
}

// lookup returns the current state of the target with labels k, or nil.
// Called with s.mu held; h is s.hashKey(k), computed before taking it.
func (s *Scheduler) lookup(h uint32, k discovery.Key) *state {
	if i := find(s.index, s.states, h, k); i >= 0 {
		return &s.states[i]
	}
	return nil
}

// Update replaces the target set. Targets whose labels did not change keep
// their state and schedule; new ones are spread over the next interval.
func (s *Scheduler) Update(set *discovery.Set) {
	next := make([]state, len(set.Targets))
	index := make([]slot, len(set.Targets))
	for i, t := range set.Targets {
		index[i] = slot{hash: s.hashKey(t.Key), i: int32(i)}
	}
	slices.SortFunc(index, func(a, b slot) int { return cmp.Compare(a.hash, b.hash) })
	now := s.at(time.Now())

	s.mu.Lock()
	old := s.states
	// moved is where each old state went, -1 if nowhere. A state goes to
	// one place only: were a set to hold one labels twice, the second
	// would start afresh rather than share a probe in flight.
	moved := make([]int32, len(old))
	for j := range moved {
		moved[j] = -1
	}
	for _, e := range index {
		t, st := set.Targets[e.i], &next[e.i]
		if j := find(s.index, old, e.hash, t.Key); j >= 0 && moved[j] < 0 {
			*st = old[j]
			moved[j] = e.i
		} else {
			st.due = now + int64(jitter(t.Key, s.opts.Interval))
			st.lagFrom = st.due
		}
		st.target = t
	}
	// A probe in flight records into its target's new state, or, when the
	// target is gone, into a copy of its old one that only it holds (its
	// result is still logged against its previous one, as before).
	for _, r := range s.active {
		switch {
		case r.orphan != nil:
		case moved[r.slot] >= 0:
			r.slot = moved[r.slot]
		default:
			r.orphan = new(state)
			*r.orphan = old[r.slot]
			r.slot = -1
		}
	}
	s.states, s.index = next, index
	for _, l := range []*lane{&s.fast, &s.slow} {
		l.q = l.q[:0]
	}
	for i := range next {
		st := &next[i]
		// A running target is queued again when its probe ends.
		if st.target.Probe != nil && !st.is(flagRunning) {
			s.push(s.laneOf(st), int32(i))
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
	target  *discovery.Target
	lagFrom int64 // since Scheduler.epoch
	// Guarded by Scheduler.mu:
	// slot is the target's state in Scheduler.states, kept current by
	// Update; orphan replaces it once Update removed the target.
	slot   int32
	orphan *state
	// pos is the run's index in Scheduler.active.
	pos   int
	lane  *lane // the lane whose slot it holds
	ended bool
}

// state is the state run records into. Called with s.mu held.
func (s *Scheduler) stateOf(r *run) *state {
	if r.orphan != nil {
		return r.orphan
	}
	return &s.states[r.slot]
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
			i := l.q[0]
			st := &s.states[i]
			if w := time.Duration(st.due - nowAt); w > 0 {
				wait = min(wait, w)
				break
			}
			if l.busy >= l.limit {
				break
			}
			s.pop(l)
			l.busy++
			st.set(flagRunning, true)
			r := &run{target: st.target, lagFrom: st.lagFrom, slot: i, lane: l, pos: len(s.active)}
			s.active = append(s.active, r)
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
	slow := r.Duration >= s.opts.SlowAfter || timedOut(r)
	// Shutting down: a cancelled probe says nothing about the target.
	keep := ctx.Err() == nil
	var txt texts
	if keep {
		txt = textsOf(r)
	}
	s.mu.Lock()
	var prev previous
	if keep {
		prev = s.stateOf(run).keep(r, end, &txt)
	}
	wake := s.finish(run, end, slow)
	s.mu.Unlock()
	if wake {
		s.signal()
	}
	if keep {
		s.log(run.target, r, prev)
	}
	r.Err = nil // do not keep addresses alive in the pool
	s.results.Put(r)
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
// measured from the first of them, so the lag histogram shows it. It
// says whether to wake the dispatcher. Called with s.mu held.
func (s *Scheduler) finish(run *run, end time.Time, slow bool) bool {
	run.ended = true
	last := s.active[len(s.active)-1]
	last.pos = run.pos
	s.active[run.pos] = last
	s.active[len(s.active)-1] = nil
	s.active = s.active[:len(s.active)-1]
	// A full lane may have due work waiting for this slot.
	wake := run.lane.busy >= run.lane.limit
	run.lane.busy--
	st := s.stateOf(run)
	st.set(flagRunning, false)
	st.set(flagSlow, slow)
	if endAt := s.at(end); run.orphan == nil && st.target.Probe != nil {
		if st.due < endAt {
			st.lagFrom = st.due
			if missed := (endAt - st.due) / int64(s.opts.Interval); missed > 0 {
				st.due += missed * int64(s.opts.Interval)
				s.skipped.Add(uint64(missed))
				st.more().skipped += uint64(missed)
			}
		}
		s.push(s.laneOf(st), run.slot)
		wake = wake || st.due < s.wakeAt
	}
	return wake
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

// previous is what logging a result needs of the one before it.
type previous struct {
	had    bool // there was one
	ok     bool
	reason prober.Reason
	cause  prober.Inconclusive
}

// keep records r, finished at now, as st's last result and returns what
// its previous one was. txt is textsOf(r), taken before the lock. Called
// with s.mu held.
func (st *state) keep(r *prober.Result, now time.Time, txt *texts) previous {
	var prev previous
	if st.runs > 0 {
		c := st.code[(st.runs-1)%HistoryLen]
		prev = previous{had: true, ok: c == codeSuccess, reason: codeReasonOf(c), cause: codeCauseOf(c)}
	}
	st.put(r, now)
	st.httpStatus = uint16(min(max(r.HTTPStatus, 0), 1<<16-1))
	st.set(flagTLS, !r.TLSNotAfter.IsZero())
	st.tlsNotAfter = r.TLSNotAfter.Unix()
	st.keepTexts(r, txt)
	if !r.Success && r.Inconclusive == "" {
		st.more().fail(reasonIndex(r.Reason))
	}
	return prev
}

// log logs what r, a result of t, changed from prev.
func (s *Scheduler) log(t *discovery.Target, r *prober.Result, prev previous) {
	// The target's logger is asked for only to log a line: most targets
	// never log.
	if r.Inconclusive != "" {
		s.inconclusive[inconclusiveIndex(r.Inconclusive)].Add(1)
		s.logInconclusive(t, r, prev.cause)
		return
	}
	switch {
	case !r.Success && (!prev.had || prev.ok || prev.reason != r.Reason || prev.cause != ""):
		attrs := []any{"reason", string(r.Reason), "nginx_would_log", r.Reason.NginxMessageOver(t.Network), "err", r.Err}
		if r.Detail != "" {
			attrs = append(attrs, "detail", r.Detail)
		}
		if r.Address != "" {
			attrs = append(attrs, "dialled", r.Address)
		}
		t.Logger().Warn("upstream server failing", attrs...)
	case r.Success && prev.had && !prev.ok:
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

// more returns st's extra, allocating it. Called with s.mu held.
func (st *state) more() *extra {
	if st.extra == nil {
		st.extra = &extra{}
	}
	return st.extra
}

// fail counts one failed probe of reason (an index into prober.Reasons).
func (e *extra) fail(reason int) {
	if count(e.failures[:], reason) {
		return
	}
	for i := range e.failures {
		if e.failures[i] == 0 {
			e.failures[i] = failureCount(reason+1)<<failureShift | 1
			return
		}
	}
	if e.rare == nil {
		e.rare = &rare{}
	}
	if !count(e.rare.failures, reason) {
		e.rare.failures = append(e.rare.failures, failureCount(reason+1)<<failureShift|1)
	}
}

// count adds one to the counter of reason in fs, if there is one.
func count(fs []failureCount, reason int) bool {
	for i := range fs {
		if fs[i] != 0 && fs[i].reason() == reason {
			fs[i]++
			return true
		}
	}
	return false
}

// texts are what of a result's texts a failing target keeps: the detail
// and the error's text. The error's text is formatted before taking
// Scheduler.mu, which every probe's end takes.
type texts struct {
	detail, err string
	hasErr      bool
	cannotCheck bool
}

func textsOf(r *prober.Result) texts {
	if r.Success {
		return texts{}
	}
	t := texts{detail: r.Detail}
	if r.Err != nil {
		t.err, t.hasErr = r.Err.Error(), true
		t.cannotCheck = errors.Is(r.Err, prober.ErrCannotCheck)
	}
	return t
}

// keepTexts keeps what the status page and the API show of r's texts: the
// runtime address, and while the target fails the detail and the error's
// text (txt). Unchanged texts keep their strings, so a target failing the
// same way allocates nothing to remember it. Called with s.mu held.
func (st *state) keepTexts(r *prober.Result, txt *texts) {
	if st.extra == nil && r.Address == "" && txt.detail == "" && !txt.hasErr {
		return
	}
	fresh := st.extra == nil
	e := st.more()
	if e.rare != nil || r.Address != "" || txt.detail != "" {
		if e.rare == nil {
			e.rare = &rare{}
		}
		if e.rare.address != r.Address {
			e.rare.address = r.Address
		}
		if e.rare.detail != txt.detail {
			e.rare.detail = txt.detail
		}
	}
	switch {
	case !txt.hasErr:
		e.hasErr = false
	case e.err.text == txt.err && e.err.cannotCheck == txt.cannotCheck:
		e.hasErr = true
	case fresh:
		// No Status can hold the error of an extra made just now.
		e.err, e.hasErr = lastError{text: txt.err, cannotCheck: txt.cannotCheck}, true
	default:
		ne := *e
		ne.err, ne.hasErr = lastError{text: txt.err, cannotCheck: txt.cannotCheck}, true
		st.extra = &ne
	}
}

// read copies st into cp, which it overwrites whole. Called with s.mu
// held, or on a slab Update replaced (which nothing writes any more).
func (st *state) read(cp *Status) {
	*cp = Status{Target: st.target, Runs: st.runs}
	e := st.extra
	if e != nil {
		cp.Skipped = e.skipped
		for _, f := range e.failures {
			if f != 0 {
				cp.Failures[f.reason()] = f.n()
			}
		}
		if e.rare != nil {
			for _, f := range e.rare.failures {
				cp.Failures[f.reason()] = f.n()
			}
		}
	}
	if st.runs == 0 {
		return
	}
	cp.HasResult = true
	n := (st.runs - 1) % HistoryLen
	h := &st.history
	cp.Finished = time.Unix(0, h.finished[n])
	r := &cp.Result
	c := st.code[n]
	r.Success, r.Reason, r.Inconclusive = c == codeSuccess, codeReasonOf(c), codeCauseOf(c)
	r.Duration = time.Duration(h.duration[n]) * time.Microsecond
	for p, us := range h.phases[n] {
		r.Phases[p] = time.Duration(us) * time.Microsecond
	}
	r.HTTPStatus = int(st.httpStatus)
	if st.is(flagTLS) {
		r.TLSNotAfter = time.Unix(st.tlsNotAfter, 0).UTC()
	}
	if e != nil {
		if e.rare != nil {
			r.Address, r.Detail = e.rare.address, e.rare.detail
		}
		if e.hasErr {
			r.Err = &e.err
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
	states := s.states
	s.mu.Unlock()
	var cp Status
	for i := range states {
		// One state at a time, so that probes ending meanwhile wait for
		// one copy at most, never for fn.
		s.mu.Lock()
		states[i].read(&cp)
		s.mu.Unlock()
		fn(&cp)
	}
}

// Lookup returns the target with these labels, if configured.
func (s *Scheduler) Lookup(k discovery.Key) (*discovery.Target, bool) {
	h := s.hashKey(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.lookup(h, k)
	if st == nil {
		return nil, false
	}
	return st.target, true
}

// Targets returns the current targets in configuration order.
func (s *Scheduler) Targets() []*discovery.Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*discovery.Target, len(s.states))
	for i := range s.states {
		out[i] = s.states[i].target
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
		for _, i := range l.q {
			if s.states[i].due <= nowAt {
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

// push queues slot i in l. The heap is container/heap's, typed so that
// queueing a slot allocates nothing. Called with s.mu held.
func (s *Scheduler) push(l *lane, i int32) {
	l.q = append(l.q, i)
	q := l.q
	for j := len(q) - 1; j > 0; {
		parent := (j - 1) / 2
		if s.states[q[j]].due >= s.states[q[parent]].due {
			break
		}
		q[parent], q[j] = q[j], q[parent]
		j = parent
	}
}

// pop removes the slot due first from l. Called with s.mu held.
func (s *Scheduler) pop(l *lane) int32 {
	q := l.q
	n := len(q) - 1
	q[0], q[n] = q[n], q[0]
	for i := 0; ; {
		j := 2*i + 1
		if j >= n {
			break
		}
		if j2 := j + 1; j2 < n && s.states[q[j2]].due < s.states[q[j]].due {
			j = j2
		}
		if s.states[q[j]].due >= s.states[q[i]].due {
			break
		}
		q[i], q[j] = q[j], q[i]
		i = j
	}
	l.q = q[:n]
	return q[n]
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
