// Command nginx_upstream_exporter reads nginx's configuration, probes every
// upstream server the way nginx talks to it, and exports per-server
// reachability, latency by phase and the failure reason nginx would log.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	crossplane "github.com/nginxinc/nginx-go-crossplane"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/capacity"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/collector"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/diagnose"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/errorlog"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/loadstate"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxproc"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/probehandler"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/reload"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/server"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/statuspage"
)

const exporterName = "nginx_upstream_exporter"

// defaultListenAddress: 9100-9999 of the Prometheus default port
// allocations is exhausted; 10650 is clear of the allocations above it.
const defaultListenAddress = ":10650"

func main() {
	// crossplane's lexer hands tokens to its parser through a channel of
	// 2,048 tokens (about 98 KB) per parsed file: a tree of 1,000
	// included files allocated 98 MB per reload for it. The parser reads
	// in lockstep with the lexer, so a short channel costs nothing. This
	// is process-wide state of the dependency, hence set here, once,
	// before any parse.
	crossplane.SetTokenChanCap(64)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// commonFlags are shared by every command.
type commonFlags struct {
	nginxConfig      string
	configFile       string
	nginxPrefix      string
	probeTimeout     time.Duration
	probeConcurrency int
	nginxPIDFile     string
	nginxTest        bool
	nginxBinary      string
	log              promslog.Config
	errorLog         errorLogFlags
}

// errorLogFlags say which of nginx's error logs to read.
type errorLogFlags struct {
	enabled      bool
	paths        []string
	fromConfig   bool
	syslogSocket string
	pollInterval time.Duration
}

func (f *errorLogFlags) find() errorlog.FindOptions {
	return errorlog.FindOptions{Paths: f.paths, FromConfig: f.fromConfig, SyslogSocket: f.syslogSocket}
}

func run(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New(exporterName, "Prometheus exporter that probes every upstream server in nginx's configuration the way nginx talks to it.")
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')

	var c commonFlags
	app.Flag("nginx.config", "Path to nginx's main configuration file; includes are followed as nginx does.").
		Default("/etc/nginx/nginx.conf").Envar("NGINX_UPSTREAM_EXPORTER_NGINX_CONFIG").StringVar(&c.nginxConfig)
	app.Flag("nginx.prefix", "nginx's configuration prefix (nginx -p) for relative include paths. Default: the directory of --nginx.config.").
		Default("").StringVar(&c.nginxPrefix)
	app.Flag("nginx.pid-file", "nginx's pid file, to find the running nginx through /proc. Default: the `pid` directive of --nginx.config, else /run/nginx.pid.").
		Default("").Envar("NGINX_UPSTREAM_EXPORTER_NGINX_PID_FILE").StringVar(&c.nginxPIDFile)
	app.Flag("nginx.test-config", "Also run nginx's own test (nginx -t -q) whenever the configuration tree changes, and export its refusals as nginx_upstream_config_reload_would_fail. Off by default: it runs nginx's configuration code with the exporter's privileges and opens the log files the configuration names.").
		Default("false").BoolVar(&c.nginxTest)
	app.Flag("nginx.binary", "nginx's executable, for --nginx.test-config.").
		Default("nginx").StringVar(&c.nginxBinary)
	app.Flag("config.file", "Optional exporter configuration file (YAML): per-upstream probe requests. Without it, probes use nginx-like defaults.").
		Default("").Envar("NGINX_UPSTREAM_EXPORTER_CONFIG_FILE").StringVar(&c.configFile)
	app.Flag("probe.timeout", "Optional cap on each probe. By default (0) a probe waits as long as nginx would in each phase (its *_connect/send/read_timeout); a probe the cap ends gives no verdict (inconclusive), never nginx's timeout reason.").
		Default("0s").DurationVar(&c.probeTimeout)
	app.Flag("probe.concurrency", "Maximum number of probes in flight at once.").
		Default("512").IntVar(&c.probeConcurrency)
	app.Flag("nginx.error-log.enabled", "Read nginx's error log and count the upstream errors it records for real requests (--no-nginx.error-log.enabled turns it off).").
		Default("true").BoolVar(&c.errorLog.enabled)
	app.Flag("nginx.error-log", "An error log file to read besides the error_log files of the configuration (repeatable).").
		PlaceHolder("PATH").StringsVar(&c.errorLog.paths)
	app.Flag("nginx.error-log.from-config", "Read the error_log files of nginx's configuration; with --no-nginx.error-log.from-config only the --nginx.error-log paths are read.").
		Default("true").BoolVar(&c.errorLog.fromConfig)
	app.Flag("nginx.error-log.syslog-socket", "Receive the error log nginx sends with `error_log syslog:server=unix:PATH` on a unix datagram socket created at PATH (for containers whose log is /dev/stderr).").
		Default("").StringVar(&c.errorLog.syslogSocket)
	c.log = promslog.Config{}
	promslogflag.AddFlags(app, &c.log)

	serveCmd := app.Command("serve", "Serve metrics, probing every upstream server on a schedule (the default command).").Default()
	webFlags := kingpinflag.AddFlags(serveCmd, defaultListenAddress)
	metricsPath := serveCmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
	var wl webLimits
	serveCmd.Flag("web.max-requests", "Maximum number of scrapes of the metrics path served at once; more are answered with 503.").
		Default("10").IntVar(&wl.maxRequests)
	serveCmd.Flag("web.max-connections", "Maximum number of simultaneous HTTP connections per listen address; more wait to be accepted. 0 means no limit.").
		Default("64").IntVar(&wl.http.MaxConnections)
	serveCmd.Flag("web.read-timeout", "Maximum duration for reading a whole request, headers included.").
		Default("10s").DurationVar(&wl.http.ReadTimeout)
	serveCmd.Flag("web.write-timeout", "Maximum duration for writing a response, from the end of the request: a client that stops reading is disconnected after it. Keep it above scrape_timeout and --probe.timeout.").
		Default("30s").DurationVar(&wl.http.WriteTimeout)
	serveCmd.Flag("web.idle-timeout", "Idle keep-alive connections are closed after this long.").
		Default("2m").DurationVar(&wl.http.IdleTimeout)
	interval := serveCmd.Flag("probe.interval", "How often every upstream server is probed, independent of scrapes (spread over the interval with jitter).").
		Default("15s").Duration()
	serveCmd.Flag("nginx.error-log.poll-interval", "How often the error logs are checked when inotify reports nothing (a fallback: inotify wakes the reader on every write).").
		Default("5s").DurationVar(&c.errorLog.pollInterval)
	var pf probeFlags
	serveCmd.Flag("probe.allow-any-target", "Let /probe probe any host:port or unix: socket, not only servers of the nginx configuration. "+
		"Anyone who can reach the exporter can then make it open connections anywhere it can reach (server-side request forgery, as CVE-2020-16248 in blackbox_exporter); "+
		"only enable it behind --web.config.file authentication.").
		Default("false").BoolVar(&pf.allowAny)
	serveCmd.Flag("probe.max-requests", "Maximum number of /probe requests served at once; more are answered with 503.").
		Default("10").IntVar(&pf.maxRequests)
	var ml memLimitFlags
	serveCmd.Flag("auto-gomemlimit", "Set the Go runtime's soft memory limit (GOMEMLIMIT) to --auto-gomemlimit.ratio of the memory limit of the exporter's cgroup, when it has one and GOMEMLIMIT is not set.").
		Default("true").BoolVar(&ml.auto)
	serveCmd.Flag("auto-gomemlimit.ratio", "The share of the cgroup's memory limit used as the Go memory limit, in (0, 1]; the rest is left for the binary's pages, goroutine stacks and the kernel's socket buffers.").
		Default("0.9").Float64Var(&ml.ratio)
	phases := serveCmd.Flag("collector.probe.phases", "Export nginx_upstream_probe_phase_duration_seconds (5 series per probed server); --no-collector.probe.phases leaves them out.").
		Default("true").Bool()
	timeouts := serveCmd.Flag("collector.probe.timeouts", "Export nginx_upstream_probe_timeout_seconds (3 series per server); --no-collector.probe.timeouts leaves them out.").
		Default("true").Bool()

	diagCmd := app.Command("diagnose", "Probe every upstream server once, print a verdict per server with the line nginx would log and a fix, and exit 0 when every primary server is healthy, 1 when one fails, 2 on a usage or configuration error.")
	diagOutput := diagCmd.Flag("output", "Output format: table (readable) or json (machine-readable report).").
		Short('o').Default(diagnose.OutputTable).Enum(diagnose.OutputTable, diagnose.OutputJSON)
	diagList := diagCmd.Flag("list", "Print the discovered targets with their parameters and effective timeouts without probing anything.").
		Default("false").Bool()
	diagLogBytes := diagCmd.Flag("nginx.error-log.recent-bytes", "How much of the end of each error log diagnose reads to show what nginx logged lately.").
		Default("1MiB").Bytes()
	diagColor := diagCmd.Flag("color", "Colour the table: auto (when stdout is a terminal and NO_COLOR is unset), always or never.").
		Default(string(diagnose.ColorAuto)).Enum(string(diagnose.ColorAuto), string(diagnose.ColorAlways), string(diagnose.ColorNever))

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", exporterName, err)
		return 2
	}
	c.log.Writer = stderr
	logger := promslog.New(&c.log)

	switch cmd {
	case serveCmd.FullCommand():
		if err := checkServeFlags(&c, *interval, &pf); err != nil {
			fmt.Fprintf(stderr, "%s: %s\n", exporterName, err)
			return 2
		}
		if wl.maxRequests <= 0 || wl.http.MaxConnections < 0 || wl.http.ReadTimeout <= 0 || wl.http.WriteTimeout <= 0 || wl.http.IdleTimeout <= 0 {
			fmt.Fprintln(stderr, "--web.max-requests and the --web.*-timeout flags must be positive, --web.max-connections not negative")
			return 2
		}
		if err := ml.check(); err != nil {
			fmt.Fprintf(stderr, "%s: %s\n", exporterName, err)
			return 2
		}
		pf.noPhases, pf.noTimeouts = !*phases, !*timeouts
		applyGCPercent(logger)
		applyMemLimit(logger, ml, "/proc")
		return serve(logger, &c, webFlags, *metricsPath, *interval, &pf, &wl)
	case diagCmd.FullCommand():
		if err := checkProbeFlags(&c); err != nil {
			fmt.Fprintf(stderr, "%s: %s\n", exporterName, err)
			return 2
		}
		raiseFDLimit(logger, slog.LevelDebug)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		var errorLog *diagnose.ErrorLogOptions
		if c.errorLog.enabled {
			errorLog = &diagnose.ErrorLogOptions{Find: c.errorLog.find(), Bytes: int64(*diagLogBytes)}
		}
		return diagnose.Run(ctx, diagnose.Options{
			ErrorLog:    errorLog,
			Load:        c.discovery(logger),
			Prober:      prober.New(),
			Timeout:     c.probeTimeout,
			Concurrency: c.probeConcurrency,
			Output:      *diagOutput,
			List:        *diagList,
			Color:       diagnose.ColorMode(*diagColor),
			Running:     c.tracker(logger, nil),
			Stdout:      stdout,
			Stderr:      stderr,
			Logger:      logger,
			Capacity: func(ctx context.Context, targets []*discovery.Target) map[discovery.Key]capacity.Summary {
				statusTimeout := 2 * time.Second
				if c.probeTimeout > 0 {
					statusTimeout = min(statusTimeout, c.probeTimeout)
				}
				return capacity.Check(ctx, targets, statusTimeout)
			},
		})
	}
	return 2
}

