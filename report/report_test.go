package report

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func target(backup, down bool) *discovery.Target {
	t := &discovery.Target{
		Key: discovery.Key{Upstream: "app", Server: "10.0.0.1:80", Address: "10.0.0.1:80", Protocol: "http"},
		ServerSettings: &discovery.ServerSettings{
			ConnectTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, SendTimeout: 60 * time.Second},
	}
	t.Params.Backup, t.Params.Down = backup, down
	if !down {
		t.Probe = &prober.Peer{Network: "tcp"}
	}
	return t
}

// TestVerdicts: the one mapping from a scheduler status to what diagnose,
// the API and the status page show, and how each counts.
func TestVerdicts(t *testing.T) {
	finished := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		st       scheduler.Status
		noResult string
		verdict  string
		reason   string
		healthy  bool
		summary  Summary
	}{
		{"ok", scheduler.Status{Target: target(false, false), HasResult: true, Finished: finished, Runs: 3, Result: prober.Result{Success: true, HTTPStatus: 200}},
			VerdictPending, VerdictOK, "", true, Summary{Healthy: 1}},
		{"failing primary", scheduler.Status{Target: target(false, false), HasResult: true, Finished: finished, Result: prober.Result{Reason: prober.ReasonConnectionRefused, Err: errors.New("refused")}},
			VerdictPending, VerdictFailed, "connection_refused", false, Summary{Failing: 1, FailingPrimary: 1}},
		{"failing backup", scheduler.Status{Target: target(true, false), HasResult: true, Finished: finished, Result: prober.Result{Reason: prober.ReasonReadTimeout}},
			VerdictPending, VerdictFailed, "read_timeout", true, Summary{Failing: 1, FailingBackup: 1}},
		{"inconclusive", scheduler.Status{Target: target(false, false), HasResult: true, Finished: finished, Result: prober.Result{Inconclusive: prober.InconclusiveProbeTimeout}},
			VerdictPending, VerdictInconclusive, "probe_timeout", false, Summary{Inconclusive: 1}},
		{"silent UDP server", scheduler.Status{Target: target(false, false), HasResult: true, Finished: finished, Result: prober.Result{Inconclusive: prober.InconclusiveNoAnswer}},
			VerdictPending, VerdictInconclusive, "no_answer", true, Summary{Inconclusive: 1}},
		{"not probed yet, serve", scheduler.Status{Target: target(false, false)},
			VerdictPending, VerdictPending, "", false, Summary{Pending: 1}},
		{"interrupted, diagnose", scheduler.Status{Target: target(false, false)},
			VerdictNoResult, VerdictNoResult, "", false, Summary{NoResult: 1}},
		{"down", scheduler.Status{Target: target(false, true)},
			VerdictPending, VerdictDown, "", true, Summary{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FromStatus(&tc.st, 0, tc.noResult)
			if got.Verdict != tc.verdict || got.Reason != tc.reason {
				t.Errorf("verdict %q reason %q, want %q %q", got.Verdict, got.Reason, tc.verdict, tc.reason)
			}
			var s Summary
			if healthy := s.Count(&got); healthy != tc.healthy || s != tc.summary {
				t.Errorf("Count: healthy %v summary %+v, want %v %+v", healthy, s, tc.healthy, tc.summary)
			}
			switch got.Verdict {
			case VerdictFailed:
				if got.NginxMessage == "" || got.Hint == "" || got.Runbook != "docs/runbook.md#"+tc.reason || !strings.HasSuffix(got.Hint, "; see "+got.Runbook) {
					t.Errorf("a failure needs nginx's line, a hint and its runbook: %+v", got)
				}
			case VerdictInconclusive:
				if got.Hint == "" || got.NginxMessage != "" || got.Runbook != "" {
					t.Errorf("an inconclusive probe explains itself and blames nothing on nginx's side: %+v", got)
				}
			}
			if tc.st.HasResult && (got.LastProbe == nil || !got.LastProbe.Equal(finished)) {
				t.Errorf("last probe %v, want %v", got.LastProbe, finished)
			}
			if got.Settings.ConnectTimeoutSeconds != 2 || got.Settings.ReadTimeoutSeconds != 5 {
				t.Errorf("timeouts %+v", got.Settings)
			}
		})
	}
}

// TestEveryReasonHasWords: each failure reason has nginx's line, a hint and a
// runbook section, so no row of the page is left without a next step.
func TestEveryReasonHasWords(t *testing.T) {
	for _, r := range prober.Reasons {
		t.Run(string(r), func(t *testing.T) {
			st := scheduler.Status{Target: target(false, false), HasResult: true, Result: prober.Result{Reason: r}}
			got := FromStatus(&st, 0, VerdictPending)
			if got.NginxMessage == "" || got.Hint == "" || strings.HasPrefix(got.Hint, "see the runbook") {
				t.Errorf("%s: %+v", r, got)
			}
			if got.Runbook != fmt.Sprintf("docs/runbook.md#%s", r) {
				t.Errorf("runbook %q", got.Runbook)
			}
		})
	}
}
