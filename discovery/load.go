package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/config"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// Loaded is the outcome of one successful load.
type Loaded struct {
	// Nginx is the configuration model the targets come from.
	Nginx *nginxconf.Config
	// Set is the target set derived from it.
	Set *Set
	// Files are every file the load read (nginx's tree, then the
	// exporter's configuration file), for a watcher.
	Files []string
	// Dirs are directories whose new files may join the tree (those of
	// include globs, matched or not), for a watcher.
	Dirs []string
}

// Load reads nginx's configuration and the exporter's own, and derives
// the target set: the one way serve, diagnose and /probe get targets.
func Load(ctx context.Context, opts Options) (*Loaded, error) {
	opts.defaults()
	read := time.Now()
	cfg, err := nginxconf.LoadContext(ctx, opts.NginxConfig, nginxconf.LoadOptions{Prefix: opts.NginxPrefix})
	if err != nil {
		return nil, err
	}
	files := cfg.Files
	if opts.ExporterConfig != "" {
		ov, err := config.Load(opts.ExporterConfig)
		if err != nil {
			return nil, err
		}
		opts.Overrides = ov
		files = append(files[:len(files):len(files)], opts.ExporterConfig)
	}
	opts.Worker = WorkerCredentials(cfg, opts.Logger)
	set := Build(ctx, cfg, opts)
	for _, d := range cfg.Dynamic {
		opts.Logger.Info("not probing an address only known per request", "directive", d.Directive, "position", d.Source, "address", d.Address, "reason", d.Reason)
	}
	if err := ctx.Err(); err != nil {
		// Lookups cut short by cancellation would read as names that do
		// not resolve: such a set must never replace a good one.
		return nil, fmt.Errorf("loading configuration: %w", err)
	}
	set.Read = read
	return &Loaded{Nginx: cfg, Set: set, Files: files, Dirs: cfg.GlobDirs}, nil
}

// WorkerCredentials resolves nginx's worker user from the `user`
// directive. Without it, unix socket permissions can only be judged as
// the exporter's own user, which the log says.
func WorkerCredentials(cfg *nginxconf.Config, logger *slog.Logger) *prober.Credentials {
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

// Arbitrary builds the target of a server outside the configuration
// (/probe with --probe.allow-any-target): the implicit upstream nginx
// would create for a *_pass of kind to server, with nginx's defaults,
// through the same code as configured targets. opts.Worker applies when
// set (the worker user of the loaded configuration).
func Arbitrary(server, upstream string, kind protocol.Kind, opts Options) (*Target, error) {
	opts.defaults()
	ct, err := nginxconf.Implicit(server, kind, 0)
	if err != nil {
		return nil, err
	}
	if upstream != "" {
		ct.Upstream = upstream
	}
	b := newBuilder(opts, 1)
	b.addOnce(map[Key]struct{}{}, &ct, "")
	return b.build()[0], nil
}
