package errorlog

import (
	"bytes"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// Options configure a Reader.
type Options struct {
	Find FindOptions
	// PollInterval is the fallback check of every file, for what inotify
	// does not report (network filesystems, a watch that failed).
	PollInterval time.Duration
	// DrainIdle is how long a rotated-away file is still read after its
	// last write: nginx writes to it until it reopens its logs.
	DrainIdle time.Duration
	Logger    *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Reader reads nginx's error logs and counts what they say per target.
type Reader struct {
	opts  Options
	index atomic.Pointer[Index]
	c     *counters

	mu      sync.Mutex
	paths   []string
	changed chan struct{}
	files   atomic.Pointer[[numFileStates]int]
}

// New returns a Reader with an empty target set; Update gives it one.
func New(opts Options) *Reader {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 5 * time.Second
	}
	if opts.DrainIdle <= 0 {
		opts.DrainIdle = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Reader{opts: opts, c: newCounters(), changed: make(chan struct{}, 1)}
	r.index.Store(NewIndex(nil))
	r.files.Store(&[numFileStates]int{})
	return r
}

// Update applies a newly loaded target set: the attribution index, and
// the logs its configuration writes. Counters of targets that left the
// set are dropped; those of the others carry on.
func (r *Reader) Update(set *discovery.Set) {
	x := NewIndex(set)
	r.c.mu.Lock()
	// Under the counters' lock: they follow the index's positions.
	r.index.Store(x)
	r.c.prune(x)
	r.c.mu.Unlock()
	var paths []string
	if set != nil {
		paths = Find(set.ErrorLogs, r.opts.Find, r.opts.Logger)
	} else {
		paths = Find(nil, r.opts.Find, r.opts.Logger)
	}
	r.mu.Lock()
	r.paths = paths
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Paths lists the files the Reader tails.
func (r *Reader) Paths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.paths...)
}

// Snapshot copies the counters for a scrape.
func (r *Reader) Snapshot() Snapshot {
	s := r.c.snapshot(true)
	s.Files = *r.files.Load()
	return s
}

// Totals is Snapshot without Targets, for a reader that takes the
// targets' counts from ReadCounts: no map per target.
func (r *Reader) Totals() Snapshot {
	s := r.c.snapshot(false)
	s.Files = *r.files.Load()
	return s
}

// UnknownPeers lists, per upstream, the peers nginx logged errors for
// that no target of the loaded configuration yields although their
// upstream is known (at most 16 per upstream and protocol): typically an
// address from a DNS answer that has since changed, which nginx keeps
// using until it reloads.
func (r *Reader) UnknownPeers() map[string][]UnknownPeer {
	return r.c.unknownPeerList()
}

// lineState follows one source's lines: the part of a line not yet
// ended, and the continuation lines of a multi-line entry.
type lineState struct {
	carry []byte
	// overlong: the current line passed MaxLine and is being skipped.
	overlong bool
	// cont is how many more bytes may belong to the current entry:
	// "FastCGI sent in stderr" copies the application's text with its
	// newlines, within the entry's NGX_MAX_ERROR_STR bytes.
	cont int
}

// consume splits chunk into lines and counts each, holding the lock once.
func (r *Reader) consume(st *lineState, chunk []byte) {
	now := r.opts.Now()
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	x := r.index.Load()
	for len(chunk) > 0 {
		nl := bytes.IndexByte(chunk, '\n')
		if nl < 0 {
			if st.overlong {
				return
			}
			if len(st.carry)+len(chunk) > MaxLine {
				st.overlong = true
				st.carry = st.carry[:0]
				return
			}
			st.carry = append(st.carry, chunk...)
			return
		}
		line := chunk[:nl]
		chunk = chunk[nl+1:]
		if st.overlong {
			st.overlong = false
			r.c.lines[LineUnparsed]++
			st.cont = 0
			continue
		}
		if len(st.carry) > 0 {
			if len(st.carry)+len(line) > MaxLine {
				st.carry = st.carry[:0]
				r.c.lines[LineUnparsed]++
				st.cont = 0
				continue
			}
			st.carry = append(st.carry, line...)
			line = st.carry
			st.carry = st.carry[:0]
		} else if len(line) > MaxLine {
			r.c.lines[LineUnparsed]++
			st.cont = 0
			continue
		}
		r.line(st, x, line, now)
	}
}

// flush counts a last line that never got its newline.
func (r *Reader) flush(st *lineState) {
	if len(st.carry) == 0 && !st.overlong {
		return
	}
	r.consume(st, []byte{'\n'})
}

// line counts one physical line; the caller holds r.c.mu.
func (r *Reader) line(st *lineState, x *Index, line []byte, now time.Time) {
	if st.continues(line) {
		r.c.lines[LineOther]++
		return
	}
	var e Entry
	st.parse(line, &e)
	r.count(x, &e, now)
}

// continues reports whether line continues the current multi-line entry.
func (st *lineState) continues(line []byte) bool {
	if st.cont <= 0 {
		return false
	}
	st.cont -= len(line) + 1
	if endsEntry(line) {
		st.cont = 0
	}
	return true
}

// parse parses the first line of an entry and notes whether continuation
// lines may follow.
func (st *lineState) parse(line []byte, e *Entry) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	Parse(line, e)
	if e.Kind == KindOther && e.Stage == StageNone && bytes.HasPrefix(e.Message, []byte(`FastCGI sent in stderr: "`)) {
		st.cont = MaxLine - len(line) - 1
	}
}

