package statuspage

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// eachOnly is a Source that is not a Reader: the page copies its
// statuses in the first pass.
type eachOnly struct{ statuses }

func (e eachOnly) Each(fn func(*scheduler.Status)) { e.statuses.Each(fn) }

// TestSourceWithoutReader: a Source that cannot read one target by its
// labels gets the same page and API, byte for byte.
func TestSourceWithoutReader(t *testing.T) {
	src, l := fixture(t)
	for _, u := range []string{"/", "/?state=problems", "/?q=app", "/api/v1/targets", "/api/v1/targets?state=failing"} {
		_, want, _ := get(t, newHandlers(src, l, nil), u)
		_, got, _ := get(t, newHandlers(eachOnly{src}, l, nil), u)
		if got != want {
			t.Errorf("%s differs without a Reader", u)
		}
	}
}

// groupTemplate is the group header as html/template wrote it before
// rowWriter.group took over: the reference its escaping must match.
var groupTemplate = template.Must(template.New("g").Parse(`<tbody data-upstream="{{.Upstream}}">
<tr class="group"><th colspan="6" scope="rowgroup">upstream <a href="{{.URL}}">{{.Upstream}}</a> <span class="muted">— {{.Servers}} server{{if ne .Servers 1}}s{{end}}{{if .Failing}}, {{.Failing}} failing{{end}}</span></th></tr>
`))

var hostileStrings = []string{
	"", "app", evilUpstream, evilServer, "a+b c&d", "ü'\"\x00<>", "\xff\xfe<bad utf-8>", "100%", "x/y?z=1#f", "\u2028\u00a0",
}

// TestGroupHeaderAsTemplate: the hand-written group header is what the
// template wrote, for hostile upstream names too.
func TestGroupHeaderAsTemplate(t *testing.T) {
	for _, up := range hostileStrings {
		for _, refresh := range []string{"", "off"} {
			for _, n := range [][2]int{{1, 0}, {2, 1}, {10, 10}} {
				v := url.Values{"upstream": {up}}
				if refresh != "" {
					v.Set("refresh", refresh)
				}
				var want bytes.Buffer
				err := groupTemplate.Execute(&want, map[string]any{"Upstream": up, "URL": PathPage + "?" + v.Encode(), "Servers": n[0], "Failing": n[1]})
				if err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				rw := rowWriter{w: bufio.NewWriter(&got)}
				rw.group(up, refresh, n[0], n[1])
				rw.w.Flush()
				if got.String() != want.String() {
					t.Errorf("%q, refresh %q, %v:\n got %s\nwant %s", up, refresh, n, got.String(), want.String())
				}
			}
		}
	}
}

// TestEscapersAsLibrary: the writers' escapers are the library's.
func TestEscapersAsLibrary(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, s := range append(hostileStrings, string(all)) {
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		escText(w, s)
		w.Flush()
		if want := template.HTMLEscapeString(s); buf.String() != want {
			t.Errorf("escText(%q) = %q, want %q", s, buf.String(), want)
		}
		buf.Reset()
		escBytes(w, []byte(s))
		w.Flush()
		if want := template.HTMLEscapeString(s); buf.String() != want {
			t.Errorf("escBytes(%q) = %q, want %q", s, buf.String(), want)
		}
		if got, want := string(appendQueryEscape(nil, s)), url.QueryEscape(s); got != want {
			t.Errorf("appendQueryEscape(%q) = %q, want %q", s, got, want)
		}
	}
}

