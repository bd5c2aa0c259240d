package capacity

import (
	"io"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/collector"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
)

// The exported contract of this signal (docs/metrics.md, "Capacity:
// saturated or down"), declared once in the families table: Collector
// (the registry's reference rendering, linted by tests) and TextWriter
// (what /metrics serves, cheap at 10,000 targets) are both generated from
// it. Series exist only for targets that listen on this host; what cannot
// be read is absent, or a documented "unknown" state, never 0.

var targetLabels = []string{"upstream", "server", "address", "protocol"}

// family is one per-target family of this signal.
type family struct {
	name, help string
	typ        prometheus.ValueType
	// labels are the extra labels beyond targetLabels (at most two);
	// their values come from closed sets or from php-fpm's configuration.
	labels []string
	// values yields the series of one target: the value and the extra
	// label values ("" for unused ones).
	values func(st *State, yield func(v float64, l1, l2 string))
	desc   *prometheus.Desc
}

var families = buildFamilies([]family{
	{
		name: "nginx_upstream_backend_listener_state", typ: prometheus.GaugeValue, labels: []string{"state"},
		help: "The kernel's view of the target's listening socket, by state: listening, not_listening (nothing listens: down), unknown (the exporter cannot tell); 1 for the current state.",
		values: func(st *State, yield func(float64, string, string)) {
			for _, s := range []ListenState{Listening, NotListening, ListenUnknown} {
				yield(b2f(st.Listen == s), s.String(), "")
			}
		},
	},
	{
		name: "nginx_upstream_backend_listen_queue_length", typ: prometheus.GaugeValue,
		help: "Connections in the accept queue of the target's listening socket, from netlink sock_diag: accepted by the kernel, not yet by the backend.",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Listen == Listening {
				yield(float64(st.Listener.Queue), "", "")
			}
		},
	},
	{
		name: "nginx_upstream_backend_listen_queue_limit", typ: prometheus.GaugeValue,
		help: "Backlog of the target's listening socket (listen(2) backlog capped by net.core.somaxconn). A unix socket refuses connections (EAGAIN, 502) once the queue exceeds it; TCP drops SYNs (connect timeout, 504).",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Listen == Listening {
				yield(float64(st.Listener.Limit), "", "")
			}
		},
	},
	{
		name: "nginx_upstream_backend_saturated", typ: prometheus.GaugeValue,
		help: "1 when the backend is full rather than down: its listen queue is full or nearly full, or its php-fpm pool has every worker busy (see the saturation rule in docs/metrics.md); absent when neither can be read.",
		values: func(st *State, yield func(float64, string, string)) {
			if st.SaturationKnown {
				yield(b2f(st.Saturated), "", "")
			}
		},
	},
	{
		name: "nginx_upstream_backend_process_start_time_seconds", typ: prometheus.GaugeValue,
		help: "Start time of the process holding the target's listening socket (the first started, e.g. the master of a pre-forking server), as Unix time.",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Owner != nil {
				yield(float64(st.Owner.Start.UnixNano())/1e9, "", "")
			}
		},
	},
	{
		name: "nginx_upstream_backend_restarts_total", typ: prometheus.CounterValue,
		help: "Times the target's listening socket or the process holding it changed since the exporter started: a restart of the backend.",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Listen != ListenUnknown {
				yield(float64(st.Restarts), "", "")
			}
		},
	},
	{
		name: "nginx_upstream_backend_oom_kills_total", typ: prometheus.CounterValue,
		help: "Processes killed by the OOM killer in the memory cgroup of the process holding the target's socket (memory.events oom_kill on cgroup v2, memory.oom_control on v1).",
		values: func(st *State, yield func(float64, string, string)) {
			if st.OOMKnown {
				yield(float64(st.OOMKills), "", "")
			}
		},
	},
	{
		name: "nginx_upstream_phpfpm_pool_info", typ: prometheus.GaugeValue, labels: []string{"pool", "pm"},
		help: "The php-fpm pool listening at the target, with its process manager; always 1.",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Pool != nil {
				yield(1, st.Pool.Name, st.Pool.PM)
			}
		},
	},
	{
		name: "nginx_upstream_phpfpm_max_children", typ: prometheus.GaugeValue,
		help: "pm.max_children of the php-fpm pool listening at the target, from php-fpm's configuration.",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Pool != nil && st.Pool.MaxChildren > 0 {
				yield(float64(st.Pool.MaxChildren), "", "")
			}
		},
	},
	{
		name: "nginx_upstream_phpfpm_status_up", typ: prometheus.GaugeValue,
		help: "1 when the php-fpm pool's status page (pm.status_path, read on pm.status_listen when set) answered at the last refresh, else 0; absent when no status path is configured.",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Pool != nil && st.Pool.StatusPath != "" {
				yield(b2f(st.Status != nil), "", "")
			}
		},
	},
	{
		name: "nginx_upstream_phpfpm_status_failure", typ: prometheus.GaugeValue, labels: []string{"cause"},
		help: "1 while the php-fpm status page cannot be read, labelled with the cause: pool_full (served by the pool's own busy workers), timeout, unreachable, invalid_response.",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Pool == nil || st.Pool.StatusPath == "" || st.Status != nil {
				return
			}
			for _, cause := range StatusCauses {
				if cause == st.StatusCause {
					yield(1, cause, "")
				}
			}
		},
	},
	{
		name: "nginx_upstream_phpfpm_processes", typ: prometheus.GaugeValue, labels: []string{"state"},
		help: "Worker processes of the php-fpm pool by state, from its status page; the worker serving the status page itself counts as idle.",
		values: func(st *State, yield func(float64, string, string)) {
			if a, ok := st.ActiveProcesses(); ok && st.Pool != nil {
				i, _ := st.IdleProcesses()
				yield(float64(a), "active", "")
				yield(float64(i), "idle", "")
			}
		},
	},
	{
		name: "nginx_upstream_phpfpm_listen_queue", typ: prometheus.GaugeValue,
		help: "Requests waiting in the php-fpm pool's listen queue, as its status page reports.",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Status != nil && st.Pool != nil {
				yield(float64(st.Status.ListenQueue), "", "")
			}
		},
	},
	{
		name: "nginx_upstream_phpfpm_max_children_reached_total", typ: prometheus.CounterValue,
		help: "Times the php-fpm pool hit pm.max_children, as its status page reports (reset when php-fpm restarts).",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Status != nil && st.Pool != nil {
				yield(float64(st.Status.MaxChildrenReached), "", "")
			}
		},
	},
	{
		name: "nginx_upstream_phpfpm_slow_requests_total", typ: prometheus.CounterValue,
		help: "Requests of the php-fpm pool that exceeded request_slowlog_timeout, as its status page reports (reset when php-fpm restarts).",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Status != nil && st.Pool != nil {
				yield(float64(st.Status.SlowRequests), "", "")
			}
		},
	},
})

