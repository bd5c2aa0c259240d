package collector

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// selfNamespace prefixes every metric about the exporter itself, as
// opposed to the nginx_upstream_probe_* verdicts about its targets.
const selfNamespace = "nginx_upstream_exporter"

// Every nginx_upstream_exporter_* self-metric is declared here and only
// here (build_info is the version collector's, named after the same
// prefix). Other packages keep the values; SelfMetrics names them.
var (
	reloadOKDesc = prometheus.NewDesc(prometheus.BuildFQName(selfNamespace, "config", "last_reload_successful"),
		"1 when the last attempt to load the nginx configuration succeeded. On 0 the exporter keeps probing the last good target set.", nil, nil)
	reloadTimeDesc = prometheus.NewDesc(prometheus.BuildFQName(selfNamespace, "config", "last_reload_success_timestamp_seconds"),
		"Unix time of the last successful load of the nginx configuration.", nil, nil)
	targetsDesc = prometheus.NewDesc(prometheus.BuildFQName(selfNamespace, "", "targets"),
		"Targets in the loaded nginx configuration by state: probed, down (marked down, not probed), dynamic (address built from request variables, not probeable).", []string{"state"}, nil)
	lagDesc = prometheus.NewDesc(prometheus.BuildFQName(selfNamespace, "", "schedule_lag_seconds"),
		"How late probes start compared with their scheduled time. Growing lag means --probe.concurrency is too low for the targets and their timeouts; lag of about a probe's duration minus the interval means probes outlast --probe.interval and runs are skipped.", nil, nil)
	inconclusiveDesc = prometheus.NewDesc(prometheus.BuildFQName(selfNamespace, "", "probes_inconclusive_total"),
		"Probes that gave no verdict about the server, by cause: probe_timeout (--probe.timeout ended them before nginx's timeout), exporter_resources (the exporter's own file descriptors, ports or memory ran out; never blamed on the server) or no_answer (a UDP server neither answered nor drew an ICMP error).", []string{"cause"}, nil)
	skippedDesc = prometheus.NewDesc(prometheus.BuildFQName(selfNamespace, "", "probe_runs_skipped_total"),
		"Scheduled probe runs skipped because the target's previous probe was still running: probes of one target never overlap.", nil, nil)
	inFlightDesc = prometheus.NewDesc(prometheus.BuildFQName(selfNamespace, "", "probes_in_flight"),
		"Probes running now.", nil, nil)
	queueDesc = prometheus.NewDesc(prometheus.BuildFQName(selfNamespace, "", "probe_queue_length"),
		"Probes that are due but wait for a free concurrency slot.", nil, nil)
)

// The error-log reader's own state (Logs collects them, logs.go).
var (
	logLinesDesc = prometheus.NewDesc(prometheus.BuildFQName(selfNamespace, "log", "lines_total"),
		"Error-log lines read, by result: matched (an upstream error of one target), unattributed (an upstream error of no single target), other (not an upstream error, continuation lines), unparsed (not an nginx line, longer than nginx writes, or an upstream error with no known reason).",
		[]string{"result"}, nil)
	logFilesDesc = prometheus.NewDesc(prometheus.BuildFQName(selfNamespace, "log", "files"),
		"Error-log files the exporter follows, by state: tailing, missing (not there yet), unreadable (permissions, not a regular file); missing and unreadable files are retried.",
		[]string{"state"}, nil)
)

// SchedulerStats is what the scheduler counts about itself;
// *scheduler.Scheduler satisfies it.
type SchedulerStats interface {
	InFlight() int
	QueueLength() int
	// Skipped counts runs skipped because a probe outlasted the interval.
	Skipped() uint64
	// Inconclusive counts probes without a verdict for cause.
	Inconclusive(cause prober.Inconclusive) uint64
	// LagHistogram holds the schedule lag observations; its own name is
	// not exposed, SelfMetrics exposes its counts under lagDesc.
	LagHistogram() prometheus.Histogram
}

// SelfMetrics exposes the exporter's own state: configuration loads and
// the scheduler's health.
type SelfMetrics struct {
	config *ConfigState
	sched  SchedulerStats
}

var _ prometheus.Collector = (*SelfMetrics)(nil)

// NewSelfMetrics returns the self-metrics over config and sched; either
// may be nil when a caller has no such state (its series are then absent).
func NewSelfMetrics(config *ConfigState, sched SchedulerStats) *SelfMetrics {
	return &SelfMetrics{config: config, sched: sched}
}

// Describe implements prometheus.Collector.
func (m *SelfMetrics) Describe(ch chan<- *prometheus.Desc) {
	if m.config != nil {
		ch <- reloadOKDesc
		ch <- reloadTimeDesc
		ch <- targetsDesc
	}
	if m.sched != nil {
		ch <- lagDesc
		ch <- inFlightDesc
		ch <- queueDesc
		ch <- skippedDesc
		ch <- inconclusiveDesc
	}
}

// Collect implements prometheus.Collector.
func (m *SelfMetrics) Collect(ch chan<- prometheus.Metric) {
	if m.config != nil {
		m.collectConfig(ch)
	}
	if m.sched == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(m.sched.InFlight()))
	ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(m.sched.QueueLength()))
	ch <- prometheus.MustNewConstMetric(skippedDesc, prometheus.CounterValue, float64(m.sched.Skipped()))
	for _, c := range prober.InconclusiveCauses {
		ch <- prometheus.MustNewConstMetric(inconclusiveDesc, prometheus.CounterValue, float64(m.sched.Inconclusive(c)), string(c))
	}
	var h dto.Metric
	if err := m.sched.LagHistogram().Write(&h); err != nil {
		ch <- prometheus.NewInvalidMetric(lagDesc, err)
		return
	}
	buckets := make(map[float64]uint64, len(h.GetHistogram().GetBucket()))
	for _, b := range h.GetHistogram().GetBucket() {
		buckets[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	ch <- prometheus.MustNewConstHistogram(lagDesc, h.GetHistogram().GetSampleCount(), h.GetHistogram().GetSampleSum(), buckets)
}

func (m *SelfMetrics) collectConfig(ch chan<- prometheus.Metric) {
	s := m.config
	s.mu.Lock()
	defer s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(reloadOKDesc, prometheus.GaugeValue, boolValue(s.ok))
	ts := 0.0
	if !s.lastSuccess.IsZero() {
		ts = float64(s.lastSuccess.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(reloadTimeDesc, prometheus.GaugeValue, ts)
	ch <- prometheus.MustNewConstMetric(targetsDesc, prometheus.GaugeValue, float64(s.probed), "probed")
	ch <- prometheus.MustNewConstMetric(targetsDesc, prometheus.GaugeValue, float64(s.down), "down")
	ch <- prometheus.MustNewConstMetric(targetsDesc, prometheus.GaugeValue, float64(s.dynamic), "dynamic")
}