// discovery is what every command loads, from the common flags.
func (c *commonFlags) discovery(logger *slog.Logger) discovery.Options {
	return discovery.Options{
		NginxConfig:    c.nginxConfig,
		NginxPrefix:    c.nginxPrefix,
		ExporterConfig: c.configFile,
		Logger:         logger,
	}
}

// probeFlags configure the /probe endpoint and which optional per-target
// series /metrics carries.
type probeFlags struct {
	allowAny    bool
	maxRequests int
	noPhases    bool // --no-collector.probe.phases
	noTimeouts  bool // --no-collector.probe.timeouts
}

// seriesOptions are the collector options the flags select.
func (pf *probeFlags) seriesOptions() []collector.Option {
	var opts []collector.Option
	if pf.noPhases {
		opts = append(opts, collector.WithoutPhases())
	}
	if pf.noTimeouts {
		opts = append(opts, collector.WithoutTimeouts())
	}
	return opts
}

// webLimits bound what HTTP clients can hold.
type webLimits struct {
	maxRequests int
	http        server.Limits
}

func serve(logger *slog.Logger, c *commonFlags, webFlags *web.FlagConfig, metricsPath string, interval time.Duration, pf *probeFlags, wl *webLimits) int {
	logger.Info("Starting "+exporterName, "version", version.Info())
	logger.Info("Build context", "build_context", version.BuildContext())
	raiseFDLimit(logger, slog.LevelInfo)
	if pf.allowAny {
		logger.Warn("/probe accepts any target (--probe.allow-any-target): anyone who can reach this exporter can make it connect anywhere it can reach; protect it with --web.config.file")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	exp, err := newExporter(ctx, logger, c, metricsPath, interval, pf, wl.maxRequests)
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	sched, mgr, handler := exp.sched, exp.mgr, exp.handler

	// The listener opens before the first load: /-/healthy answers and
	// /-/ready says "not ready" while a slow load (a black-holed resolver,
	// a huge tree) runs, and SIGTERM is honoured meanwhile.
	srv := server.NewHTTPServer(handler, wl.http, logger)
	srvErr := make(chan error, 1)
	go func() { srvErr <- server.ListenAndServe(srv, webFlags, wl.http.MaxConnections, logger) }()
	// shutdown stops the server and waits for its goroutine, so that
	// nothing logs after serve returns.
	shutdown := func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
		if srvErr != nil {
			<-srvErr
			srvErr = nil
		}
	}
	if err := exp.firstLoad(ctx); err != nil {
		if ctx.Err() != nil {
			logger.Info("shutting down before the first configuration load finished")
			shutdown()
			return 0
		}
		logger.Error("cannot start", "err", err)
		shutdown()
		return 1
	}

	capDone := make(chan struct{})
	go func() {
		defer close(capDone)
		exp.capacity.Run(ctx)
	}()
	trackerDone := make(chan struct{})
	go func() {
		defer close(trackerDone)
		exp.tracker.Run(ctx, interval)
	}()

	done := make(chan struct{})
	go func() {
		defer close(done)
		sched.Run(ctx)
	}()
	var logsWG sync.WaitGroup
	if exp.logs != nil {
		logsWG.Go(func() { _ = exp.logs.Run(ctx) })
	}
	if exp.syslog != nil {
		logsWG.Go(func() {
			if err := exp.syslog.Serve(ctx, exp.logs); err != nil {
				logger.Error("syslog receiver stopped", "err", err)
			}
		})
	}
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		if err := mgr.Watch(ctx); err != nil {
			logger.Warn("not watching the configuration for changes; reload with SIGHUP or POST /-/reload", "err", err)
		}
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				logger.Info("SIGHUP received, reloading nginx configuration")
				_ = mgr.Reload(ctx) // failures are logged and exported
			}
		}
	}()

	code := 0
	select {
	case err := <-srvErr:
		srvErr = nil // consumed: shutdown must not wait for it again
		if !errors.Is(err, http.ErrServerClosed) {
			logger.Error("HTTP server failed", "err", err)
			code = 1
		}
	case <-ctx.Done():
		logger.Info("shutting down")
	}
	stop()
	shutdown()
	<-done
	<-watchDone
	<-trackerDone
	logsWG.Wait()
	<-capDone
	return code
}

