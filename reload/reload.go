// Package reload loads the nginx configuration into the scheduler and keeps
// it current: on demand (SIGHUP, POST /-/reload) and whenever a file of the
// configuration tree changes. A configuration that fails to load never
// replaces the last good one.
package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/collector"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/config"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// Target receives each successfully loaded target set.
type Target interface {
	Update(set *discovery.Set)
}

// Options configure a Manager.
type Options struct {
	NginxConfig string
	// NginxPrefix is nginx's -p prefix; empty means the directory of
	// NginxConfig.
	NginxPrefix string
	// ExporterConfig is the exporter's own optional configuration file
	// (per-upstream probe requests), loaded and watched with the rest.
	ExporterConfig string
	Discovery      discovery.Options
	Scheduler      Target
	State          *collector.ConfigState
	Logger         *slog.Logger
	// Debounce groups bursts of file events (editors write several).
	Debounce time.Duration
}

// Loaded is the outcome of one successful load.
type Loaded struct {
	Nginx *nginxconf.Config
	Set   *discovery.Set
}

// Manager serialises loads and applies them.
type Manager struct {
	opts Options
	mu   sync.Mutex // one load at a time
	last *Loaded

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

// Load reads the configuration and derives the targets without applying
// them. It is what the diagnose command uses.
func Load(ctx context.Context, opts Options) (*Loaded, error) {
	cfg, err := nginxconf.Load(opts.NginxConfig, nginxconf.LoadOptions{Prefix: opts.NginxPrefix})
	if err != nil {
		return nil, err
	}
	dopts := opts.Discovery
	if dopts.Logger == nil {
		dopts.Logger = opts.Logger
	}
	if opts.ExporterConfig != "" {
		ov, err := config.Load(opts.ExporterConfig)
		if err != nil {
			return nil, err
		}
		dopts.Overrides = ov
	}
	dopts.Worker = workerCredentials(cfg, opts.Logger)
	set := discovery.Build(ctx, cfg, dopts)
	for _, d := range cfg.Dynamic {
		opts.Logger.Info("not probing an address built from request variables", "directive", d.Directive, "position", d.Source, "address", d.Address)
	}
	return &Loaded{Nginx: cfg, Set: set}, nil
}

// workerCredentials resolves nginx's worker user. Without it, unix socket
// permissions can only be judged as the exporter's own user.
func workerCredentials(cfg *nginxconf.Config, logger *slog.Logger) *prober.Credentials {
	c, err := prober.LookupCredentials(cfg.User, cfg.Group)
	if err != nil {
		logger.Warn("cannot resolve nginx's worker user; unix socket permissions are judged as the exporter's own user", "user", cfg.User, "err", err)
		return nil
	}
	if os.Geteuid() != 0 && uint32(os.Geteuid()) != c.UID {
		logger.Info("running unprivileged: directories this user cannot read are reported as permission_denied without telling whether nginx's worker could pass", "exporter_uid", os.Geteuid(), "worker_user", c.User)
	}
	return c
}

// Reload loads the configuration and, on success, applies it. On failure
// the last good target set keeps probing and the error is returned.
func (m *Manager) Reload(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	start := time.Now()
	loaded, err := Load(ctx, m.opts)
	if err != nil {
		m.opts.State.Failed()
		m.opts.Logger.Error("failed to load configuration; still probing the last good targets", "file", m.opts.NginxConfig, "err", err)
		return fmt.Errorf("loading configuration: %w", err)
	}
	m.opts.Scheduler.Update(loaded.Set)
	m.opts.State.Succeeded(time.Now(), loaded.Set.Probed, loaded.Set.Down, loaded.Set.Dynamic)
	m.last = loaded
	files := loaded.Nginx.Files
	if m.opts.ExporterConfig != "" {
		files = append(files[:len(files):len(files)], m.opts.ExporterConfig)
	}
	m.setFiles(files)
	// Parsing a large tree allocates several times the heap the targets
	// keep; hand it back now rather than carrying it as idle RSS until
	// the runtime's scavenger gets to it. Reloads are rare, so the extra
	// collection is cheap.
	debug.FreeOSMemory()
	m.opts.Logger.Info("loaded nginx configuration", "file", m.opts.NginxConfig, "files", len(loaded.Nginx.Files),
		"probed", loaded.Set.Probed, "down", loaded.Set.Down, "dynamic", loaded.Set.Dynamic, "duration", time.Since(start))
	return nil
}

// Last returns the last successfully loaded configuration.
func (m *Manager) Last() *Loaded {
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
		dirs := map[string]bool{filepath.Dir(m.opts.NginxConfig): true}
		clear(relevant)
		relevant[filepath.Clean(m.opts.NginxConfig)] = true
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