// endsEntry reports whether a continuation line carries the end of a
// FastCGI stderr entry: the closing quote of the application's text, then
// " while ACTION, client: " (ngx_http_fastcgi_process_header).
func endsEntry(line []byte) bool {
	for _, a := range actions {
		if i, _, _ := indexAction(line, a.text); i > 0 && line[i-1] == '"' {
			return true
		}
	}
	return false
}

// count attributes one parsed entry; the caller holds r.c.mu.
func (r *Reader) count(x *Index, e *Entry, now time.Time) {
	c := r.c
	switch e.Kind {
	case KindOther:
		c.lines[LineOther]++
		return
	case KindUnparsed:
		c.lines[LineUnparsed]++
		return
	case KindNoLiveUpstreams:
		if u, ok := x.Upstream(e.Peer); ok {
			c.noLive[u]++
			c.lines[LineMatched]++
		} else {
			c.lines[LineUnattributed]++
		}
		return
	}
	ri := reasonIndex[e.Reason]
	a := x.Attribute(e.Protocol, e.Peer)
	if a.Target == nil && len(e.Peer) == 0 && len(e.Host) > 0 {
		a = x.AttributeHost(e.Host)
	}
	if a.Target == nil {
		c.lines[LineUnattributed]++
		c.unattributed[ri]++
		if a.Upstream != "" {
			r.unknownPeer(a, a.Protocol, e.Reason, ri, now)
		}
		return
	}
	c.lines[LineMatched]++
	// x is the index of the last Update, which moved the counters to
	// its positions; follow covers an index given otherwise.
	c.follow(x)
	if c.counts == nil {
		c.counts = make([]int32, len(x.targets))
	}
	tc := c.counts[a.pos]
	if tc == 0 {
		tc = c.newRecord()
		c.counts[a.pos] = tc
	}
	c.add(tc-1, ri, e.Stage == StageBody, 1)
	c.slab[tc-1].setLast(now)
}

// unknownPeer records a peer of a known upstream that no target yields.
func (r *Reader) unknownPeer(a Attribution, protocol string, reason prober.Reason, ri int, now time.Time) {
	c := r.c
	k := unknownKey{upstream: a.Upstream, protocol: protocol}
	counts := c.unknown[k]
	if counts == nil {
		counts = &[numReasons]uint64{}
		c.unknown[k] = counts
	}
	counts[ri]++
	peers := c.unknownPeers[k]
	for i := range peers {
		if peers[i].Address == a.Peer {
			peers[i].Errors++
			peers[i].Last = now
			return
		}
	}
	if len(peers) >= maxUnknownPeers {
		return
	}
	c.unknownPeers[k] = append(peers, UnknownPeer{Upstream: a.Upstream, Protocol: protocol, Address: a.Peer, Errors: 1, Last: now})
	r.opts.Logger.Warn("nginx logged an error for a peer that no server of the configuration yields: nginx still uses an address the configuration no longer resolves to (a stale DNS answer); reload nginx",
		"upstream", a.Upstream, "protocol", protocol, "peer", a.Peer, "reason", string(reason))
}

// setFileStates publishes how many sources are in each state.
func (r *Reader) setFileStates(s [numFileStates]int) {
	r.files.Store(&s)
}
