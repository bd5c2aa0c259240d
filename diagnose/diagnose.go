// Package diagnose implements the one-shot `diagnose` command: it loads the
// nginx configuration exactly as the server does, probes every target once
// and prints a verdict per upstream server, with the line nginx would log
// and a first step to fix it. It is meant for the moment someone is looking
// at a 502 and wants an answer now rather than a dashboard.
//
// Nothing from the configuration that may be secret is printed: header
// values (proxy_set_header, including Host) and TLS key or certificate
// contents are never read into the report; client certificates are only
// reported as configured or not.
package diagnose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/capacity"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/loadstate"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// Exit statuses of the diagnose command.
const (
	// ExitHealthy: every probed primary server (neither backup nor down)
	// answered as nginx needs it to. Failing backups do not change it.
	ExitHealthy = 0
	// ExitFailing: at least one primary server failed its probe.
	ExitFailing = 1
	// ExitUsage: bad flags, or the nginx configuration could not be
	// loaded (missing file, syntax error, anything nginx -t would reject
	// that the exporter detects).
	ExitUsage = 2
	// ExitInterrupted: stopped by a signal before every probe finished;
	// the conventional 128+SIGINT.
	ExitInterrupted = 130
)

// Output formats.
const (
	OutputTable = "table"
	OutputJSON  = "json"
)

// ProgressThreshold is the number of probed targets above which progress
// is shown on stderr.
const ProgressThreshold = 20

// Options configure Run.
type Options struct {
	// Load says what to load (the nginx configuration path, prefix, the
	// exporter's file) and how, as for the server.
	Load        discovery.Options
	Prober      prober.Prober
	Timeout     time.Duration
	Concurrency int
	// Output is OutputTable (default) or OutputJSON.
	Output string
	// List prints the discovered targets without probing.
	List  bool
	Color ColorMode
	// Running, when set, checks the running nginx: reload pending,
	// would-fail reasons, stale addresses; probes then target the
	// addresses nginx dials where its workers show them.
	Running *loadstate.Tracker
	// ErrorLog reads the recent part of nginx's error logs beside the
	// probes; nil does not.
	ErrorLog *ErrorLogOptions
	// Capacity, when set, reads the capacity of the targets that listen
	// on this host (capacity.Check) while the probes run, so that a
	// failing or slow server is shown as full or down.
	Capacity func(ctx context.Context, targets []*discovery.Target) map[discovery.Key]capacity.Summary

	Stdout, Stderr io.Writer
	Logger         *slog.Logger

	// Hooks for tests; nil means the real thing.
	IsTerminal func(io.Writer) bool
	Getenv     func(string) string
	Geteuid    func() int
}

