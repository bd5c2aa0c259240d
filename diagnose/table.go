package diagnose

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// table lays out rows in aligned columns. Widths are measured on the plain
// text and colour is applied after padding, so escape sequences never
// upset the alignment.
type table struct {
	header []string
	rows   [][]cell
}

type cell struct {
	text  string
	style func(string) string
}

func (t *table) add(cells ...cell) { t.rows = append(t.rows, cells) }

func plain(s string) cell { return cell{text: s} }

func (t *table) write(w io.Writer, p palette) {
	widths := make([]int, len(t.header))
	for i, h := range t.header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if n := utf8.RuneCountInString(c.text); n > widths[i] {
				widths[i] = n
			}
		}
	}
	line := func(cells []cell) {
		var b strings.Builder
		for i, c := range cells {
			text := c.text
			if i < len(cells)-1 {
				text += strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text)+2)
			}
			if c.style != nil {
				// Style the text, not the padding.
				pad := len(text) - len(c.text)
				text = c.style(c.text) + strings.Repeat(" ", pad)
			}
			b.WriteString(text)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	hdr := make([]cell, len(t.header))
	for i, h := range t.header {
		hdr[i] = cell{text: h, style: p.bold}
	}
	line(hdr)
	for _, r := range t.rows {
		line(r)
	}
}

// serverText shows the peer next to the server as written when they
// differ (a name resolved to an address).
func serverText(t *Target) string {
	if t.Address != "" && t.Address != t.Server {
		return t.Server + " (" + t.Address + ")"
	}
	return t.Server
}

// upstreamText shortens an implicit upstream, whose name repeats the
// server, so long socket paths are not printed twice.
func upstreamText(t *Target) string {
	if t.Implicit && t.Upstream == t.Server {
		return "(implicit)"
	}
	return t.Upstream
}

func latency(t *Target) string {
	if t.Verdict != VerdictOK && t.Verdict != VerdictFailed {
		return ""
	}
	return formatDuration(time.Duration(t.DurationSeconds * float64(time.Second)))
}

func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func verdictCell(t *Target, p palette) cell {
	suffix := ""
	if t.Backup {
		suffix = " (backup)"
	}
	switch t.Verdict {
	case VerdictOK:
		return cell{text: "ok" + suffix, style: p.green}
	case VerdictFailed:
		if t.Backup {
			return cell{text: "FAIL" + suffix, style: p.yellow}
		}
		if t.Unverified {
			return cell{text: "FAIL (unverified)", style: p.red}
		}
		return cell{text: "FAIL", style: p.red}
	case VerdictDown:
		return cell{text: "down (not probed)", style: p.dim}
	case VerdictInconclusive:
		return cell{text: "NO VERDICT" + suffix, style: p.yellow}
	case VerdictNoResult:
		return cell{text: "not probed (interrupted)", style: p.dim}
	}
	return plain(t.Verdict)
}

// writeTable prints the probe results: one row per target, and under each
// failure the line nginx would log and the first thing to try.
func writeTable(w io.Writer, rep *Report, p palette) {
	if len(rep.Targets) == 0 {
		fmt.Fprintf(w, "No upstream servers to probe in %s.\n", rep.Config)
	} else {
		tb := &table{header: []string{"UPSTREAM", "SERVER", "PROTOCOL", "VERDICT", "REASON", "LATENCY"}}
		var details [][2]string // per row: nginx line, fix
		for i := range rep.Targets {
			t := &rep.Targets[i]
			reason := cell{text: t.Reason, style: p.red}
			if t.Backup || t.Verdict == VerdictInconclusive {
				reason.style = p.yellow
			}
			tb.add(plain(upstreamText(t)), plain(serverText(t)), plain(t.Protocol), verdictCell(t, p), reason, plain(latency(t)))
			details = append(details, [2]string{t.NginxMessage, t.Hint})
		}
		// Render rows with their detail lines interleaved.
		var sb strings.Builder
		tb.write(&sb, p)
		lines := strings.Split(strings.TrimSuffix(sb.String(), "\n"), "\n")
		fmt.Fprintln(w, lines[0])
		for i, l := range lines[1:] {
			fmt.Fprintln(w, l)
			t := &rep.Targets[i]
			if t.Verdict == VerdictInconclusive {
				fmt.Fprintf(w, "    %s %s\n", p.dim("why:       "), t.Hint)
			}
			if t.Capacity != nil && (t.Verdict == VerdictOK || t.Verdict == VerdictInconclusive) {
				fmt.Fprintf(w, "    %s %s\n", p.dim("capacity:  "), t.Capacity.Line)
			}
			if d := details[i]; d[0] != "" {
				fmt.Fprintf(w, "    %s %s\n", p.dim("nginx logs:"), d[0])
				fmt.Fprintf(w, "    %s %s\n", p.dim("fix:       "), d[1])
				if t.Detail != "" {
					fmt.Fprintf(w, "    %s %s\n", p.dim("detail:    "), t.Detail)
				}
				if t.Capacity != nil {
					fmt.Fprintf(w, "    %s %s\n", p.dim("capacity:  "), t.Capacity.Line)
				}
				if t.Unverified {
					fmt.Fprintf(w, "    %s %s\n", p.dim("note:      "), "this user cannot read a directory on the socket's path; run as root or as nginx's worker user to confirm")
				}
			}
			writeLogged(w, t, p)
		}
	}
	fmt.Fprintln(w)
	writeSummary(w, rep, p)
}

