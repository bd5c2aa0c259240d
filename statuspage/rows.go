package statuspage

import (
	"bufio"
	"strconv"
	"strings"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
)

// rowWriter writes the rows of the page. It is the page's hot loop: at
// 10,000 servers the template engine's reflective call of its escaper for
// each of the ~15 values of a row took most of the 200 ms budget (1.2
// million allocations per page), and so did building each row's strings
// before writing them; rows are written here, piece by piece, from the
// report.Target (what newRow says in words, for the page of one target).
// Every value goes through html/template's own escaper
// (template.HTMLEscapeString), which is exact for the only two contexts
// used below: element text and double-quoted attribute values; escaping a
// value in pieces gives the same bytes, as it escapes character by
// character. URLs are built from query-escaped labels under constant
// paths (detailURL, the runbook link) and escaped as attribute values
// too. The facts of a row are written as the "facts" template writes
// them: with every signal on, every local server has some.
type rowWriter struct {
	w    *bufio.Writer
	now  time.Time
	docs string
	// num is scratch for numbers and times.
	num []byte
}

func (rw *rowWriter) esc(s string) { escText(rw.w, s) }

// query writes url.QueryEscape(s), which needs no HTML escaping.
func (rw *rowWriter) query(s string) {
	rw.num = appendQueryEscape(rw.num[:0], s)
	rw.w.Write(rw.num)
}

// group writes the header of one upstream's rows, as the template
//
//	<tbody data-upstream="{{.Upstream}}">
//	<tr class="group"><th colspan="6" scope="rowgroup">upstream <a href="{{.URL}}">{{.Upstream}}</a> <span class="muted">— {{.Servers}} server{{if ne .Servers 1}}s{{end}}{{if .Failing}}, {{.Failing}} failing{{end}}</span></th></tr>
//
// writes it with html/template's escaping (TestGroupHeaderAsTemplate),
// 2,500 times a page without its reflection. The URL is the page
// filtered to the upstream, as url.Values encodes it (keys sorted:
// refresh before upstream); html/template's URL normaliser leaves such a
// query-escaped URL as it is.
func (rw *rowWriter) group(upstream, refresh string, servers, failing int) {
	w := rw.w
	w.WriteString(`<tbody data-upstream="`)
	escHTMLTemplate(w, upstream)
	w.WriteString("\">\n<tr class=\"group\"><th colspan=\"6\" scope=\"rowgroup\">upstream <a href=\"")
	rw.num = append(rw.num[:0], PathPage+"?"...)
	if refresh != "" {
		rw.num = append(appendQueryEscape(append(rw.num, "refresh="...), refresh), '&')
	}
	rw.num = appendQueryEscape(append(rw.num, "upstream="...), upstream)
	// Of html/template's escapes, only '&' and '+' occur in it.
	for _, c := range rw.num {
		switch c {
		case '&':
			w.WriteString("&amp;")
		case '+':
			w.WriteString("&#43;")
		default:
			w.WriteByte(c)
		}
	}
	w.WriteString(`">`)
	escHTMLTemplate(w, upstream)
	w.WriteString(`</a> <span class="muted">— `)
	rw.num = strconv.AppendInt(rw.num[:0], int64(servers), 10)
	w.Write(rw.num)
	w.WriteString(" server")
	if servers != 1 {
		w.WriteByte('s')
	}
	if failing != 0 {
		w.WriteString(", ")
		rw.num = strconv.AppendInt(rw.num[:0], int64(failing), 10)
		w.Write(rw.num)
		w.WriteString(" failing")
	}
	w.WriteString("</span></th></tr>\n")
}

// words writes a reason label as words (reasonWords) without building
// them.
func (rw *rowWriter) words(reason string) {
	for {
		part, rest, more := strings.Cut(reason, "_")
		rw.esc(part)
		if !more {
			return
		}
		rw.w.WriteByte(' ')
		reason = rest
	}
}

func (rw *rowWriter) seconds(s float64) {
	rw.num = appendSeconds(rw.num[:0], s)
	rw.w.Write(rw.num)
}

