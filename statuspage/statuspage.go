// Package statuspage serves what the exporter knows about every upstream
// server to people and tools: the status page at / (server-rendered HTML,
// readable without JavaScript), the per-target view at /target and the
// JSON API at /api/v1/targets.
//
// Everything is rendered from the scheduler's latest results: no request
// ever triggers a probe (that is /probe's job). Every value that comes
// from nginx's configuration, a backend or a log line reaches the page
// through html/template, which escapes it for its context, or, in the
// rows of the page, through html/template's own escaper (rows.go says
// why); nothing secret is ever in the view model (see package report). Renders are bounded like
// scrapes: at most MaxRequests at once. The page and the API hold a few
// bytes per target while they write (stream.go), never a view of them all.
package statuspage

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// Paths the handlers are meant to be mounted at; the page links to them.
const (
	PathPage   = "/"
	PathTarget = "/target"
	PathAPI    = "/api/v1/targets"
)

// DefaultDocsURL is where the runbook and the other documents are read
// from: the project's repository. Links only; the page loads nothing from
// there.
const DefaultDocsURL = "https://github.com/nginx-upstream-exporter/nginx_upstream_exporter/blob/main/"

// Source is where results come from; *scheduler.Scheduler satisfies it.
type Source interface {
	// Each calls fn with a copy of every target's status in
	// configuration order; fn must not keep it.
	Each(fn func(st *scheduler.Status))
}

// HistorySource is a Source that also keeps each target's last probes
// (*scheduler.Scheduler does); the per-target view then lists them.
type HistorySource interface {
	Source
	History(k discovery.Key) []scheduler.Outcome
}

// ConfigState is the exporter's view of its last configuration loads.
type ConfigState struct {
	// Loaded is nil before the first successful load.
	Loaded *discovery.Loaded
	// LastOK is false when the last load failed (the targets are those
	// of the last good one); LastSuccess is when that one happened.
	LastOK      bool
	LastSuccess time.Time
}

// TargetFacts appends to dst the facts one signal knows about a target,
// and returns it. Signals added later (the error log, nginx's running
// state, saturation, streams) plug in here; the page, the API and the
// schema need no change. Appending rather than returning a slice: an
// answer writes thousands of targets, each into storage it reuses.
type TargetFacts func(dst []report.Fact, k discovery.Key) []report.Fact

// LoggedLookup fills lg with what nginx's error log said about the
// target with labels k (Errors never nil; the maps lg has are cleared and
// reused) and reports whether it said anything; lg is left as it was
// when not.
type LoggedLookup func(k discovery.Key, lg *report.Logged) bool

// Facts contributes facts about the whole configuration.
type Facts func() []report.Fact

// Options configure the handlers.
type Options struct {
	Source Source
	// Config returns the configuration state; nil means unknown.
	Config func() ConfigState
	// NginxConfig is the path of nginx's main file, for the header.
	NginxConfig string
	// Interval is --probe.interval; ProbeTimeout is --probe.timeout.
	Interval     time.Duration
	ProbeTimeout time.Duration
	Version      string
	MetricsPath  string
	// DocsURL is the base of runbook links (DefaultDocsURL when empty).
	DocsURL string
	// MaxRequests bounds renders in progress; more get 503.
	MaxRequests int
	TargetFacts []TargetFacts
	Facts       []Facts
	// Nginx is the running nginx's section (the shape diagnose prints);
	// nil when it is not followed.
	Nginx func() *report.Nginx
	// Logged is nil when nginx's error log is not read. Otherwise it
	// reads, once per answer, what the log said about the targets since
	// the exporter started, and returns a lookup of one target and done,
	// called when the answer no longer looks up. The lookup fills lg,
	// reusing its maps, and says whether the log named the target: an
	// answer converts only the server it is writing, into one Logged.
	Logged func() (lookup LoggedLookup, done func())
	// Now is the clock (time.Now when nil), fixed in golden tests.
	Now    func() time.Time
	Logger *slog.Logger
}

// Handlers serves the page, the per-target view and the API.
type Handlers struct {
	opts Options
	sem  chan struct{}
	// bufs holds the 32 KiB buffers answers are written through.
	bufs sync.Pool
	// scratches holds the answers' *scratch.
	scratches sync.Pool
	// upstreamsOf caches the number of distinct upstreams of the last
	// load's set: the same for every answer until the next load. A weak
	// pointer: the cache never keeps a replaced set alive.
	upstreamsOf struct {
		sync.Mutex
		set weak.Pointer[discovery.Set]
		n   int
	}
}

// New returns the handlers.
func New(opts Options) *Handlers {
	if opts.DocsURL == "" {
		opts.DocsURL = DefaultDocsURL
	}
	if opts.MaxRequests <= 0 {
		opts.MaxRequests = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MetricsPath == "" {
		opts.MetricsPath = "/metrics"
	}
	return &Handlers{opts: opts, sem: make(chan struct{}, opts.MaxRequests)}
}

// Routes returns the handlers by the path to mount them at.
func (h *Handlers) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		PathPage:   h.bounded(http.HandlerFunc(h.page)),
		PathTarget: h.bounded(http.HandlerFunc(h.target)),
		PathAPI:    h.bounded(http.HandlerFunc(h.api)),
	}
}

