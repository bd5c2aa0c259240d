package scheduler

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// memoryTargets are n targets as a large nginx has them: a quarter each of
// tcp, http, https and fastcgi.
func memoryTargets(n int) []*discovery.Target {
	protos := []string{"tcp", "http", "https", "fastcgi"}
	ts := make([]*discovery.Target, n)
	// One value shared by all, as discovery.Build shares equal settings.
	settings := &discovery.ServerSettings{Params: nginxconf.ServerParams{Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second}}
	for i := range ts {
		addr := fmt.Sprintf("127.%d.%d.%d:%d", i>>16&255, i>>8&255, i&255, 8000+i%100)
		ts[i] = &discovery.Target{
			Key:            discovery.Key{Upstream: fmt.Sprintf("u%d", i/10), Server: addr, Address: addr, Protocol: protos[i%4]},
			ServerSettings: settings,
			Probe:          &prober.Peer{Network: "tcp", Address: addr},
		}
	}
	return ts
}

// memoryResult is probe round of target i: half the targets fail (refused,
// with the error's text; one in ten of those with a detail), the others
// answer, https ones with a certificate.
func memoryResult(i, round int, t *discovery.Target, r *prober.Result) {
	r.Reset()
	r.Duration = time.Duration(1000+i+round) * time.Microsecond
	r.Phases[prober.PhaseConnect] = r.Duration / 2
	r.Phases[prober.PhaseProcessing] = r.Duration / 2
	if i%2 == 1 {
		r.Fail(prober.ReasonConnectionRefused, fmt.Errorf("dial tcp %s: connect: connection refused", t.Address))
		if i%20 == 1 {
			r.Detail = "the backend speaks TLS"
		}
		return
	}
	r.Success = true
	if t.Protocol != "tcp" {
		r.HTTPStatus = 200
	}
	if t.Protocol == "https" {
		r.TLSNotAfter = time.Unix(1_800_000_000, 0).UTC()
	}
}

// TestMemoryPerTarget bounds the scheduler's live heap per target at
// 10,000 targets, half of them failing, after several probes of each: the
// state, its history, the sparse failure counters and texts, and the
// scheduler's index and queues. It was ~1 KB a target with a full
// prober.Result, a counter per reason and time.Time everywhere, and 513
// bytes with one object per state in a map by labels.
func TestMemoryPerTarget(t *testing.T) {
	testutil.SkipUnlessHeapIsTheExporters(t)
	if size := unsafe.Sizeof(state{}); size > 216 {
		t.Errorf("state is %d bytes, want at most 216", size)
	}
	const n = 10000
	ts := memoryTargets(n)
	var r prober.Result
	before := testutil.LiveHeap()

	s := New(Options{Interval: time.Second, Prober: newCountingProber()})
	s.Update(&discovery.Set{Targets: ts, Probed: n})
	for round := range 3 {
		for i, tg := range ts {
			memoryResult(i, round, tg, &r)
			s.record(tg, &r, time.Now())
		}
	}
	r.Reset()
	after := testutil.LiveHeap()
	perTarget := (float64(after) - float64(before)) / n
	t.Logf("scheduler live heap: %.0f bytes per target at %d targets (state %d B)", perTarget, n, unsafe.Sizeof(state{}))

	// The same reads as before the state was made compact.
	failing, tls := 0, 0
	s.Each(func(st *Status) {
		if st.Runs != 3 || !st.HasResult {
			t.Fatalf("%s: %d runs", st.Target.Address, st.Runs)
		}
		if !st.Result.Success {
			failing++
			want := "dial tcp " + st.Target.Address + ": connect: connection refused"
			if st.Failures[reasonIndex(prober.ReasonConnectionRefused)] != 3 || st.Result.Err == nil || st.Result.Err.Error() != want {
				t.Fatalf("%s: failures %v, err %v", st.Target.Address, st.Failures, st.Result.Err)
			}
		}
		if !st.Result.TLSNotAfter.IsZero() {
			tls++
		}
	})
	if failing != n/2 || tls != n/4 {
		t.Errorf("%d failing, %d with a certificate; want %d and %d", failing, tls, n/2, n/4)
	}
	runtime.KeepAlive(s)
	runtime.KeepAlive(ts)
	// Measured 336 bytes: 216 of state in the slab, 8 of index, ~8 of
	// queue, and for a failing target (half of them) its extra (64), the
	// error's text (64) and its logger.
	if perTarget > 360 {
		t.Errorf("scheduler state is %.0f bytes per target, want at most 360", perTarget)
	}
}