func (rw *rowWriter) row(t *report.Target) error {
	w := rw.w
	var state, verdict string
	switch t.Verdict {
	case report.VerdictFailed:
		state, verdict = "failing", "✖ FAILING"
	case report.VerdictInconclusive:
		state, verdict = "inconclusive", "? NO VERDICT"
	case report.VerdictPending:
		state, verdict = "pending", "… PENDING"
	case report.VerdictOK:
		state, verdict = "ok", "✔ OK"
	default:
		state, verdict = "down", "– DOWN"
	}
	w.WriteString(`<tr class="row `)
	rw.esc(state)
	w.WriteString(`" data-state="`)
	rw.esc(state)
	w.WriteString(`" data-server="`)
	rw.esc(t.Server)
	w.WriteString("\">\n<td data-label=\"Server\"><a href=\"")
	// detailURL, in pieces.
	w.WriteString(PathTarget + "?upstream=")
	rw.query(t.Upstream)
	w.WriteString("&amp;server=")
	rw.query(t.Server)
	w.WriteString("&amp;protocol=")
	rw.query(t.Protocol)
	w.WriteString(`">`)
	rw.esc(t.Server)
	w.WriteString(`</a>`)
	if t.Address != t.Server && t.Address != "" {
		w.WriteString(` <span class="muted">→ `)
		rw.esc(t.Address)
		w.WriteString(`</span>`)
	}
	w.WriteString(` <span class="muted">`)
	rw.esc(t.Protocol)
	w.WriteString(`</span>`)
	if t.Backup {
		w.WriteString(`<span class="marker backup">backup</span>`)
	}
	if t.Down {
		w.WriteString(`<span class="marker down">down</span>`)
	}
	w.WriteString("</td>\n<td data-label=\"State\"><span class=\"verdict\">")
	rw.esc(verdict)
	w.WriteString("</span></td>\n<td data-label=\"Why\">")
	rw.why(t)
	if t.NginxMessage != "" {
		w.WriteString(`<br><code class="nginx-line">`)
		rw.esc(t.NginxMessage)
		w.WriteString(`</code>`)
	}
	if t.Detail != "" {
		w.WriteString(`<br><span class="muted">`)
		rw.esc(t.Detail)
		w.WriteString(`</span>`)
	}
	if lg := t.Logged; lg != nil {
		w.WriteString(`<br><span class="logged">`)
		rw.num = appendLogged(rw.num[:0], lg)
		escBytes(w, rw.num)
		w.WriteString(`</span>`)
	}
	rw.facts(t.Facts)
	w.WriteString("</td>\n<td data-label=\"Latency\">")
	if t.LastProbe != nil {
		rw.seconds(t.DurationSeconds)
	} else {
		rw.esc("–")
	}
	if t.Verdict != report.VerdictDown {
		w.WriteString(`<br><span class="muted">`)
		rw.esc("connect ")
		rw.seconds(t.Settings.ConnectTimeoutSeconds)
		rw.esc(" · send ")
		rw.seconds(t.Settings.SendTimeoutSeconds)
		rw.esc(" · read ")
		rw.seconds(t.Settings.ReadTimeoutSeconds)
		w.WriteString(`</span>`)
	}
	w.WriteString("</td>\n<td data-label=\"Last probe\">")
	if t.LastProbe != nil {
		w.WriteString(`<time datetime="`)
		rw.num = t.LastProbe.UTC().AppendFormat(rw.num[:0], time.RFC3339)
		w.Write(rw.num)
		w.WriteString(`">`)
		rw.num = appendAgo(rw.num[:0], rw.now.Sub(*t.LastProbe))
		w.Write(rw.num)
		w.WriteString(`</time>`)
	} else {
		w.WriteString("–")
	}
	w.WriteString("</td>\n<td data-label=\"First thing to try\">")
	if hint := trimRunbook(t.Hint, t.Runbook); hint != "" {
		rw.esc(hint)
		if t.Runbook != "" {
			w.WriteString(` <a class="runbook" href="`)
			rw.esc(rw.docs)
			rw.esc(t.Runbook)
			w.WriteString(`">runbook</a>`)
		}
	} else {
		w.WriteString("–")
	}
	w.WriteString("</td>\n</tr>\n")
	return nil
}

// why writes what newRow's Why says.
func (rw *rowWriter) why(t *report.Target) {
	switch t.Verdict {
	case report.VerdictFailed:
		rw.words(t.Reason)
		if t.Unverified {
			rw.esc(" (unverified: the exporter could not check as nginx's worker user)")
		}
	case report.VerdictInconclusive:
		rw.esc("no verdict: ")
		rw.words(t.Reason)
	case report.VerdictPending:
		rw.esc("not probed yet")
	case report.VerdictOK:
		rw.esc("answers as nginx needs")
		if t.HTTPStatus != 0 {
			rw.esc(" (HTTP ")
			rw.num = strconv.AppendInt(rw.num[:0], int64(t.HTTPStatus), 10)
			rw.w.Write(rw.num)
			rw.esc(")")
		}
	default:
		rw.esc("marked down in nginx's configuration: nginx sends it nothing, not probed")
	}
}

// trimRunbook is the hint without its runbook reference, which the row
// links: strings.TrimSuffix(hint, "; see "+runbook) without building the
// suffix.
func trimRunbook(hint, runbook string) string {
	if rest, ok := strings.CutSuffix(hint, runbook); ok {
		if rest, ok := strings.CutSuffix(rest, "; see "); ok {
			return rest
		}
	}
	return hint
}

// facts writes what the "facts" template writes (TestFactsAsTemplate):
// with the capacity signal every local server has facts, and executing
// the template per row allocated about 8 MB per page of 10,000 servers.
func (rw *rowWriter) facts(fs []report.Fact) {
	if len(fs) == 0 {
		return
	}
	w := rw.w
	w.WriteString(`<ul class="facts">`)
	for i := range fs {
		f := &fs[i]
		w.WriteString(`<li class="fact `)
		escHTMLTemplate(w, f.State)
		w.WriteString(`"><span class="verdict `)
		escHTMLTemplate(w, f.State)
		w.WriteString(`">`)
		escHTMLTemplate(w, f.State)
		w.WriteString(`</span> `)
		escHTMLTemplate(w, f.Name)
		w.WriteString(`: `)
		escHTMLTemplate(w, f.Value)
		if len(f.Lines) > 0 {
			w.WriteString(`<pre class="lines">`)
			for _, l := range f.Lines {
				escHTMLTemplate(w, l)
				w.WriteString("\n")
			}
			w.WriteString(`</pre>`)
		}
		w.WriteString(`</li>`)
	}
	w.WriteString(`</ul>`)
}
