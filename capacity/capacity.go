// Package capacity tells a backend that is full from one that is down,
// from what the kernel and the backend's own process say rather than from
// probes: each local target's listen queue (netlink sock_diag), the
// process behind the socket (/proc), its restarts and OOM kills (its
// memory cgroup), and for php-fpm its pool's configuration and status
// page.
//
// A Monitor refreshes on its own schedule, in its own goroutine, so that
// nothing it reads (a slow status page, a large /proc) can hold up the
// probe schedule. Each refresh is one sock_diag dump for all targets, at
// most one pass over /proc, and one status read per php-fpm pool, bounded
// by a deadline.
//
// The signal's five rooms, in file order: find (this file: which targets
// are local), read (sockdiag.go, owner.go, cgroup.go, phpfpm.go,
// netstat.go), attribute (this file: per-target state keyed by the
// target's labels), export (collector.go) and explain (Explain, used by
// diagnose).
package capacity

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
)

// ListenState is what the kernel says of a target's listening socket.
type ListenState uint8

// The listen states, exported as nginx_upstream_backend_listener_state.
const (
	// ListenUnknown: the exporter cannot tell (sock_diag failed, or the
	// socket's directory cannot be read by the exporter's user).
	ListenUnknown ListenState = iota
	// Listening: a socket listens at the target's address.
	Listening
	// NotListening: nothing listens there (no socket file, a stale one,
	// or no listener on a local TCP address): the backend is down.
	NotListening
)

// String is the state's label value.
func (s ListenState) String() string {
	switch s {
	case Listening:
		return "listening"
	case NotListening:
		return "not_listening"
	}
	return "unknown"
}

// Causes of a failed php-fpm status read, the values of
// nginx_upstream_phpfpm_status_failure's cause label.
const (
	// CausePoolFull: the status page is served by the pool's own workers
	// and every one is busy (the kernel's queue for the pool is not
	// empty, and no pm.status_listen is configured, or it timed out while
	// the queue was not empty).
	CausePoolFull = "pool_full"
	// CauseTimeout: no answer before the deadline.
	CauseTimeout = "timeout"
	// CauseUnreachable: the status socket refused or does not exist.
	CauseUnreachable = "unreachable"
	// CauseInvalidResponse: an answer that is not the status page.
	CauseInvalidResponse = "invalid_response"
)

// StatusCauses lists every cause in documentation order.
var StatusCauses = []string{CausePoolFull, CauseTimeout, CauseUnreachable, CauseInvalidResponse}

// State is what the monitor knows about one local target.
type State struct {
	Listen   ListenState
	Listener Listener // valid when Listen is Listening
	// Owner is the process holding the socket, nil when unknown (another
	// user's process read unprivileged, or a process in another PID
	// namespace).
	Owner *Process
	// Restarts counts changes of the listening socket or of its owner
	// seen since the exporter started; LastRestart is when the newest
	// was seen (the new owner's start time when known).
	Restarts    uint64
	LastRestart time.Time
	// OOMKills is the oom_kill count of the owner's memory cgroup (the
	// last known one while the owner is gone); valid when OOMKnown.
	OOMKills uint64
	OOMKnown bool

	// Pool is the php-fpm pool serving the target, nil when the owner is
	// not php-fpm or its configuration cannot be read.
	Pool *Pool
	// Status is the pool's status page, nil when not read. StatusCause
	// says why not when a status path is configured.
	Status      *FPMStatus
	StatusCause string
	// statusSelf: the status was read through the pool's main socket, so
	// one of its active processes is the one serving the status page.
	statusSelf bool

	// Saturated is the verdict of the saturation rule (see Saturation),
	// valid when SaturationKnown.
	Saturated       bool
	SaturationKnown bool
	SaturationWhy   string
}

// Options configure a Monitor.
type Options struct {
	// Targets returns the current targets; *scheduler.Scheduler's Targets
	// method fits.
	Targets func() []*discovery.Target
	// Interval between refreshes (the probe interval).
	Interval time.Duration
	// StatusTimeout bounds each php-fpm status read. Zero means a
	// quarter of Interval, at most two seconds.
	StatusTimeout time.Duration
	// ProcRoot is where procfs is mounted; "" means /proc.
	ProcRoot string
	Logger   *slog.Logger
	// Now returns the time; nil means time.Now.
	Now func() time.Time
}

// Monitor refreshes the capacity state of every local target.
type Monitor struct {
	opts   Options
	logger *slog.Logger

	refreshMu sync.Mutex // one refresh at a time; guards the fields below it
	proc      *procReader
	procErr   error
	fpm       fpmConfigCache
	track     map[discovery.Key]*tracker

	mu       sync.RWMutex // guards the published snapshot
	snap     map[discovery.Key]*State
	order    []*discovery.Target
	netstat  NetStat
	nsOK     bool
	lastErr  error
	duration time.Duration
}

