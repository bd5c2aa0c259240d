package main

import (
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/diagnose"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/errorlog"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/loadstate"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
)

// What the other signals tell the status page and the API, in the shapes
// diagnose prints: one schema for all of them.

// nginxSection is the running nginx as the tracker last saw it.
func nginxSection(t *loadstate.Tracker) func() *report.Nginx {
	return func() *report.Nginx { return diagnose.NginxSection(t.Result()) }
}

// loggedByTarget is what nginx's error log said about each target since
// the exporter started; nil when the log is not read.
func loggedByTarget(logs *errorlog.Reader) func() map[discovery.Key]*report.Logged {
	if logs == nil {
		return nil
	}
	return func() map[discovery.Key]*report.Logged {
		snap := logs.Snapshot()
		out := make(map[discovery.Key]*report.Logged, len(snap.Targets))
		for _, te := range snap.Targets {
			lg := &report.Logged{Errors: counts(te.Errors), Last: te.Last.UTC()}
			if len(te.BodyErrors) > 0 {
				lg.BodyErrors = counts(te.BodyErrors)
			}
			out[te.Key] = lg
		}
		return out
	}
}

func counts(m map[prober.Reason]uint64) map[string]int {
	out := make(map[string]int, len(m))
	for r, n := range m {
		out[string(r)] = int(n)
	}
	return out
}
