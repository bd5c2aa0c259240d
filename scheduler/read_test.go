package scheduler

import (
	"reflect"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// TestRead: one target's status read by its labels is what Each hands
// out for it; an unknown target is not found.
func TestRead(t *testing.T) {
	a, b := target("app", "10.0.0.1:80", false), target("app", "10.0.0.2:80", false)
	s := New(Options{Interval: time.Second, Prober: newCountingProber()})
	s.Update(set(a, b))
	start := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	s.record(b, &prober.Result{Reason: prober.ReasonConnectionRefused, Duration: time.Millisecond, Detail: "d"}, start)
	s.record(a, &prober.Result{Success: true, Duration: 2 * time.Millisecond}, start.Add(time.Second))
	each := map[discovery.Key]Status{}
	s.Each(func(st *Status) { each[st.Target.Key] = *st })
	for _, tg := range []*discovery.Target{a, b} {
		var got Status
		if !s.Read(tg.Key, &got) {
			t.Fatalf("%s not found", tg.Key.Server)
		}
		if !reflect.DeepEqual(got, each[tg.Key]) || !got.HasResult {
			t.Errorf("Read(%s) = %+v, Each gave %+v", tg.Key.Server, got, each[tg.Key])
		}
	}
	var st Status
	if s.Read(discovery.Key{Upstream: "other"}, &st) {
		t.Error("an unknown target was found")
	}
}