// tracker is what a target's state keeps from one refresh to the next.
type tracker struct {
	inode       uint32
	owner       *Process
	restarts    uint64
	lastRestart time.Time
	cgroup      cgroupRef
}

// New returns a Monitor; it reads nothing until Refresh or Run.
func New(opts Options) *Monitor {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.StatusTimeout <= 0 {
		opts.StatusTimeout = min(2*time.Second, opts.Interval/4)
		if opts.StatusTimeout <= 0 {
			opts.StatusTimeout = time.Second
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Targets == nil {
		opts.Targets = func() []*discovery.Target { return nil }
	}
	m := &Monitor{opts: opts, logger: opts.Logger, track: map[discovery.Key]*tracker{}, snap: map[discovery.Key]*State{}}
	m.fpm.procRoot = opts.ProcRoot
	m.proc, m.procErr = newProcReader(opts.ProcRoot)
	if m.procErr != nil {
		m.logger.Warn("cannot read processes: backend owners, restarts and OOM kills are unknown", "err", m.procErr)
	}
	return m
}

// Run refreshes now and then every interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	interval := m.opts.Interval
	if interval <= 0 {
		interval = 15 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		m.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// candidate is a target that may listen on this host.
type candidate struct {
	t     *discovery.Target
	unix  string         // socket path, for unix targets
	tcp   netip.AddrPort // for TCP targets
	state *State
	tr    *tracker
}

// Refresh reads everything once and publishes the new state.
func (m *Monitor) Refresh(ctx context.Context) {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	start := m.opts.Now()

	// Find: targets with a socket path or a literal IP address.
	targets := m.opts.Targets()
	cands := make([]candidate, 0, len(targets))
	for _, t := range targets {
		if t.Probe == nil || t.Probe.Address == "" {
			continue
		}
		c := candidate{t: t}
		if t.Probe.Network == "unix" {
			c.unix = t.Probe.Address
		} else {
			ap, err := netip.ParseAddrPort(t.Probe.Address)
			if err != nil {
				continue
			}
			c.tcp = ap
		}
		cands = append(cands, c)
	}

	// Read: the kernel's listeners, in one dump.
	var (
		lis *Listeners
		err error
	)
	if len(cands) > 0 {
		lis, err = DumpListeners()
	}
	if err != nil {
		// Once per outage, not once per interval.
		level := slog.LevelDebug
		m.mu.RLock()
		if m.lastErr == nil {
			level = slog.LevelWarn
		}
		m.mu.RUnlock()
		m.logger.Log(ctx, level, "cannot read listen queues through sock_diag; every listen state is unknown", "err", err)
	}
	local := localAddrs()
	next := make(map[discovery.Key]*State, len(cands))
	kept := cands[:0]
	want := map[uint32]struct{}{}
	for _, c := range cands {
		st := &State{}
		switch {
		case lis == nil:
			if c.unix == "" && !local(c.tcp.Addr()) {
				continue
			}
		case c.unix != "":
			st.Listen, st.Listener = lookupUnix(lis, c.unix)
		default:
			if l, ok := lis.TCP(c.tcp, local); ok {
				st.Listen, st.Listener = Listening, l
			} else if local(c.tcp.Addr()) {
				st.Listen = NotListening
			} else {
				continue // not on this host: nothing to say
			}
		}
		if st.Listen == Listening {
			want[st.Listener.Inode] = struct{}{}
		}
		c.state = st
		c.tr = m.track[c.t.Key]
		if c.tr == nil {
			c.tr = &tracker{}
		}
		next[c.t.Key] = st
		kept = append(kept, c)
	}
	cands = kept

	// Read: the processes behind the sockets, in at most one pass.
	var owners map[uint32]fdRef
	procs := map[int]*Process{}
	if m.proc != nil && len(want) > 0 {
		var ss scanStats
		owners, ss = m.proc.owners(want)
		if ss.Scanned {
			m.logger.Debug("scanned /proc for socket owners", "descriptors", ss.FDs, "unreadable_processes", ss.Unreadable)
		}
	}

	// Attribute: owners, restarts, OOM kills, php-fpm pools.
	seenMasters := map[fpmKey]bool{}
	type oomRead struct {
		n   uint64
		err error
	}
	ooms := map[string]oomRead{}
	var reads statusReads
	now := m.opts.Now()
	for i := range cands {
		c := &cands[i]
		st, tr := c.state, c.tr
		if st.Listen == Listening {
			if ref, ok := owners[st.Listener.Inode]; ok {
				pr := procs[ref.pid]
				if pr == nil {
					if p, err := m.proc.process(ref.pid); err == nil {
						pr = p
						procs[ref.pid] = p
					}
				}
				st.Owner = pr
			}
			m.restart(tr, st, now)
		}
		if st.Owner != nil && st.Owner.Cgroup.file != "" {
			tr.cgroup = st.Owner.Cgroup
		}
		if tr.cgroup.file != "" {
			// Many targets share one backend, hence one cgroup: read
			// each counter file once per refresh.
			r, ok := ooms[tr.cgroup.file]
			if !ok {
				r.n, r.err = tr.cgroup.oomKills()
				ooms[tr.cgroup.file] = r
			}
			if r.err == nil {
				st.OOMKills, st.OOMKnown = r.n, true
			}
		}
		st.Restarts, st.LastRestart = tr.restarts, tr.lastRestart
		if st.Owner != nil {
			if config, ok := isPHPFPM(st.Owner.Cmdline); ok && config != "" {
				k := fpmKey{pid: st.Owner.PID, startTicks: st.Owner.startTicks, config: config}
				seenMasters[k] = true
				pools, err := m.fpm.pools(st.Owner, config, now)
				if err != nil {
					c.t.Logger().Debug("cannot read php-fpm configuration", "config", config, "err", err)
				}
				for j := range pools {
					network, addr := "tcp", c.tcp.String()
					if c.unix != "" {
						network, addr = "unix", c.unix
					}
					if pools[j].listensOn(network, addr) {
						p := pools[j]
						st.Pool = &p
						break
					}
				}
			}
		}
		if st.Pool != nil && st.Pool.StatusPath != "" {
			reads.add(st)
		}
	}
	m.fpm.trim(seenMasters)
	reads.run(ctx, m.opts.StatusTimeout, m.logger)

	for i := range cands {
		c := &cands[i]
		saturation(c.state)
		m.track[c.t.Key] = c.tr
	}
	for k := range m.track {
		if _, ok := next[k]; !ok {
			delete(m.track, k)
		}
	}

	ns, nsErr := m.readNetStat()
	order := make([]*discovery.Target, 0, len(cands))
	for i := range cands {
		order = append(order, cands[i].t)
	}
	m.mu.Lock()
	m.snap, m.order = next, order
	m.netstat, m.nsOK = ns, nsErr == nil
	m.lastErr = err
	m.duration = m.opts.Now().Sub(start)
	m.mu.Unlock()
}

// restart counts a change of the listening socket or its owner against
// the last known ones: a backend that stopped and started again has a new
// socket (same path, new inode) and a new process.
func (m *Monitor) restart(tr *tracker, st *State, now time.Time) {
	changed := false
	if tr.inode != 0 && tr.inode != st.Listener.Inode {
		changed = true
	}
	if tr.owner != nil && st.Owner != nil && !tr.owner.same(st.Owner) {
		changed = true
	}
	if changed {
		tr.restarts++
		tr.lastRestart = now
		if st.Owner != nil {
			tr.lastRestart = st.Owner.Start
		}
	}
	tr.inode = st.Listener.Inode
	if st.Owner != nil {
		tr.owner = st.Owner
	} else if changed {
		tr.owner = nil
	}
}

// lookupUnix finds the listener of a socket path: the socket whose bound
// file is the one at the path now.
func lookupUnix(lis *Listeners, path string) (ListenState, Listener) {
	var fi syscall.Stat_t
	if err := syscall.Stat(path, &fi); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return NotListening, Listener{}
		}
		return ListenUnknown, Listener{}
	}
	if fi.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return NotListening, Listener{}
	}
	if l, ok := lis.Unix(filepath.Clean(path), fi.Ino); ok {
		return Listening, l
	}
	if l, ok := lis.Unix(path, fi.Ino); ok {
		return Listening, l
	}
	return NotListening, Listener{}
}

