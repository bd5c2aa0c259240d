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
	"hash/maphash"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	// layout lists the targets that may listen on this host; trackers
	// (aligned with it) and restarts are what a target keeps from one
	// refresh to the next. trackers holds the position plus one of the
	// target's tracker in tracked, 0 while it is empty: a target where
	// nothing ever listened keeps 4 bytes.
	layout   *layout
	trackers []int32
	tracked  []tracker
	restarts []restartRecord
	// known are the processes the trackers name: few (the backends'
	// processes), where the targets are many. Each refresh adds its
	// owners; compactKnown drops those no tracker names any more once
	// they are the larger part.
	known     []*Process
	knownKept int
	// knownOf maps a position in the refreshed view's procs to known's,
	// plus one (0 until named); scratch of a refresh.
	knownOf []int32
	// spare is the view published before the current one: the next
	// refresh fills it again unless a scrape still reads it.
	spare *view
	// dumped is how many TCP and unix listeners the last dump had.
	dumped [2]int
	// Scratch of a refresh, cleared and reused.
	want  map[uint32]struct{}
	procs map[int]int32 // pid → position in the view's procs
	ooms  map[string]oomRead
	// fpm says, per process of the view, whether it is php-fpm.
	fpmOf  []fpmCheck
	fpmSet map[fpmKey]bool

	mu       sync.RWMutex // guards the published view
	cur      *view
	netstat  NetStat
	nsOK     bool
	lastErr  error
	duration time.Duration
}

// fpmCheck is isPHPFPM's answer for one process, asked once a refresh
// however many sockets it holds.
type fpmCheck struct {
	config    string
	ok, asked bool
}

type oomRead struct {
	n   uint64
	err error
}

// tracker is what a target keeps from one refresh to the next, in 16
// bytes without pointers.
type tracker struct {
	// owner is the last known owner; cg the process whose memory cgroup
	// is the last known one (kept while the owner is gone). Both index
	// Monitor.known plus one, 0 for none.
	owner, cg int32
	inode     uint32
	// restart indexes Monitor.restarts plus one; 0 until the first
	// restart, which few targets ever see.
	restart int32
}

// restartRecord counts a target's restarts.
type restartRecord struct {
	n    uint64
	last time.Time
}

// layout is a list of targets that may listen on this host (a socket
// path or a literal IP address), fixed while the target set is: a view
// holds their states at the same positions.
type layout struct {
	targets []*discovery.Target
	// index is an open-addressing hash table of positions plus one (0
	// for an empty slot) by the target's key, at most three quarters
	// full: 4 bytes a slot, the keys being the targets' own. Of equal
	// keys it holds the last.
	index []int32
	seed  maphash.Seed
	// escape has the bit of each target with a label value to escape in
	// the text format: the others' values are written as they are.
	escape []uint64
}

func newLayout(targets []*discovery.Target) *layout {
	size := 8
	for size < len(targets)+len(targets)/3+1 {
		size <<= 1
	}
	l := &layout{targets: targets, index: make([]int32, size), seed: maphash.MakeSeed(),
		escape: make([]uint64, (len(targets)+63)/64)}
	for i, t := range targets {
		l.index[l.slot(t.Key)] = int32(i + 1)
		for _, v := range [...]string{t.Upstream, t.Server, t.Address, t.Protocol} {
			if strings.ContainsAny(v, "\\\n\"") {
				l.escape[i/64] |= 1 << (i % 64)
			}
		}
	}
	return l
}

// slot returns the slot of the index holding key k, or the empty one
// where it would go.
func (l *layout) slot(k discovery.Key) int {
	mask := len(l.index) - 1
	for i := int(maphash.Comparable(l.seed, k)) & mask; ; i = (i + 1) & mask {
		if p := l.index[i]; p == 0 || l.targets[p-1].Key == k {
			return i
		}
	}
}

// find returns the position of the target with key k, -1 when none.
func (l *layout) find(k discovery.Key) int {
	return int(l.index[l.slot(k)]) - 1
}

// view is the state of every target of a layout as one refresh left it.
// It is not modified once published: a scrape renders from it without a
// lock, holding it through readers.
type view struct {
	layout *layout
	slots  []slot
	// ext holds the listener, owner and OOM kill count of the slots that
	// have any: a target where nothing listens has none.
	ext []slotExt
	// procs are the owners of the sockets, one per process.
	procs []*Process
	// rare holds the whole State of the targets with more to say than a
	// slot holds: a php-fpm pool, restarts, a saturation reason.
	rare    []State
	readers atomic.Int32
}

