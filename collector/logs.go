package collector

import (
	"io"

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
// The per-target families, declared once for the Collector and the
// text writer.
var (
	logErrorsName    = prometheus.BuildFQName(namespace, "log", "errors_total")
	logErrorsHelp    = "Upstream errors nginx logged in its error log for this server, by reason, that failed the request before the response header (nginx answered 502 or 504 unless another server took over)."
	logBodyName      = prometheus.BuildFQName(namespace, "log", "body_errors_total")
	logBodyHelp      = "Upstream errors nginx logged for this server while reading the response body (\"while reading upstream\"), by reason: the client got a truncated response, not a 502."
	logLastErrorName = prometheus.BuildFQName(namespace, "log", "last_error_timestamp_seconds")
	logLastErrorHelp = "Unix time when the exporter read nginx's last logged error for this server (within a second of nginx writing it)."
)

var (
	logErrorsDesc     = prometheus.NewDesc(logErrorsName, logErrorsHelp, append(append([]string{}, targetLabels...), "reason"), nil)
	logBodyErrorsDesc = prometheus.NewDesc(logBodyName, logBodyHelp, append(append([]string{}, targetLabels...), "reason"), nil)
	logLastErrorDesc  = prometheus.NewDesc(logLastErrorName, logLastErrorHelp, targetLabels, nil)
	logNoLiveDesc     = prometheus.NewDesc(prometheus.BuildFQName(namespace, "log", "no_live_upstreams_total"),
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

// Logs exposes the error-log signal. NewLogs gives every family through
// the registry, the reference the tests hold LogsText to; serve uses
// NewLogsText, which leaves the per-target families to LogsText.
type Logs struct {
	src       LogSource
	perTarget bool
}

var _ prometheus.Collector = (*Logs)(nil)

// NewLogs returns the error-log collector over src.
func NewLogs(src LogSource) *Logs { return &Logs{src: src, perTarget: true} }

// NewLogsText returns the error-log collector without the per-target
// families, and the writer of those. With thousands of failing servers
// they are tens of thousands of series: as const metrics they cost a
// label-pair slice and a protobuf message each, then a sort, on every
// scrape (about 25 MB of garbage per scrape at 10,000 targets, half of
// them failing); written as text they cost a pass over the snapshot.
func NewLogsText(src LogSource) (*Logs, *LogsText) {
	return &Logs{src: src}, &LogsText{src: src}
}

// Describe implements prometheus.Collector.
func (l *Logs) Describe(ch chan<- *prometheus.Desc) {
	ds := []*prometheus.Desc{logNoLiveDesc, logUnattributedDesc, logUnknownPeerDesc, logLinesDesc, logFilesDesc}
	if l.perTarget {
		ds = append(ds, logErrorsDesc, logBodyErrorsDesc, logLastErrorDesc)
	}
	for _, d := range ds {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (l *Logs) Collect(ch chan<- prometheus.Metric) {
	s := l.src.Snapshot()
	for _, t := range s.Targets {
		if !l.perTarget {
			break
		}
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

// LogsText writes the error log's per-target families in the text
// format, for collector.Handler's extra writers.
type LogsText struct {
	src LogSource
}

// WriteTo implements io.WriterTo.
func (lt *LogsText) WriteTo(w io.Writer) (int64, error) {
	s := lt.src.Snapshot()
	cw := &countingWriter{w: w}
	var b []byte
	flush := func() {
		if len(b) >= flushSize {
			cw.Write(b)
			b = b[:0]
		}
	}
	labels := make([]string, len(s.Targets))
	for i, t := range s.Targets {
		labels[i] = `upstream="` + escaper.Replace(t.Key.Upstream) + `",server="` + escaper.Replace(t.Key.Server) +
			`",address="` + escaper.Replace(t.Key.Address) + `",protocol="` + escaper.Replace(t.Key.Protocol) + `"`
	}
	for _, fam := range []struct {
		name, help string
		of         func(*errorlog.TargetErrors) map[prober.Reason]uint64
	}{
		{logErrorsName, logErrorsHelp, func(t *errorlog.TargetErrors) map[prober.Reason]uint64 { return t.Errors }},
		{logBodyName, logBodyHelp, func(t *errorlog.TargetErrors) map[prober.Reason]uint64 { return t.BodyErrors }},
	} {
		b = AppendHeader(b, fam.name, fam.help, prometheus.CounterValue)
		for i := range s.Targets {
			m := fam.of(&s.Targets[i])
			if len(m) == 0 {
				continue
			}
			for _, r := range prober.Reasons {
				if n, ok := m[r]; ok {
					b = sample(b, fam.name, labels[i], "reason", string(r), float64(n))
				}
			}
			flush()
		}
	}
	b = AppendHeader(b, logLastErrorName, logLastErrorHelp, prometheus.GaugeValue)
	for i := range s.Targets {
		if t := &s.Targets[i]; !t.Last.IsZero() {
			b = sample(b, logLastErrorName, labels[i], "", "", float64(t.Last.UnixNano())/1e9)
			flush()
		}
	}
	cw.Write(b)
	return cw.n, cw.err
}
