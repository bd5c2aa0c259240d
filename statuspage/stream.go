package statuspage

import (
	"bufio"
	"cmp"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"
	"weak"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// Reader is a Source that also reads one target's status by its labels
// (*scheduler.Scheduler is one). The page orders its rows from a first
// pass over Each that keeps a few bytes per target, then reads each row's
// status here as it writes it: no copy of every status, and no
// report.Target per server, is held while the page goes out. A Source
// that is not a Reader gets its statuses copied in the first pass.
type Reader interface {
	Read(k discovery.Key, st *scheduler.Status) bool
}

// tally is the first pass of the page and the API: the counts of the
// summary, taken with counters rather than with rows. The rows are read
// afterwards, each once, so a probe that finishes between the two shows
// in its row but not yet in the counts, as on the next refresh.
type tally struct {
	at      time.Time
	cfg     ConfigState
	summary report.Summary
	healthy bool
	nginx   *report.Nginx
	// logged is the error log's lookup for this answer, done its end;
	// lg is where it writes, one target at a time.
	logged LoggedLookup
	done   func()
	lg     report.Logged
	// facts is where the signals append a target's facts.
	facts []report.Fact
}

// scratch is what one answer of the page or the API holds between its
// passes: a few bytes per target, in slices reused by the next answer
// (Handlers.scratch) rather than maps of every target or upstream built
// per answer. An answer at 10,000 servers allocated about 3 MB for them,
// which every fetch added to the heap the collector must cover.
type scratch struct {
	// upstreams are the upstream names of every target, sorted to count
	// the distinct ones when they are not the load's (count).
	upstreams []string
	rows      []rowRef
	groups    []pageGroup
	// json is where the API encodes one target at a time.
	json []byte
}

// scratch returns an answer's scratch; releaseScratch gives it back.
func (h *Handlers) scratch(cfg *ConfigState) *scratch {
	sc, _ := h.scratches.Get().(*scratch)
	if sc == nil {
		sc = &scratch{}
	}
	return sc
}

func (h *Handlers) releaseScratch(sc *scratch) {
	// The names and targets are not kept alive by a pooled scratch.
	clear(sc.upstreams[:cap(sc.upstreams)])
	clear(sc.rows[:cap(sc.rows)])
	clear(sc.groups[:cap(sc.groups)])
	sc.upstreams, sc.rows, sc.groups = sc.upstreams[:0], sc.rows[:0], sc.groups[:0]
	h.scratches.Put(sc)
}

// count reads every target's verdict once, counting them all, and calls
// keep for those f selects.
func (h *Handlers) count(sc *scratch, cfg ConfigState, f *filter, keep func(st *scheduler.Status, verdict, reason string)) *tally {
	s := &tally{at: h.opts.Now(), healthy: true, cfg: cfg}
	s.logged, s.done = h.logged()
	// The distinct upstreams are those of the load's set, counted once
	// per load, when Each gives exactly its targets (it does but while a
	// reload is applied); otherwise they are counted from the names.
	var set []*discovery.Target
	if l := cfg.Loaded; l != nil && l.Set != nil {
		set = l.Set.Targets
	}
	same, i := cfg.Loaded != nil && cfg.Loaded.Set != nil, 0
	ups := sc.upstreams[:0]
	h.opts.Source.Each(func(st *scheduler.Status) {
		if same && (i >= len(set) || set[i] != st.Target) {
			same = false
			for _, t := range set[:i] {
				ups = append(ups, t.Upstream)
			}
		}
		i++
		if !same {
			ups = append(ups, st.Target.Upstream)
		}
		verdict, reason := report.VerdictOf(st, report.VerdictPending)
		backup := st.Target.Settings().Params.Backup
		s.summary.Targets++
		if st.Target.Probe != nil {
			s.summary.Probed++
		} else {
			s.summary.Down++
		}
		if !s.summary.CountVerdict(verdict, reason, backup) {
			s.healthy = false
		}
		if keep != nil && f.matchVerdict(st.Target.Key, verdict, backup) {
			keep(st, verdict, reason)
		}
	})
	if same && i == len(set) {
		s.summary.Upstreams = h.upstreams(cfg.Loaded.Set)
	} else {
		if same {
			// Each gave fewer targets than the set.
			for _, t := range set[:i] {
				ups = append(ups, t.Upstream)
			}
		}
		slices.Sort(ups)
		s.summary.Upstreams = distinct(ups)
		sc.upstreams = ups
	}
	if h.opts.Nginx != nil {
		s.nginx = h.opts.Nginx()
	}
	if l := s.cfg.Loaded; l != nil {
		s.summary.Dynamic = l.Set.Dynamic
	}
	return s
}

// upstreams is the number of distinct upstreams of set, counted at its
// first answer.
func (h *Handlers) upstreams(set *discovery.Set) int {
	h.upstreamsOf.Lock()
	defer h.upstreamsOf.Unlock()
	if h.upstreamsOf.set.Value() != set {
		h.upstreamsOf.set, h.upstreamsOf.n = weak.Make(set), report.Upstreams(set.Targets)
	}
	return h.upstreamsOf.n
}

// distinct counts the distinct values of sorted.
func distinct(sorted []string) int {
	n := 0
	for i := range sorted {
		if i == 0 || sorted[i] != sorted[i-1] {
			n++
		}
	}
	return n
}

// config is the configuration state, zero when unknown.
func (h *Handlers) config() ConfigState {
	if h.opts.Config != nil {
		return h.opts.Config()
	}
	return ConfigState{}
}

// describe describes st into sc with what the other signals know about
// it: the one report.Target being written.
func (h *Handlers) describe(sc *report.Scratch, st *scheduler.Status, s *tally) *report.Target {
	t := sc.Describe(st, h.opts.ProbeTimeout.Seconds(), report.VerdictPending)
	if s.logged(st.Target.Key, &s.lg) {
		// nginx failed real requests to a server whose probe passes.
		sc.SetLogged(&s.lg).WhileProbePasses = t.Verdict == report.VerdictOK
	}
	if len(h.opts.TargetFacts) > 0 {
		s.facts = s.facts[:0]
		for _, tf := range h.opts.TargetFacts {
			s.facts = tf(s.facts, st.Target.Key)
		}
		sc.AddFacts(s.facts)
		clear(s.facts)
	}
	return t
}

// writer is a 32 KiB buffer onto the client, reused across requests.
func (h *Handlers) writer(w io.Writer) *bufio.Writer {
	bw, _ := h.bufs.Get().(*bufio.Writer)
	if bw == nil {
		return bufio.NewWriterSize(w, 32<<10)
	}
	bw.Reset(w)
	return bw
}

func (h *Handlers) release(bw *bufio.Writer) {
	bw.Reset(nil)
	h.bufs.Put(bw)
}

// rowRef is one row of the page between the passes: which target, in
// which group, how urgent.
type rowRef struct {
	target *discovery.Target
	// copy indexes the status copied in the first pass, when the Source
	// is not a Reader.
	copy  int32
	group int32
	order int32
	rank  int8
}

// pageGroup is one upstream between the passes. first is the position of
// its first row in configuration order: groups are shown in that order
// within a rank.
type pageGroup struct {
	upstream string
	rows     int32
	failing  int32
	first    int32
	rank     int32
}

// plan is the page's first pass: the summary, and the order of the rows,
// failing first, grouped by upstream (see order). rows and groups are the
// answer's scratch.
type plan struct {
	*tally
	rows   []rowRef
	groups []pageGroup
	copies []scheduler.Status
}

func (h *Handlers) plan(sc *scratch, cfg ConfigState, f *filter) *plan {
	p := &plan{rows: sc.rows[:0]}
	if l := cfg.Loaded; l != nil && l.Set != nil && f.Upstream == "" && f.Search == "" && f.State == StateAll {
		// Every target is a row: room for them at once.
		p.rows = slices.Grow(p.rows, len(l.Set.Targets))
	}
	_, reader := h.opts.Source.(Reader)
	p.tally = h.count(sc, cfg, f, func(st *scheduler.Status, verdict, reason string) {
		ref := rowRef{target: st.Target, copy: -1, order: int32(len(p.rows)),
			rank: int8(rankOf(verdict, reason, st.Target.Settings().Params.Backup))}
		if !reader {
			ref.copy = int32(len(p.copies))
			p.copies = append(p.copies, *st)
		}
		p.rows = append(p.rows, ref)
	})
	p.group(sc.groups[:0])
	p.order()
	sc.rows, sc.groups = p.rows, p.groups
	return p
}

// group numbers the upstreams of the rows: sorted by upstream name (then
// configuration order), each run of one name is a group. A sort rather
// than a map from name to group: nothing per upstream but its group.
func (p *plan) group(groups []pageGroup) {
	slices.SortFunc(p.rows, func(a, b rowRef) int {
		return cmp.Or(strings.Compare(a.target.Upstream, b.target.Upstream), cmp.Compare(a.order, b.order))
	})
	n := 0
	for i := range p.rows {
		if i == 0 || p.rows[i].target.Upstream != p.rows[i-1].target.Upstream {
			n++
		}
	}
	groups = slices.Grow(groups, n)
	for i := range p.rows {
		r := &p.rows[i]
		if i == 0 || r.target.Upstream != p.rows[i-1].target.Upstream {
			groups = append(groups, pageGroup{upstream: r.target.Upstream, first: r.order, rank: rankDown + 1})
		}
		g := &groups[len(groups)-1]
		r.group = int32(len(groups) - 1)
		g.rows++
		g.rank = min(g.rank, int32(r.rank))
		if r.rank == rankFailingPrimary || r.rank == rankFailingBackup {
			g.failing++
		}
	}
	p.groups = groups
}

// order sorts the rows for someone looking for the problem: upstreams
// with a failing primary first, then failing backups, no verdicts,
// pending and healthy ones, each group in configuration order; within an
// upstream, failing servers first.
func (p *plan) order() {
	slices.SortFunc(p.rows, func(a, b rowRef) int {
		ga, gb := &p.groups[a.group], &p.groups[b.group]
		return cmp.Or(cmp.Compare(ga.rank, gb.rank), cmp.Compare(ga.first, gb.first),
			cmp.Compare(a.rank, b.rank), cmp.Compare(a.order, b.order))
	})
}

// read reads a row's status now; false when its target went away since
// the first pass.
func (h *Handlers) read(p *plan, r *rowRef, st *scheduler.Status) bool {
	if r.copy >= 0 {
		*st = p.copies[r.copy]
		return true
	}
	return h.opts.Source.(Reader).Read(r.target.Key, st)
}

// groupURL is the page filtered to one upstream, as url.Values encodes it
// (keys sorted: refresh before upstream).
func groupURL(upstream, refresh string) string {
	if refresh != "" {
		return PathPage + "?refresh=" + url.QueryEscape(refresh) + "&upstream=" + url.QueryEscape(upstream)
	}
	return PathPage + "?upstream=" + url.QueryEscape(upstream)
}
