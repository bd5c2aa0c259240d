package statuspage

import (
	"bufio"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

//go:embed templates/*.html
var templateFS embed.FS

// templates are parsed once; html/template escapes every value for the
// context it lands in (text, attribute, URL), so upstream names, paths,
// log lines and backend answers cannot inject markup or script.
var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"filterURL": filterURL,
	"seconds":   seconds,
}).ParseFS(templateFS, "templates/*.html"))

// contentSecurityPolicy: the page loads nothing, from anywhere, but its
// own inline style; forms submit only to the exporter.
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Refresh bounds: long enough to read a row, short enough to follow an
// incident.
const (
	minRefresh = 10 * time.Second
	maxRefresh = time.Minute
)

// common is what every page shows in its header and footer.
type common struct {
	Title       string
	Version     string
	NginxConfig string
	MetricsPath string
	DocsURL     string
	Now         string
	// Refresh is the auto-refresh period in seconds, 0 when off.
	Refresh                  int
	RefreshOffURL, RefreshOn string
}

type pageView struct {
	common
	Summary report.Summary
	Healthy bool
	// Nginx is the running nginx's section, nil when not followed.
	Nginx     *report.Nginx
	Exporter  *report.ExporterState
	LoadedAgo string
	Facts     []report.Fact
	Upstream  string
	Search    string
	State     string
	States    []string
	// RefreshParam keeps refresh=off across the filter form.
	RefreshParam string
	// Groups: some server is shown (the groups themselves are written
	// between the top and the bottom of the page).
	Groups bool
	Shown  int
	Unused []string
	// Upstreams feeds the filter's suggestions, for configurations small
	// enough to list them all.
	Upstreams []string
}

type targetView struct {
	common
	Rows     []targetDetail
	NotFound bool
	Query    discovery.Key
}

type targetDetail struct {
	rowView
	Phases  []phaseRow
	Reasons []reasonCount
	Skipped uint64
	// History is the last probes, newest first; PhaseNames heads its
	// columns.
	History    []pastProbe
	PhaseNames []string
}

// maxSuggestions bounds the upstream names offered in the filter.
const maxSuggestions = 200

func (h *Handlers) frame(r *http.Request, now time.Time, title string) common {
	c := common{
		Title:       title,
		Version:     h.opts.Version,
		NginxConfig: h.opts.NginxConfig,
		MetricsPath: h.opts.MetricsPath,
		DocsURL:     h.opts.DocsURL,
		Now:         now.UTC().Format("2006-01-02 15:04:05 UTC"),
	}
	q := r.URL.Query()
	off := q.Get("refresh") == "off"
	q.Set("refresh", "off")
	c.RefreshOffURL = r.URL.Path + "?" + q.Encode()
	q.Del("refresh")
	c.RefreshOn = r.URL.Path
	if e := q.Encode(); e != "" {
		c.RefreshOn += "?" + e
	}
	if !off {
		c.Refresh = int(min(max(h.opts.Interval, minRefresh), maxRefresh) / time.Second)
	}
	return c
}

func setPageHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
}

// page serves the status page: a summary, then every upstream server,
// failing first, grouped by upstream. The order comes from a first pass
// that keeps a few bytes per server (plan); each row is then described
// and written as it is read, through a 32 KiB buffer onto the client.
func (h *Handlers) page(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != PathPage {
		http.NotFound(w, r)
		return
	}
	f, ok := parseFilter(r)
	if !ok {
		http.Error(w, "unknown state; want one of all, problems, failing, inconclusive, pending, ok, down, backup", http.StatusBadRequest)
		return
	}
	cfg := h.config()
	sc := h.scratch(&cfg)
	defer h.releaseScratch(sc)
	p := h.plan(sc, cfg, &f)
	defer p.done()
	v := pageView{
		common:   h.frame(r, p.at, "nginx upstreams"),
		Summary:  p.summary,
		Healthy:  p.healthy,
		Exporter: h.exporterState(p.cfg),
		Facts:    h.facts(),
		Nginx:    p.nginx,
		Upstream: f.Upstream,
		Search:   f.Search,
		State:    f.State,
		States:   filterStates[1:],
		Shown:    len(p.rows),
		Groups:   len(p.groups) > 0,
	}
	if r.URL.Query().Get("refresh") == "off" {
		v.RefreshParam = "off"
	}
	if !p.cfg.LastSuccess.IsZero() {
		v.LoadedAgo = ago(p.at.Sub(p.cfg.LastSuccess))
	}
	if l := p.cfg.Loaded; l != nil {
		v.Unused = l.Nginx.UnusedUpstreams
	}
	if len(p.groups) <= maxSuggestions && f.Upstream == "" && f.Search == "" {
		// In the order the groups are shown.
		for i := range p.rows {
			if i == 0 || p.rows[i].group != p.rows[i-1].group {
				v.Upstreams = append(v.Upstreams, p.groups[p.rows[i].group].upstream)
			}
		}
	}
	setPageHeaders(w)
	if r.Method == http.MethodHead {
		return
	}
	bw := h.writer(w)
	defer h.release(bw)
	if err := h.writePage(bw, &v, p); err != nil {
		h.opts.Logger.Error("rendering the status page failed", "err", err)
		return
	}
	if err := bw.Flush(); err != nil {
		h.opts.Logger.Debug("client went away during the status page", "err", err)
	}
}