func writeSummary(w io.Writer, rep *Report, p palette) {
	s := rep.Summary
	parts := []string{fmt.Sprintf("%d probed", s.Probed)}
	if rep.Probed {
		parts = append(parts, fmt.Sprintf("%d ok", s.Healthy))
		if s.Failing > 0 {
			f := fmt.Sprintf("%d failing", s.Failing)
			if s.FailingBackup > 0 {
				f += fmt.Sprintf(" (%d backup)", s.FailingBackup)
			}
			parts = append(parts, f)
		}
		if s.Inconclusive > 0 {
			parts = append(parts, fmt.Sprintf("%d without a verdict", s.Inconclusive))
		}
		if s.NoResult > 0 {
			parts = append(parts, fmt.Sprintf("%d not probed (interrupted)", s.NoResult))
		}
	}
	parts = append(parts, fmt.Sprintf("%d down (not probed)", s.Down))
	if s.Dynamic > 0 {
		parts = append(parts, fmt.Sprintf("%d dynamic (not probeable)", s.Dynamic))
	}
	head := fmt.Sprintf("%d targets: %s.", s.Targets, strings.Join(parts, ", "))
	if rep.Probed {
		switch {
		case rep.Healthy && s.Inconclusive > 0:
			// Only silent UDP servers lack a verdict (see addResults).
			head += " " + p.green("No primary server is failing.")
		case rep.Healthy:
			head += " " + p.green("Every primary server is healthy.")
		case s.FailingPrimary > 0:
			head += " " + p.red(fmt.Sprintf("%d primary server(s) failing.", s.FailingPrimary))
		default:
			head += " " + p.yellow("Not every server has a verdict.")
		}
	}
	fmt.Fprintln(w, head)
	for _, d := range rep.Dynamic {
		fmt.Fprintf(w, "not probed: %s %s at %s: %s\n", d.Directive, d.Address, d.Source, d.Reason)
	}
	for _, u := range rep.UnusedUpstreams {
		fmt.Fprintf(w, "not probed: upstream %q is not used by any *_pass with a static address\n", u)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	writeLogSummary(w, rep.ErrorLog, p)
}

// writeList prints what discovery found, without probing.
func writeList(w io.Writer, rep *Report, p palette) {
	if len(rep.Targets) == 0 {
		fmt.Fprintf(w, "No upstream servers found in %s.\n", rep.Config)
	} else {
		tb := &table{header: []string{"UPSTREAM", "SERVER", "PROTOCOL", "PARAMS", "CONNECT", "READ", "SEND", "BUFFER", "TLS"}}
		for i := range rep.Targets {
			t := &rep.Targets[i]
			params := cell{text: paramsText(t)}
			if t.Down {
				params.style = p.dim
			}
			tb.add(plain(upstreamText(t)), plain(serverText(t)), plain(t.Protocol), params,
				plain(secondsText(t.Settings.ConnectTimeoutSeconds)),
				plain(secondsText(t.Settings.ReadTimeoutSeconds)),
				plain(secondsText(t.Settings.SendTimeoutSeconds)),
				plain(bytesText(t.Settings.BufferSizeBytes)),
				plain(tlsText(t.Settings.TLS)))
		}
		tb.write(w, p)
	}
	fmt.Fprintln(w)
	if rep.ProbeTimeoutSeconds > 0 {
		fmt.Fprintf(w, "Timeouts are nginx's effective *_connect/read/send_timeout; probes are cut at --probe.timeout=%s and then give no verdict.\n",
			secondsText(rep.ProbeTimeoutSeconds))
	} else {
		fmt.Fprintln(w, "Timeouts are nginx's effective *_connect/read/send_timeout; probes wait as long as nginx would.")
	}
	writeSummary(w, rep, p)
}

func paramsText(t *Target) string {
	var f []string
	if t.Down {
		f = append(f, "down (not probed)")
	}
	if t.Backup {
		f = append(f, "backup")
	}
	f = append(f, "weight="+strconv.Itoa(t.Params.Weight),
		"max_fails="+strconv.Itoa(t.Params.MaxFails),
		"fail_timeout="+secondsText(t.Params.FailTimeoutSeconds))
	if t.Params.MaxConns > 0 {
		f = append(f, "max_conns="+strconv.Itoa(t.Params.MaxConns))
	}
	if t.Params.Resolve {
		f = append(f, "resolve")
	}
	if t.Implicit {
		f = append(f, "implicit")
	}
	return strings.Join(f, " ")
}

// secondsText renders a duration given in seconds. Timeouts nginx
// accepts can exceed what a time.Duration holds (grpc_read_timeout
// 1071906480m is about 2000 years); the configuration model saturates
// them at the largest Duration, and converting such a float back would
// wrap to a negative number, so anything that large is shown as a bound.
func secondsText(s float64) string {
	if s >= maxDurationSeconds {
		return ">292y"
	}
	return time.Duration(s * float64(time.Second)).String()
}

// maxDurationSeconds is the largest time.Duration in seconds, as a float
// (rounded up: float64(math.MaxInt64) is 2^63).
const maxDurationSeconds = float64(math.MaxInt64) / float64(time.Second)

func bytesText(n int) string {
	switch {
	case n == 0:
		return "-"
	case n%1024 == 0:
		return strconv.Itoa(n/1024) + "k"
	}
	return strconv.Itoa(n)
}

func tlsText(t *TLS) string {
	if t == nil {
		return "-"
	}
	s := "verify=off"
	if t.Verify {
		s = "verify=on name=" + t.VerifyName
	}
	if t.SNI != "" {
		s += " sni=" + t.SNI
	}
	if t.ClientCertificate {
		s += " client-cert"
	}
	return s
}
