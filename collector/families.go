package collector

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// targetLabels label every per-target series, in this order.
var targetLabels = []string{"upstream", "server", "address", "protocol"}

// scope says which targets a family has series for.
type scope int

const (
	// allTargets: every configured target, probed or not (marked down).
	allTargets scope = iota
	// probedTargets: targets the scheduler probes.
	probedTargets
	// resultTargets: probed targets whose first probe has finished.
	resultTargets
	// verdictTargets: probed targets whose last probe gave a verdict
	// about the backend. A probe without one (prober.Inconclusive) leaves
	// the verdict series absent: unknown is not 0 and not healthy.
	verdictTargets
)

func (s scope) has(st *scheduler.Status) bool {
	switch s {
	case probedTargets:
		return st.Target.Probe != nil
	case resultTargets:
		return st.Target.Probe != nil && st.HasResult
	case verdictTargets:
		return st.Target.Probe != nil && st.HasResult && st.Result.Inconclusive == ""
	}
	return true
}

// family is one per-target metric family. The table below is the only
// declaration of the per-target contract: Collector builds its
// descriptors from it and TextWriter renders from it, so the two pages
// cannot drift apart.
type family struct {
	name  string // full metric name
	help  string
	typ   prometheus.ValueType
	scope scope
	// label is the one label a series carries beyond targetLabels, ""
	// for none. Its values are closed enums (reasons, phases, kinds) that
	// need no escaping.
	label string
	// values yields the series of one target: the value of label ("" when
	// label is "") and the sample value. Unused when info is set.
	values func(st *scheduler.Status, yield func(lv string, v float64))
	// info, when set, makes this an info family: one series per target of
	// value 1 whose extra labels (infoLabels) come from the configuration
	// alone, so TextWriter renders them once per configuration.
	infoLabels []string
	info       func(t *discovery.Target) []string

	desc *prometheus.Desc
}

// Help texts are full sentences; they are part of the documented contract
// (docs/metrics.md).
const (
	helpSuccess  = "1 when the last probe got a response nginx would accept from this server, else 0. Probes run on the exporter's own schedule (--probe.interval), not on scrape."
	helpReason   = "1 while the last probe failed, labelled with the reason named after nginx's error-log message; absent for healthy targets."
	helpDuration = "Duration of the last probe in seconds."
	helpPhase    = "Duration of each phase of the last probe in seconds."
	helpRuns     = "Probes run against this target since the exporter started."
	helpFailures = "Failed probes against this target by reason."
	helpLastRun  = "Unix time when the last probe of this target finished."
	helpTimeout  = "The timeout nginx applies to this target (*_connect_timeout, *_read_timeout, *_send_timeout)."
	helpStatus   = "HTTP status code of the last response read from this target."
	helpExpiry   = "Expiry (notAfter) of the target's TLS leaf certificate as Unix time, whether or not nginx verifies it."
	helpInfo     = "Upstream server parameters from the nginx configuration; always 1. Lists servers marked down, which are not probed."
	// helpInconclusive: the verdict series are absent meanwhile.
	helpInconclusive = "1 while the last probe gave no verdict about this server, labelled with the cause: probe_timeout (the exporter's --probe.timeout ended it before nginx's own timeout would have), exporter_resources (the exporter ran out of file descriptors, ports or memory) or no_answer (a UDP server neither answered nor drew an ICMP error). success, failure_reason, duration and phases are absent meanwhile."
)

