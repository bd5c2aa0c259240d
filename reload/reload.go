// Package reload keeps the scheduler's targets current: it serialises
// loads (discovery.Load does the loading) on demand (SIGHUP, POST
// /-/reload) and whenever a file of the configuration tree changes. A
// configuration that fails to load never replaces the last good one.
//
// Requests for a reload coalesce: while a load runs, every new request
// joins the one next load, which starts after the running one ends (so it
// sees every change made before the request), and all its callers get its
// result. A flood of POST /-/reload therefore costs at most two loads at a
// time, and readiness is answered from state, never by waiting for a load.
package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/collector"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/fswatch"
)

// Applier receives each successfully loaded target set: the scheduler.
type Applier interface {
	Update(set *discovery.Set)
}

// Options configure a Manager.
type Options struct {
	// Discovery says what to load (nginx's configuration, the exporter's
	// own file) and how.
	Discovery discovery.Options
	Scheduler Applier
	State     *collector.ConfigState
	Logger    *slog.Logger
	// OnLoad, when set, is told the outcome of every load attempt that
	// shutdown did not interrupt (the loaded configuration, or why it
	// failed), e.g. to compare the tree on disk with the one the running
	// nginx loaded.
	OnLoad func(loaded *discovery.Loaded, err error)
	// Debounce groups bursts of file events (editors write several): a
	// reload starts once no event came for Debounce.
	Debounce time.Duration
	// MaxDelay bounds how long a stream of file events can postpone the
	// reload (default 5 s): a directory written to without pause still
	// gets its changes loaded.
	MaxDelay time.Duration
}

// call is one load and the requests waiting for it.
type call struct {
	done chan struct{}
	err  error
}

// Manager serialises loads and applies them.
type Manager struct {
	opts Options
	// base bounds every load: it is cancelled at shutdown, so a load in
	// progress stops promptly. A request's own context only bounds how
	// long that caller waits.
	base context.Context

	mu      sync.Mutex
	loading bool
	next    *call // the load that requests arriving now join

	last atomic.Pointer[discovery.Loaded]

	// failed is whether the last load failed: the watcher then counts a
	// file created anywhere it watches (see Watch).
	failed atomic.Bool

	filesMu sync.Mutex
	files   []string
	dirs    []string
	changed chan struct{}
}

// New returns a Manager whose loads are cancelled when base is done.
func New(base context.Context, opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 250 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 5 * time.Second
	}
	return &Manager{opts: opts, base: base, changed: make(chan struct{}, 1)}
}