// slot is a target's state in 8 bytes: what a target where nothing
// listens has, and where the rest is.
type slot struct {
	// ext indexes view.rare plus one when flags has slotRare, else
	// view.ext plus one; 0 when the target has no listener, owner or
	// OOM kill count.
	ext    int32
	listen ListenState
	flags  uint8
}

// slotExt is the rest of a slot's state, 20 bytes.
type slotExt struct {
	listener Listener
	// owner indexes view.procs plus one; 0 when unknown.
	owner    uint32
	oomKills uint32
}

// Flags of a slot.
const (
	slotPresent = 1 << iota // the target listens on this host
	slotOOMKnown
	slotSaturated
	slotSaturationKnown
	slotRare // the state is in view.rare
)

// fitsSlot reports whether a slot can hold st.
func (st *State) fitsSlot() bool {
	return st.Restarts == 0 && st.LastRestart.IsZero() && st.Pool == nil && st.Status == nil &&
		st.StatusCause == "" && !st.statusSelf && st.SaturationWhy == "" && (st.OOMKnown || st.OOMKills == 0) &&
		st.OOMKills <= math.MaxUint32
}

// extOf returns the slot's record in v.ext, nil when it has none.
func (v *view) extOf(s *slot) *slotExt {
	if s.ext <= 0 || s.flags&slotRare != 0 {
		return nil
	}
	return &v.ext[s.ext-1]
}

// setExt stores e as slot s's record, reusing the one it has.
func (v *view) setExt(s *slot, e slotExt) {
	if e == (slotExt{}) {
		s.ext = 0
		return
	}
	if x := v.extOf(s); x != nil {
		*x = e
		return
	}
	v.ext = append(v.ext, e)
	s.ext = int32(len(v.ext))
}

// put stores st at position i; owner is st.Owner's position in v.procs
// plus one (0 for none).
func (v *view) put(i int, st *State, owner uint32) {
	s := &v.slots[i]
	if !st.fitsSlot() {
		v.rare = append(v.rare, *st)
		*s = slot{flags: slotPresent | slotRare, ext: int32(len(v.rare))}
		return
	}
	v.setExt(s, slotExt{owner: owner, oomKills: uint32(st.OOMKills), listener: st.Listener})
	s.listen, s.flags = st.Listen, slotPresent
	if st.OOMKnown {
		s.flags |= slotOOMKnown
	}
	if st.Saturated {
		s.flags |= slotSaturated
	}
	if st.SaturationKnown {
		s.flags |= slotSaturationKnown
	}
}

// state returns the state at position i; ok is false when the target
// does not listen on this host.
func (v *view) state(i int) (State, bool) {
	s := &v.slots[i]
	if s.flags&slotPresent == 0 {
		return State{}, false
	}
	if s.flags&slotRare != 0 {
		return v.rare[s.ext-1], true
	}
	st := State{Listen: s.listen, OOMKnown: s.flags&slotOOMKnown != 0, Saturated: s.flags&slotSaturated != 0,
		SaturationKnown: s.flags&slotSaturationKnown != 0}
	if e := v.extOf(s); e != nil {
		st.Listener, st.OOMKills = e.listener, uint64(e.oomKills)
		if e.owner > 0 {
			st.Owner = v.procs[e.owner-1]
		}
	}
	return st, true
}

