package scheduler

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingProber records probes per address and answers with the verdict
// configured for that address; "hang" blocks until the probe's deadline.
type countingProber struct {
	mu     sync.Mutex
	counts map[string]int
	fail   map[string]prober.Reason
	hang   map[string]bool
}

func newCountingProber() *countingProber {
	return &countingProber{counts: map[string]int{}, fail: map[string]prober.Reason{}, hang: map[string]bool{}}
}

func (c *countingProber) Probe(ctx context.Context, t *prober.Peer, r *prober.Result) {
	c.mu.Lock()
	c.counts[t.Address]++
	reason, hang := c.fail[t.Address], c.hang[t.Address]
	c.mu.Unlock()
	if hang {
		<-ctx.Done()
		r.Fail(prober.ReasonReadTimeout, ctx.Err())
		return
	}
	if reason != "" {
		r.Fail(reason, nil)
		return
	}
	r.Success = true
}

func (c *countingProber) count(addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[addr]
}

func target(upstream, addr string, down bool) *discovery.Target {
	t := &discovery.Target{
		Key:            discovery.Key{Upstream: upstream, Server: addr, Address: addr, Protocol: "test"},
		ServerSettings: &discovery.ServerSettings{Params: nginxconf.ServerParams{Down: down, Weight: 1}},
	}
	if !down {
		t.Probe = &prober.Peer{Network: "tcp", Address: addr}
	}
	return t
}

func set(ts ...*discovery.Target) *discovery.Set {
	s := &discovery.Set{Targets: ts}
	for _, t := range ts {
		if t.Probe == nil {
			s.Down++
		} else {
			s.Probed++
		}
	}
	return s
}