func buildFamilies(fs []family) []family {
	for i := range fs {
		f := &fs[i]
		f.desc = prometheus.NewDesc(f.name, f.help, append(append([]string{}, targetLabels...), f.labels...), nil)
	}
	return fs
}

// The namespace-wide counters (no target labels).
const (
	overflowsName = "nginx_upstream_netns_listen_overflows_total"
	overflowsHelp = "Connections dropped because an accept queue was full, on any listener of the exporter's network namespace (TcpExt ListenOverflows in /proc/net/netstat)."
	dropsName     = "nginx_upstream_netns_listen_drops_total"
	dropsHelp     = "Connections dropped at any listener of the exporter's network namespace, overflows included (TcpExt ListenDrops in /proc/net/netstat)."
)

var (
	overflowsDesc = prometheus.NewDesc(overflowsName, overflowsHelp, nil, nil)
	dropsDesc     = prometheus.NewDesc(dropsName, dropsHelp, nil, nil)
)

// Collector exposes a Monitor's state through the registry: the
// reference rendering of the families table.
type Collector struct{ m *Monitor }

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns the collector of m.
func NewCollector(m *Monitor) *Collector { return &Collector{m: m} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- overflowsDesc
	ch <- dropsDesc
	for i := range families {
		ch <- families[i].desc
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if ns, ok := c.m.NetStat(); ok {
		ch <- prometheus.MustNewConstMetric(overflowsDesc, prometheus.CounterValue, float64(ns.ListenOverflows))
		ch <- prometheus.MustNewConstMetric(dropsDesc, prometheus.CounterValue, float64(ns.ListenDrops))
	}
	c.m.Each(func(t *discovery.Target, st *State) {
		lv := []string{t.Upstream, t.Server, t.Address, t.Protocol}
		for i := range families {
			f := &families[i]
			f.values(st, func(v float64, l1, l2 string) {
				labels := append(lv[:4:4], l1, l2)[:4+len(f.labels)]
				ch <- prometheus.MustNewConstMetric(f.desc, f.typ, v, labels...)
			})
		}
	})
}

// TextWriter renders the families straight into the text exposition
// format, as collector.TextWriter does for the probe families: the
// registry's path costs a const metric per series (90,000 at 10,000 local
// targets) on every scrape. It renders from the monitor's published view,
// which a refresh leaves alone while a scrape holds it: nothing is copied
// and nothing is locked while writing, so a client that stops reading
// holds up no refresh.
type TextWriter struct {
	m *Monitor
}

// NewTextWriter returns a TextWriter over m.
func NewTextWriter(m *Monitor) *TextWriter {
	return &TextWriter{m: m}
}

// WriteTo writes the families of every local target to w.
func (tw *TextWriter) WriteTo(w io.Writer) (int64, error) {
	ns, nsOK := tw.m.NetStat()
	v := tw.m.acquire()
	defer v.release()

	var n int64
	b := make([]byte, 0, 32<<10)
	flush := func(force bool) error {
		if len(b) < 32<<10 && !force {
			return nil
		}
		m, err := w.Write(b)
		n += int64(m)
		b = b[:0]
		return err
	}
	if nsOK {
		for _, c := range []struct {
			name, help string
			v          uint64
		}{
			{overflowsName, overflowsHelp, ns.ListenOverflows},
			{dropsName, dropsHelp, ns.ListenDrops},
		} {
			b = collector.AppendHeader(b, c.name, c.help, prometheus.CounterValue)
			b = append(b, c.name...)
			b = append(b, ' ')
			b = strconv.AppendUint(b, c.v, 10)
			b = append(b, '\n')
		}
	}
	present := 0
	for i := range v.slots {
		if v.slots[i].flags&slotPresent != 0 {
			present++
		}
	}
	if present == 0 {
		return n, flush(true)
	}
	for i := range families {
		f := &families[i]
		b = collector.AppendHeader(b, f.name, f.help, f.typ)
		var (
			t   *discovery.Target
			esc bool
			st  State
			ok  bool
		)
		// One closure per family, not per target and family.
		yield := func(v float64, l1, l2 string) {
			b = append(b, f.name...)
			b = append(b, '{')
			b = appendTargetLabels(b, t, esc)
			for k, name := range f.labels {
				val := l1
				if k == 1 {
					val = l2
				}
				b = append(b, ',')
				b = append(b, name...)
				b = append(b, `="`...)
				b = append(b, collector.EscapeLabelValue(val)...)
				b = append(b, '"')
			}
			b = append(b, "} "...)
			b = collector.AppendFloat(b, v)
			b = append(b, '\n')
		}
		for j, tg := range v.layout.targets {
			if st, ok = v.state(j); !ok {
				continue
			}
			t, esc = tg, v.layout.escape[j/64]&(1<<(j%64)) != 0
			f.values(&st, yield)
			if err := flush(false); err != nil {
				return n, err
			}
		}
	}
	return n, flush(true)
}

// appendTargetLabels appends t's label pairs as collector.TargetLabels
// writes them, without building the string: a cache of the pairs would
// cost more than 100 bytes a target for as long as the target exists.
// escape says that a value needs escaping (layout.escape), which few do.
func appendTargetLabels(b []byte, t *discovery.Target, escape bool) []byte {
	if !escape {
		b = append(b, `upstream="`...)
		b = append(b, t.Upstream...)
		b = append(b, `",server="`...)
		b = append(b, t.Server...)
		b = append(b, `",address="`...)
		b = append(b, t.Address...)
		b = append(b, `",protocol="`...)
		b = append(b, t.Protocol...)
		return append(b, '"')
	}
	return append(b, collector.TargetLabels(t)...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
