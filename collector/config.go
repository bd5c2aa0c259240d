package collector

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ConfigState records the outcome of configuration loads for exposition.
// It is safe for concurrent use.
type ConfigState struct {
	mu          sync.Mutex
	ok          bool
	lastSuccess time.Time
	probed      int
	down        int
	dynamic     int
}

// Succeeded records a successful load and the target counts it produced.
func (s *ConfigState) Succeeded(at time.Time, probed, down, dynamic int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ok, s.lastSuccess = true, at
	s.probed, s.down, s.dynamic = probed, down, dynamic
}

// Failed records a failed load; the counts of the last good load stay.
func (s *ConfigState) Failed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ok = false
}

// OK reports whether the last load succeeded.
func (s *ConfigState) OK() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok
}

var (
	reloadOKDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "probe", "config_last_reload_successful"),
		"1 when the last attempt to load the nginx configuration succeeded. On 0 the exporter keeps probing the last good target set.", nil, nil)
	reloadTimeDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "probe", "config_last_reload_success_timestamp_seconds"),
		"Unix time of the last successful load of the nginx configuration.", nil, nil)
	targetsDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "probe", "config_targets"),
		"Targets in the loaded nginx configuration by state: probed, down (marked down, not probed), dynamic (address built from request variables, not probeable).", []string{"state"}, nil)
)

// Describe implements prometheus.Collector.
func (s *ConfigState) Describe(ch chan<- *prometheus.Desc) {
	ch <- reloadOKDesc
	ch <- reloadTimeDesc
	ch <- targetsDesc
}

// Collect implements prometheus.Collector.
func (s *ConfigState) Collect(ch chan<- prometheus.Metric) {
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
