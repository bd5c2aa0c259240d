package errorlog

import (
	"sort"
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

// targetCounts are the counters of one target.
type targetCounts struct {
	header [numReasons]uint64
	body   [numReasons]uint64
	last   time.Time
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
	mu           sync.Mutex
	targets      map[discovery.Key]*targetCounts
	noLive       map[string]uint64
	unattributed [numReasons]uint64
	unknown      map[unknownKey]*[numReasons]uint64
	unknownPeers map[unknownKey][]UnknownPeer
	lines        [numLineResults]uint64
}

func newCounters() *counters {
	return &counters{
		targets:      map[discovery.Key]*targetCounts{},
		noLive:       map[string]uint64{},
		unknown:      map[unknownKey]*[numReasons]uint64{},
		unknownPeers: map[unknownKey][]UnknownPeer{},
	}
}

// prune forgets the counters of targets and upstreams that left the set.
func (c *counters) prune(x *Index) {
	keep := make(map[discovery.Key]bool, len(x.targets))
	for _, t := range x.targets {
		keep[t.Key] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.targets {
		if !keep[k] {
			delete(c.targets, k)
		}
	}
	for u := range c.noLive {
		if !x.upstreams[u] {
			delete(c.noLive, u)
		}
	}
	for k := range c.unknown {
		if !x.upstreams[k.upstream] {
			delete(c.unknown, k)
			delete(c.unknownPeers, k)
		}
	}
}

// TargetErrors are the logged errors of one target.
type TargetErrors struct {
	Key discovery.Key
	// Errors count failures before the response header (502/504);
	// BodyErrors failures while reading the body (truncated responses).
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
	for k, tc := range c.targets {
		te := TargetErrors{Key: k, Errors: map[prober.Reason]uint64{}, BodyErrors: map[prober.Reason]uint64{}, Last: tc.last}
		for i, r := range prober.Reasons {
			if tc.header[i] > 0 {
				te.Errors[r] = tc.header[i]
			}
			if tc.body[i] > 0 {
				te.BodyErrors[r] = tc.body[i]
			}
		}
		s.Targets = append(s.Targets, te)
	}
	sort.Slice(s.Targets, func(i, j int) bool { return keyLess(s.Targets[i].Key, s.Targets[j].Key) })
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

func keyLess(a, b discovery.Key) bool {
	if a.Upstream != b.Upstream {
		return a.Upstream < b.Upstream
	}
	if a.Server != b.Server {
		return a.Server < b.Server
	}
	if a.Address != b.Address {
		return a.Address < b.Address
	}
	return a.Protocol < b.Protocol
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
