package errorlog

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// LineResult is what became of one physical line.
type LineResult uint8

// Line results, the `result` label of
// nginx_upstream_exporter_log_lines_total.
const (
	// LineMatched: an upstream error attributed to exactly one target.
	LineMatched LineResult = iota
	// LineUnattributed: an upstream error (or "no live upstreams") that
	// no single target of the loaded configuration owns.
	LineUnattributed
	// LineOther: an entry that is no upstream error, or a continuation.
	LineOther
	// LineUnparsed: not an nginx entry, longer than nginx writes, or an
	// upstream error whose message has no reason.
	LineUnparsed
	numLineResults
)

var lineResultNames = [numLineResults]string{"matched", "unattributed", "other", "unparsed"}

// String is the label value.
func (r LineResult) String() string { return lineResultNames[r] }

// LineResults lists every result in documentation order.
func LineResults() []LineResult {
	return []LineResult{LineMatched, LineUnattributed, LineOther, LineUnparsed}
}

// FileState is the state of one log source.
type FileState uint8

// File states, the `state` label of nginx_upstream_exporter_log_files.
const (
	FileTailing FileState = iota
	FileMissing
	// FileUnreadable: permissions, a FIFO or device in place of the
	// file, a symlink loop. Retried.
	FileUnreadable
	numFileStates
)

var fileStateNames = [numFileStates]string{"tailing", "missing", "unreadable"}

// String is the label value.
func (s FileState) String() string { return fileStateNames[s] }

// FileStates lists every state in documentation order.
func FileStates() []FileState { return []FileState{FileTailing, FileMissing, FileUnreadable} }

// reasonIndex numbers the vocabulary for fixed-size counter arrays.
var reasonIndex = func() map[prober.Reason]int {
	m := make(map[prober.Reason]int, len(prober.Reasons))
	for i, r := range prober.Reasons {
		m[r] = i
	}
	return m
}()

const numReasons = len(prober.Reasons)

// A reason's index fits targetCounts' byte.
var _ [255 - numReasons]struct{}

// targetCounts are the counters of one target, made at its first error,
// held by value in one slab for all targets (counters.slab): 24 bytes. A target
// fails for one or two reasons, seldom more: the first count is inline,
// the others chained in counters.extra, rather than an array of every
// reason and stage (300 bytes).
type targetCounts struct {
	// last is when the last error was read, in Unix nanoseconds (8
	// bytes where a time.Time takes 24); 0 for never.
	last  int64
	first reasonCount // n is 0 until the first count
}

// setLast records t as the time of the record's last error.
func (tc *targetCounts) setLast(t time.Time) { tc.last = t.UnixNano() }

// lastTime returns the time of the record's last error, the zero Time
// for none.
func (tc *targetCounts) lastTime() time.Time {
	if tc.last == 0 {
		return time.Time{}
	}
	return time.Unix(0, tc.last)
}

// reasonCount counts the errors of one reason and stage.
type reasonCount struct {
	n      uint64
	reason uint8 // index in prober.Reasons
	body   bool
	// next indexes counters.extra plus one: the target's next count;
	// 0 ends the list.
	next int32
}

// add counts n errors to the record r of c.slab; c.mu is held.
func (c *counters) add(r int32, ri int, body bool, n uint64) {
	rc := &c.slab[r].first
	if rc.n == 0 {
		*rc = reasonCount{n: n, reason: uint8(ri), body: body}
		return
	}
	for {
		if int(rc.reason) == ri && rc.body == body {
			rc.n += n
			return
		}
		if rc.next == 0 {
			break
		}
		rc = &c.extra[rc.next-1]
	}
	c.extra = append(c.extra, reasonCount{n: n, reason: uint8(ri), body: body})
	rc.next = int32(len(c.extra))
}

// each calls fn with each count of record r of c.slab.
func (c *counters) each(r int32, fn func(rc *reasonCount)) {
	rc := &c.slab[r].first
	if rc.n == 0 {
		return
	}
	for {
		fn(rc)
		if rc.next == 0 {
			return
		}
		rc = &c.extra[rc.next-1]
	}
}

// newRecord appends an empty record to c.slab and returns its index
// plus one.
func (c *counters) newRecord() int32 {
	c.slab = append(c.slab, targetCounts{})
	return int32(len(c.slab))
}

