package scheduler

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// TestRanges: ranges read in parallel give what Each gives, in order, and
// keep the target set of the call to Ranges across a reload.
func TestRanges(t *testing.T) {
	var targets []*discovery.Target
	for _, addr := range []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80"} {
		targets = append(targets, target("app", addr, false))
	}
	s := New(Options{Interval: time.Second, Prober: newCountingProber()})
	s.Update(set(targets...))
	start := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	for i, tg := range targets {
		r := &prober.Result{Success: true, Duration: time.Duration(i+1) * time.Millisecond}
		if i%2 == 1 {
			r = &prober.Result{Reason: prober.ReasonConnectionRefused, Duration: time.Millisecond}
		}
		s.record(tg, r, start)
	}
	var each []Status
	s.Each(func(st *Status) { each = append(each, *st) })

	n, ranges := s.Ranges()
	if n != len(targets) {
		t.Fatalf("Ranges: %d targets, want %d", n, len(targets))
	}
	s.Update(set(targets[3], targets[1])) // a reload after Ranges
	got := make([][]Status, 3)
	bounds := [][2]int{{0, 2}, {2, 2}, {2, 5}}
	var wg sync.WaitGroup
	for i, b := range bounds {
		wg.Go(func() { ranges(b[0], b[1], func(st *Status) { got[i] = append(got[i], *st) }) })
	}
	wg.Wait()
	all := append(append(got[0], got[1]...), got[2]...)
	if !reflect.DeepEqual(all, each) {
		t.Errorf("ranges read\n%+v\nEach read\n%+v", all, each)
	}
	if n, _ := s.Ranges(); n != 2 {
		t.Errorf("after the reload Ranges has %d targets, want 2", n)
	}
}
