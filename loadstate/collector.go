package loadstate

import (
	"io"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/collector"
)

// The families about the running nginx (docs/metrics.md, "The running
// nginx"). They are per nginx or per server line, not per target, so
// they live here beside the state they describe rather than in
// collector/families.go's per-target table.
var (
	upDesc = prometheus.NewDesc("nginx_upstream_nginx_up",
		"1 when nginx's master process was found (through its pid file and /proc) and is alive; 0 when it is not running or the exporter cannot see its processes (another PID namespace, /proc with hidepid): see the exporter's log.", nil, nil)
	lastReloadDesc = prometheus.NewDesc("nginx_upstream_nginx_last_reload_timestamp_seconds",
		"Unix time when nginx last loaded its configuration (start or reload): the start of its current generation of worker processes. Absent until nginx has been found.", nil, nil)
	reloadsDesc = prometheus.NewDesc("nginx_upstream_nginx_reloads_total",
		"Generations of nginx's workers (reloads and restarts) seen by the exporter since it started.", nil, nil)
	workersDesc = prometheus.NewDesc("nginx_upstream_nginx_worker_processes",
		"nginx's worker processes: generation=\"current\" serve the configuration nginx runs, generation=\"old\" are shutting down after a reload.", []string{"generation"}, nil)
	pendingDesc = prometheus.NewDesc("nginx_upstream_config_reload_pending",
		"1 when a file nginx read at its last load (the configuration tree, an upstream certificate, key or CA bundle) changed since: nginx runs an older configuration than the one on disk. Absent until nginx has been found.", nil, nil)
	wouldFailDesc = prometheus.NewDesc("nginx_upstream_config_reload_would_fail",
		"1 when nginx would refuse its configuration on the next reload or restart, by reason: host_not_found (a static upstream hostname does not resolve now), file_missing (a file nginx reads at load is missing), parse_error (nginx would reject the syntax).", []string{"reason"}, nil)
	probedDesc = prometheus.NewDesc("nginx_upstream_config_probed_source",
		"Always 1: which configuration the probes follow: loaded (a reload of nginx is pending and the exporter saw nginx load: the configuration nginx runs) or disk (no reload pending, or the exporter did not see nginx load and knows only the disk).", []string{"source"}, nil)
)

// Names and help of the per-server families, written as text by
// ServersText rather than through the registry.
const (
	staleName = "nginx_upstream_dns_stale"
	staleHelp = "1 when nginx dials an address for this static upstream hostname that the name no longer resolves to (nginx resolved it at its last load); 0 when they agree. Absent when the exporter does not know which addresses nginx resolved (see nginx_upstream_dns_nginx_addresses_source)."

	sourceName = "nginx_upstream_dns_nginx_addresses_source"
	sourceHelp = "Always 1: how the exporter knows the addresses nginx dials for a static upstream hostname: load (it resolved the name when nginx loaded), evidence (nginx's workers were seen connecting to them), unknown (neither: no stale verdict)."
)

// Collector exports the Tracker's per-nginx state through the registry.
// The per-server families are ServersText's.
type Collector struct{ t *Tracker }

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns the collector of t.
func NewCollector(t *Tracker) *Collector { return &Collector{t: t} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upDesc, lastReloadDesc, reloadsDesc, workersDesc, pendingDesc, wouldFailDesc, probedDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	r := c.t.Result()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(upDesc, b2f(r.Up))
	ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(r.Reloads))
	if r.Known {
		gauge(lastReloadDesc, float64(r.LastLoad.UnixNano())/1e9)
		gauge(pendingDesc, b2f(len(r.Pending) > 0))
	}
	if r.Up {
		gauge(workersDesc, float64(r.Current), "current")
		gauge(workersDesc, float64(r.Old), "old")
	}
	if r.Probing != "" {
		gauge(probedDesc, 1, r.Probing)
	}
	fails := map[string]bool{}
	for _, f := range r.WouldFail {
		fails[f.Reason] = true
	}
	for _, reason := range Reasons {
		gauge(wouldFailDesc, b2f(fails[reason]), reason)
	}
}

// ServersText writes the per-server families (one or two series per
// static hostname server) as text beside the registry's, as
// collector.TextWriter does for the per-target ones: through the
// registry, 20,000 series at 10,000 servers were that many metric
// objects alive at once during each scrape (5 MB).
type ServersText struct {
	t    *Tracker
	bufs sync.Pool // *[]byte
}

var _ io.WriterTo = (*ServersText)(nil)

// NewServersText returns the per-server families' writer of t.
func NewServersText(t *Tracker) *ServersText { return &ServersText{t: t} }

// serversFlush is how much text WriteTo gathers before writing it.
const serversFlush = 32 << 10

// WriteTo implements io.WriterTo: the two families, each with its HELP
// and TYPE only when it has a series, as the registry writes them;
// labels in name order, as the registry sorts them.
func (st *ServersText) WriteTo(w io.Writer) (int64, error) {
	r := st.t.Result()
	bp, _ := st.bufs.Get().(*[]byte)
	if bp == nil {
		// A flush's worth and one line of the longest kind: the
		// buffer is allocated once, not grown.
		b := make([]byte, 0, serversFlush+4<<10)
		bp = &b
	}
	defer func() {
		*bp = (*bp)[:0]
		st.bufs.Put(bp)
	}()
	var n int64
	b := (*bp)[:0]
	flush := func(min int) error {
		if len(b) < min {
			return nil
		}
		m, err := w.Write(b)
		n += int64(m)
		b = b[:0]
		return err
	}
	if len(r.Servers) > 0 {
		b = collector.AppendHeader(b, sourceName, sourceHelp, prometheus.GaugeValue)
		for i := range r.Servers {
			s := &r.Servers[i]
			b = append(b, sourceName+`{server="`...)
			b = collector.AppendEscapedLabelValue(b, s.Server)
			b = append(b, `",source="`...)
			b = collector.AppendEscapedLabelValue(b, string(s.Source))
			b = append(b, `",upstream="`...)
			b = collector.AppendEscapedLabelValue(b, s.Upstream)
			b = append(b, `"} 1`+"\n"...)
			if err := flush(serversFlush); err != nil {
				*bp = b
				return n, err
			}
		}
	}
	header := false
	for i := range r.Servers {
		s := &r.Servers[i]
		if !s.Known {
			continue
		}
		if !header {
			b = collector.AppendHeader(b, staleName, staleHelp, prometheus.GaugeValue)
			header = true
		}
		b = append(b, staleName+`{server="`...)
		b = collector.AppendEscapedLabelValue(b, s.Server)
		b = append(b, `",upstream="`...)
		b = collector.AppendEscapedLabelValue(b, s.Upstream)
		b = append(b, `"} `...)
		b = collector.AppendFloat(b, b2f(s.Stale))
		b = append(b, '\n')
		if err := flush(serversFlush); err != nil {
			*bp = b
			return n, err
		}
	}
	err := flush(1)
	*bp = b
	return n, err
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
