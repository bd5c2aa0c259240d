package statuspage

import (
	"bufio"
	"cmp"
	"io"
	"net/url"
	"slices"
	"time"

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
	logged  func(k discovery.Key) *report.Logged
}

// count reads every target's verdict once, counting them all, and calls
// keep for those f selects.
func (h *Handlers) count(f *filter, keep func(st *scheduler.Status, verdict, reason string)) *tally {
	s := &tally{at: h.opts.Now(), healthy: true}
	if h.opts.Config != nil {
		s.cfg = h.opts.Config()
	}
	s.logged = h.logged()
	upstreams := map[string]struct{}{}
	h.opts.Source.Each(func(st *scheduler.Status) {
		verdict, reason := report.VerdictOf(st, report.VerdictPending)
		backup := st.Target.Settings().Params.Backup
		s.summary.Targets++
		upstreams[st.Target.Upstream] = struct{}{}
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
	s.summary.Upstreams = len(upstreams)
	if h.opts.Nginx != nil {
		s.nginx = h.opts.Nginx()
	}
	if l := s.cfg.Loaded; l != nil {
		s.summary.Dynamic = l.Set.Dynamic
	}
	return s
}

// describe describes st into sc with what the other signals know about
// it: the one report.Target being written.
func (h *Handlers) describe(sc *report.Scratch, st *scheduler.Status, logged func(k discovery.Key) *report.Logged) *report.Target {
	t := sc.Describe(st, h.opts.ProbeTimeout.Seconds(), report.VerdictPending)
	if lg := logged(st.Target.Key); lg != nil {
		// nginx failed real requests to a server whose probe passes.
		sc.SetLogged(lg).WhileProbePasses = t.Verdict == report.VerdictOK
	}
	for _, tf := range h.opts.TargetFacts {
		sc.AddFacts(tf(st.Target.Key))
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

// pageGroup is one upstream between the passes.
type pageGroup struct {
	upstream string
	rows     int
	failing  int
	rank     int
}

// plan is the page's first pass: the summary, and the order of the rows,
// failing first, grouped by upstream (see order).
type plan struct {
	*tally
	rows   []rowRef
	groups []pageGroup
	copies []scheduler.Status
}

func (h *Handlers) plan(f *filter) *plan {
	p := &plan{}
	index := map[string]int32{}
	_, reader := h.opts.Source.(Reader)
	p.tally = h.count(f, func(st *scheduler.Status, verdict, reason string) {
		g, ok := index[st.Target.Upstream]
		if !ok {
			g = int32(len(p.groups))
			index[st.Target.Upstream] = g
			p.groups = append(p.groups, pageGroup{upstream: st.Target.Upstream, rank: rankDown + 1})
		}
		rank := rankOf(verdict, reason, st.Target.Settings().Params.Backup)
		gr := &p.groups[g]
		gr.rows++
		gr.rank = min(gr.rank, rank)
		if verdict == report.VerdictFailed {
			gr.failing++
		}
		ref := rowRef{target: st.Target, copy: -1, group: g, order: int32(len(p.rows)), rank: int8(rank)}
		if !reader {
			ref.copy = int32(len(p.copies))
			p.copies = append(p.copies, *st)
		}
		p.rows = append(p.rows, ref)
	})
	p.order()
	return p
}

// order sorts the rows for someone looking for the problem: upstreams
// with a failing primary first, then failing backups, no verdicts,
// pending and healthy ones, each group in configuration order; within an
// upstream, failing servers first.
func (p *plan) order() {
	slices.SortFunc(p.rows, func(a, b rowRef) int {
		ga, gb := &p.groups[a.group], &p.groups[b.group]
		return cmp.Or(cmp.Compare(ga.rank, gb.rank), cmp.Compare(a.group, b.group),
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
