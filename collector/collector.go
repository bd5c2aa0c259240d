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
	src      Source
	families []*family
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector reading src and emitting every family the
// options keep.
func New(src Source, opts ...Option) *Collector {
	return &Collector{src: src, families: selectFamilies(opts)}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range c.families {
		ch <- f.desc
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.src.Each(func(st *scheduler.Status) { collectStatus(ch, st, c.families) })
}

// CollectStatus emits every series of one target.
func CollectStatus(ch chan<- prometheus.Metric, st *scheduler.Status) {
	collectStatus(ch, st, allFamilies)
}

var allFamilies = selectFamilies(nil)

func collectStatus(ch chan<- prometheus.Metric, st *scheduler.Status, fams []*family) {
	t := st.Target
	lv := []string{t.Upstream, t.Server, t.Address, t.Protocol}
	for _, f := range fams {
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