// TestLastErrorIs: the kept text of an error still says whether the
// exporter could not check a path as nginx's worker user, which the
// report shows as an unverified verdict.
func TestLastErrorIs(t *testing.T) {
	tg := target("app", "/run/app.sock", false)
	s := New(Options{Interval: time.Second, Prober: newCountingProber()})
	s.Update(set(tg))
	for _, err := range []error{fmt.Errorf("stat /run: %w", prober.ErrCannotCheck), errors.New("permission denied")} {
		r := prober.Result{Reason: prober.ReasonPermissionDenied, Err: err}
		s.record(tg, &r, time.Now())
		var got Status
		s.Each(func(cp *Status) { got = *cp })
		if got.Result.Err == nil || got.Result.Err.Error() != err.Error() ||
			errors.Is(got.Result.Err, prober.ErrCannotCheck) != errors.Is(err, prober.ErrCannotCheck) {
			t.Errorf("kept %v for %v", got.Result.Err, err)
		}
	}
	r := prober.Result{Success: true}
	s.record(tg, &r, time.Now())
	s.Each(func(cp *Status) {
		if cp.Result.Err != nil || cp.Failures[reasonIndex(prober.ReasonPermissionDenied)] != 2 {
			t.Errorf("after recovery: err %v, failures %v", cp.Result.Err, cp.Failures)
		}
	})
}

// TestFailureTextsKept: counters of every reason a target failed with,
// however many; a Status keeps the error it was given while the target
// goes on failing differently; and a target failing, recovering and
// failing again the same way remembers it without allocating.
func TestFailureTextsKept(t *testing.T) {
	tg := target("app", "10.0.0.1:80", false)
	s := New(Options{Interval: time.Second, Prober: newCountingProber()})
	s.Update(set(tg))
	reasons := []prober.Reason{prober.ReasonConnectionRefused, prober.ReasonConnectTimeout, prober.ReasonConnectionRefused,
		prober.ReasonReadTimeout, prober.ReasonConnectionReset, prober.ReasonReadTimeout, prober.ReasonReadTimeout}
	var held Status
	for i, reason := range reasons {
		r := prober.Result{Reason: reason, Err: fmt.Errorf("failure %d", i), Detail: fmt.Sprintf("detail %d", i)}
		if i == 3 {
			r.Address = "10.0.0.9:80"
		}
		s.record(tg, &r, time.Now())
		if i == 0 {
			s.Read(tg.Key, &held)
		}
	}
	var got Status
	s.Read(tg.Key, &got)
	want := map[prober.Reason]uint64{prober.ReasonConnectionRefused: 2, prober.ReasonConnectTimeout: 1, prober.ReasonReadTimeout: 3, prober.ReasonConnectionReset: 1}
	for i, reason := range prober.Reasons {
		if got.Failures[i] != want[reason] {
			t.Errorf("%s: %d failures, want %d", reason, got.Failures[i], want[reason])
		}
	}
	if got.Result.Err == nil || got.Result.Err.Error() != "failure 6" || got.Result.Detail != "detail 6" || got.Result.Address != "" {
		t.Errorf("last result: err %v, detail %q, address %q", got.Result.Err, got.Result.Detail, got.Result.Address)
	}
	if held.Result.Err == nil || held.Result.Err.Error() != "failure 0" || held.Result.Detail != "detail 0" {
		t.Errorf("a Status read after the first failure now says %v, %q", held.Result.Err, held.Result.Detail)
	}

	ok := prober.Result{Success: true}
	fail := prober.Result{Reason: prober.ReasonReadTimeout, Err: errors.New("failure 6")}
	okTexts, failTexts := textsOf(&ok), textsOf(&fail)
	st := &s.states[0]
	allocs := testing.AllocsPerRun(100, func() {
		s.mu.Lock()
		st.keep(&ok, time.Now(), &okTexts)
		st.keep(&fail, time.Now(), &failTexts)
		s.mu.Unlock()
	})
	if allocs != 0 {
		t.Errorf("failing, recovering and failing the same way again allocated %.0f times", allocs)
	}
	s.Read(tg.Key, &got)
	if got.Result.Err == nil || got.Result.Err.Error() != "failure 6" || got.Failures[reasonIndex(prober.ReasonReadTimeout)] != 3+101 {
		t.Errorf("after flapping: err %v, %d read timeouts", got.Result.Err, got.Failures[reasonIndex(prober.ReasonReadTimeout)])
	}
}
