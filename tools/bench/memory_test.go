package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/collector"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/reload"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// memStage is one row of the live-set table.
type memStage struct {
	what  string
	bytes int64
}

// TestMemory10k measures where the live heap goes at 10,000 mixed targets,
// stage by stage as serve builds it: the configuration model, the target
// set, the scheduler's per-target state after every target was probed
// once (each probe refused: nothing listens), the /metrics renderer after
// a scrape. It reports the table (docs/performance.md), then measures the
// same through serve's own path (reload.Manager) and fails when that live
// set exceeds a bound, so growth is caught by CI (make alloc-budgets runs
// it without -race, which would distort the heap).
//
// MEMPROFILE=path writes a heap profile of the live set at the end:
// go tool pprof -top -inuse_space path.
func TestMemory10k(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	if testing.CoverMode() != "" {
		t.Skip("coverage counters distort the heap")
	}
	const n = 10000
	path := genConfig(t, n, 1)
	// Every probe goes to a port nothing listens on: refused at once.
	runtime.MemProfileRate = 4096
	defer func() { runtime.MemProfileRate = 512 * 1024 }()

	base := testutil.LiveHeap()
	var rows []memStage
	mark := func(what string, prev *uint64) {
		now := testutil.LiveHeap()
		rows = append(rows, memStage{what, int64(now) - int64(*prev)})
		*prev = now
	}
	prev := base

	cfg, err := nginxconf.Load(path, nginxconf.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mark("configuration model (nginxconf.Config)", &prev)

	set := discovery.Build(context.Background(), cfg, discovery.Options{})
	if set.Probed != n {
		t.Fatalf("%d probed targets, want %d", set.Probed, n)
	}
	mark("target set (discovery.Targets, prober.Peers)", &prev)

	s := scheduler.New(scheduler.Options{Interval: time.Second, Concurrency: 512, Timeout: time.Second, Prober: prober.New()})
	s.Update(set)
	mark("scheduler state before probing", &prev)

	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	s.Run(ctx)
	cancel()
	probed := 0
	s.Each(func(st *scheduler.Status) {
		if st.HasResult {
			probed++
		}
	})
	if probed < n*9/10 {
		t.Fatalf("only %d of %d targets probed", probed, n)
	}
	mark(fmt.Sprintf("scheduler state after probing (%d results)", probed), &prev)

	tw := collector.NewTextWriter(s)
	page, err := tw.WriteTo(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	mark(fmt.Sprintf("/metrics renderer after one scrape (%d MB page)", page>>20), &prev)

	// reload.Manager keeps the last good Loaded without the model's
	// Servers; the rest of the model is small.
	cfg.Servers = nil
	mark("dropping the model's Servers (reload.Manager keeps the rest)", &prev)
	runtime.KeepAlive(cfg)
	cfg = nil
	mark("dropping the rest of the model", &prev)

	total := int64(prev) - int64(base)
	var out string
	for _, r := range rows {
		out += fmt.Sprintf("| %s | %.2f | %.0f |\n", r.what, float64(r.bytes)/1e6, float64(r.bytes)/n)
	}
	out += fmt.Sprintf("| **live heap at 10,000 targets** | **%.2f** | **%.0f** |\n", float64(total)/1e6, float64(total)/n)
	t.Logf("live heap by stage (MB, bytes per target):\n| stage | MB | B/target |\n|---|---:|---:|\n%s", out)

	testutil.WriteHeapProfile(t)
	runtime.KeepAlive(set)
	runtime.KeepAlive(s)
	runtime.KeepAlive(tw)
	set, s, tw = nil, nil, nil

	// The same through serve's own path: reload.Manager loads and keeps
	// the configuration, the scheduler probes, one scrape renders.
	base = testutil.LiveHeap()
	s2 := scheduler.New(scheduler.Options{Interval: time.Second, Concurrency: 512, Timeout: time.Second, Prober: prober.New()})
	m := reload.New(context.Background(), reload.Options{
		Discovery: discovery.Options{NginxConfig: path},
		Scheduler: s2,
		State:     &collector.ConfigState{},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err := m.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2500*time.Millisecond)
	s2.Run(ctx)
	cancel()
	tw2 := collector.NewTextWriter(s2)
	if _, err := tw2.WriteTo(io.Discard); err != nil {
		t.Fatal(err)
	}
	served := testutil.LiveHeap() - base
	t.Logf("live heap as serve holds it (reload.Manager, scheduler after probing, renderer): %.2f MB, %d B/target", float64(served)/1e6, served/n)
	// The bound catches growth of the per-target state: measured 9.2 MB
	// (23.3 MB before the memory work of docs/performance.md, 12.5 MB half
	// way); the margin absorbs Go version drift.
	const bound = 11.5e6
	if served > bound {
		t.Errorf("live heap at %d targets: %.2f MB, over the %.0f MB bound", n, float64(served)/1e6, bound/1e6)
	}
	runtime.KeepAlive(m)
	runtime.KeepAlive(tw2)
}
