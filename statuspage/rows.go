package statuspage

import (
	"bufio"
	"html/template"
)

// writeRows writes the rows of one upstream group. It is the page's hot
// loop: at 10,000 servers the template engine's reflective call of its
// escaper for each of the ~15 values of a row took most of the 200 ms
// budget (1.2 million allocations per page), so rows are written here.
// Every value goes through html/template's own escaper
// (template.HTMLEscapeString), which is exact for the only two contexts
// used below: element text and double-quoted attribute values. URLs are
// built from query-escaped labels under constant paths (detailURL, the
// runbook link) and escaped as attribute values too. The facts of a row,
// which few rows have, go through the "facts" template.
func writeRows(w *bufio.Writer, rows []rowView) error {
	esc := func(s string) { w.WriteString(template.HTMLEscapeString(s)) }
	for i := range rows {
		r := &rows[i]
		w.WriteString(`<tr class="row `)
		esc(r.State)
		w.WriteString(`" data-state="`)
		esc(r.State)
		w.WriteString(`" data-server="`)
		esc(r.Server)
		w.WriteString("\">\n<td data-label=\"Server\"><a href=\"")
		esc(string(r.DetailURL))
		w.WriteString(`">`)
		esc(r.Server)
		w.WriteString(`</a>`)
		if r.Address != "" {
			w.WriteString(` <span class="muted">→ `)
			esc(r.Address)
			w.WriteString(`</span>`)
		}
		w.WriteString(` <span class="muted">`)
		esc(r.Protocol)
		w.WriteString(`</span>`)
		if r.Backup {
			w.WriteString(`<span class="marker backup">backup</span>`)
		}
		if r.Down {
			w.WriteString(`<span class="marker down">down</span>`)
		}
		w.WriteString("</td>\n<td data-label=\"State\"><span class=\"verdict\">")
		esc(r.Verdict)
		w.WriteString("</span></td>\n<td data-label=\"Why\">")
		esc(r.Why)
		if r.NginxMessage != "" {
			w.WriteString(`<br><code class="nginx-line">`)
			esc(r.NginxMessage)
			w.WriteString(`</code>`)
		}
		if r.Detail != "" {
			w.WriteString(`<br><span class="muted">`)
			esc(r.Detail)
			w.WriteString(`</span>`)
		}
		if r.Logged != "" {
			w.WriteString(`<br><span class="logged">`)
			esc(r.Logged)
			w.WriteString(`</span>`)
		}
		if len(r.Facts) > 0 {
			if err := templates.ExecuteTemplate(w, "facts", r.Facts); err != nil {
				return err
			}
		}
		w.WriteString("</td>\n<td data-label=\"Latency\">")
		esc(r.Latency)
		if r.Timeouts != "" {
			w.WriteString(`<br><span class="muted">`)
			esc(r.Timeouts)
			w.WriteString(`</span>`)
		}
		w.WriteString("</td>\n<td data-label=\"Last probe\">")
		if r.LastProbe != "" {
			w.WriteString(`<time datetime="`)
			esc(r.LastProbeISO)
			w.WriteString(`">`)
			esc(r.LastProbe)
			w.WriteString(`</time>`)
		} else {
			w.WriteString("–")
		}
		w.WriteString("</td>\n<td data-label=\"First thing to try\">")
		if r.Hint != "" {
			esc(r.Hint)
			if r.RunbookURL != "" {
				w.WriteString(` <a class="runbook" href="`)
				esc(string(r.RunbookURL))
				w.WriteString(`">runbook</a>`)
			}
		} else {
			w.WriteString("–")
		}
		w.WriteString("</td>\n</tr>\n")
	}
	return nil
}