func statuses(s *Scheduler) map[string]Status {
	out := map[string]Status{}
	s.Each(func(st *Status) { out[st.Target.Address] = *st })
	return out
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProbesEveryTargetButDown(t *testing.T) {
	cp := newCountingProber()
	cp.fail["b"] = prober.ReasonConnectionRefused
	s := New(Options{Interval: 50 * time.Millisecond, Concurrency: 2, Timeout: time.Second,
		Prober: cp})
	s.Update(set(target("u", "a", false), target("u", "b", false), target("u", "c", true)))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	waitFor(t, "three rounds of probes", func() bool { return cp.count("a") >= 3 && cp.count("b") >= 3 })
	cancel()
	<-done

	if n := cp.count("c"); n != 0 {
		t.Errorf("server marked down was probed %d times; nginx sends it nothing", n)
	}
	st := statuses(s)
	if !st["a"].HasResult || !st["a"].Result.Success {
		t.Errorf("a: want success, got %+v", st["a"].Result)
	}
	b := st["b"]
	if b.Result.Success || b.Result.Reason != prober.ReasonConnectionRefused {
		t.Errorf("b: want connection_refused, got %+v", b.Result)
	}
	if got := b.Failures[reasonIndex(prober.ReasonConnectionRefused)]; got != b.Runs || got < 3 {
		t.Errorf("b: failures %d, runs %d: every run failed", got, b.Runs)
	}
	if st["c"].HasResult {
		t.Errorf("c: down server must have no result")
	}
}

func TestUpdateKeepsStateOfUnchangedTargets(t *testing.T) {
	cp := newCountingProber()
	s := New(Options{Interval: 20 * time.Millisecond, Concurrency: 2, Timeout: time.Second,
		Prober: cp})
	s.Update(set(target("u", "a", false), target("u", "b", false)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	waitFor(t, "first probes", func() bool { return cp.count("a") >= 2 && cp.count("b") >= 2 })

	before := statuses(s)["a"].Runs
	s.Update(set(target("u", "a", false), target("u", "new", false)))
	after := statuses(s)
	if after["a"].Runs < before {
		t.Errorf("a lost its counters across reload: %d -> %d", before, after["a"].Runs)
	}
	if _, ok := after["b"]; ok {
		t.Errorf("removed target b still exported")
	}
	waitFor(t, "new target probed", func() bool { return cp.count("new") >= 1 })
	cancel()
	<-done
}

// TestHangingTargetsDoNotStarveOthers: with more hanging targets than the
// interval can absorb serially, healthy targets still get probed every
// round because hanging ones only hold their own worker.
func TestHangingTargetsDoNotStarveOthers(t *testing.T) {
	cp := newCountingProber()
	var ts []*discovery.Target
	for _, a := range []string{"h1", "h2", "h3"} {
		cp.hang[a] = true
		ts = append(ts, target("u", a, false))
	}
	for _, a := range []string{"f1", "f2", "f3", "f4", "f5"} {
		ts = append(ts, target("u", a, false))
	}
	s := New(Options{Interval: 100 * time.Millisecond, Concurrency: 8, Timeout: 2 * time.Second,
		Prober: cp})
	s.Update(set(ts...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	waitFor(t, "fast targets probed 5 times while slow ones hang", func() bool {
		for _, a := range []string{"f1", "f2", "f3", "f4", "f5"} {
			if cp.count(a) < 5 {
				return false
			}
		}
		return true
	})
	cancel()
	<-done
}

func TestProbeOnce(t *testing.T) {
	cp := newCountingProber()
	cp.fail["b"] = prober.ReasonSocketNotFound
	ts := []*discovery.Target{target("u", "a", false), target("u", "b", false), target("u", "c", true)}
	var calls atomic.Int64
	out := ProbeOnce(context.Background(), ts, cp, 2, time.Second,
		func(done, total int) { calls.Add(1) })
	if len(out) != 3 {
		t.Fatalf("want 3 statuses, got %d", len(out))
	}
	if !out[0].Result.Success || out[1].Result.Reason != prober.ReasonSocketNotFound || out[2].HasResult {
		t.Errorf("unexpected statuses: %+v", out)
	}
	if calls.Load() != 2 {
		t.Errorf("progress called %d times, want 2", calls.Load())
	}
}

func TestJitterIsStableAndWithinInterval(t *testing.T) {
	k := discovery.Key{Upstream: "u", Server: "s", Address: "a", Protocol: "http"}
	j1, j2 := jitter(k, 15*time.Second), jitter(k, 15*time.Second)
	if j1 != j2 || j1 < 0 || j1 >= 15*time.Second {
		t.Errorf("jitter %v / %v not stable or outside the interval", j1, j2)
	}
}

// TestHistory: the last HistoryLen outcomes of a target, newest first,
// with reasons and phases as probed.
func TestHistory(t *testing.T) {
	tg := target("app", "10.0.0.1:80", false)
	s := New(Options{Interval: time.Second, Prober: newCountingProber()})
	s.Update(set(tg))
	if h := s.History(tg.Key); len(h) != 0 {
		t.Fatalf("history before any probe: %v", h)
	}
	start := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	results := []prober.Result{
		{Success: true, Duration: time.Millisecond},
		{Reason: prober.ReasonConnectionRefused, Duration: 2 * time.Millisecond},
		{Inconclusive: prober.InconclusiveProbeTimeout, Duration: 3 * time.Millisecond},
	}
	for i := range 7 {
		r := results[i%len(results)]
		r.Phases[prober.PhaseConnect] = time.Duration(i+1) * time.Millisecond
		s.record(tg, &r, start.Add(time.Duration(i)*time.Second))
	}
	h := s.History(tg.Key)
	if len(h) != HistoryLen {
		t.Fatalf("%d outcomes, want %d", len(h), HistoryLen)
	}
	for j, o := range h {
		i := 6 - j // newest first
		want := results[i%len(results)]
		if !o.Finished.Equal(start.Add(time.Duration(i)*time.Second)) || o.Success != want.Success || o.Reason != want.Reason ||
			o.Inconclusive != want.Inconclusive || o.Duration != want.Duration || o.Phases[prober.PhaseConnect] != time.Duration(i+1)*time.Millisecond {
			t.Errorf("outcome %d = %+v, want probe %d: %+v", j, o, i, want)
		}
	}
	if h := s.History(discovery.Key{Upstream: "other"}); h != nil {
		t.Errorf("history of an unknown target: %v", h)
	}
}

// record keeps r as t's last result and logs it, as the end of a probe
// of t does.
func (s *Scheduler) record(t *discovery.Target, r *prober.Result, now time.Time) {
	txt := textsOf(r)
	h := s.hashKey(t.Key)
	s.mu.Lock()
	prev := s.lookup(h, t.Key).keep(r, now, &txt)
	s.mu.Unlock()
	s.log(t, r, prev)
}