// writePage writes the page's top, then each group's header and rows,
// then its bottom. No lock is held while writing: each row's status is a
// copy read just before it is written.
func (h *Handlers) writePage(bw *bufio.Writer, v *pageView, p *plan) error {
	if err := templates.ExecuteTemplate(bw, "page-top", v); err != nil {
		return err
	}
	var (
		sc  report.Scratch
		st  scheduler.Status
		rw  = rowWriter{w: bw, now: p.at, docs: h.opts.DocsURL}
		cur = int32(-1)
	)
	for i := range p.rows {
		ref := &p.rows[i]
		if ref.group != cur {
			if cur >= 0 {
				bw.WriteString("</tbody>\n")
			}
			cur = ref.group
			g := &p.groups[cur]
			rw.group(g.upstream, v.RefreshParam, int(g.rows), int(g.failing))
		}
		if !h.read(p, ref, &st) {
			// Gone since the first pass (a reload): its row is left out.
			continue
		}
		if err := rw.row(h.describe(&sc, &st, p.tally)); err != nil {
			return err
		}
	}
	if cur >= 0 {
		bw.WriteString("</tbody>\n")
	}
	return templates.ExecuteTemplate(bw, "page-bottom", v)
}

// target serves the view of one configured target, or of every
// configured target matching the labels given; never of anything else.
func (h *Handlers) target(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	k := discovery.Key{Upstream: q.Get("upstream"), Server: q.Get("server"), Address: q.Get("address"), Protocol: q.Get("protocol")}
	if k.Upstream == "" && k.Server == "" && k.Address == "" {
		http.Error(w, "say which target: upstream, server and/or address (links on the status page carry all four labels)", http.StatusBadRequest)
		return
	}
	f := filter{Key: &k}
	s := h.take(&f)
	v := targetView{common: h.frame(r, s.at, "nginx upstream server"), Query: k}
	for i := range s.targets {
		t := &s.targets[i]
		v.Rows = append(v.Rows, targetDetail{
			rowView: newRow(t, i, s.at, h.opts.DocsURL),
			Phases:  phases(t),
			Reasons: reasonCounts(s.failures[i]),
			Skipped: s.skipped[i],
		})
		if hs, ok := h.opts.Source.(HistorySource); ok {
			d := &v.Rows[len(v.Rows)-1]
			d.History = pastProbes(hs.History(s.keys[i]), s.at)
			d.PhaseNames = prober.PhaseNames[:]
		}
	}
	if len(v.Rows) == 0 {
		v.NotFound = true
		w.WriteHeader(http.StatusNotFound)
	}
	h.render(w, r, "target.html", &v)
}

// render streams a template through a buffer: large pages go out as they
// are rendered, and an error mid-way can only be logged.
func (h *Handlers) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	setPageHeaders(w)
	if r.Method == http.MethodHead {
		return
	}
	bw := h.writer(w)
	defer h.release(bw)
	if err := templates.ExecuteTemplate(bw, name, data); err != nil {
		h.opts.Logger.Error("rendering the status page failed", "template", name, "err", err)
		return
	}
	if err := bw.Flush(); err != nil {
		h.opts.Logger.Debug("client went away during the status page", "err", err)
	}
}

// filterURL is the page filtered by state, keeping the upstream filter.
func filterURL(upstream, state, refresh string) string {
	v := url.Values{}
	if upstream != "" {
		v.Set("upstream", upstream)
	}
	if state != "" {
		v.Set("state", state)
	}
	if refresh != "" {
		v.Set("refresh", refresh)
	}
	if len(v) == 0 {
		return PathPage
	}
	return PathPage + "?" + v.Encode()
}
