package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/errorlog"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// The error-log signal: what nginx logged for real requests, beside what
// the probes see. Its per-target series are sparse (a target has them
// once nginx logged an error for it), so they are const metrics of a
// registry collector rather than rows of the families table, which
// renders every target. The reader's self-metrics are declared in self.go
// with the others.
var (
	logErrorsDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "log", "errors_total"),
		"Upstream errors nginx logged in its error log for this server, by reason, that failed the request before the response header (nginx answered 502 or 504 unless another server took over).",
		append(append([]string{}, targetLabels...), "reason"), nil)
	logBodyErrorsDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "log", "body_errors_total"),
		"Upstream errors nginx logged for this server while reading the response body (\"while reading upstream\"), by reason: the client got a truncated response, not a 502.",
		append(append([]string{}, targetLabels...), "reason"), nil)
	logLastErrorDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "log", "last_error_timestamp_seconds"),
		"Unix time when the exporter read nginx's last logged error for this server (within a second of nginx writing it).",
		targetLabels, nil)
	logNoLiveDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "log", "no_live_upstreams_total"),
		"\"no live upstreams\" lines nginx logged for this upstream: every server of it was marked failed (max_fails) and the request got a 502.",
		[]string{"upstream"}, nil)
	logUnattributedDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "log", "unattributed_errors_total"),
		"Upstream errors nginx logged that belong to no single server of the loaded configuration (no peer in the line, a peer no target yields, a peer shared by several targets), by reason.",
		[]string{"reason"}, nil)
	logUnknownPeerDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "log", "unknown_peer_errors_total"),
		"Upstream errors nginx logged for a peer that no server of the configuration yields although its upstream is known (by port and protocol of servers given by name): nginx uses an address the configuration no longer resolves to. Also counted in nginx_upstream_log_unattributed_errors_total.",
		[]string{"upstream", "protocol", "reason"}, nil)
)

// LogSource yields the error-log counters; *errorlog.Reader satisfies it.
type LogSource interface {
	Snapshot() errorlog.Snapshot
}

// Logs exposes the error-log signal.
type Logs struct {
	src LogSource
}

var _ prometheus.Collector = (*Logs)(nil)

// NewLogs returns the error-log collector over src.
func NewLogs(src LogSource) *Logs { return &Logs{src: src} }

// Describe implements prometheus.Collector.
func (l *Logs) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{logErrorsDesc, logBodyErrorsDesc, logLastErrorDesc, logNoLiveDesc,
		logUnattributedDesc, logUnknownPeerDesc, logLinesDesc, logFilesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (l *Logs) Collect(ch chan<- prometheus.Metric) {
	s := l.src.Snapshot()
	for _, t := range s.Targets {
		lv := []string{t.Key.Upstream, t.Key.Server, t.Key.Address, t.Key.Protocol}
		for _, r := range prober.Reasons {
			if n, ok := t.Errors[r]; ok {
				ch <- prometheus.MustNewConstMetric(logErrorsDesc, prometheus.CounterValue, float64(n), append(lv[:4:4], string(r))...)
			}
			if n, ok := t.BodyErrors[r]; ok {
				ch <- prometheus.MustNewConstMetric(logBodyErrorsDesc, prometheus.CounterValue, float64(n), append(lv[:4:4], string(r))...)
			}
		}
		if !t.Last.IsZero() {
			ch <- prometheus.MustNewConstMetric(logLastErrorDesc, prometheus.GaugeValue, float64(t.Last.UnixNano())/1e9, lv...)
		}
	}
	for u, n := range s.NoLiveUpstreams {
		ch <- prometheus.MustNewConstMetric(logNoLiveDesc, prometheus.CounterValue, float64(n), u)
	}
	for _, r := range prober.Reasons {
		ch <- prometheus.MustNewConstMetric(logUnattributedDesc, prometheus.CounterValue, float64(s.Unattributed[r]), string(r))
	}
	for _, u := range s.UnknownPeers {
		ch <- prometheus.MustNewConstMetric(logUnknownPeerDesc, prometheus.CounterValue, float64(u.Count), u.Upstream, u.Protocol, string(u.Reason))
	}
	for _, r := range errorlog.LineResults() {
		ch <- prometheus.MustNewConstMetric(logLinesDesc, prometheus.CounterValue, float64(s.Lines[r]), r.String())
	}
	for _, st := range errorlog.FileStates() {
		ch <- prometheus.MustNewConstMetric(logFilesDesc, prometheus.GaugeValue, float64(s.Files[st]), st.String())
	}
}
