// Package collector exposes the scheduler's latest verdicts as Prometheus
// metrics. It reads a snapshot on each scrape and never probes: probing is
// the scheduler's job, so scrapes are cheap and never touch a backend.
package collector

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

const namespace = "nginx_upstream"

// Source yields target statuses; *scheduler.Scheduler satisfies it.
type Source interface {
	Each(fn func(st *scheduler.Status))
}

var targetLabels = []string{"upstream", "server", "address", "protocol"}

func desc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "probe", name), help,
		append(append([]string{}, targetLabels...), extra...), nil)
}

// Help texts, shared by Collector and TextWriter so both pages say the same.
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
)

// Descriptors are built once; the Collector only fills values.
var (
	successDesc = desc("success",
		helpSuccess)
	reasonDesc = desc("failure_reason",
		helpReason, "reason")
	durationDesc = desc("duration_seconds",
		helpDuration)
	phaseDesc = desc("phase_duration_seconds",
		helpPhase, "phase")
	runsDesc = desc("runs_total",
		helpRuns)
	failuresDesc = desc("failures_total",
		helpFailures, "reason")
	lastRunDesc = desc("last_run_timestamp_seconds",
		helpLastRun)
	timeoutDesc = desc("timeout_seconds",
		helpTimeout, "kind")
	statusDesc = desc("http_status_code",
		helpStatus)
	expiryDesc = desc("tls_certificate_expiry_timestamp_seconds",
		helpExpiry)
	infoDesc = desc("target_info",
		helpInfo,
		"backup", "down", "weight", "max_fails", "fail_timeout", "max_conns", "resolve", "implicit")
)

// Collector implements prometheus.Collector over a Source.
type Collector struct {
	src Source
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector reading src.
func New(src Source) *Collector { return &Collector{src: src} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{successDesc, reasonDesc, durationDesc, phaseDesc, runsDesc,
		failuresDesc, lastRunDesc, timeoutDesc, statusDesc, expiryDesc, infoDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.src.Each(func(st *scheduler.Status) { CollectStatus(ch, st) })
}

// CollectStatus emits the series of one target.
func CollectStatus(ch chan<- prometheus.Metric, st *scheduler.Status) {
	t := st.Target
	lv := []string{t.Upstream, t.Server, t.Address, t.Protocol}
	p := t.Params
	ch <- prometheus.MustNewConstMetric(infoDesc, prometheus.GaugeValue, 1, append(lv,
		strconv.FormatBool(p.Backup), strconv.FormatBool(p.Down), strconv.Itoa(p.Weight),
		strconv.Itoa(p.MaxFails), seconds(p.FailTimeout), strconv.Itoa(p.MaxConns),
		strconv.FormatBool(p.Resolve), strconv.FormatBool(t.Implicit))...)
	if t.Probe == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(timeoutDesc, prometheus.GaugeValue, t.ConnectTimeout.Seconds(), append(lv, "connect")...)
	ch <- prometheus.MustNewConstMetric(timeoutDesc, prometheus.GaugeValue, t.ReadTimeout.Seconds(), append(lv, "read")...)
	ch <- prometheus.MustNewConstMetric(timeoutDesc, prometheus.GaugeValue, t.SendTimeout.Seconds(), append(lv, "send")...)
	ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.CounterValue, float64(st.Runs), lv...)
	for i, n := range st.Failures {
		if n > 0 {
			ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, float64(n), append(lv, string(prober.Reasons[i]))...)
		}
	}
	if !st.HasResult {
		return
	}
	r := &st.Result
	ch <- prometheus.MustNewConstMetric(successDesc, prometheus.GaugeValue, boolValue(r.Success), lv...)
	if !r.Success {
		ch <- prometheus.MustNewConstMetric(reasonDesc, prometheus.GaugeValue, 1, append(lv, string(r.Reason))...)
	}
	ch <- prometheus.MustNewConstMetric(durationDesc, prometheus.GaugeValue, r.Duration.Seconds(), lv...)
	for i, d := range r.Phases {
		ch <- prometheus.MustNewConstMetric(phaseDesc, prometheus.GaugeValue, d.Seconds(), append(lv, prober.PhaseNames[i])...)
	}
	ch <- prometheus.MustNewConstMetric(lastRunDesc, prometheus.GaugeValue, float64(st.Finished.UnixNano())/1e9, lv...)
	if r.HTTPStatus > 0 {
		ch <- prometheus.MustNewConstMetric(statusDesc, prometheus.GaugeValue, float64(r.HTTPStatus), lv...)
	}
	if !r.TLSNotAfter.IsZero() {
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(r.TLSNotAfter.Unix()), lv...)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}
