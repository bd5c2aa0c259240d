// Package loadstate compares what the running nginx loaded with what is
// on disk now. At every generation of nginx's workers (a start or a
// reload, found by nginxproc) it records the files nginx read and, for
// every static upstream hostname, the addresses nginx resolved; at every
// interval it compares them with the disk and with what the names
// resolve to now. Three questions come out of it:
//
//   - reload pending: a file nginx read at load time changed since;
//   - would fail: the next reload or restart would be refused (a static
//     name that no longer resolves, a file that is missing, a syntax
//     error);
//   - stale: nginx dials an address its name no longer resolves to.
//
// The pipeline is: find (nginxproc) → read (stat, hash, resolve, sock_diag:
// one pass per interval whatever the number of targets) → attribute (to
// the files and servers of the loaded configuration only) → export
// (Collector) → explain (Report, for diagnose).
package loadstate

import (
	"context"
	"errors"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"net"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxproc"
)

// Finder finds the running nginx; *nginxproc.Finder satisfies it.
type Finder interface {
	Find() (*nginxproc.Snapshot, error)
}

// Source says how the exporter knows which addresses nginx dials.
type Source string

// Sources of nginx's addresses.
const (
	// SourceLoad: the exporter was running when nginx loaded its
	// configuration and resolved the name at that moment, as nginx did.
	SourceLoad Source = "load"
	// SourceEvidence: nginx's workers were seen talking to (or trying)
	// the address (Evidence).
	SourceEvidence Source = "evidence"
	// SourceUnknown: neither; nothing is claimed.
	SourceUnknown Source = "unknown"
)

// Options configure a Tracker.
type Options struct {
	Finder Finder
	// Resolver resolves names as nginx does at load time (the system's
	// resolver files); nil means net.DefaultResolver.
	Resolver       discovery.Resolver
	ResolveTimeout time.Duration
	// Evidence lists the peers nginx's workers dial (their sockets, the
	// peers in nginx's error log); nil means none.
	Evidence []Evidence
	// ConfigTest, when set, runs nginx's own test of the configuration
	// (nginx -t) after each change of the tree on disk; its refusals
	// join the would-fail reasons.
	ConfigTest ConfigTester
	// AddressesChanged is called (without any Tracker lock held) when the
	// addresses nginx dials changed, or nginx loaded its configuration,
	// so that the targets follow what nginx runs.
	AddressesChanged func(ctx context.Context)
	// Started is when the exporter started: a generation of nginx older
	// than that loaded while the exporter was not watching.
	Started time.Time
	Logger  *slog.Logger
}

// ConfigTester tests the configuration as nginx would load it;
// *NginxTest satisfies it.
type ConfigTester interface {
	Run(ctx context.Context) ([]Failure, error)
}

// Tracker follows the running nginx. It is safe for concurrent use.
type Tracker struct {
	opts Options

	mu sync.Mutex
	// disk is what is kept of the configuration on disk as last loaded
	// by the exporter, diskErr why the last load failed (nil when it
	// succeeded).
	disk    *summary
	diskErr error
	// diskVersion counts loads; tested is the version nginx -t last ran
	// on, testFailures what it refused.
	diskVersion, tested uint64
	testFailures        []Failure

	// What is known of the running nginx.
	up      bool
	findErr error
	warned  bool
	snap    *nginxproc.Snapshot
	genKey  genKey
	genPIDs map[int]bool // the current generation's workers, as last seen
	// transition: the last look saw a reload half done.
	transition bool
	reloads    uint64
	seenLoad   bool // the exporter saw the current generation start
	// prevLook is when the previous tick looked for nginx (the
	// exporter's start before the first).
	prevLook time.Time

	// At the current generation: the configuration (when the exporter
	// saw the load), the files nginx read, and the addresses it resolved.
	loaded *summary
	// loadedSet is the target set of the configuration nginx loaded
	// (Choose); probing says which set the probes follow.
	loadedSet *discovery.Set
	probing   string
	// applied is the set Choose last handed to the scheduler.
	applied    *discovery.Set
	baseline   map[string]baseFile
	nginxAddrs map[string]addrKnowledge

	// Now: what each static name resolves to.
	current map[string]resolution
	// Derived each tick.
	result Result
}

type genKey struct {
	master int
	start  time.Time
}