// families is the per-target contract, in the order TextWriter writes it.
var families = buildFamilies([]family{
	{
		name: "target_info", help: helpInfo, typ: prometheus.GaugeValue, scope: allTargets,
		infoLabels: []string{"backup", "down", "weight", "max_fails", "fail_timeout", "max_conns", "resolve", "implicit"},
		info: func(t *discovery.Target) []string {
			p := t.Settings().Params
			return []string{strconv.FormatBool(p.Backup), strconv.FormatBool(p.Down), strconv.Itoa(p.Weight),
				strconv.Itoa(p.MaxFails), strconv.FormatFloat(p.FailTimeout.Seconds(), 'f', -1, 64), strconv.Itoa(p.MaxConns),
				strconv.FormatBool(p.Resolve), strconv.FormatBool(t.Implicit)}
		},
	},
	{
		name: "timeout_seconds", help: helpTimeout, typ: prometheus.GaugeValue, scope: probedTargets, label: "kind",
		values: func(st *scheduler.Status, yield func(string, float64)) {
			s := st.Target.Settings()
			yield("connect", s.ConnectTimeout.Seconds())
			yield("read", s.ReadTimeout.Seconds())
			yield("send", s.SendTimeout.Seconds())
		},
	},
	{
		name: "runs_total", help: helpRuns, typ: prometheus.CounterValue, scope: probedTargets,
		values: func(st *scheduler.Status, yield func(string, float64)) {
			yield("", float64(st.Runs))
		},
	},
	{
		name: "failures_total", help: helpFailures, typ: prometheus.CounterValue, scope: probedTargets, label: "reason",
		values: func(st *scheduler.Status, yield func(string, float64)) {
			for i, n := range st.Failures {
				if n > 0 {
					yield(string(prober.Reasons[i]), float64(n))
				}
			}
		},
	},
	{
		name: "success", help: helpSuccess, typ: prometheus.GaugeValue, scope: verdictTargets,
		values: func(st *scheduler.Status, yield func(string, float64)) {
			yield("", boolValue(st.Result.Success))
		},
	},
	{
		name: "failure_reason", help: helpReason, typ: prometheus.GaugeValue, scope: verdictTargets, label: "reason",
		values: func(st *scheduler.Status, yield func(string, float64)) {
			if !st.Result.Success {
				yield(string(st.Result.Reason), 1)
			}
		},
	},
	{
		name: "duration_seconds", help: helpDuration, typ: prometheus.GaugeValue, scope: verdictTargets,
		values: func(st *scheduler.Status, yield func(string, float64)) {
			yield("", st.Result.Duration.Seconds())
		},
	},
	{
		name: "phase_duration_seconds", help: helpPhase, typ: prometheus.GaugeValue, scope: verdictTargets, label: "phase",
		values: func(st *scheduler.Status, yield func(string, float64)) {
			for i, d := range st.Result.Phases {
				yield(prober.PhaseNames[i], d.Seconds())
			}
		},
	},
	{
		name: "last_run_timestamp_seconds", help: helpLastRun, typ: prometheus.GaugeValue, scope: resultTargets,
		values: func(st *scheduler.Status, yield func(string, float64)) {
			yield("", float64(st.Finished.UnixNano())/1e9)
		},
	},
	{
		name: "http_status_code", help: helpStatus, typ: prometheus.GaugeValue, scope: verdictTargets,
		values: func(st *scheduler.Status, yield func(string, float64)) {
			if st.Result.HTTPStatus > 0 {
				yield("", float64(st.Result.HTTPStatus))
			}
		},
	},
	{
		name: "inconclusive", help: helpInconclusive, typ: prometheus.GaugeValue, scope: resultTargets, label: "cause",
		values: func(st *scheduler.Status, yield func(string, float64)) {
			if st.Result.Inconclusive != "" {
				yield(string(st.Result.Inconclusive), 1)
			}
		},
	},
	{
		name: "tls_certificate_expiry_timestamp_seconds", help: helpExpiry, typ: prometheus.GaugeValue, scope: resultTargets,
		values: func(st *scheduler.Status, yield func(string, float64)) {
			if !st.Result.TLSNotAfter.IsZero() {
				yield("", float64(st.Result.TLSNotAfter.Unix()))
			}
		},
	},
})

// buildFamilies completes each entry with its full name and descriptor.
func buildFamilies(fs []family) []family {
	for i := range fs {
		f := &fs[i]
		f.name = prometheus.BuildFQName(namespace, "probe", f.name)
		labels := append([]string{}, targetLabels...)
		if f.label != "" {
			labels = append(labels, f.label)
		}
		labels = append(labels, f.infoLabels...)
		f.desc = prometheus.NewDesc(f.name, f.help, labels, nil)
	}
	return fs
}
