// Package reload keeps the scheduler's targets current: it serialises
// loads (discovery.Load does the loading) on demand (SIGHUP, POST
// /-/reload) and whenever a file of the configuration tree changes. A
// configuration that fails to load never replaces the last good one.
package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/collector"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
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
	// OnLoad, when set, is told the outcome of every load attempt (the
	// loaded configuration, or why it failed), e.g. to compare the tree
	// on disk with the one the running nginx loaded.
	OnLoad func(loaded *discovery.Loaded, err error)
	// Debounce groups bursts of file events (editors write several).
	Debounce time.Duration
}

// Manager serialises loads and applies them.
type Manager struct {
	opts Options
	mu   sync.Mutex // one load at a time
	last *discovery.Loaded

	filesMu sync.Mutex
	files   []string
	changed chan struct{}
}

// New returns a Manager.
func New(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 250 * time.Millisecond
	}
	return &Manager{opts: opts, changed: make(chan struct{}, 1)}
}

// Reload loads the configuration and, on success, applies it. On failure
// the last good target set keeps probing and the error is returned.
func (m *Manager) Reload(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	start := time.Now()
	loaded, err := discovery.Load(ctx, m.opts.Discovery)
	if m.opts.OnLoad != nil {
		m.opts.OnLoad(loaded, err)
	}
	if err != nil {
		m.opts.State.Failed()
		m.opts.Logger.Error("failed to load configuration; still probing the last good targets", "file", m.opts.Discovery.NginxConfig, "err", err)
		return fmt.Errorf("loading configuration: %w", err)
	}
	m.opts.Scheduler.Update(loaded.Set)
	m.opts.State.Succeeded(time.Now(), loaded.Set.Probed, loaded.Set.Down, loaded.Set.Dynamic)
	m.last = loaded
	m.setFiles(loaded.Files)
	// Parsing a large tree allocates several times the heap the targets
	// keep; hand it back now rather than carrying it as idle RSS until
	// the runtime's scavenger gets to it. Reloads are rare, so the extra
	// collection is cheap.
	debug.FreeOSMemory()
	m.opts.Logger.Info("loaded nginx configuration", "file", m.opts.Discovery.NginxConfig, "files", len(loaded.Nginx.Files),
		"probed", loaded.Set.Probed, "down", loaded.Set.Down, "dynamic", loaded.Set.Dynamic, "duration", time.Since(start))
	return nil
}

// Last returns the last successfully loaded configuration.
func (m *Manager) Last() *discovery.Loaded {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

func (m *Manager) setFiles(files []string) {
	m.filesMu.Lock()
	m.files = append([]string(nil), files...)
	m.filesMu.Unlock()
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// Watch reloads whenever a file of the configuration tree changes, until
// ctx is done. fsnotify is not recursive, so it watches every directory
// that holds a file actually included; watching directories rather than
// files also catches editors that replace a file by renaming.
func (m *Manager) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("creating file watcher: %w", err)
	}
	defer w.Close()

	watched := map[string]bool{}
	relevant := map[string]bool{}
	sync := func() {
		m.filesMu.Lock()
		files := m.files
		m.filesMu.Unlock()
		dirs := map[string]bool{filepath.Dir(m.opts.Discovery.NginxConfig): true}
		clear(relevant)
		relevant[filepath.Clean(m.opts.Discovery.NginxConfig)] = true
		for _, f := range files {
			dirs[filepath.Dir(f)] = true
			relevant[filepath.Clean(f)] = true
		}
		for d := range dirs {
			if !watched[d] {
				if err := w.Add(d); err != nil {
					m.opts.Logger.Warn("cannot watch configuration directory", "dir", d, "err", err)
					continue
				}
				watched[d] = true
			}
		}
		for d := range watched {
			if !dirs[d] {
				_ = w.Remove(d)
				delete(watched, d)
			}
		}
	}
	sync()

	var debounce <-chan time.Time
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
			// A new file in a watched directory may match an include
			// glob, so any create counts; other events only for files
			// of the tree.
			if relevant[filepath.Clean(ev.Name)] || ev.Has(fsnotify.Create) {
				debounce = time.After(m.opts.Debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			m.opts.Logger.Warn("file watcher error", "err", err)
		case <-debounce:
			debounce = nil
			m.opts.Logger.Info("nginx configuration changed on disk, reloading")
			if err := m.Reload(ctx); err != nil && !errors.Is(err, context.Canceled) {
				// Already logged by Reload.
				continue
			}
		}
	}
}
