// Package procstat reads a process's CPU time and resident memory from
// /proc, and the few metric values the harness needs from a Prometheus
// text exposition.
package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// Sample is one reading of a process.
type Sample struct {
	At      time.Time
	CPU     time.Duration // utime + stime
	RSS     int64         // bytes, VmRSS
	Threads int
}

// Read samples pid.
func Read(pid int) (Sample, error) {
	s := Sample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("procstat: odd /proc/%d/stat", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime 15, num_threads 20.
	if len(f) < 18 {
		return s, fmt.Errorf("procstat: short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.CPU = time.Duration(ut+st) * time.Second / clockTicks
	s.Threads, _ = strconv.Atoi(f[17])
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			s.RSS = kb * 1024
		}
	}
	return s, nil
}

// Metrics holds what the harness reads from an exporter's /metrics.
type Metrics struct {
	Runs       float64             // sum of nginx_upstream_probe_runs_total
	Failures   float64             // sum of nginx_upstream_probe_failures_total
	Goroutines float64             // go_goroutines
	InFlight   float64             // nginx_upstream_exporter_probes_in_flight
	Queue      float64             // nginx_upstream_exporter_probe_queue_length
	LagBuckets map[float64]float64 // le -> cumulative count
	LagCount   float64
	LagSum     float64
	Series     int // lines that are samples

	// Memory of the exporter, for the soak.
	HeapInuse float64 // go_memstats_heap_inuse_bytes
	NextGC    float64 // go_memstats_next_gc_bytes
	OpenFDs   float64 // process_open_fds

	// Whether each signal is live, for -signals all.
	LogMatched      float64 // nginx_upstream_exporter_log_lines_total{result="matched"}
	LogLines        float64 // nginx_upstream_exporter_log_lines_total, every result
	NginxUp         float64 // nginx_upstream_nginx_up; -1 when absent
	NginxReloads    float64 // nginx_upstream_nginx_reloads_total
	CapacitySamples int     // samples of nginx_upstream_backend_listen_queue_limit
}

// ParseMetrics reads a Prometheus text exposition.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{LagBuckets: map[float64]float64{}, NginxUp: -1}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		m.Series++
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name, val := line[:sp], line[sp+1:]
		metric := name
		if j := strings.IndexByte(name, '{'); j >= 0 {
			metric = name[:j]
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			// Maybe a timestamp follows the value.
			fs := strings.Fields(line)
			if len(fs) < 3 {
				continue
			}
			if v, err = strconv.ParseFloat(fs[len(fs)-2], 64); err != nil {
				continue
			}
		}
		switch metric {
		case "nginx_upstream_probe_runs_total":
			m.Runs += v
		case "nginx_upstream_probe_failures_total":
			m.Failures += v
		case "go_goroutines":
			m.Goroutines = v
		case "go_memstats_heap_inuse_bytes":
			m.HeapInuse = v
		case "go_memstats_next_gc_bytes":
			m.NextGC = v
		case "process_open_fds":
			m.OpenFDs = v
		case "nginx_upstream_exporter_log_lines_total":
			m.LogLines += v
			if strings.Contains(name, `result="matched"`) {
				m.LogMatched += v
			}
		case "nginx_upstream_nginx_up":
			m.NginxUp = v
		case "nginx_upstream_nginx_reloads_total":
			m.NginxReloads += v
		case "nginx_upstream_backend_listen_queue_limit":
			m.CapacitySamples++
		case "nginx_upstream_exporter_probes_in_flight":
			m.InFlight = v
		case "nginx_upstream_exporter_probe_queue_length":
			m.Queue = v
		case "nginx_upstream_exporter_schedule_lag_seconds_count":
			m.LagCount = v
		case "nginx_upstream_exporter_schedule_lag_seconds_sum":
			m.LagSum = v
		case "nginx_upstream_exporter_schedule_lag_seconds_bucket":
			if k := strings.Index(name, `le="`); k >= 0 {
				rest := name[k+4:]
				le := rest[:strings.IndexByte(rest, '"')]
				b, err := strconv.ParseFloat(le, 64)
				if err == nil {
					m.LagBuckets[b] = v
				}
			}
		}
	}
	return m, sc.Err()
}

// Quantile estimates the q-quantile of the observations between two
// cumulative histograms (before, after), interpolating linearly inside a
// bucket as Prometheus' histogram_quantile does. Returns NaN when no
// observation fell between them.
func Quantile(q float64, before, after map[float64]float64) float64 {
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return nan()
	}
	total := after[bounds[len(bounds)-1]] - before[bounds[len(bounds)-1]]
	if total <= 0 {
		return nan()
	}
	rank := q * total
	prevB, prevC := 0.0, 0.0
	for _, b := range bounds {
		c := after[b] - before[b]
		if c >= rank {
			if isInf(b) {
				return prevB
			}
			if c == prevC {
				return b
			}
			return prevB + (b-prevB)*(rank-prevC)/(c-prevC)
		}
		prevB, prevC = b, c
	}
	return prevB
}