// Reload loads the configuration and, on success, applies it; on failure
// the last good target set keeps probing and the error is returned.
// Concurrent calls coalesce (see the package documentation). ctx bounds
// how long this caller waits, not the load others may share.
func (m *Manager) Reload(ctx context.Context) error {
	m.mu.Lock()
	if m.next == nil {
		m.next = &call{done: make(chan struct{})}
	}
	c := m.next
	lead := !m.loading
	m.loading = true
	m.mu.Unlock()
	if lead {
		m.drain()
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain runs the pending loads until none is left. Only one goroutine
// drains at a time.
func (m *Manager) drain() {
	for {
		m.mu.Lock()
		c := m.next
		if c == nil {
			m.loading = false
			m.mu.Unlock()
			return
		}
		m.next = nil
		m.mu.Unlock()
		c.err = m.load(m.base)
		close(c.done)
	}
}

// load runs one load and applies it.
func (m *Manager) load(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("loading configuration: %w", err)
	}
	start := time.Now()
	loaded, err := discovery.Load(ctx, m.opts.Discovery)
	if err != nil && ctx.Err() != nil {
		// Shutting down: an interrupted load says nothing about the
		// configuration.
		return fmt.Errorf("loading configuration: %w", ctx.Err())
	}
	if m.opts.OnLoad != nil {
		m.opts.OnLoad(loaded, err)
	}
	m.failed.Store(err != nil)
	if err != nil {
		m.opts.State.Failed()
		m.opts.Logger.Error("failed to load configuration; still probing the last good targets", "file", m.opts.Discovery.NginxConfig, "err", err)
		return fmt.Errorf("loading configuration: %w", err)
	}
	m.opts.Scheduler.Update(loaded.Set)
	m.opts.State.Succeeded(time.Now(), loaded.Set.Probed, loaded.Set.Down, loaded.Set.Dynamic)
	m.last.Store(retained(loaded))
	m.setFiles(loaded.Files, loaded.Dirs)
	// Parsing a large tree allocates several times the heap the targets
	// keep; hand it back now rather than carrying it as idle RSS until
	// the runtime's scavenger gets to it. Reloads are rare, so the extra
	// collection is cheap.
	debug.FreeOSMemory()
	m.opts.Logger.Info("loaded nginx configuration", "file", m.opts.Discovery.NginxConfig, "files", len(loaded.Nginx.Files),
		"probed", loaded.Set.Probed, "down", loaded.Set.Down, "dynamic", loaded.Set.Dynamic, "duration", time.Since(start))
	return nil
}

// retained is what the manager keeps of a load: everything but the
// per-server model (Nginx.Servers), which the target set has replaced. At
// 10,000 servers the model is about 5 MB of live heap that nothing reads
// after the targets are built (docs/performance.md, "Memory and exposition
// at scale").
func retained(l *discovery.Loaded) *discovery.Loaded {
	kept := *l
	if l.Nginx != nil {
		cfg := *l.Nginx
		cfg.Servers = nil
		kept.Nginx = &cfg
	}
	return &kept
}

// Last returns the last successfully loaded configuration, nil before the
// first, without its per-server model (see retained). It never waits for a
// load in progress.
func (m *Manager) Last() *discovery.Loaded { return m.last.Load() }

func (m *Manager) setFiles(files, dirs []string) {
	m.filesMu.Lock()
	m.files = append([]string(nil), files...)
	m.dirs = append([]string(nil), dirs...)
	m.filesMu.Unlock()
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// Watch reloads whenever a file of the configuration tree changes, until
// ctx is done. fsnotify is not recursive, so it watches every directory
// that holds a file actually included, and the directory of every include
// glob, even one that matched nothing yet; watching directories rather
// than files also catches editors that replace a file by renaming.
func (m *Manager) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("creating file watcher: %w", err)
	}
	defer w.Close()

	watched := fswatch.New(w)
	relevant := map[string]bool{}
	globDirs := map[string]bool{}
	sync := func() {
		m.filesMu.Lock()
		files, gdirs := m.files, m.dirs
		m.filesMu.Unlock()
		main := m.opts.Discovery.NginxConfig
		dirs := map[string]bool{filepath.Dir(main): true}
		clear(relevant)
		clear(globDirs)
		relevant[filepath.Clean(main)] = true
		for _, f := range files {
			dirs[filepath.Dir(f)] = true
			relevant[filepath.Clean(f)] = true
		}
		for _, d := range gdirs {
			dirs[filepath.Clean(d)] = true
			globDirs[filepath.Clean(d)] = true
		}
		watched.Set(dirs, func(d string, err error) {
			m.opts.Logger.Warn("cannot watch configuration directory", "dir", d, "err", err)
		})
	}
	sync()

	var (
		debounce *time.Timer
		fire     <-chan time.Time
		first    time.Time // first event of the burst not loaded yet
	)
	defer func() {
		if debounce != nil {
			debounce.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.changed:
			sync()
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			// A new file in a directory of an include glob may join the
			// tree; other events only count for files of the tree. A
			// file created beside them (a log rotated next to
			// nginx.conf, an editor's swap file) is not read by nginx:
			// reloading for it would parse the whole tree for nothing.
			// After a failed load the tree is not known (a missing
			// include may be what failed it), so any file created in a
			// watched directory counts until a load succeeds.
			name := filepath.Clean(ev.Name)
			if !relevant[name] && !(globDirs[filepath.Dir(name)] && ev.Has(fsnotify.Create|fsnotify.Rename|fsnotify.Remove)) &&
				!(m.failed.Load() && ev.Has(fsnotify.Create)) {
				continue
			}
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			// Debounce, but never past MaxDelay after the burst's first
			// event: a directory written to without pause is still
			// reloaded.
			wait := min(m.opts.Debounce, max(0, first.Add(m.opts.MaxDelay).Sub(now)))
			if debounce == nil {
				debounce = time.NewTimer(wait)
			} else {
				debounce.Stop()
				debounce.Reset(wait)
			}
			fire = debounce.C
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			m.opts.Logger.Warn("file watcher error", "err", err)
		case <-fire:
			fire, first = nil, time.Time{}
			m.opts.Logger.Info("nginx configuration changed on disk, reloading")
			if err := m.Reload(ctx); err != nil && !errors.Is(err, context.Canceled) {
				// Already logged by Reload.
				continue
			}
		}
	}
}