// newGenerationSeen reports whether snap shows a generation other than
// the current one: another master, or current workers none of which
// belonged to it. A worker that crashed is replaced by one new worker
// while its siblings stay, which is not a reload. At a reload nginx first
// starts a whole new set of workers beside the old ones, then renames the
// old ones "shutting down" (or they exit): newcomers that outnumber the
// workers they would replace are that new set, not respawns. (With one
// worker process, a respawn cannot be told from a reload.) t.mu is held.
func (t *Tracker) newGenerationSeen(snap *nginxproc.Snapshot) bool {
	t.transition = false
	pids := func() map[int]bool {
		m := make(map[int]bool, len(snap.Current))
		for _, w := range snap.Current {
			m[w.PID] = true
		}
		return m
	}
	if t.genKey == (genKey{}) || snap.Master.PID != t.genKey.master {
		t.genPIDs = pids()
		return true
	}
	if len(snap.Current) == 0 {
		return false
	}
	kept := map[int]bool{}
	for _, w := range snap.Current {
		if t.genPIDs[w.PID] {
			kept[w.PID] = true
		}
	}
	if len(kept) == 0 {
		t.genPIDs = pids()
		return true
	}
	if len(snap.Current) <= len(t.genPIDs) {
		// Replacements of vanished workers: respawns.
		t.genPIDs = pids()
	} else {
		t.genPIDs = kept
		t.transition = true
	}
	return false
}

type baseFile struct {
	kind FileKind
	at   fileState
	// changedBefore: the file was already modified after nginx's load
	// when the baseline was taken (the exporter started later).
	changedBefore bool
	now           fileState
}

type addrKnowledge struct {
	ips    []string
	source Source
}

type resolution struct {
	ips []string
	err error
}