// unknownKey is an upstream and protocol whose peer matched no target.
type unknownKey struct {
	upstream, protocol string
}

// UnknownPeer is a peer nginx used that no target of the configuration
// yields, in an upstream that is known.
type UnknownPeer struct {
	Upstream, Protocol, Address string
	Errors                      uint64
	Last                        time.Time
}

// maxUnknownPeers bounds the peers remembered per upstream and protocol:
// their addresses come from log text.
const maxUnknownPeers = 16

// counters hold everything exported; safe for concurrent use.
type counters struct {
	mu sync.Mutex
	// cur is the index the lines are attributed with (Reader.index);
	// counts holds, at a target's position in it, the index in slab
	// plus one of the target's counters, 0 until its first error.
	// counts is nil while no target has any: 4 bytes a target once one
	// has, and 24 a target with errors, in three allocations for all.
	cur          *Index
	counts       []int32
	slab         []targetCounts
	extra        []reasonCount
	noLive       map[string]uint64
	unattributed [numReasons]uint64
	unknown      map[unknownKey]*[numReasons]uint64
	unknownPeers map[unknownKey][]UnknownPeer
	lines        [numLineResults]uint64
}

func newCounters() *counters {
	return &counters{
		cur:          NewIndex(nil),
		noLive:       map[string]uint64{},
		unknown:      map[unknownKey]*[numReasons]uint64{},
		unknownPeers: map[unknownKey][]UnknownPeer{},
	}
}

// prune moves the counters to the positions of x, the new index, and
// forgets those of targets and upstreams that left the set; c.mu is
// held.
func (c *counters) prune(x *Index) {
	c.follow(x)
	for u := range c.noLive {
		if !x.hasUpstream(u) {
			delete(c.noLive, u)
		}
	}
	for k := range c.unknown {
		if !x.hasUpstream(k.upstream) {
			delete(c.unknown, k)
			delete(c.unknownPeers, k)
		}
	}
}

// follow moves the targets' counters to their positions in x and drops
// those of targets x does not have, copying the others into a new slab
// of their exact size; c.mu is held.
func (c *counters) follow(x *Index) {
	if c.cur == x {
		return
	}
	var old map[discovery.Key]int32
	for i, r := range c.counts {
		if r != 0 {
			if old == nil {
				old = map[discovery.Key]int32{}
			}
			k := c.cur.targets[i].Key
			if o := old[k]; o != 0 && o != r {
				c.merge(o-1, r-1)
				continue
			}
			old[k] = r
		}
	}
	slab, extra := c.slab, c.extra
	c.cur, c.counts, c.slab, c.extra = x, nil, nil, nil
	if len(old) == 0 {
		return
	}
	// Sized for the keys x keeps (a key x has twice is counted twice:
	// rare, and only capacity).
	kept, more := 0, 0
	for _, t := range x.targets {
		if r := old[t.Key]; r > 0 {
			kept++
			for n := slab[r-1].first.next; n != 0; n = extra[n-1].next {
				more++
			}
		}
	}
	c.counts = make([]int32, len(x.targets))
	c.slab = make([]targetCounts, 0, kept)
	c.extra = make([]reasonCount, 0, more)
	for i, t := range x.targets {
		r, ok := old[t.Key]
		switch {
		case !ok:
		case r > 0:
			// The first position of the key: its record is copied,
			// and later positions of the same key share it, one
			// target as before.
			tc := slab[r-1]
			c.slab = append(c.slab, targetCounts{last: tc.last})
			nr := int32(len(c.slab))
			for rc := &tc.first; rc.n > 0; rc = &extra[rc.next-1] {
				c.add(nr-1, int(rc.reason), rc.body, rc.n)
				if rc.next == 0 {
					break
				}
			}
			c.counts[i] = nr
			old[t.Key] = -nr
		default:
			c.counts[i] = -r
		}
	}
}

// TargetErrors are the logged errors of one target.
type TargetErrors struct {
	Key discovery.Key
	// Errors count failures before the response header (502/504);
	// BodyErrors failures while reading the body (truncated responses).
	// Either is nil when it has no count: most targets have errors of
	// one stage, and a scrape copies every target's.
	Errors, BodyErrors map[prober.Reason]uint64
	// Last is when the exporter read the target's last error.
	Last time.Time
}

