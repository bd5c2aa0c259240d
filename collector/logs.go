package collector

import (
	"io"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
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
	var s errorlog.Snapshot
	if ts, ok := l.src.(totalsSource); ok && !l.perTarget {
		s = ts.Totals()
	} else {
		s = l.src.Snapshot()
	}
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
// format, for collector.Handler's extra writers. Handler renders it in
// parts (AppendParts), each family in ranges of targets: with half of
// 10,000 servers logged it is a few MB of the page, the last segment,
// which one worker would otherwise render and compress alone.
type LogsText struct {
	src LogSource
	// scrapes holds the *logsScrape scrapes read and render into.
	scrapes sync.Pool
	// perTarget is each family's bytes per logged target in the last
	// complete scrape in parts, which cuts the next one's ranges (0: one
	// part per family, as before the first).
	perTarget [len(logFamilies)]atomic.Int64
}

var _ PartsWriter = (*LogsText)(nil)

// logFamilies are LogsText's families, in the order written.
var logFamilies = [...]struct {
	name, help string
	typ        prometheus.ValueType
	// body: the body errors; last: the time of the last error.
	body, last bool
}{
	{logErrorsName, logErrorsHelp, prometheus.CounterValue, false, false},
	{logBodyName, logBodyHelp, prometheus.CounterValue, true, false},
	{logLastErrorName, logLastErrorHelp, prometheus.GaugeValue, false, true},
}

// logsScrape is what one scrape of LogsText reuses: the flat copy of the
// counts, and the buffer the samples are rendered into.
type logsScrape struct {
	counts errorlog.Counts
	buf    []byte
}

// countsSource is a LogSource that copies the targets' counts flat
// (*errorlog.Reader does): a scrape then builds no map per target.
type countsSource interface {
	ReadCounts(c *errorlog.Counts)
}

// totalsSource is a LogSource that gives a Snapshot without the targets
// (*errorlog.Reader does), for the Collector that leaves them to
// LogsText.
type totalsSource interface {
	Totals() errorlog.Snapshot
}

// read returns a scrape holding the current counts.
func (lt *LogsText) read() *logsScrape {
	sc, _ := lt.scrapes.Get().(*logsScrape)
	if sc == nil {
		// Room for a flush and the sample that crossed it.
		sc = &logsScrape{buf: make([]byte, 0, flushSize+4<<10)}
	}
	c := &sc.counts
	if cs, ok := lt.src.(countsSource); ok {
		cs.ReadCounts(c)
	} else {
		s := lt.src.Snapshot()
		errorlog.CountsOf(&s, c)
	}
	return sc
}

// WriteTo implements io.WriterTo. Each sample's labels are written from
// the target's key as it goes: no string per target.
func (lt *LogsText) WriteTo(w io.Writer) (int64, error) {
	sc := lt.read()
	defer lt.scrapes.Put(sc)
	cw := &countingWriter{w: w}
	for fi := range logFamilies {
		var err error
		if sc.buf, _, err = logPart(cw, &sc.counts, fi, 0, len(sc.counts.Targets), sc.buf); err != nil {
			return cw.n, err
		}
	}
	return cw.n, cw.err
}

// AppendParts implements PartsWriter: the counts are read once, here, and
// every part renders from that copy, returned to the pool by done.
func (lt *LogsText) AppendParts(parts []func(io.Writer) error, partBytes int) (_ []func(io.Writer) error, done func()) {
	sc := lt.read()
	n := len(sc.counts.Targets)
	var bytes [len(logFamilies)]atomic.Int64
	var failed atomic.Bool
	for fi := range logFamilies {
		step := n
		if per := lt.perTarget[fi].Load(); per > 0 {
			step = int(min(int64(partBytes)/per, int64(n)))
		}
		step = max(step, 1)
		for from := 0; ; from += step {
			to := min(from+step, n)
			parts = append(parts, func(w io.Writer) error {
				_, m, err := logPart(w, &sc.counts, fi, from, to, nil)
				bytes[fi].Add(m)
				if err != nil {
					failed.Store(true)
				}
				return err
			})
			if to >= n {
				break
			}
		}
	}
	return parts, func() {
		if n > 0 && !failed.Load() {
			for fi := range logFamilies {
				lt.perTarget[fi].Store(bytes[fi].Load() / int64(n))
			}
		}
		lt.scrapes.Put(sc)
	}
}

// logPart writes family fi of the targets c.Targets[from:to] to w, with
// its HELP and TYPE if from is 0, and returns the bytes written. It
// renders into the writer's free space when the writer lends it
// (AvailableBuffer, as the page's segments do), else into buf, which it
// returns for reuse.
func logPart(w io.Writer, c *errorlog.Counts, fi, from, to int, buf []byte) ([]byte, int64, error) {
	fam := &logFamilies[fi]
	ab, _ := w.(interface{ AvailableBuffer() []byte })
	// Lent space is written in small pieces, so that a sample fits
	// what remains of it.
	limit := flushSize
	b := buf[:0]
	if ab != nil {
		limit, b = 4<<10, ab.AvailableBuffer()
	}
	var n int64
	write := func() error {
		n += int64(len(b))
		_, err := w.Write(b)
		if ab != nil {
			b = ab.AvailableBuffer()
		} else {
			b = b[:0]
		}
		return err
	}
	if from == 0 {
		b = AppendHeader(b, fam.name, fam.help, fam.typ)
	}
	for i := from; i < to; i++ {
		t := &c.Targets[i]
		if fam.last {
			if !t.Last.IsZero() {
				b = logSample(b, fam.name, &t.Key, "", float64(t.Last.UnixNano())/1e9)
			}
		} else {
			for _, rc := range c.Reasons(t) {
				if rc.Body == fam.body {
					b = logSample(b, fam.name, &t.Key, string(rc.Reason), float64(rc.N))
				}
			}
		}
		if len(b) >= limit {
			if err := write(); err != nil {
				return buf, n, err
			}
		}
	}
	if len(b) > 0 {
		if err := write(); err != nil {
			return buf, n, err
		}
	}
	if ab == nil {
		buf = b[:0]
	}
	return buf, n, nil
}

// logSample is sample with the target's labels written from its key,
// escaped as TargetLabels escapes them.
func logSample(b []byte, name string, k *discovery.Key, reason string, value float64) []byte {
	b = append(b, name...)
	b = append(b, `{upstream="`...)
	b = AppendEscapedLabelValue(b, k.Upstream)
	b = append(b, `",server="`...)
	b = AppendEscapedLabelValue(b, k.Server)
	b = append(b, `",address="`...)
	b = AppendEscapedLabelValue(b, k.Address)
	b = append(b, `",protocol="`...)
	b = AppendEscapedLabelValue(b, k.Protocol)
	b = append(b, '"')
	if reason != "" {
		b = append(b, `,reason="`...)
		b = append(b, reason...) // reason names need no escaping
		b = append(b, '"')
	}
	b = append(b, "} "...)
	b = AppendFloat(b, value)
	return append(b, '\n')
}

// AppendEscapedLabelValue appends EscapeLabelValue(v) without building
// the string.
func AppendEscapedLabelValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		case '"':
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}
