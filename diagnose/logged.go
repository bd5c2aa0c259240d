package diagnose

import (
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/errorlog"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// ErrorLogOptions say which of nginx's error logs diagnose reads, and how
// much of each.
type ErrorLogOptions struct {
	Find errorlog.FindOptions
	// Bytes is read from the end of each file.
	Bytes int64
	// Location is nginx's time zone for the times written on its lines;
	// nil means the local one.
	Location *time.Location
}

// IntermittentRunbook is the runbook section for failures nginx logged
// while the probe passes.
const IntermittentRunbook = "docs/runbook.md#nginxupstreamintermittentfailures"

// addLogged reads the recent part of each error log and puts it beside
// the probes' verdicts.
func addLogged(rep *Report, l *discovery.Loaded, o *ErrorLogOptions, logger *slog.Logger) {
	loc := o.Location
	if loc == nil {
		loc = time.Local
	}
	paths := errorlog.Find(l.Set.ErrorLogs, o.Find, logger)
	rec := errorlog.Recent(paths, l.Set, o.Bytes, loc)
	el := &ErrorLogReport{BytesPerFile: o.Bytes, Unattributed: map[string]int{}, NoLiveUpstreams: map[string]int{}}
	for _, f := range rec.Files {
		lf := LogFile{Path: f.Path, State: logFileState(f.State), Bytes: f.Bytes}
		if f.Err != nil {
			lf.Error = f.Err.Error()
		}
		el.Files = append(el.Files, lf)
	}
	if !rec.Since.IsZero() {
		s := rec.Since
		el.Since = &s
	}
	for r, n := range rec.Unattributed {
		el.Unattributed[string(r)] = n
	}
	for u, n := range rec.NoLive {
		el.NoLiveUpstreams[u] = n
	}
	for i, t := range l.Set.Targets {
		got := rec.Targets[t.Key]
		if got == nil {
			continue
		}
		lg := &Logged{Errors: reasonCounts(got.Errors), BodyErrors: reasonCounts(got.BodyErrors), Last: got.Last, LastLine: got.LastLine}
		if len(lg.BodyErrors) == 0 {
			lg.BodyErrors = nil
		}
		rt := &rep.Targets[i]
		if rt.Verdict == VerdictOK {
			lg.WhileProbePasses = true
			el.Intermittent++
		}
		rt.Logged = lg
	}
	rep.ErrorLog = el
}

func reasonCounts(m map[prober.Reason]int) map[string]int {
	out := make(map[string]int, len(m))
	for r, n := range m {
		out[string(r)] = n
	}
	return out
}

// countsText renders counts by reason, most frequent first.
func countsText(m map[string]int) string {
	type rc struct {
		r string
		n int
	}
	var all []rc
	for r, n := range m {
		all = append(all, rc{r, n})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].r < all[j].r
	})
	var parts []string
	for _, x := range all {
		parts = append(parts, fmt.Sprintf("%d %s", x.n, x.r))
	}
	return strings.Join(parts, ", ")
}

// writeLogged prints, under a server's row, what nginx logged about it.
func writeLogged(w io.Writer, t *Target, p palette) {
	lg := t.Logged
	if lg == nil {
		return
	}
	text := countsText(lg.Errors)
	if len(lg.BodyErrors) > 0 {
		if text != "" {
			text += "; "
		}
		text += "truncated responses: " + countsText(lg.BodyErrors)
	}
	fmt.Fprintf(w, "    %s %s (last at %s)\n", p.dim("nginx logged:"), text, lg.Last.Format("2006/01/02 15:04:05"))
	fmt.Fprintf(w, "    %s %s\n", p.dim("last line:   "), lg.LastLine)
	if lg.WhileProbePasses {
		fmt.Fprintf(w, "    %s %s\n", p.dim("note:        "), p.yellow("nginx has been failing real requests to this server although the probe passes now: intermittent failures, see "+IntermittentRunbook))
	}
}

// writeLogSummary says which logs were read and what stays unattributed.
func writeLogSummary(w io.Writer, el *ErrorLogReport, p palette) {
	if el == nil {
		return
	}
	for _, f := range el.Files {
		switch f.State {
		case "read":
			since := ""
			if el.Since != nil {
				since = ", entries since " + el.Since.Format("2006/01/02 15:04:05")
			}
			fmt.Fprintf(w, "error log: read the last %d bytes of %s%s\n", f.Bytes, f.Path, since)
		default:
			fmt.Fprintf(w, "error log: %s is %s: %s\n", f.Path, f.State, f.Error)
		}
	}
	if el.Intermittent > 0 {
		fmt.Fprintln(w, p.yellow(fmt.Sprintf("error log: nginx failed real requests to %d server(s) whose probe passes now.", el.Intermittent)))
	}
	if len(el.Unattributed) > 0 {
		fmt.Fprintf(w, "error log: errors of no single server: %s\n", countsText(el.Unattributed))
	}
	if len(el.NoLiveUpstreams) > 0 {
		fmt.Fprintf(w, "error log: no live upstreams: %s\n", countsText(el.NoLiveUpstreams))
	}
}

// logFileState names a file's state in the report: diagnose reads, it
// does not tail.
func logFileState(s errorlog.FileState) string {
	if s == errorlog.FileTailing {
		return "read"
	}
	return s.String()
}
