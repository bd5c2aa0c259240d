package errorlog

import (
	"slices"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// Counts is a flat copy of every target's logged errors, sorted by key,
// for readers that go through them once: a scrape, a status page, an API
// answer. A Snapshot gives each target maps of its counts, which such a
// reader builds and drops on every request (thousands of maps when half
// the servers fail); Counts holds two slices, reused by the next
// ReadCounts into the same value.
type Counts struct {
	Targets []TargetCounts
	reasons []ReasonCount
}

// TargetCounts are the logged errors of one target.
type TargetCounts struct {
	Key discovery.Key
	// Last is when the exporter read the target's last error.
	Last time.Time
	// first and n place its counts in Counts.reasons.
	first, n int32
	// rec is its record in the counters' slab plus one while ReadCounts
	// builds the copy; 0 after.
	rec int32
}

// ReasonCount counts a target's errors of one reason, before the
// response header (502/504) or, when Body, while reading the body.
type ReasonCount struct {
	Reason prober.Reason
	Body   bool
	N      uint64
}

// Reasons are t's counts: errors before the header first, then body
// errors, each in the order of prober.Reasons, none zero. t is one of
// c.Targets; the slice is c's storage.
func (c *Counts) Reasons(t *TargetCounts) []ReasonCount {
	return c.reasons[t.first : t.first+t.n]
}

// Find returns the counts of the target with key k, nil when nginx
// logged nothing for it.
func (c *Counts) Find(k discovery.Key) *TargetCounts {
	i, ok := slices.BinarySearchFunc(c.Targets, k, func(t TargetCounts, k discovery.Key) int { return keyCompare(t.Key, k) })
	if !ok {
		return nil
	}
	return &c.Targets[i]
}

// ReadCounts copies the targets' counters into c, reusing its storage.
func (r *Reader) ReadCounts(c *Counts) {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	r.c.readCounts(c)
}

// readCounts is ReadCounts; c.mu is held.
func (c *counters) readCounts(out *Counts) {
	// Every reference into the last copy is dropped: nothing of it is
	// kept alive by a reused Counts.
	clear(out.Targets[:cap(out.Targets)])
	// Sized once: a Counts the pool lost to a collection is allocated at
	// its size rather than grown.
	targets, reasons := 0, 0
	for _, rec := range c.counts {
		if rec != 0 {
			targets++
			c.each(rec-1, func(*reasonCount) { reasons++ })
		}
	}
	all := slices.Grow(out.Targets[:0], targets)
	for i, rec := range c.counts {
		if rec != 0 {
			all = append(all, TargetCounts{Key: c.cur.targets[i].Key, rec: rec})
		}
	}
	slices.SortStableFunc(all, func(a, b TargetCounts) int { return keyCompare(a.Key, b.Key) })
	rs := slices.Grow(out.reasons[:0], reasons)
	// all is compacted in place: a key's entries from start to i keep
	// their counters (the first one's moved to n-1, or rewritten in
	// place with the same counters).
	n, start := 0, 0
	for i := range all {
		e := all[i]
		if n > 0 && all[n-1].Key == e.Key {
			// One key at two positions (a set built with a server twice)
			// is one target: its counters add up, each counted once.
			if !slices.ContainsFunc(all[start:i], func(o TargetCounts) bool { return o.rec == e.rec }) {
				rs = c.addReasons(rs, &all[n-1], e.rec-1)
			}
			continue
		}
		start = i
		t := &all[n]
		*t = TargetCounts{Key: e.Key, first: int32(len(rs)), rec: e.rec}
		rs = c.addReasons(rs, t, e.rec-1)
		n++
	}
	for i := range all[:n] {
		all[i].rec = 0
	}
	clear(all[n:])
	out.Targets, out.reasons = all[:n], rs
}

// addReasons adds the counts of record r of c.slab to t, the last target
// of reasons, keeping them in the order Reasons gives; c.mu is held.
func (c *counters) addReasons(reasons []ReasonCount, t *TargetCounts, r int32) []ReasonCount {
	c.each(r, func(rcp *reasonCount) {
		rc := *rcp
		own := reasons[t.first : t.first+t.n]
		r := prober.Reasons[rc.reason]
		at, found := slices.BinarySearchFunc(own, rc, func(e ReasonCount, rc reasonCount) int {
			if e.Body != rc.body {
				if e.Body {
					return 1
				}
				return -1
			}
			return reasonIndex[e.Reason] - int(rc.reason)
		})
		if found {
			own[at].N += rc.n
			return
		}
		reasons = slices.Insert(reasons, int(t.first)+at, ReasonCount{Reason: r, Body: rc.body, N: rc.n})
		t.n++
	})
	if last := c.slab[r].lastTime(); last.After(t.Last) {
		t.Last = last
	}
	return reasons
}

// CountsOf copies the targets of s into c, as ReadCounts would have: for
// a source that gives only Snapshots.
func CountsOf(s *Snapshot, c *Counts) {
	clear(c.Targets[:cap(c.Targets)])
	c.Targets, c.reasons = c.Targets[:0], c.reasons[:0]
	for i := range s.Targets {
		te := &s.Targets[i]
		t := TargetCounts{Key: te.Key, Last: te.Last, first: int32(len(c.reasons))}
		for _, body := range []bool{false, true} {
			m := te.Errors
			if body {
				m = te.BodyErrors
			}
			for _, r := range prober.Reasons {
				if n, ok := m[r]; ok {
					c.reasons = append(c.reasons, ReasonCount{Reason: r, Body: body, N: n})
					t.n++
				}
			}
		}
		c.Targets = append(c.Targets, t)
	}
}
