package diagnose

import (
	"encoding/json"
	"io"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/capacity"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
)

// The report's shapes live in package report, shared with the server's
// GET /api/v1/targets so that one JSON Schema describes both.
type (
	Report   = report.Report
	Summary  = report.Summary
	Target   = report.Target
	Params   = report.Params
	Settings = report.Settings
	TLS      = report.TLS
	Dynamic  = report.Dynamic
	// The section on the running nginx.
	Nginx       = report.Nginx
	PendingFile = report.PendingFile
	Failure     = report.Failure
	Stale       = report.Stale
	// What nginx's error log says.
	ErrorLogReport = report.ErrorLogReport
	LogFile        = report.LogFile
	Logged         = report.Logged
)

// Verdicts of a target in the report.
const (
	VerdictOK           = report.VerdictOK
	VerdictFailed       = report.VerdictFailed
	VerdictDown         = report.VerdictDown
	VerdictNotRun       = report.VerdictNotRun
	VerdictNoResult     = report.VerdictNoResult
	VerdictInconclusive = report.VerdictInconclusive
)

// RunbookURL is the runbook section for a failure reason; see
// report.RunbookURL.
func RunbookURL(r prober.Reason) string { return report.RunbookURL(r) }

// Hint is a one-line first step for a failure; see report.Hint.
func Hint(r prober.Reason, label, network string) string { return report.Hint(r, label, network) }

// SlowAfter is the probe duration from which a healthy server's capacity
// is reported too: a server that answers slowly is often one whose
// requests queue.
const SlowAfter = time.Second

// addCapacity attaches the capacity of each failing, inconclusive (cut by
// --probe.timeout) or slow target.
func addCapacity(rep *Report, targets []*discovery.Target, caps map[discovery.Key]capacity.Summary) {
	if len(caps) == 0 {
		return
	}
	for i, t := range targets {
		rt := &rep.Targets[i]
		slow := rt.Verdict == VerdictOK && rt.DurationSeconds >= SlowAfter.Seconds()
		if rt.Verdict != VerdictFailed && rt.Verdict != VerdictInconclusive && !slow {
			continue
		}
		if s, ok := caps[t.Key]; ok {
			rt.Capacity = &s
		}
	}
}

func writeJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