// TestSecondsAsBefore: the words for durations are those fmt wrote.
func TestSecondsAsBefore(t *testing.T) {
	old := func(s float64) string {
		switch {
		case s == 0:
			return "0"
		case s < 0.001:
			return fmt.Sprintf("%.0f µs", s*1e6)
		case s < 1:
			return fmt.Sprintf("%.1f ms", s*1e3)
		case s < 100:
			return strconv.FormatFloat(s, 'f', -1, 64) + " s"
		}
		return time.Duration(s * float64(time.Second)).Round(time.Second).String()
	}
	for _, s := range []float64{0, 1e-7, 0.0000004999, 0.0000005, 0.0003, 0.000999, 0.001, 0.00125, 0.99996, 1, 2.5, 60, 99.9999, 100, 3600.4, -1} {
		if got := seconds(s); got != old(s) {
			t.Errorf("seconds(%v) = %q, want %q", s, got, old(s))
		}
	}
	for d, want := range map[time.Duration]string{0: "just now", 999 * time.Millisecond: "just now", 59 * time.Second: "59 s ago",
		time.Minute: "1 min ago", 61 * time.Minute: "1h1m0s ago"} {
		if got := ago(d); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
}

// heapWriter discards the answer and, every few writes, collects garbage
// and records the live heap: what the render retains at that point,
// beyond the buffer being written.
type heapWriter struct {
	countingWriter
	every int
	max   uint64
}

func (w *heapWriter) Write(p []byte) (int, error) {
	if w.writes%w.every == 0 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.max = max(w.max, ms.HeapAlloc)
	}
	return w.countingWriter.Write(p)
}

// TestRenderRetains10k: at 10,000 targets, the page and the API keep at
// most 2 MB live beyond what the exporter already holds (the targets and
// their statuses), measured after a collection at every tenth 32 KiB
// write of the answer, when it is being written.
func TestRenderRetains10k(t *testing.T) {
	if testing.Short() {
		t.Skip("renders 10,000 targets many times")
	}
	src := many(10000)
	h := newHandlers(src, loadedOf(src.statuses), nil)
	for _, u := range []string{"/", "/api/v1/targets"} {
		// A first render warms the buffer pool and the templates.
		h.ServeHTTP(&countingWriter{header: http.Header{}}, httptest.NewRequest(http.MethodGet, u, nil))
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc
		w := &heapWriter{countingWriter: countingWriter{header: http.Header{}}, every: 10}
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, u, nil))
		extra := int64(w.max) - int64(base)
		t.Logf("%s: %d bytes in %d writes; live heap at most %d bytes above the %d before", u, w.bytes, w.writes, extra, base)
		if w.writes < 100 {
			t.Fatalf("%s: %d writes; the measurement needs a streamed answer", u, w.writes)
		}
		if extra > 2<<20 {
			t.Errorf("%s: %d bytes live while writing, want at most 2 MiB", u, extra)
		}
	}
}

// TestFactsAsTemplate: the hand-written facts are what the "facts"
// template writes, for hostile values too.
func TestFactsAsTemplate(t *testing.T) {
	var cases [][]report.Fact
	cases = append(cases, nil, []report.Fact{})
	for _, v := range hostileStrings {
		cases = append(cases, []report.Fact{
			{Source: "capacity", Name: v, Value: v, State: v},
			{Source: "error_log", Name: "logged", Value: "2 errors", State: report.FactFailing, Lines: []string{v, "second " + v}},
			{Name: "empty lines", Value: v, State: report.FactOK, Lines: []string{}},
		})
	}
	for _, fs := range cases {
		var want bytes.Buffer
		if err := templates.ExecuteTemplate(&want, "facts", fs); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		rw := rowWriter{w: bufio.NewWriter(&got)}
		rw.facts(fs)
		rw.w.Flush()
		if got.String() != want.String() {
			t.Errorf("%+v:\n got %q\nwant %q", fs, got.String(), want.String())
		}
	}
}

