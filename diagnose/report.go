package diagnose

import (
	"encoding/json"
	"io"

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

func writeJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
