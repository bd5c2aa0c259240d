package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// runScheduler starts s.Run and returns a function that stops it and waits
// for every probe to end.
func runScheduler(t *testing.T, s *Scheduler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10s of cancellation")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestConcurrencyDoesNotPreallocate: a huge --probe.concurrency used to
// start that many idle workers (1,000,000 took 2.8 GB). Goroutines must
// follow the probes actually in flight, not the configured bound.
func TestConcurrencyDoesNotPreallocate(t *testing.T) {
	cp := newCountingProber()
	s := New(Options{Interval: 20 * time.Millisecond, Concurrency: MaxConcurrency, Timeout: time.Second,
		Prober: cp})
	s.Update(set(target("u", "a", false), target("u", "b", false), target("u", "c", false)))

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	stop := runScheduler(t, s)
	waitFor(t, "probes", func() bool { return cp.count("a") >= 3 && cp.count("c") >= 3 })
	g1 := runtime.NumGoroutine()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	stop()

	// Run itself, up to one goroutine per target, and a few for timers.
	if extra := g1 - g0; extra > 10 {
		t.Errorf("%d goroutines while running 3 targets at concurrency %d; want a handful", extra, MaxConcurrency)
	}
	if grown := int64(after.StackInuse) - int64(before.StackInuse); grown > 4<<20 {
		t.Errorf("goroutine stacks grew by %d bytes for 3 targets", grown)
	}
}

// TestProbesOfOneTargetNeverOverlap: a probe that outlasts the interval
// used to be joined by the next run of the same target. The next run must
// start only after the current one ends, the runs it could not make are
// counted as skipped and the late start shows in the lag histogram.
func TestProbesOfOneTargetNeverOverlap(t *testing.T) {
	const interval = 30 * time.Millisecond
	var (
		mu      sync.Mutex
		running = map[string]int{}
		maxSeen = map[string]int{}
		runs    = map[string]int{}
	)
	slow := prober.ProberFunc(func(ctx context.Context, tg *prober.Peer, r *prober.Result) {
		mu.Lock()
		running[tg.Address]++
		runs[tg.Address]++
		maxSeen[tg.Address] = max(maxSeen[tg.Address], running[tg.Address])
		mu.Unlock()
		select {
		case <-time.After(4 * interval):
		case <-ctx.Done():
		}
		mu.Lock()
		running[tg.Address]--
		mu.Unlock()
		r.Success = true
	})
	s := New(Options{Interval: interval, Concurrency: 16, Timeout: time.Second,
		Prober: slow})
	s.Update(set(target("u", "a", false), target("u", "b", false)))
	stop := runScheduler(t, s)
	waitFor(t, "five runs of each target", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return runs["a"] >= 5 && runs["b"] >= 5
	})
	stop()

	mu.Lock()
	defer mu.Unlock()
	for _, a := range []string{"a", "b"} {
		if maxSeen[a] != 1 {
			t.Errorf("%s: %d probes of the same target in flight at once, want 1", a, maxSeen[a])
		}
	}
	st := statuses(s)
	if st["a"].Skipped == 0 || st["b"].Skipped == 0 {
		t.Errorf("probes of 4 intervals skipped no run: a %d, b %d", st["a"].Skipped, st["b"].Skipped)
	}
	if got := s.Skipped(); got != st["a"].Skipped+st["b"].Skipped {
		t.Errorf("Skipped() = %d, per-target sum %d", got, st["a"].Skipped+st["b"].Skipped)
	}
	// Every start after the first is late by about three intervals (the
	// probe lasted four): the lag histogram must say so.
	var m dto.Metric
	if err := s.LagHistogram().Write(&m); err != nil {
		t.Fatal(err)
	}
	h := m.GetHistogram()
	late := h.GetSampleCount()
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() >= interval.Seconds() {
			late = h.GetSampleCount() - b.GetCumulativeCount()
			break
		}
	}
	// Buckets are coarse; count starts above the first bucket at or over
	// one interval (50 ms): at least the later starts of both targets.
	if late < 4 {
		t.Errorf("lag histogram: %d of %d starts later than one interval, want >= 4", late, h.GetSampleCount())
	}
}