// bounded answers 503 when MaxRequests renders are in progress: each holds
// a little per target and a 32 KiB buffer, so their number bounds the
// memory clients can make the exporter hold.
func (h *Handlers) bounded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "This endpoint only answers GET.", http.StatusMethodNotAllowed)
			return
		}
		select {
		case h.sem <- struct{}{}:
			defer func() { <-h.sem }()
		default:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "Too many status page requests in progress; try again.", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// snapshot is what the per-target view shows: the few targets it
// selects, as report.Targets (each copied under its own lock, as for
// /metrics), with their failure counters, skipped runs and labels (a
// target's address may be the one a runtime lookup dialled).
type snapshot struct {
	at       time.Time
	targets  []report.Target
	failures [][len(scheduler.Status{}.Failures)]uint64
	skipped  []uint64
	keys     []discovery.Key
}

// filter selects targets; the zero value selects all.
type filter struct {
	// Upstream keeps the targets of this upstream (exact name); Search
	// those whose upstream or server contains it.
	Upstream string
	Search   string
	// State is one of the states below, or empty.
	State string
	// Key, when set, selects targets with exactly these labels (empty
	// fields match anything).
	Key *discovery.Key
}

// States a filter can select, as the page and the API name them.
const (
	StateAll          = ""
	StateProblems     = "problems" // failed, inconclusive or pending
	StateFailing      = "failing"
	StateInconclusive = "inconclusive"
	StatePending      = "pending"
	StateOK           = "ok"
	StateDown         = "down"
	StateBackup       = "backup"
)

var filterStates = []string{StateAll, StateProblems, StateFailing, StateInconclusive, StatePending, StateOK, StateDown, StateBackup}

func parseFilter(r *http.Request) (filter, bool) {
	q := r.URL.Query()
	f := filter{Upstream: q.Get("upstream"), Search: q.Get("q"), State: q.Get("state")}
	if f.State == "all" {
		f.State = StateAll
	}
	return f, slices.Contains(filterStates, f.State)
}

// matchVerdict says whether f selects the target with these labels,
// verdict (report.VerdictOf) and backup flag. The labels are the
// configured ones: a report.Target's address may be the one a runtime
// lookup dialled.
func (f *filter) matchVerdict(key discovery.Key, verdict string, backup bool) bool {
	if f.Key != nil {
		k := f.Key
		if (k.Upstream != "" && k.Upstream != key.Upstream) || (k.Server != "" && k.Server != key.Server) ||
			(k.Protocol != "" && k.Protocol != key.Protocol) || (k.Address != "" && k.Address != key.Address) {
			return false
		}
	}
	if f.Upstream != "" && f.Upstream != key.Upstream {
		return false
	}
	if f.Search != "" && !strings.Contains(key.Upstream, f.Search) && !strings.Contains(key.Server, f.Search) {
		return false
	}
	switch f.State {
	case StateAll:
		return true
	case StateProblems:
		return verdict == report.VerdictFailed || verdict == report.VerdictInconclusive || verdict == report.VerdictPending
	case StateFailing:
		return verdict == report.VerdictFailed
	case StateInconclusive:
		return verdict == report.VerdictInconclusive
	case StatePending:
		return verdict == report.VerdictPending
	case StateOK:
		return verdict == report.VerdictOK
	case StateDown:
		return verdict == report.VerdictDown
	case StateBackup:
		return backup
	}
	return false
}

// take reads the targets f selects, for the per-target view.
func (h *Handlers) take(f *filter) *snapshot {
	s := &snapshot{at: h.opts.Now()}
	capSeconds := h.opts.ProbeTimeout.Seconds()
	logged, done := h.logged()
	defer done()
	h.opts.Source.Each(func(st *scheduler.Status) {
		verdict, _ := report.VerdictOf(st, report.VerdictPending)
		if !f.matchVerdict(st.Target.Key, verdict, st.Target.Settings().Params.Backup) {
			return
		}
		t := report.FromStatus(st, capSeconds, report.VerdictPending)
		// Its own Logged and maps: the view holds every target it shows.
		if lg := new(report.Logged); logged(st.Target.Key, lg) {
			// nginx failed real requests to a server whose probe passes.
			lg.WhileProbePasses = t.Verdict == report.VerdictOK
			t.Logged = lg
		}
		for _, tf := range h.opts.TargetFacts {
			t.Facts = tf(t.Facts, st.Target.Key)
		}
		s.targets = append(s.targets, t)
		s.failures = append(s.failures, st.Failures)
		s.skipped = append(s.skipped, st.Skipped)
		s.keys = append(s.keys, st.Target.Key)
	})
	return s
}

// logged is the error log's lookup for one answer, and its end; it
// finds nothing when the log is not read.
func (h *Handlers) logged() (LoggedLookup, func()) {
	if h.opts.Logged != nil {
		if f, done := h.opts.Logged(); f != nil {
			if done == nil {
				done = func() {}
			}
			return f, done
		}
	}
	return func(discovery.Key, *report.Logged) bool { return false }, func() {}
}

func (h *Handlers) facts() []report.Fact {
	var out []report.Fact
	for _, f := range h.opts.Facts {
		out = append(out, f()...)
	}
	return out
}

func (h *Handlers) exporterState(cfg ConfigState) *report.ExporterState {
	e := &report.ExporterState{
		Version:         h.opts.Version,
		ConfigLoaded:    cfg.LastOK,
		IntervalSeconds: h.opts.Interval.Seconds(),
	}
	if !cfg.LastSuccess.IsZero() {
		at := cfg.LastSuccess.UTC()
		e.ConfigLoadedAt = &at
	}
	if cfg.Loaded != nil {
		e.ConfigFilesLoaded = len(cfg.Loaded.Nginx.Files)
	}
	return e
}

var errNoTargetsField = errors.New("the report has no targets field")

// fail answers 500 for a render that failed before anything was written.
func (h *Handlers) fail(w http.ResponseWriter, err error) {
	h.opts.Logger.Error("rendering the status page failed", "err", err)
	http.Error(w, "internal error rendering the status page; see the exporter's log", http.StatusInternalServerError)
}
