package statuspage

import (
	"cmp"
	"html/template"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// rowView is one upstream server as the page shows it. Strings are
// computed here, not in the template, so the template stays a layout and
// the words are tested once.
type rowView struct {
	T *report.Target
	// Flat copies of what every row shows: a row of the page costs one
	// field lookup per value, which is what keeps 10,000 rows within the
	// render budget. Address is empty when it is the server itself.
	Server, Address, Protocol, NginxMessage, Detail string
	// Logged is what nginx's error log said about the server, in words.
	Logged       string
	Backup, Down bool
	Facts        []report.Fact
	// State is the row's class and Word what it says, with Symbol:
	// colour is never the only carrier of meaning. Verdict is both.
	State, Symbol, Word, Verdict string
	// Why is the reason in words; Hint the first thing to try, without
	// the runbook reference, which RunbookURL links.
	Why, Hint  string
	RunbookURL template.URL
	Latency    string
	Timeouts   string
	// LastProbe is relative ("4s ago"), LastProbeISO its timestamp.
	LastProbe, LastProbeISO string
	// DetailURL is built from query-escaped labels under a constant path.
	DetailURL template.URL
	rank      int
	order     int
}

// Ranks order rows and groups: what needs attention first.
const (
	rankFailingPrimary = iota
	rankFailingBackup
	rankInconclusive
	rankPending
	rankOK
	rankDown
)

// rankOf is how urgent a row of this verdict is.
func rankOf(verdict, reason string, backup bool) int {
	switch verdict {
	case report.VerdictFailed:
		if backup {
			return rankFailingBackup
		}
		return rankFailingPrimary
	case report.VerdictInconclusive:
		if reason == string(prober.InconclusiveNoAnswer) {
			// The usual state of a healthy UDP server: after the
			// servers that need attention.
			return rankPending
		}
		return rankInconclusive
	case report.VerdictPending:
		return rankPending
	case report.VerdictOK:
		return rankOK
	}
	return rankDown
}

func newRow(t *report.Target, order int, now time.Time, docs string) rowView {
	r := rowView{
		T: t, order: order, DetailURL: detailURL(t),
		Server: t.Server, Protocol: t.Protocol, NginxMessage: t.NginxMessage, Detail: t.Detail,
		Backup: t.Backup, Down: t.Down, Facts: t.Facts,
	}
	if t.Address != t.Server {
		r.Address = t.Address
	}
	if lg := t.Logged; lg != nil {
		r.Logged = loggedText(lg)
	}
	r.rank = rankOf(t.Verdict, t.Reason, t.Backup)
	switch t.Verdict {
	case report.VerdictFailed:
		r.State, r.Symbol, r.Word = "failing", "✖", "FAILING"
		r.Why = reasonWords(t.Reason)
		if t.Unverified {
			r.Why += " (unverified: the exporter could not check as nginx's worker user)"
		}
	case report.VerdictInconclusive:
		r.State, r.Symbol, r.Word = "inconclusive", "?", "NO VERDICT"
		r.Why = "no verdict: " + reasonWords(t.Reason)
	case report.VerdictPending:
		r.State, r.Symbol, r.Word = "pending", "…", "PENDING"
		r.Why = "not probed yet"
	case report.VerdictOK:
		r.State, r.Symbol, r.Word = "ok", "✔", "OK"
		r.Why = "answers as nginx needs"
		if t.HTTPStatus != 0 {
			r.Why += " (HTTP " + strconv.Itoa(t.HTTPStatus) + ")"
		}
	default: // down
		r.State, r.Symbol, r.Word = "down", "–", "DOWN"
		r.Why = "marked down in nginx's configuration: nginx sends it nothing, not probed"
	}
	r.Verdict = r.Symbol + " " + r.Word
	r.Hint = strings.TrimSuffix(t.Hint, "; see "+t.Runbook)
	if t.Runbook != "" {
		// The runbook path is the reason's section: a closed vocabulary.
		r.RunbookURL = template.URL(docs + t.Runbook)
	}
	if t.Verdict != report.VerdictDown {
		r.Timeouts = "connect " + seconds(t.Settings.ConnectTimeoutSeconds) + " · send " + seconds(t.Settings.SendTimeoutSeconds) + " · read " + seconds(t.Settings.ReadTimeoutSeconds)
	}
	r.Latency = "–"
	if t.LastProbe != nil {
		r.Latency = seconds(t.DurationSeconds)
		r.LastProbe = ago(now.Sub(*t.LastProbe))
		r.LastProbeISO = t.LastProbe.UTC().Format(time.RFC3339)
	}
	return r
}

// reasonWords turns a reason label into words: connection_refused →
// "connection refused".
func reasonWords(reason string) string {
	return strings.ReplaceAll(reason, "_", " ")
}

// detailURL links the target's own view by its upstream, server and
// protocol: the address is left out because t.Address may be the one a
// runtime lookup dialled rather than the label, and a server line that
// resolves to several peers is best seen with all of them. Every label
// is query-escaped, so the URL is safe in an attribute as it is.
func detailURL(t *report.Target) template.URL {
	return template.URL(PathTarget + "?upstream=" + url.QueryEscape(t.Upstream) + "&server=" + url.QueryEscape(t.Server) +
		"&protocol=" + url.QueryEscape(t.Protocol))
}

// seconds renders a duration in seconds the way people read latency.
func seconds(s float64) string { return string(appendSeconds(nil, s)) }

// appendSeconds appends seconds(s) to b: rows write it without a string
// per value.
func appendSeconds(b []byte, s float64) []byte {
	switch {
	case s == 0:
		return append(b, '0')
	case s < 0.001:
		// As fmt's %.0f, which formats with strconv.
		return append(strconv.AppendFloat(b, s*1e6, 'f', 0, 64), " µs"...)
	case s < 1:
		return append(strconv.AppendFloat(b, s*1e3, 'f', 1, 64), " ms"...)
	case s < 100:
		return append(strconv.AppendFloat(b, s, 'f', -1, 64), " s"...)
	}
	return append(b, time.Duration(s*float64(time.Second)).Round(time.Second).String()...)
}

func ago(d time.Duration) string { return string(appendAgo(nil, d)) }

func appendAgo(b []byte, d time.Duration) []byte {
	switch {
	case d < time.Second:
		return append(b, "just now"...)
	case d < time.Minute:
		return append(strconv.AppendInt(b, int64(d/time.Second), 10), " s ago"...)
	case d < time.Hour:
		return append(strconv.AppendInt(b, int64(d/time.Minute), 10), " min ago"...)
	}
	return append(append(b, d.Round(time.Minute).String()...), " ago"...)
}

// phaseRow is one phase of the last probe in the detail view, beside the
// nginx timeout that bounds it.
type phaseRow struct {
	Name, Took, Timeout string
}

func phases(t *report.Target) []phaseRow {
	out := make([]phaseRow, 0, len(prober.PhaseNames))
	// The directives that set the bounds, named as in the target's own
	// configuration: proxy_read_timeout, fastcgi_read_timeout, …
	prefix := "proxy"
	if kind, ok := protocol.ParseLabel(t.Protocol); ok && kind.Protocol.Spec().Prefix != "" {
		prefix = kind.Protocol.Spec().Prefix
	}
	for _, name := range prober.PhaseNames {
		var timeout string
		switch name {
		case "connect":
			timeout = prefix + "_connect_timeout " + seconds(t.Settings.ConnectTimeoutSeconds)
		case "tls":
			timeout = "within " + prefix + "_connect_timeout"
		case "processing":
			timeout = prefix + "_read_timeout " + seconds(t.Settings.ReadTimeoutSeconds) + " (after " + prefix + "_send_timeout " + seconds(t.Settings.SendTimeoutSeconds) + " for the request)"
		case "transfer":
			timeout = prefix + "_read_timeout " + seconds(t.Settings.ReadTimeoutSeconds) + " between reads"
		case "resolve":
			timeout = "resolver_timeout (runtime names only)"
		}
		took := "–"
		if s, ok := t.PhasesSeconds[name]; ok {
			took = seconds(s)
		}
		out = append(out, phaseRow{Name: name, Took: took, Timeout: timeout})
	}
	return out
}

// reasonCount is one failure reason and how often a target failed with it.
type reasonCount struct {
	Reason string
	Count  uint64
}

func reasonCounts(failures [len(prober.Reasons)]uint64) []reasonCount {
	var out []reasonCount
	for i, n := range failures {
		if n > 0 {
			out = append(out, reasonCount{Reason: string(prober.Reasons[i]), Count: n})
		}
	}
	return out
}

// pastProbe is one of a target's last probes in the detail view.
type pastProbe struct {
	When, WhenISO  string
	State, Outcome string
	Took           string
	Phases         []string
}

func pastProbes(h []scheduler.Outcome, now time.Time) []pastProbe {
	out := make([]pastProbe, 0, len(h))
	for _, o := range h {
		p := pastProbe{When: ago(now.Sub(o.Finished)), WhenISO: o.Finished.UTC().Format(time.RFC3339), Took: seconds(o.Duration.Seconds())}
		switch {
		case o.Success:
			p.State, p.Outcome = "ok", "✔ ok"
		case o.Inconclusive != "":
			p.State, p.Outcome = "inconclusive", "? no verdict: "+reasonWords(string(o.Inconclusive))
		default:
			p.State, p.Outcome = "failing", "✖ "+reasonWords(string(o.Reason))
		}
		for _, d := range o.Phases {
			p.Phases = append(p.Phases, seconds(d.Seconds()))
		}
		out = append(out, p)
	}
	return out
}

// loggedText says what nginx logged about a server: counts by reason,
// most frequent first, and when the last one was read.
func loggedText(lg *report.Logged) string { return string(appendLogged(nil, lg)) }

// appendLogged appends loggedText(lg) to b: a row of the page writes it
// without building its strings.
func appendLogged(b []byte, lg *report.Logged) []byte {
	b = appendCounts(append(b, "nginx logged "...), lg.Errors)
	if len(lg.BodyErrors) > 0 {
		b = appendCounts(append(b, "; truncated responses: "...), lg.BodyErrors)
	}
	if !lg.Last.IsZero() {
		b = append(b, " (last at "...)
		b = lg.Last.UTC().AppendFormat(b, "2006-01-02 15:04:05 UTC")
		b = append(b, ')')
	}
	if lg.WhileProbePasses {
		b = append(b, ", although the probe passes: the failures are intermittent or load-dependent"...)
	}
	return b
}

// appendCounts appends the counts of m, most frequent first, as "4 read
// timeout, 1 premature close".
func appendCounts(b []byte, m map[string]int) []byte {
	type rc struct {
		r string
		n int
	}
	// Room for every reason on the stack: a server fails for a few.
	var arr [len(prober.Reasons)]rc
	all := arr[:0]
	for r, n := range m {
		all = append(all, rc{r, n})
	}
	slices.SortFunc(all, func(a, b rc) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.r, b.r)) })
	for i, x := range all {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendInt(b, int64(x.n), 10)
		b = append(b, ' ')
		for j := 0; j < len(x.r); j++ {
			if c := x.r[j]; c == '_' {
				b = append(b, ' ')
			} else {
				b = append(b, c)
			}
		}
	}
	return b
}