// New returns a Tracker; call Observe with each configuration load and
// Tick (or Run) once per interval.
func New(opts Options) *Tracker {
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.ResolveTimeout <= 0 {
		opts.ResolveTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	return &Tracker{opts: opts}
}

// Observe records the outcome of a load of the configuration on disk
// (reload.Options.OnLoad).
// Only a summary of the model is kept: the model itself is released
// with the load.
func (t *Tracker) Observe(loaded *discovery.Loaded, err error) {
	var sum *summary
	if err == nil && loaded != nil && loaded.Nginx != nil {
		sum = summarize(loaded.Nginx)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.diskErr = err
	t.diskVersion++
	if sum != nil {
		// The same configuration loaded again (the usual case: nginx
		// runs what is on disk) shares the summary already held.
		switch {
		case t.loaded != nil && reflect.DeepEqual(sum, t.loaded):
			sum = t.loaded
		case t.disk != nil && reflect.DeepEqual(sum, t.disk):
			sum = t.disk
		}
		t.disk = sum
	}
}

// PIDFile returns the `pid` directive of the configuration on disk as
// last observed, as written; empty before the first successful load or
// without the directive.
func (t *Tracker) PIDFile() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.disk == nil {
		return ""
	}
	return t.disk.pidFile
}

// NginxAddresses implements discovery.NginxAddresses: the addresses the
// running nginx dials for host, when known.
func (t *Tracker) NginxAddresses(host string) ([]string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.nginxAddrs[host]
	if !ok || k.source == SourceUnknown || len(k.ips) == 0 {
		return nil, false
	}
	return slices.Clone(k.ips), true
}

// Run ticks every interval until ctx is done.
func (t *Tracker) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		t.Tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Tick looks at nginx and the disk once.
func (t *Tracker) Tick(ctx context.Context) {
	looked := time.Now()
	snap, findErr := t.opts.Finder.Find()

	t.mu.Lock()
	cfg := t.disk
	version, tested := t.diskVersion, t.tested
	t.mu.Unlock()
	if t.opts.ConfigTest != nil && version != tested {
		f, err := t.opts.ConfigTest.Run(ctx)
		if err != nil {
			t.opts.Logger.Warn("cannot test nginx's configuration with nginx -t", "err", err)
		}
		t.mu.Lock()
		t.tested, t.testFailures = version, f
		t.mu.Unlock()
	}
	var hosts []string
	if cfg != nil {
		hosts = cfg.hosts
	}
	// Lookups and evidence run without the lock: they may take seconds.
	current := resolveAll(ctx, t.opts.Resolver, t.opts.ResolveTimeout, hosts)
	var peers []Peer
	if findErr == nil {
		for _, e := range t.opts.Evidence {
			p, err := e.Peers(ctx, snap)
			if err != nil {
				t.opts.Logger.Debug("no evidence of nginx's peers", "source", e.Name(), "err", err)
				continue
			}
			peers = append(peers, p...)
		}
	}
	if ctx.Err() != nil {
		// Lookups cut short would read as names that do not resolve.
		return
	}

	t.mu.Lock()
	changed := t.update(snap, findErr, cfg, current, peers, looked)
	t.mu.Unlock()
	if changed && t.opts.AddressesChanged != nil {
		t.opts.AddressesChanged(ctx)
	}
}

// update applies one tick's observations; it reports whether nginx's
// addresses changed. t.mu is held.
func (t *Tracker) update(snap *nginxproc.Snapshot, findErr error, cfg *summary, current map[string]resolution, peers []Peer, looked time.Time) bool {
	if t.prevLook.IsZero() {
		t.prevLook = t.opts.Started
	}
	defer func() {
		// A look in the middle of a reload (new workers beside the old)
		// does not count as before it: the load began earlier.
		if !t.transition {
			t.prevLook = looked
		}
	}()
	reapply := false
	t.current = current
	t.findErr = findErr
	before := t.nginxAddrs
	if findErr != nil {
		t.up = false
		if !t.warned {
			t.warned = true
			if errors.Is(findErr, nginxproc.ErrNoAccess) {
				t.opts.Logger.Warn("cannot see nginx's processes (another PID namespace, or /proc mounted with hidepid): nginx_upstream_nginx_up is 0 and reload and stale-address checks are unknown; probes are unaffected", "err", findErr)
			} else {
				t.opts.Logger.Warn("nginx's master process not found: nginx_upstream_nginx_up is 0", "err", findErr)
			}
		}
	} else {
		if !t.up {
			t.opts.Logger.Info("found nginx's master process", "pid", snap.Master.PID, "last_load", snap.LastLoad())
		}
		t.up, t.warned = true, false
		t.snap = snap
		key := genKey{master: snap.Master.PID, start: snap.LastLoad()}
		if t.newGenerationSeen(snap) {
			if t.genKey != (genKey{}) {
				t.reloads++
			}
			t.genKey = key
			// The exporter saw the load when it happened since the
			// previous look (or since the exporter started): then the
			// names resolve now as they did for nginx, within one
			// interval. A generation that started while nginx was
			// invisible (hidepid, another namespace) or before the
			// exporter started was not seen. Start times are truncated
			// to the clock tick (10ms): startSlack covers it.
			t.seenLoad = !key.start.Before(t.prevLook.Add(-startSlack))
			t.newGeneration(cfg, current)
			// The targets are rebuilt at every seen load: the set
			// applied next is the one nginx runs (see Choose). Unless
			// the set probed now was read from disk after nginx
			// loaded (nginx and the exporter started together): a
			// reload would read the same tree again, and at 10,000
			// servers a load is tens of MB of short-lived heap. That
			// set is then the one nginx runs (nginx reads its tree
			// before it starts the workers whose start this is).
			if t.seenLoad && t.probing == ProbingDisk && t.applied != nil && t.applied.Read.After(key.start.Add(readSlack)) {
				t.loadedSet = t.applied
			} else {
				reapply = t.seenLoad
			}
			t.opts.Logger.Info("nginx loaded its configuration", "pid", snap.Master.PID, "at", key.start, "witnessed", t.seenLoad)
		}
	}
	if cfg != nil {
		t.addEvidence(cfg, peers)
		t.compareFiles()
	}
	wasPending := len(t.result.Pending) > 0
	t.result = t.derive(cfg)
	if r := t.result; len(r.Pending) > 0 && !wasPending {
		files := make([]string, 0, len(r.Pending))
		for _, p := range r.Pending {
			files = append(files, p.Path+" ("+p.Change+")")
		}
		t.opts.Logger.Info("nginx has not loaded changes on disk: a reload is pending", "files", files, "changes", r.PendingChanges)
	}
	return reapply || !sameAddrs(before, t.nginxAddrs)
}

// newGeneration takes the baseline of a generation: the files and, when
// the exporter saw the load, the addresses resolved now, as nginx just
// did.
func (t *Tracker) newGeneration(cfg *summary, current map[string]resolution) {
	t.baseline = map[string]baseFile{}
	t.nginxAddrs = map[string]addrKnowledge{}
	t.loaded, t.loadedSet = nil, nil
	if t.seenLoad {
		t.loaded = cfg
	}
	if cfg == nil {
		return
	}
	load := t.genKey.start
	for path, kind := range cfg.files {
		st := statFile(path, true)
		b := baseFile{kind: kind, at: st, now: st}
		if !t.seenLoad && st.exists && st.modTime.After(load.Add(mtimeSlack)) {
			b.changedBefore = true
		}
		t.baseline[path] = b
	}
	for host, r := range current {
		if t.seenLoad && r.err == nil {
			t.nginxAddrs[host] = addrKnowledge{ips: r.ips, source: SourceLoad}
		} else {
			t.nginxAddrs[host] = addrKnowledge{source: SourceUnknown}
		}
	}
}

// readSlack is two clock ticks: a process start time read from /proc is
// truncated to the tick, so the real start is up to one tick later than
// the one read; the second covers the skew of the boot time it is
// counted from.
const readSlack = 20 * time.Millisecond

// startSlack absorbs the truncation of process start times to the clock
// tick when comparing them with the exporter's own clock.
const startSlack = 50 * time.Millisecond

// mtimeSlack absorbs the clock tick to which process start times are
// truncated: a file written just before nginx read it must not look
// newer than nginx's load.
const mtimeSlack = 100 * time.Millisecond

// compareFiles re-reads the baseline's files: one stat each, a hash only
// when the metadata changed.
func (t *Tracker) compareFiles() {
	for path, b := range t.baseline {
		st := statFile(path, false)
		if st.sameMeta(b.now) {
			continue
		}
		b.now = statFile(path, true)
		t.baseline[path] = b
	}
}

// addEvidence learns nginx's addresses from its workers' peers for the
// names the exporter did not see nginx resolve. A peer is attributed to a
// name only when that name is the one static name of the configuration
// with the peer's port and the peer is no IP literal server: anything
// else would be a guess.
func (t *Tracker) addEvidence(cfg *summary, peers []Peer) {
	if len(peers) == 0 || cfg.ev.blind {
		return
	}
	byPort, shared := cfg.ev.byPort, cfg.ev.shared
	h := fnv.New64a()
	if t.nginxAddrs == nil {
		t.nginxAddrs = map[string]addrKnowledge{}
	}
	for _, p := range peers {
		ap := p.Addr.String()
		port := strconv.Itoa(int(p.Addr.Port()))
		hosts := byPort[port]
		if len(hosts) != 1 || shared[port] || cfg.ev.isLiteral(h, ap) {
			continue
		}
		host := hosts[0]
		k := t.nginxAddrs[host]
		if k.source == SourceLoad {
			continue
		}
		ip := p.Addr.Addr().Unmap().String()
		if !slices.Contains(k.ips, ip) {
			k.ips = append(k.ips, ip)
			sort.Strings(k.ips)
		}
		k.source = SourceEvidence
		t.nginxAddrs[host] = k
	}
}

// dynamicPort finds the literal port of a *_pass address built from
// variables ("http://$backend:8080/..."), when there is one.
var dynamicPort = regexp.MustCompile(`^(?:[a-z]+://)?[^/:]*:([0-9]+)(?:[/?]|$)`)

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

func sameAddrs(a, b map[string]addrKnowledge) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v.source != w.source || !slices.Equal(v.ips, w.ips) {
			return false
		}
	}
	return true
}

// resolveAll looks up every name, at most 32 at once.
func resolveAll(ctx context.Context, r discovery.Resolver, timeout time.Duration, hosts []string) map[string]resolution {
	out := make(map[string]resolution, len(hosts))
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, 32)
	)
	for _, host := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			lctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			ips, err := r.LookupHost(lctx, host)
			if err == nil && len(ips) == 0 {
				err = &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
			}
			ips = slices.Clone(ips)
			sort.Strings(ips)
			mu.Lock()
			out[host] = resolution{ips: ips, err: err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// isNotExist reports whether err says a file is missing.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
