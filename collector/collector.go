// Package collector exposes the scheduler's latest verdicts as Prometheus
// metrics. It reads a snapshot on each scrape and never probes: probing is
// the scheduler's job, so scrapes are cheap and never touch a backend.
package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

const namespace = "nginx_upstream"

// Source yields target statuses; *scheduler.Scheduler satisfies it.
type Source interface {
	Each(fn func(st *scheduler.Status))
}

// Collector implements prometheus.Collector over a Source. It is the
// reference rendering of the families table (linted and held to golden
// files); /metrics serves the same table through TextWriter.
type Collector struct {
	src Source
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector reading src.
func New(src Source) *Collector { return &Collector{src: src} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for i := range families {
		ch <- families[i].desc
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
	for i := range families {
		f := &families[i]
		if !f.scope.has(st) {
			continue
		}
		if f.info != nil {
			ch <- prometheus.MustNewConstMetric(f.desc, f.typ, 1, append(lv, f.info(t)...)...)
			continue
		}
		f.values(st, func(extra string, v float64) {
			labels := lv
			if f.label != "" {
				labels = append(labels[:len(lv):len(lv)], extra)
			}
			ch <- prometheus.MustNewConstMetric(f.desc, f.typ, v, labels...)
		})
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
