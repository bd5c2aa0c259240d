package reload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/collector"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingApplier counts applied target sets.
type countingApplier struct {
	n    atomic.Int64
	mu   sync.Mutex
	last *discovery.Set
}

func (a *countingApplier) Update(set *discovery.Set) {
	a.n.Add(1)
	a.mu.Lock()
	a.last = set
	a.mu.Unlock()
}

func (a *countingApplier) targets() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		return -1
	}
	return len(a.last.Targets)
}

// gateResolver blocks every lookup until released: a black-holed DNS
// server, under the test's control.
type gateResolver struct{ release chan struct{} }

func (g gateResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	select {
	case <-g.release:
		return []string{"127.0.0.1"}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func writeConf(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte("events {}\nhttp {\n"+body+"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func manager(t *testing.T, ctx context.Context, conf string, res discovery.Resolver, app Applier) *Manager {
	t.Helper()
	return New(ctx, Options{
		Discovery: discovery.Options{NginxConfig: conf, Resolver: res, ResolveTimeout: time.Minute},
		Scheduler: app,
		State:     &collector.ConfigState{},
		Debounce:  50 * time.Millisecond,
		MaxDelay:  400 * time.Millisecond,
	})
}

// Readiness is answered from state: while a load waits on a black-holed
// resolver, Last answers at once (nil before the first load, the last
// good set during a later one), and a shutdown ends the load promptly.
func TestReadyNeverWaitsForALoad(t *testing.T) {
	conf := writeConf(t, t.TempDir(), "server { location / { proxy_pass http://backend.test:8080; } }")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gate := gateResolver{release: make(chan struct{})}
	app := &countingApplier{}
	m := manager(t, ctx, conf, gate, app)

	errc := make(chan error, 1)
	go func() { errc <- m.Reload(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	if lastWhileHeld(t, m) != nil {
		t.Fatal("ready before the first load finished")
	}
	close(gate.release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if m.Last() == nil || app.targets() != 1 {
		t.Fatalf("first load not applied: %d targets", app.targets())
	}

	// A second load blocks on a new gate; the last good set stays ready.
	gate2 := gateResolver{release: make(chan struct{})}
	m.opts.Discovery.Resolver = gate2
	go func() { errc <- m.Reload(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	if lastWhileHeld(t, m) == nil {
		t.Fatal("a load in progress made the exporter unready")
	}
	// Shutdown cancels the load in progress: the gate would hold it
	// for ever otherwise.
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("a load cancelled by shutdown reported success")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not end the load in progress")
	}
	if app.n.Load() != 1 {
		t.Errorf("applied %d sets, want only the first", app.n.Load())
	}
}

// lastWhileHeld calls m.Last while a load is held on a gate that is
// never released meanwhile: a Last that waited for the load would never
// return, so the bound is generous and no timing is asserted.
func lastWhileHeld(t *testing.T, m *Manager) *discovery.Loaded {
	t.Helper()
	got := make(chan *discovery.Loaded, 1)
	go func() { got <- m.Last() }()
	select {
	case l := <-got:
		return l
	case <-time.After(5 * time.Second):
		t.Fatal("Last waited for the load in progress")
		return nil
	}
}

// A flood of reload requests coalesces: each request gets the result of
// a load that started after it, and concurrent requests share loads.
func TestReloadsCoalesce(t *testing.T) {
	var b []byte
	b = append(b, "upstream many {\n"...)
	for i := range 3000 {
		b = fmt.Appendf(b, "server 127.0.%d.%d:80;\n", i/250, i%250+1)
	}
	b = append(b, "}\nserver { location / { proxy_pass http://many; } }"...)
	conf := writeConf(t, t.TempDir(), string(b))
	app := &countingApplier{}
	m := manager(t, context.Background(), conf, nil, app)

	const clients, each = 8, 16
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := m.Reload(context.Background()); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	n := app.n.Load()
	t.Logf("%d requests, %d loads", clients*each, n)
	// Each client's requests are sequential, so there are at least
	// `each` loads; coalescing keeps it far below clients*each.
	if n < each || n > clients*each/2 {
		t.Errorf("%d loads for %d requests, want between %d and %d", n, clients*each, each, clients*each/2)
	}
}

// A load that a request joins started after the request: an edit made
// before a request is never missed.
func TestReloadSeesChangesMadeBeforeTheRequest(t *testing.T) {
	dir := t.TempDir()
	conf := writeConf(t, dir, "server { location / { proxy_pass http://127.0.0.1:1; } }")
	app := &countingApplier{}
	m := manager(t, context.Background(), conf, nil, app)
	for i := 2; i < 30; i++ {
		writeConf(t, dir, fmt.Sprintf("upstream u { %s }\nserver { location / { proxy_pass http://u; } }", servers(i)))
		if err := m.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := app.targets(); got != i {
			t.Fatalf("after writing %d servers the reload applied %d", i, got)
		}
	}
}

func servers(n int) string {
	var s string
	for i := range n {
		s += fmt.Sprintf("server 127.0.0.%d:80; ", i+1)
	}
	return s
}

// The watcher: a file created in an include-glob directory that matched
// nothing at start is loaded; a storm of events cannot postpone a reload
// past MaxDelay.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	confd := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(confd, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := writeConf(t, dir, "include "+confd+"/*.conf;\nserver { location / { proxy_pass http://127.0.0.1:1; } }")
	app := &countingApplier{}
	ctx, cancel := context.WithCancel(context.Background())
	m := manager(t, ctx, conf, nil, app)
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	watch(t, ctx, cancel, m)

	t.Run("new file in an empty glob directory", func(t *testing.T) {
		body := "server { listen 127.0.0.1:2; location / { proxy_pass http://127.0.0.1:3; } }\n"
		if err := os.WriteFile(filepath.Join(confd, "site.conf"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		waitTargets(t, app, 2, 3*time.Second)
	})
	t.Run("files created beside the configuration", func(t *testing.T) {
		// A log rotated next to nginx.conf and an editor's swap file:
		// nginx reads neither, so neither may reload a large tree.
		before := app.n.Load()
		log := filepath.Join(dir, "error.log")
		for _, step := range []func() error{
			func() error { return os.WriteFile(log, []byte("a\n"), 0o644) },
			func() error { return os.Rename(log, log+".1") },
			func() error { return os.WriteFile(log, []byte("b\n"), 0o644) },
			func() error { return os.WriteFile(filepath.Join(dir, ".nginx.conf.swp"), nil, 0o644) },
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		// Past the debounce and MaxDelay (50 and 400 ms) and a load.
		time.Sleep(time.Second)
		if n := app.n.Load() - before; n != 0 {
			t.Errorf("%d reloads for files nginx does not read", n)
		}
	})
	t.Run("event storm", func(t *testing.T) {
		before := app.n.Load()
		stop := make(chan struct{})
		stormDone := make(chan struct{})
		go func() {
			defer close(stormDone)
			junk := filepath.Join(confd, "junk.txt")
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				os.WriteFile(junk, []byte(fmt.Sprint(i)), 0o644)
				os.Remove(junk)
			}
		}()
		start := time.Now()
		for app.n.Load() == before && time.Since(start) < 3*time.Second {
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		<-stormDone
		if app.n.Load() == before {
			t.Fatal("a stream of events postponed the reload for 3 s (MaxDelay is 400ms)")
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("reload came %v into the storm, want within MaxDelay plus a load", d)
		}
	})
}

// After a failed load the tree is not known: the file whose absence
// failed it is loaded once it is created, and then files beside the
// configuration no longer count.
func TestWatchAfterFailedLoad(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site.conf")
	conf := writeConf(t, dir, "include "+site+";")
	app := &countingApplier{}
	ctx, cancel := context.WithCancel(context.Background())
	m := manager(t, ctx, conf, nil, app)
	if err := m.Reload(ctx); err == nil {
		t.Fatal("a load with a missing include succeeded")
	}
	watch(t, ctx, cancel, m)
	body := "server { listen 127.0.0.1:2; location / { proxy_pass http://127.0.0.1:3; } }\n"
	if err := os.WriteFile(site, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	waitTargets(t, app, 1, 3*time.Second)
	before := app.n.Load()
	if err := os.WriteFile(filepath.Join(dir, "error.log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if n := app.n.Load() - before; n != 0 {
		t.Errorf("%d reloads for a file nginx does not read, after a good load", n)
	}
}

// watch runs m.Watch until the test ends, then cancels ctx and waits for
// it to return.
func watch(t *testing.T, ctx context.Context, cancel context.CancelFunc, m *Manager) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Watch(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	time.Sleep(100 * time.Millisecond) // the watcher is set up
}

func waitTargets(t *testing.T, app *countingApplier, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if app.targets() == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("targets = %d, want %d", app.targets(), want)
}