// reset makes v an empty view of l, reusing its memory.
func (v *view) reset(l *layout) {
	v.layout = l
	if cap(v.slots) >= len(l.targets) {
		v.slots = v.slots[:len(l.targets)]
		clear(v.slots)
	} else {
		v.slots = make([]slot, len(l.targets))
	}
	v.ext = v.ext[:0]
	clear(v.rare)
	v.rare = v.rare[:0]
	clear(v.procs)
	v.procs = v.procs[:0]
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
	empty := newLayout(nil)
	m := &Monitor{opts: opts, logger: opts.Logger, layout: empty, cur: &view{layout: empty},
		want: map[uint32]struct{}{}, procs: map[int]int32{}, ooms: map[string]oomRead{}, fpmSet: map[fpmKey]bool{}}
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

// address returns where a target may listen on this host: a socket path,
// or a literal IP address and port; ok is false for neither.
func address(t *discovery.Target) (unix string, tcp netip.AddrPort, ok bool) {
	if t.Probe == nil || t.Probe.Address == "" {
		return "", netip.AddrPort{}, false
	}
	if t.Probe.Network == "unix" {
		return t.Probe.Address, netip.AddrPort{}, true
	}
	ap, err := netip.ParseAddrPort(t.Probe.Address)
	if err != nil {
		return "", netip.AddrPort{}, false
	}
	return "", ap, true
}

// follow makes the layout that of targets, when they changed since the
// last refresh, and carries the trackers of the targets that stay.
func (m *Monitor) follow(targets []*discovery.Target) {
	l := m.layout
	j := 0
	same := true
	for _, t := range targets {
		if _, _, ok := address(t); !ok {
			continue
		}
		if j >= len(l.targets) || l.targets[j] != t {
			same = false
			break
		}
		j++
	}
	if same && j == len(l.targets) {
		return
	}
	n := 0
	for _, t := range targets {
		if _, _, ok := address(t); ok {
			n++
		}
	}
	kept := make([]*discovery.Target, 0, n)
	for _, t := range targets {
		if _, _, ok := address(t); ok {
			kept = append(kept, t)
		}
	}
	nl := newLayout(kept)
	// First the old position (plus one) of each target whose tracker
	// is not empty, to size the new trackers exactly.
	trackers := make([]int32, len(kept))
	n = 0
	for i, t := range kept {
		if o := l.find(t.Key); o >= 0 && m.trackers[o] > 0 && m.tracked[m.trackers[o]-1] != (tracker{}) {
			trackers[i] = int32(o + 1)
			n++
		}
	}
	tracked := make([]tracker, 0, n)
	var restarts []restartRecord
	for i, o := range trackers {
		if o == 0 {
			continue
		}
		tr := m.trackerOf(int(o - 1))
		if tr.restart > 0 {
			restarts = append(restarts, m.restarts[tr.restart-1])
			tr.restart = int32(len(restarts))
		}
		tracked = append(tracked, tr)
		trackers[i] = int32(len(tracked))
	}
	m.layout, m.trackers, m.tracked, m.restarts = nl, trackers, tracked, restarts
}

// Refresh reads everything once and publishes the new state.
func (m *Monitor) Refresh(ctx context.Context) {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	start := m.opts.Now()

	// Find: targets with a socket path or a literal IP address.
	m.follow(m.opts.Targets())
	l := m.layout

	// Read: the kernel's listeners, in one dump.
	var (
		lis *Listeners
		err error
	)
	if len(l.targets) > 0 {
		lis, err = dumpListeners(m.dumped[0], m.dumped[1])
		if lis != nil {
			m.dumped = [2]int{len(lis.tcp), len(lis.unix)}
		}
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
	v := m.spare
	if v == nil || v.readers.Load() != 0 {
		v = &view{}
	}
	m.spare = nil
	v.reset(l)
	local := localAddrs()
	clear(m.want)
	for i, t := range l.targets {
		unix, tcp, _ := address(t)
		s := &v.slots[i]
		var ln Listener
		switch {
		case lis == nil:
			if unix == "" && !local(tcp.Addr()) {
				m.setTracker(i, tracker{})
				continue
			}
		case unix != "":
			s.listen, ln = lookupUnix(lis, unix)
		default:
			if l, ok := lis.TCP(tcp, local); ok {
				s.listen, ln = Listening, l
			} else if local(tcp.Addr()) {
				s.listen = NotListening
			} else {
				// Not on this host: nothing to say.
				m.setTracker(i, tracker{})
				continue
			}
		}
		s.flags = slotPresent
		v.setExt(s, slotExt{listener: ln})
		if s.listen == Listening {
			m.want[ln.Inode] = struct{}{}
		}
	}

	// Read: the processes behind the sockets, in at most one pass.
	clear(m.procs)
	owners := m.proc != nil && len(m.want) > 0
	if owners {
		ss := m.proc.owners(m.want)
		if ss.Scanned {
			m.logger.Debug("scanned /proc for socket owners", "descriptors", ss.FDs, "unreadable_processes", ss.Unreadable)
		}
	}

	// Attribute: owners, restarts, OOM kills, php-fpm pools.
	clear(m.fpmSet)
	clear(m.ooms)
	clear(m.fpmOf)
	m.fpmOf = m.fpmOf[:0]
	clear(m.knownOf)
	m.knownOf = m.knownOf[:0]
	now := m.opts.Now()
	for i, t := range l.targets {
		s := &v.slots[i]
		if s.flags&slotPresent == 0 {
			continue
		}
		st := State{Listen: s.listen}
		if e := v.extOf(s); e != nil {
			st.Listener = e.listener
		}
		trv := m.trackerOf(i)
		tr := &trv
		var owner uint32
		if st.Listen == Listening {
			if ref, ok := m.owner(owners, st.Listener.Inode); ok {
				pid := int(ref.pid)
				j, ok := m.procs[pid]
				if !ok {
					j = -1
					if p, err := m.proc.process(pid); err == nil {
						v.procs = append(v.procs, p)
						j = int32(len(v.procs) - 1)
						m.procs[pid] = j
					}
				}
				if j >= 0 {
					st.Owner, owner = v.procs[j], uint32(j+1)
				}
			}
			m.restart(tr, &st, m.intern(v, owner), now)
		}
		if st.Owner != nil && st.Owner.Cgroup.file != "" {
			tr.cg = m.intern(v, owner)
		}
		if tr.cg != 0 {
			// Many targets share one backend, hence one cgroup: read
			// each counter file once per refresh.
			cg := &m.known[tr.cg-1].Cgroup
			f := cg.file
			r, ok := m.ooms[f]
			if !ok {
				r.n, r.err = cg.oomKills()
				m.ooms[f] = r
			}
			if r.err == nil {
				st.OOMKills, st.OOMKnown = r.n, true
			}
		}
		if tr.restart > 0 {
			rec := m.restarts[tr.restart-1]
			st.Restarts, st.LastRestart = rec.n, rec.last
		}
		m.setTracker(i, trv)
		if st.Owner != nil {
			for len(m.fpmOf) < len(v.procs) {
				m.fpmOf = append(m.fpmOf, fpmCheck{})
			}
			fc := &m.fpmOf[owner-1]
			if !fc.asked {
				fc.config, fc.ok = isPHPFPM(st.Owner.Cmdline)
				fc.asked = true
			}
			if config, ok := fc.config, fc.ok; ok && config != "" {
				k := fpmKey{pid: st.Owner.PID, startTicks: st.Owner.startTicks, config: config}
				m.fpmSet[k] = true
				pools, err := m.fpm.pools(st.Owner, config, now)
				if err != nil {
					t.Logger().Debug("cannot read php-fpm configuration", "config", config, "err", err)
				}
				unix, tcp, _ := address(t)
				for j := range pools {
					network, addr := "tcp", tcp.String()
					if unix != "" {
						network, addr = "unix", unix
					}
					if pools[j].listensOn(network, addr) {
						p := pools[j]
						st.Pool = &p
						break
					}
				}
			}
		}
		v.put(i, &st, owner)
	}
	m.fpm.trim(m.fpmSet)
	// The status reads hold pointers into v.rare: nothing is appended
	// to it until they are done.
	var reads statusReads
	for i := range v.rare {
		if st := &v.rare[i]; st.Pool != nil && st.Pool.StatusPath != "" {
			reads.add(st)
		}
	}
	reads.run(ctx, m.opts.StatusTimeout, m.logger)

	for i := range l.targets {
		s := &v.slots[i]
		if s.flags&slotPresent == 0 {
			continue
		}
		if s.flags&slotRare != 0 {
			saturation(&v.rare[s.ext-1])
			continue
		}
		st, _ := v.state(i)
		saturation(&st)
		var owner uint32
		if e := v.extOf(s); e != nil {
			owner = e.owner
		}
		v.put(i, &st, owner)
	}

	m.compactRestarts()
	m.compactKnown()

	ns, nsErr := m.readNetStat()
	m.mu.Lock()
	// The view before keeps its layout's targets: once the target set
	// changed, keeping it as the spare would keep the previous target
	// set alive until the next refresh (about 5 MB at 10,000 targets).
	if m.cur.layout == v.layout {
		m.spare = m.cur
	}
	m.cur = v
	m.netstat, m.nsOK = ns, nsErr == nil
	m.lastErr = err
	m.duration = m.opts.Now().Sub(start)
	m.mu.Unlock()
}

// trackerOf returns the tracker of the target at position i.
func (m *Monitor) trackerOf(i int) tracker {
	if r := m.trackers[i]; r > 0 {
		return m.tracked[r-1]
	}
	return tracker{}
}

// setTracker stores tr as the tracker of the target at position i; an
// empty one takes no room unless the target had one (which stays: at
// most one a target, and follow drops the empty ones).
func (m *Monitor) setTracker(i int, tr tracker) {
	if r := m.trackers[i]; r > 0 {
		m.tracked[r-1] = tr
		return
	}
	if tr != (tracker{}) {
		m.tracked = append(m.tracked, tr)
		m.trackers[i] = int32(len(m.tracked))
	}
}

// owner returns the owner of a socket found by this refresh, if it
// looked (read).
func (m *Monitor) owner(read bool, ino uint32) (fdRef, bool) {
	if !read {
		return fdRef{}, false
	}
	return m.proc.owner(ino)
}

// compactRestarts drops the restart records of targets that forgot them
// (they left this host), once they are the larger part.
func (m *Monitor) compactRestarts() {
	live := 0
	for i := range m.tracked {
		if m.tracked[i].restart > 0 {
			live++
		}
	}
	if len(m.restarts) <= 2*live+16 {
		return
	}
	var out []restartRecord
	for i := range m.tracked {
		if tr := &m.tracked[i]; tr.restart > 0 {
			out = append(out, m.restarts[tr.restart-1])
			tr.restart = int32(len(out))
		}
	}
	m.restarts = out
}

// restart counts a change of the listening socket or its owner against
// the last known ones: a backend that stopped and started again has a new
// socket (same path, new inode) and a new process. owner is st.Owner's
// position in m.known plus one (0 for none).
func (m *Monitor) restart(tr *tracker, st *State, owner int32, now time.Time) {
	changed := false
	if tr.inode != 0 && tr.inode != st.Listener.Inode {
		changed = true
	}
	if tr.owner != 0 && st.Owner != nil && !m.known[tr.owner-1].same(st.Owner) {
		changed = true
	}
	if changed {
		if tr.restart == 0 {
			m.restarts = append(m.restarts, restartRecord{})
			tr.restart = int32(len(m.restarts))
		}
		rec := &m.restarts[tr.restart-1]
		rec.n++
		rec.last = now
		if st.Owner != nil {
			rec.last = st.Owner.Start
		}
	}
	tr.inode = st.Listener.Inode
	if st.Owner != nil {
		tr.owner = owner
	} else if changed {
		tr.owner = 0
	}
}

// intern returns the position plus one in m.known of the process at
// position owner-1 of v.procs, adding it at its first use this refresh;
// 0 for owner 0.
func (m *Monitor) intern(v *view, owner uint32) int32 {
	if owner == 0 {
		return 0
	}
	for len(m.knownOf) < len(v.procs) {
		m.knownOf = append(m.knownOf, 0)
	}
	k := &m.knownOf[owner-1]
	if *k == 0 {
		m.known = append(m.known, v.procs[owner-1])
		*k = int32(len(m.known))
	}
	return *k
}

// compactKnown drops the processes no tracker names any more, once
// m.known has grown to twice what the last compaction kept: every
// refresh adds its owners again.
func (m *Monitor) compactKnown() {
	if len(m.known) <= 2*m.knownKept+16 {
		return
	}
	remap := make([]int32, len(m.known))
	var out []*Process
	ref := func(r *int32) {
		if *r == 0 {
			return
		}
		if remap[*r-1] == 0 {
			out = append(out, m.known[*r-1])
			remap[*r-1] = int32(len(out))
		}
		*r = remap[*r-1]
	}
	for i := range m.tracked {
		ref(&m.tracked[i].owner)
		ref(&m.tracked[i].cg)
	}
	clear(m.known)
	m.known, m.knownKept = out, len(out)
}

// lookupUnix finds the listener of a socket path: the socket whose bound
// file is the one at the path now.
func lookupUnix(lis *Listeners, path string) (ListenState, Listener) {
	var (
		fi  syscall.Stat_t
		err error
		p   cPath
	)
	if p.set(path) {
		err = p.stat(&fi)
	} else {
		err = syscall.Stat(path, &fi)
	}
	if err != nil {
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
	v := m.cur
	i := v.layout.find(k)
	if i < 0 {
		return State{}, false
	}
	return v.state(i)
}

// Each calls fn for each local target in configuration order, under the
// read lock: fn must not block, and st is valid only during the call.
func (m *Monitor) Each(fn func(t *discovery.Target, st *State)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	m.cur.each(fn)
}

func (v *view) each(fn func(t *discovery.Target, st *State)) {
	// One State for all the calls: st escapes through fn.
	var st State
	var ok bool
	for i, t := range v.layout.targets {
		if st, ok = v.state(i); ok {
			fn(t, &st)
		}
	}
}

// acquire returns the published view, held until release: a refresh
// does not reuse it meanwhile.
func (m *Monitor) acquire() *view {
	m.mu.RLock()
	defer m.mu.RUnlock()
	m.cur.readers.Add(1)
	return m.cur
}

func (v *view) release() { v.readers.Add(-1) }

// NetStat returns the namespace's listen counters; ok is false when
// /proc/net/netstat could not be read.
func (m *Monitor) NetStat() (NetStat, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.netstat, m.nsOK
}
