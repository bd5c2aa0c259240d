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
	Groups       []groupView
	Shown        int
	Unused       []string
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
// failing first, grouped by upstream.
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
	s := h.take(&f, false)
	v := pageView{
		common:   h.frame(r, s.at, "nginx upstreams"),
		Summary:  s.summary,
		Healthy:  s.healthy,
		Exporter: h.exporterState(s),
		Facts:    h.facts(),
		Nginx:    s.nginx,
		Upstream: f.Upstream,
		Search:   f.Search,
		State:    f.State,
		States:   filterStates[1:],
		Shown:    len(s.targets),
	}
	if r.URL.Query().Get("refresh") == "off" {
		v.RefreshParam = "off"
	}
	if !s.cfg.LastSuccess.IsZero() {
		v.LoadedAgo = ago(s.at.Sub(s.cfg.LastSuccess))
	}
	if l := s.cfg.Loaded; l != nil {
		v.Unused = l.Nginx.UnusedUpstreams
	}
	v.Groups = group(s.targets, s.at, h.opts.DocsURL, v.RefreshParam)
	if len(v.Groups) <= maxSuggestions && f.Upstream == "" && f.Search == "" {
		for _, g := range v.Groups {
			v.Upstreams = append(v.Upstreams, g.Upstream)
		}
	}
	setPageHeaders(w)
	if r.Method == http.MethodHead {
		return
	}
	// The page streams: its top, then each group's header and rows as
	// they are written, then its bottom.
	bw := bufio.NewWriterSize(w, 32<<10)
	if err := h.writePage(bw, &v); err != nil {
		h.opts.Logger.Error("rendering the status page failed", "err", err)
		return
	}
	if err := bw.Flush(); err != nil {
		h.opts.Logger.Debug("client went away during the status page", "err", err)
	}
}

func (h *Handlers) writePage(bw *bufio.Writer, v *pageView) error {
	if err := templates.ExecuteTemplate(bw, "page-top", v); err != nil {
		return err
	}
	for i := range v.Groups {
		g := &v.Groups[i]
		if err := templates.ExecuteTemplate(bw, "page-group", g); err != nil {
			return err
		}
		if err := writeRows(bw, g.Rows); err != nil {
			return err
		}
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
	s := h.take(&f, true)
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
	bw := bufio.NewWriterSize(w, 32<<10)
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
