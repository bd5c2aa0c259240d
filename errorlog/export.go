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

// targetCounts are the counters of one target, made at its first error.
// A target fails for one or two reasons, seldom more: the counts are a
// short list rather than an array of every reason and stage (300 bytes).
type targetCounts struct {
	last   time.Time
	counts []reasonCount
}

// reasonCount counts the errors of one reason and stage.
type reasonCount struct {
	n      uint64
	reason uint8 // index in prober.Reasons
	body   bool
}

// add counts n errors.
func (tc *targetCounts) add(ri int, body bool, n uint64) {
	for i := range tc.counts {
		if c := &tc.counts[i]; int(c.reason) == ri && c.body == body {
			c.n += n
			return
		}
	}
	tc.counts = append(tc.counts, reasonCount{n: n, reason: uint8(ri), body: body})
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
	// counts holds, at a target's position in it, the target's
	// counters, nil until its first error. counts is nil while no
	// target has any: 8 bytes a target once one has.
	cur          *Index
	counts       []*targetCounts
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
// those of targets x does not have; c.mu is held.
func (c *counters) follow(x *Index) {
	if c.cur == x {
		return
	}
	var old map[discovery.Key]*targetCounts
	for i, tc := range c.counts {
		if tc != nil {
			if old == nil {
				old = map[discovery.Key]*targetCounts{}
			}
			k := c.cur.targets[i].Key
			if o := old[k]; o != nil && o != tc {
				o.merge(tc)
				continue
			}
			old[k] = tc
		}
	}
	c.cur, c.counts = x, nil
	if len(old) > 0 {
		c.counts = make([]*targetCounts, len(x.targets))
		for i, t := range x.targets {
			c.counts[i] = old[t.Key]
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

func (c *counters) snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{NoLiveUpstreams: make(map[string]uint64, len(c.noLive)), Unattributed: map[prober.Reason]uint64{}, Lines: c.lines}
	// One key at two positions (a set built with a server twice) is
	// one target: its counters add up.
	type counted struct {
		k  discovery.Key
		tc *targetCounts
	}
	n := 0
	for _, tc := range c.counts {
		if tc != nil {
			n++
		}
	}
	all := make([]counted, 0, n)
	s.Targets = make([]TargetErrors, 0, n)
	for i, tc := range c.counts {
		if tc != nil {
			all = append(all, counted{c.cur.targets[i].Key, tc})
		}
	}
	slices.SortStableFunc(all, func(a, b counted) int { return keyCompare(a.k, b.k) })
	for i, e := range all {
		if i > 0 && all[i-1].k == e.k {
			if !slices.ContainsFunc(all[:i], func(o counted) bool { return o.tc == e.tc }) {
				addCounts(&s.Targets[len(s.Targets)-1], e.tc)
			}
			continue
		}
		te := TargetErrors{Key: e.k}
		addCounts(&te, e.tc)
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

// addCounts adds tc's counts to te.
func addCounts(te *TargetErrors, tc *targetCounts) {
	for _, c := range tc.counts {
		m := &te.Errors
		if c.body {
			m = &te.BodyErrors
		}
		if *m == nil {
			*m = map[prober.Reason]uint64{}
		}
		(*m)[prober.Reasons[c.reason]] += c.n
	}
	if tc.last.After(te.Last) {
		te.Last = tc.last
	}
}

// merge adds o's counts to tc.
func (tc *targetCounts) merge(o *targetCounts) {
	for _, c := range o.counts {
		tc.add(int(c.reason), c.body, c.n)
	}
	if o.last.After(tc.last) {
		tc.last = o.last
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
