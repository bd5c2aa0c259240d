package loadstate

import (
	"github.com/prometheus/client_golang/prometheus"
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
	staleDesc = prometheus.NewDesc("nginx_upstream_dns_stale",
		"1 when nginx dials an address for this static upstream hostname that the name no longer resolves to (nginx resolved it at its last load); 0 when they agree. Absent when the exporter does not know which addresses nginx resolved (see nginx_upstream_dns_nginx_addresses_source).", []string{"upstream", "server"}, nil)
	probedDesc = prometheus.NewDesc("nginx_upstream_config_probed_source",
		"Always 1: which configuration the probes follow: loaded (a reload of nginx is pending and the exporter saw nginx load: the configuration nginx runs) or disk (no reload pending, or the exporter did not see nginx load and knows only the disk).", []string{"source"}, nil)
	sourceDesc = prometheus.NewDesc("nginx_upstream_dns_nginx_addresses_source",
		"Always 1: how the exporter knows the addresses nginx dials for a static upstream hostname: load (it resolved the name when nginx loaded), evidence (nginx's workers were seen connecting to them), unknown (neither: no stale verdict).", []string{"upstream", "server", "source"}, nil)
)

// Collector exports the Tracker's state.
type Collector struct{ t *Tracker }

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns the collector of t.
func NewCollector(t *Tracker) *Collector { return &Collector{t: t} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upDesc, lastReloadDesc, reloadsDesc, workersDesc, pendingDesc, wouldFailDesc, staleDesc, sourceDesc, probedDesc} {
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
	for _, s := range r.Servers {
		gauge(sourceDesc, 1, s.Upstream, s.Server, string(s.Source))
		if s.Known {
			gauge(staleDesc, b2f(s.Stale), s.Upstream, s.Server)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