func (o *Options) defaults() {
	if o.Prober == nil {
		o.Prober = prober.New()
	}
	if o.Output == "" {
		o.Output = OutputTable
	}
	if o.Color == "" {
		o.Color = ColorAuto
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Load.Logger == nil {
		o.Load.Logger = o.Logger
	}
	if o.IsTerminal == nil {
		o.IsTerminal = IsTerminal
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Geteuid == nil {
		o.Geteuid = os.Geteuid
	}
}

// Run executes the command and returns the process exit status.
func Run(ctx context.Context, opts Options) int {
	opts.defaults()
	if opts.Output != OutputTable && opts.Output != OutputJSON {
		fmt.Fprintf(opts.Stderr, "diagnose: unknown --output %q (want %s or %s)\n", opts.Output, OutputTable, OutputJSON)
		return ExitUsage
	}
	if opts.Timeout < 0 {
		fmt.Fprintln(opts.Stderr, "diagnose: --probe.timeout must not be negative (0: wait as long as nginx would)")
		return ExitUsage
	}

	loaded, err := discovery.Load(ctx, opts.Load)
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(opts.Stderr, "diagnose: interrupted while loading the configuration; nothing was probed")
		return ExitInterrupted
	}
	if err != nil {
		fmt.Fprintf(opts.Stderr, "diagnose: cannot load nginx configuration: %v\n", err)
		if nginxRefuses(err) {
			// What nginx refuses now, it refuses at its next start: an
			// nginx that runs keeps its loaded configuration until then.
			fmt.Fprintln(opts.Stderr, "diagnose: the next reload or restart of nginx would fail with this error; a running nginx keeps serving its loaded configuration until then (nginx -t shows the same)")
		}
		if opts.Output == OutputJSON {
			writeJSON(opts.Stdout, &Report{Config: opts.Load.NginxConfig, Error: err.Error(), Targets: []Target{}})
		}
		return ExitUsage
	}

	var running *Nginx
	if opts.Running != nil {
		loaded, running = checkRunning(ctx, &opts, loaded)
	}
	rep := report.New(opts.Load.NginxConfig, loaded, opts.Timeout)
	rep.Nginx = running
	rep.Notes = privilegeNotes(loaded.Set.Targets, opts.Geteuid())
	if !opts.List {
		var capDone chan map[discovery.Key]capacity.Summary
		if opts.Capacity != nil {
			// Read while the probes run: the queue a failing probe met
			// is the one read, not the one after the load has gone.
			capDone = make(chan map[discovery.Key]capacity.Summary, 1)
			go func() { capDone <- opts.Capacity(ctx, loaded.Set.Targets) }()
		}
		statuses, interrupted := probe(ctx, loaded.Set.Targets, &opts)
		var caps map[discovery.Key]capacity.Summary
		if capDone != nil {
			caps = <-capDone
		}
		rep.AddResults(statuses)
		addCapacity(rep, loaded.Set.Targets, caps)
		if interrupted {
			// An honest partial report: what was probed has its verdict,
			// the rest says no_result.
			writeReport(&opts, rep)
			fmt.Fprintf(opts.Stderr, "diagnose: interrupted: %d of %d probes finished; the others have no verdict\n",
				rep.Summary.Probed-rep.Summary.NoResult, rep.Summary.Probed)
			return ExitInterrupted
		}
		if rep.Nginx.Problems() {
			rep.Healthy = false
		}
		if opts.ErrorLog != nil {
			addLogged(rep, loaded, opts.ErrorLog, opts.Logger)
		}
	}
	if code := writeReport(&opts, rep); code != 0 {
		return code
	}
	if opts.List || rep.Healthy {
		return ExitHealthy
	}
	return ExitFailing
}

// writeReport prints the report in the chosen format; a write error is a
// usage-level failure.
func writeReport(opts *Options, rep *Report) int {
	switch opts.Output {
	case OutputJSON:
		if err := writeJSON(opts.Stdout, rep); err != nil {
			fmt.Fprintf(opts.Stderr, "diagnose: writing report: %v\n", err)
			return ExitUsage
		}
	default:
		p := palette{on: useColor(opts.Color, opts.Stdout, opts.IsTerminal, opts.Getenv)}
		if opts.List {
			writeList(opts.Stdout, rep, p)
		} else {
			writeTable(opts.Stdout, rep, p)
			writeNginx(opts.Stdout, rep.Nginx, p)
		}
	}
	return 0
}

// probe runs every probe once, with progress on stderr for large
// configurations: a live counter on a terminal, a start and an end line
// otherwise, so logs of scripted runs stay short.
func probe(ctx context.Context, targets []*discovery.Target, opts *Options) ([]scheduler.Status, bool) {
	probed := 0
	for _, t := range targets {
		if t.Probe != nil {
			probed++
		}
	}
	var progress func(done, total int)
	start := time.Now()
	tty := opts.IsTerminal(opts.Stderr)
	show := probed > ProgressThreshold
	if show {
		if tty {
			var (
				mu   sync.Mutex
				last time.Time
			)
			progress = func(done, _ int) {
				mu.Lock()
				defer mu.Unlock()
				if now := time.Now(); done == probed || now.Sub(last) >= 100*time.Millisecond {
					last = now
					fmt.Fprintf(opts.Stderr, "\r\x1b[Kprobing %d/%d targets", done, probed)
				}
			}
		} else {
			fmt.Fprintf(opts.Stderr, "probing %d targets, at most %d at a time\n", probed, opts.Concurrency)
		}
	}
	statuses := scheduler.ProbeOnce(ctx, targets, opts.Prober, opts.Concurrency, opts.Timeout, progress)
	if show {
		if tty {
			fmt.Fprint(opts.Stderr, "\r\x1b[K")
		}
		finished := 0
		for i := range statuses {
			if statuses[i].HasResult {
				finished++
			}
		}
		fmt.Fprintf(opts.Stderr, "probed %d of %d targets in %s\n", finished, probed, time.Since(start).Round(time.Millisecond))
	}
	return statuses, ctx.Err() != nil
}

// privilegeNotes explains what an unprivileged run cannot tell: the kernel
// checks unix socket permissions for nginx's worker user, and the exporter
// repeats that check from file modes, which needs to read every directory
// on the way.
func privilegeNotes(targets []*discovery.Target, euid int) []string {
	for _, t := range targets {
		if t.Probe == nil || (t.Probe.Network != "unix" && t.Probe.Network != "unixgram") {
			continue
		}
		w := t.Probe.Worker
		switch {
		case w == nil && euid == 0:
			return []string{"nginx's worker user is unknown on this system: running as root, unix socket permissions are not checked at all"}
		case w == nil:
			return []string{fmt.Sprintf("nginx's worker user is unknown on this system: unix socket permissions are judged as uid %d; run as nginx's worker uid for nginx's exact view", euid)}
		case euid != 0 && uint32(euid) != w.UID:
			return []string{fmt.Sprintf("running as uid %d, not root: unix socket permissions are checked for nginx's worker user %q from file modes; where this user cannot read a directory on the way the verdict is marked unverified (run as root, or as %q, to be sure)", euid, w.User, w.User)}
		}
	}
	return nil
}

// nginxRefuses reports a load error that nginx itself would give: not a
// missing main file (a wrong --nginx.config), not one of the exporter's
// own read limits or file-type checks, not the exporter's own file.
func nginxRefuses(err error) bool {
	var pe *nginxconf.ParseError
	return errors.As(err, &pe) && !errors.Is(err, nginxconf.ErrLimitExceeded) &&
		!errors.Is(err, nginxconf.ErrNotRegular) && !errors.Is(err, nginxconf.ErrNotFound)
}