// localAddrs returns a test for addresses of this network namespace.
func localAddrs() func(netip.Addr) bool {
	set := map[netip.Addr]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					set[ip.Unmap()] = true
				}
			}
		}
	}
	return func(ip netip.Addr) bool {
		ip = ip.Unmap()
		return ip.IsLoopback() || set[ip]
	}
}

func (m *Monitor) readNetStat() (NetStat, error) {
	f, err := os.Open(filepath.Join(m.opts.ProcRoot, "net", "netstat"))
	if err != nil {
		return NetStat{}, err
	}
	defer f.Close()
	return parseNetStat(f)
}

// Lookup returns a copy of a target's state; ok is false for targets
// that do not listen on this host (or before the first refresh).
func (m *Monitor) Lookup(k discovery.Key) (State, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st, ok := m.snap[k]
	if !ok {
		return State{}, false
	}
	return *st, true
}

// Each calls fn for each local target in configuration order, under the
// read lock: fn must not block.
func (m *Monitor) Each(fn func(t *discovery.Target, st *State)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, t := range m.order {
		if st, ok := m.snap[t.Key]; ok {
			fn(t, st)
		}
	}
}

// NetStat returns the namespace's listen counters; ok is false when
// /proc/net/netstat could not be read.
func (m *Monitor) NetStat() (NetStat, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.netstat, m.nsOK
}