// UnknownPeerErrors count the errors of peers that belong to no target
// of a known upstream.
type UnknownPeerErrors struct {
	Upstream, Protocol string
	Reason             prober.Reason
	Count              uint64
}

// Snapshot is a consistent copy of the counters, sorted.
type Snapshot struct {
	Targets         []TargetErrors
	NoLiveUpstreams map[string]uint64
	Unattributed    map[prober.Reason]uint64
	UnknownPeers    []UnknownPeerErrors
	Lines           [numLineResults]uint64
	Files           [numFileStates]int
}

// snapshot copies the counters, the targets' only when targets is set
// (Totals).
func (c *counters) snapshot(targets bool) Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{NoLiveUpstreams: make(map[string]uint64, len(c.noLive)), Unattributed: map[prober.Reason]uint64{}, Lines: c.lines}
	// One key at two positions (a set built with a server twice) is
	// one target: its counters add up.
	type counted struct {
		k  discovery.Key
		tc int32
	}
	n := 0
	for _, tc := range c.counts {
		if tc != 0 && targets {
			n++
		}
	}
	all := make([]counted, 0, n)
	s.Targets = make([]TargetErrors, 0, n)
	for i, tc := range c.counts {
		if tc != 0 && targets {
			all = append(all, counted{c.cur.targets[i].Key, tc})
		}
	}
	slices.SortStableFunc(all, func(a, b counted) int { return keyCompare(a.k, b.k) })
	for i, e := range all {
		if i > 0 && all[i-1].k == e.k {
			if !slices.ContainsFunc(all[:i], func(o counted) bool { return o.tc == e.tc }) {
				c.addCounts(&s.Targets[len(s.Targets)-1], e.tc-1)
			}
			continue
		}
		te := TargetErrors{Key: e.k}
		c.addCounts(&te, e.tc-1)
		s.Targets = append(s.Targets, te)
	}
	for u, n := range c.noLive {
		s.NoLiveUpstreams[u] = n
	}
	for i, r := range prober.Reasons {
		if c.unattributed[i] > 0 {
			s.Unattributed[r] = c.unattributed[i]
		}
	}
	for k, a := range c.unknown {
		for i, r := range prober.Reasons {
			if a[i] > 0 {
				s.UnknownPeers = append(s.UnknownPeers, UnknownPeerErrors{Upstream: k.upstream, Protocol: k.protocol, Reason: r, Count: a[i]})
			}
		}
	}
	sort.Slice(s.UnknownPeers, func(i, j int) bool {
		a, b := s.UnknownPeers[i], s.UnknownPeers[j]
		if a.Upstream != b.Upstream {
			return a.Upstream < b.Upstream
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		return a.Reason < b.Reason
	})
	return s
}

// addCounts adds the counts of record r of c.slab to te.
func (c *counters) addCounts(te *TargetErrors, r int32) {
	c.each(r, func(rc *reasonCount) {
		m := &te.Errors
		if rc.body {
			m = &te.BodyErrors
		}
		if *m == nil {
			*m = map[prober.Reason]uint64{}
		}
		(*m)[prober.Reasons[rc.reason]] += rc.n
	})
	if last := c.slab[r].lastTime(); last.After(te.Last) {
		te.Last = last
	}
}

// merge adds record o's counts to record r's, both of c.slab.
func (c *counters) merge(r, o int32) {
	c.each(o, func(rc *reasonCount) {
		// add may grow c.extra: rc is read before.
		ri, body, n := int(rc.reason), rc.body, rc.n
		c.add(r, ri, body, n)
	})
	if last := c.slab[o].last; last > c.slab[r].last {
		c.slab[r].last = last
	}
}

func keyCompare(a, b discovery.Key) int {
	return cmp.Or(strings.Compare(a.Upstream, b.Upstream), strings.Compare(a.Server, b.Server),
		strings.Compare(a.Address, b.Address), strings.Compare(a.Protocol, b.Protocol))
}

// unknownPeers copies the unknown peers per upstream.
func (c *counters) unknownPeerList() map[string][]UnknownPeer {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]UnknownPeer{}
	for k, ps := range c.unknownPeers {
		out[k.upstream] = append(out[k.upstream], ps...)
	}
	for _, ps := range out {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Address < ps[j].Address })
	}
	return out
}