// listener accepts connections on loopback. Healthy ones answer each
// request byte with "ok"; hanging ones accept and never answer, as a
// backend stuck in a long request.
func listener(t *testing.T, answer bool) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if !answer {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 1)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
					if _, err := c.Write([]byte("ok")); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// pingProber connects, sends one byte and reads the two-byte answer: real
// socket I/O that waits on the backend until the probe's deadline.
func pingProber(ctx context.Context, tg *prober.Peer, r *prober.Result) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", tg.Address)
	if err != nil {
		r.Fail(prober.ReasonConnectionRefused, err)
		return
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stopWatch := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stopWatch()
	if _, err := c.Write([]byte{'?'}); err != nil {
		r.Fail(prober.ReasonConnectionReset, err)
		return
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.Fail(prober.ReasonReadTimeout, err)
			return
		}
		r.Fail(prober.ReasonPrematureClose, err)
		return
	}
	r.Success = true
}

// TestHangingTargetsDoNotStarveHealthy: 1,000 targets that accept and
// never answer, 20 that answer, a 1 s interval, 512 probe slots and a 5 s
// timeout. Before the two lanes, hanging probes held every slot and
// healthy targets were probed every ~10 s (every ~20 s at 1,000 targets
// and 10 s timeouts). Healthy targets must stay within one interval of
// their schedule: no gap between two of their probes longer than two
// intervals.
func TestHangingTargetsDoNotStarveHealthy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 8 s")
	}
	const (
		interval = time.Second
		hanging  = 1000
		healthy  = 20
	)
	hangAddr := listener(t, false)
	okAddrs := map[string]bool{}

	var (
		mu     sync.Mutex
		starts = map[string][]time.Time{}
	)
	p := prober.ProberFunc(func(ctx context.Context, tg *prober.Peer, r *prober.Result) {
		if okAddrs[tg.Address] {
			mu.Lock()
			starts[tg.Address] = append(starts[tg.Address], time.Now())
			mu.Unlock()
		}
		pingProber(ctx, tg, r)
	})
	var ts []*discovery.Target
	for i := range hanging {
		tg := target(fmt.Sprintf("hang%d", i), hangAddr, false)
		ts = append(ts, tg)
	}
	for i := range healthy {
		a := listener(t, true)
		okAddrs[a] = true
		ts = append(ts, target(fmt.Sprintf("ok%d", i), a, false))
	}
	s := New(Options{Interval: interval, Concurrency: 512, Timeout: 5 * time.Second,
		Prober: p})
	s.Update(set(ts...))
	stop := runScheduler(t, s)
	begin := time.Now()
	time.Sleep(7 * time.Second)
	end := time.Now()
	inFlight := s.InFlight()
	stop()

	if inFlight < 400 {
		t.Errorf("only %d probes in flight with 1,000 hanging targets: the hanging side is not exercised", inFlight)
	}
	// Once every hanging target is known to be slow it waits for a slow
	// slot, so in steady state the two budgets bound what is in flight;
	// only demotions of targets that answered last time overfill the slow
	// lane, transiently.
	if inFlight > 2*512 {
		t.Errorf("%d probes in flight, want at most %d", inFlight, 2*512)
	}
	mu.Lock()
	defer mu.Unlock()
	worst := time.Duration(0)
	for name := range okAddrs {
		st := starts[name]
		if len(st) < 6 {
			t.Errorf("%s probed %d times in 7 s at a 1 s interval", name, len(st))
			continue
		}
		prev := begin
		for _, at := range append(st, end) {
			worst = max(worst, at.Sub(prev))
			prev = at
		}
	}
	// A target on schedule has gaps of one interval; its first probe comes
	// within one interval of the start (jitter). Two intervals of gap mean
	// one probe was late by a whole interval.
	if worst > 2*interval {
		t.Errorf("longest gap between probes of a healthy target: %v, want <= %v", worst, 2*interval)
	}
	t.Logf("longest gap between probes of a healthy target: %v; probes in flight at the end: %d", worst, inFlight)
}