// TestPlanOrderAsMapGrouping: the page's order, grouped by sorting the
// rows by upstream, is the order the grouping by a map from upstream to
// its first appearance gave, for upstreams whose servers are interleaved
// in the configuration too, with every filter, the summary included.
func TestPlanOrderAsMapGrouping(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ups := []string{"b", "a", "c", "a-1", "z", "m"}
	for round := range 100 {
		n := 1 + rng.IntN(60)
		src := make(statuses, 0, n)
		for i := range n {
			addr := fmt.Sprintf("127.0.0.%d:%d", 1+round%200, 1000+i)
			tg := &discovery.Target{Key: discovery.Key{Upstream: ups[rng.IntN(len(ups))], Server: addr, Address: addr, Protocol: "http"},
				ServerSettings: &discovery.ServerSettings{}}
			tg.Params.Backup = rng.IntN(3) == 0
			st := scheduler.Status{Target: tg}
			switch rng.IntN(6) {
			case 0: // down
				tg.Params.Down = true
			case 1: // pending
				tg.Probe = &prober.Peer{}
			case 2:
				tg.Probe, st.HasResult = &prober.Peer{}, true
				st.Result.Success = true
			case 3:
				tg.Probe, st.HasResult = &prober.Peer{}, true
				st.Result.Inconclusive = prober.InconclusiveNoAnswer
			case 4:
				tg.Probe, st.HasResult = &prober.Peer{}, true
				st.Result.Inconclusive = prober.InconclusiveProbeTimeout
			default:
				tg.Probe, st.HasResult = &prober.Peer{}, true
				st.Result.Reason = prober.ReasonConnectionRefused
			}
			src = append(src, st)
		}
		// The load's set is the Source's targets, or (while a reload is
		// applied) another set, or unknown: the upstreams are counted
		// from the load's set only when it is the Source's.
		extra := &discovery.Target{Key: discovery.Key{Upstream: "extra"}}
		loads := []*discovery.Loaded{loadedOf(src), nil, loadedOf(src[1:]), loadedOf(src[:n-1]), loadedOf(append(slices.Clip(src), scheduler.Status{Target: extra}))}
		load := loads[round%len(loads)]
		h := New(Options{Source: src, Config: func() ConfigState { return ConfigState{Loaded: load} }})
		for _, f := range []filter{{}, {State: StateProblems}, {State: StateBackup}, {Search: "a"}} {
			cfg := h.config()
			sc := h.scratch(&cfg)
			p := h.plan(sc, cfg, &f)
			var got []string
			for _, r := range p.rows {
				g := p.groups[r.group]
				got = append(got, fmt.Sprintf("%s(%d,%d) %s", g.upstream, g.rows, g.failing, r.target.Server))
			}
			want, upstreams := mapOrder(src, &f)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d, filter %+v:\n got %q\nwant %q", round, f, got, want)
			}
			if p.summary.Upstreams != upstreams || p.summary.Targets != n {
				t.Fatalf("round %d: summary %+v, want %d upstreams of %d targets", round, p.summary, upstreams, n)
			}
			h.releaseScratch(sc)
		}
	}
}

// mapOrder is the page's order as it was computed before: groups numbered
// by a map in order of first appearance.
func mapOrder(src statuses, f *filter) (rows []string, upstreams int) {
	type ref struct {
		server      string
		group, rank int
	}
	type grp struct {
		upstream            string
		rows, failing, rank int
	}
	var (
		refs   []ref
		groups []grp
		index  = map[string]int{}
		all    = map[string]bool{}
	)
	for i := range src {
		st := &src[i]
		all[st.Target.Upstream] = true
		verdict, reason := report.VerdictOf(st, report.VerdictPending)
		if !f.matchVerdict(st.Target.Key, verdict, st.Target.Params.Backup) {
			continue
		}
		g, ok := index[st.Target.Upstream]
		if !ok {
			g = len(groups)
			index[st.Target.Upstream] = g
			groups = append(groups, grp{upstream: st.Target.Upstream, rank: rankDown + 1})
		}
		rank := rankOf(verdict, reason, st.Target.Params.Backup)
		groups[g].rows++
		groups[g].rank = min(groups[g].rank, rank)
		if verdict == report.VerdictFailed {
			groups[g].failing++
		}
		refs = append(refs, ref{st.Target.Server, g, rank})
	}
	slices.SortStableFunc(refs, func(a, b ref) int {
		return cmp.Or(cmp.Compare(groups[a.group].rank, groups[b.group].rank), cmp.Compare(a.group, b.group), cmp.Compare(a.rank, b.rank))
	})
	for _, r := range refs {
		g := groups[r.group]
		rows = append(rows, fmt.Sprintf("%s(%d,%d) %s", g.upstream, g.rows, g.failing, r.server))
	}
	return rows, len(all)
}