// service is the serving state: the scheduler, the configuration manager
// and the HTTP handler that exposes them. Tests build it to serve through
// exporter-toolkit exactly as serve does.
type service struct {
	sched   *scheduler.Scheduler
	mgr     *reload.Manager
	tracker *loadstate.Tracker
	handler http.Handler
	// logs is nil when the error log is not read; syslog is nil without
	// a receiver.
	logs   *errorlog.Reader
	syslog *errorlog.Syslog
	// capacity reads listen queues, owners and php-fpm pools of the
	// local targets on its own schedule (Run), apart from the probes.
	capacity *capacity.Monitor
}

// appliers hand each loaded target set to every consumer.
type appliers []reload.Applier

func (a appliers) Update(set *discovery.Set) {
	for _, x := range a {
		x.Update(set)
	}
}

// newExporter builds the exporter; it neither loads the configuration
// (firstLoad does) nor starts a goroutine.
func newExporter(ctx context.Context, logger *slog.Logger, c *commonFlags, metricsPath string, interval time.Duration, pf *probeFlags, maxRequests int) (*service, error) {
	probe := prober.New()
	sched := scheduler.New(scheduler.Options{
		Interval:    interval,
		Concurrency: c.probeConcurrency,
		Timeout:     c.probeTimeout,
		Prober:      probe,
		Logger:      logger,
	})
	state := &collector.ConfigState{}
	var (
		apply  = appliers{sched}
		logs   *errorlog.Reader
		syslog *errorlog.Syslog
	)
	if c.errorLog.enabled {
		logs = errorlog.New(errorlog.Options{
			Find:         c.errorLog.find(),
			PollInterval: c.errorLog.pollInterval,
			Logger:       logger.With("signal", "error_log"),
		})
		apply = append(apply, logs)
		if c.errorLog.syslogSocket != "" {
			var err error
			if syslog, err = errorlog.ListenSyslog(c.errorLog.syslogSocket); err != nil {
				return nil, err
			}
		}
	}
	var mgr *reload.Manager
	// The probes follow the addresses nginx dials: a new generation of
	// nginx, or evidence of its peers, reloads the targets.
	var evidence []loadstate.Evidence
	if logs != nil {
		evidence = append(evidence, logEvidence{logs})
	}
	tracker := c.tracker(logger, func(ctx context.Context) { _ = mgr.Reload(ctx) }, evidence...)
	disc := c.discovery(logger)
	disc.Nginx = tracker
	mgr = reload.New(ctx, reload.Options{
		Discovery: disc,
		Scheduler: &loadstate.Follower{Tracker: tracker, Next: apply},
		State:     state,
		OnLoad:    tracker.Observe,
		Logger:    logger,
	})
	capMon := capacity.New(capacity.Options{
		Targets:  sched.Targets,
		Interval: interval,
		Logger:   logger,
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector(exporterName),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collector.NewSelfMetrics(state, sched),
		loadstate.NewCollector(tracker),
	)
	// Writers of per-target families beside the registry's (see
	// collector.TextWriter); the error log's only when it is read.
	extra := []io.WriterTo{capacity.NewTextWriter(capMon), loadstate.NewServersText(tracker)}
	if logs != nil {
		logsReg, logsText := collector.NewLogsText(logs)
		reg.MustRegister(logsReg)
		extra = append(extra, logsText)
	}

	// The status page and the JSON API read the schedule's results; they
	// never probe. They share the scrapes' bound on concurrent renders.
	status := statuspage.New(statuspage.Options{
		Source: sched,
		Config: func() statuspage.ConfigState {
			ok, at := state.LastSuccess()
			return statuspage.ConfigState{Loaded: mgr.Last(), LastOK: ok, LastSuccess: at}
		},
		NginxConfig:  c.nginxConfig,
		Interval:     interval,
		ProbeTimeout: c.probeTimeout,
		Version:      version.Version,
		MetricsPath:  metricsPath,
		MaxRequests:  maxRequests,
		Nginx:        nginxSection(tracker),
		Logged:       loggedByTarget(logs),
		TargetFacts:  nonNil(capacityFacts(capMon), staleFacts(tracker)),
		Facts:        []statuspage.Facts{problemCounts(capMon, tracker)},
		Logger:       logger,
	}).Routes()
	handler, err := server.New(server.Options{
		MetricsPath: metricsPath,
		// Per-target families bypass the registry: see collector.TextWriter.
		// So do the capacity and error-log ones: extra.
		Metrics:  collector.Handler(reg, collector.NewTextWriter(sched, pf.seriesOptions()...), maxRequests, logger, extra...),
		Reloader: mgr,
		Ready:    func() bool { return mgr.Last() != nil },
		Version:  version.Info(),
		Logger:   logger,
		Landing:  status[statuspage.PathPage],
		Extra: map[string]http.Handler{
			statuspage.PathTarget: status[statuspage.PathTarget],
			statuspage.PathAPI:    status[statuspage.PathAPI],
			"/probe": probehandler.New(probehandler.Options{
				Targets:        sched.Targets,
				Prober:         probe,
				Discovery:      c.discovery(logger),
				Timeout:        c.probeTimeout,
				Concurrency:    c.probeConcurrency,
				MaxRequests:    pf.maxRequests,
				AllowAnyTarget: pf.allowAny,
				Logger:         logger,
			}),
		},
	})
	if err != nil {
		if syslog != nil {
			syslog.Close()
		}
		return nil, fmt.Errorf("building HTTP handler: %w", err)
	}
	return &service{sched: sched, mgr: mgr, tracker: tracker, handler: handler, logs: logs, syslog: syslog, capacity: capMon}, nil

}

// firstLoad loads the configuration for the first time. At start-up there
// is no last good configuration to fall back to, so a failure is fatal.
func (s *service) firstLoad(ctx context.Context) error {
	if err := s.mgr.Reload(ctx); err != nil {
		if s.syslog != nil {
			s.syslog.Close() // it never served
		}
		return fmt.Errorf("no valid nginx configuration: %w", err)
	}
	return nil
}

// tracker follows the running nginx found through the pid file of the
// flags or of the configuration.
func (c *commonFlags) tracker(logger *slog.Logger, addressesChanged func(context.Context), extra ...loadstate.Evidence) *loadstate.Tracker {
	f := &nginxFinder{flag: c.nginxPIDFile, prefix: c.nginxPrefix, config: c.nginxConfig}
	var test loadstate.ConfigTester
	if c.nginxTest {
		test = &loadstate.NginxTest{Binary: c.nginxBinary, Config: c.nginxConfig, Prefix: c.nginxPrefix}
	}
	t := loadstate.New(loadstate.Options{
		Finder:           f,
		ConfigTest:       test,
		Evidence:         append([]loadstate.Evidence{&loadstate.SockDiag{}}, extra...),
		AddressesChanged: addressesChanged,
		Started:          time.Now(),
		Logger:           logger,
	})
	f.pidFile = t.PIDFile
	return t
}

// nginxFinder finds the running nginx through the pid file that the flag,
// or else the loaded configuration's `pid` directive, names.
type nginxFinder struct {
	flag, prefix, config string
	pidFile              func() string
	f                    nginxproc.Finder
}

func (n *nginxFinder) Find() (*nginxproc.Snapshot, error) {
	n.f.PIDFile = nginxproc.PIDFilePath(n.flag, n.pidFile(), n.prefix)
	n.f.ConfigFile = n.config
	return n.f.Find()
}

// logEvidence offers the peers nginx's error log names for an upstream
// although no target yields them (a stale DNS answer) as evidence of the
// addresses nginx dials. Only lines written after the current generation
// of workers started, while no older generation still runs, count: the
// peers of an earlier load say nothing about this one.
type logEvidence struct {
	r interface {
		UnknownPeers() map[string][]errorlog.UnknownPeer
	}
}

func (logEvidence) Name() string { return "error log" }

func (e logEvidence) Peers(_ context.Context, nginx *nginxproc.Snapshot) ([]loadstate.Peer, error) {
	gen := nginx.Generation()
	if gen.IsZero() || len(nginx.Old) > 0 {
		return nil, nil
	}
	var out []loadstate.Peer
	for _, peers := range e.r.UnknownPeers() {
		for _, p := range peers {
			if !p.Last.After(gen) {
				continue
			}
			ap, err := netip.ParseAddrPort(p.Address)
			if err != nil {
				continue // unix sockets and names have no address to compare
			}
			out = append(out, loadstate.Peer{Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())})
		}
	}
	return out, nil
}

// nonNil keeps the fact sources that exist.
func nonNil(fs ...statuspage.TargetFacts) []statuspage.TargetFacts {
	out := fs[:0]
	for _, f := range fs {
		if f != nil {
			out = append(out, f)
		}
	}
	return out
}