// oldLoggedText is loggedText as it was written with strings, the
// reference appendLogged must match.
func oldLoggedText(lg *report.Logged) string {
	counts := func(m map[string]int) string {
		type rc struct {
			r string
			n int
		}
		var all []rc
		for r, n := range m {
			all = append(all, rc{r, n})
		}
		slices.SortFunc(all, func(a, b rc) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.r, b.r)) })
		var parts []string
		for _, x := range all {
			parts = append(parts, strconv.Itoa(x.n)+" "+strings.ReplaceAll(x.r, "_", " "))
		}
		return strings.Join(parts, ", ")
	}
	text := "nginx logged " + counts(lg.Errors)
	if len(lg.BodyErrors) > 0 {
		text += "; truncated responses: " + counts(lg.BodyErrors)
	}
	if !lg.Last.IsZero() {
		text += " (last at " + lg.Last.UTC().Format("2006-01-02 15:04:05 UTC") + ")"
	}
	if lg.WhileProbePasses {
		text += ", although the probe passes: the failures are intermittent or load-dependent"
	}
	return text
}

// TestLoggedTextAsStrings: what a row says nginx logged is what the
// string version said, for every shape of counts, and a row writes it
// without allocating.
func TestLoggedTextAsStrings(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		lg := &report.Logged{Errors: map[string]int{}, WhileProbePasses: rng.IntN(2) == 0}
		for range rng.IntN(4) {
			lg.Errors[string(prober.Reasons[rng.IntN(len(prober.Reasons))])] = 1 + rng.IntN(3)
		}
		if rng.IntN(2) == 0 {
			lg.BodyErrors = map[string]int{}
			for range rng.IntN(3) {
				lg.BodyErrors[string(prober.Reasons[rng.IntN(len(prober.Reasons))])] = 1 + rng.IntN(3)
			}
		}
		if rng.IntN(2) == 0 {
			lg.Last = time.Date(2026, 11, 27, 1, 2, 3, 4, time.FixedZone("x", 3600))
		}
		if got, want := loggedText(lg), oldLoggedText(lg); got != want {
			t.Fatalf("%+v:\n got %q\nwant %q", lg, got, want)
		}
	}
	lg := &report.Logged{Errors: map[string]int{"read_timeout": 4, "connection_refused": 2}, BodyErrors: map[string]int{"premature_close": 1}, Last: now}
	b := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(20, func() { b = appendLogged(b[:0], lg) }); n != 0 {
		t.Errorf("appendLogged: %.0f allocations", n)
	}
}

// TestUpstreamCountKeepsNoSet: the count of a load's upstreams, kept
// for the answers until the next load, does not keep the load's set
// alive once the exporter replaced it.
func TestUpstreamCountKeepsNoSet(t *testing.T) {
	src := many(100)
	load := loadedOf(src.statuses)
	collected := make(chan struct{})
	runtime.AddCleanup(load.Set, func(struct{}) { close(collected) }, struct{}{})
	var mu sync.Mutex
	h := New(Options{Source: src, Config: func() ConfigState {
		mu.Lock()
		defer mu.Unlock()
		return ConfigState{Loaded: load}
	}})
	w := &countingWriter{header: http.Header{}}
	h.Routes()[PathAPI].ServeHTTP(w, httptest.NewRequest(http.MethodGet, PathAPI, nil))
	if h.upstreamsOf.n != 25 {
		t.Fatalf("counted %d upstreams, want 25", h.upstreamsOf.n)
	}
	mu.Lock()
	load = nil
	mu.Unlock()
	for range 10 {
		runtime.GC()
		select {
		case <-collected:
			runtime.KeepAlive(h)
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("the replaced set is still alive")
}
