package capacity

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
)

// The exported contract of this signal (docs/metrics.md, "Capacity").
// Series exist only for targets that listen on this host (a unix socket,
// or a TCP address of the exporter's network namespace); what cannot be
// read is absent, or a documented "unknown" state, never 0.

var targetLabels = []string{"upstream", "server", "address", "protocol"}

func desc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append(append([]string{}, targetLabels...), extra...), nil)
}

var (
	listenStateDesc = desc("nginx_upstream_backend_listener_state",
		"The kernel's view of the target's listening socket, by state: listening, not_listening (nothing listens: down), unknown (the exporter cannot tell); 1 for the current state.", "state")
	queueLenDesc = desc("nginx_upstream_backend_listen_queue_length",
		"Connections in the accept queue of the target's listening socket, from netlink sock_diag: accepted by the kernel, not yet by the backend.")
	queueLimitDesc = desc("nginx_upstream_backend_listen_queue_limit",
		"Backlog of the target's listening socket (listen(2) backlog capped by net.core.somaxconn). A unix socket refuses connections (EAGAIN, 502) once the queue exceeds it; TCP drops SYNs (connect timeout, 504).")
	saturatedDesc = desc("nginx_upstream_backend_saturated",
		"1 when the backend is full rather than down: its listen queue is full or nearly full, or its php-fpm pool has every worker busy (see the saturation rule in docs/metrics.md); absent when neither can be read.")
	startDesc = desc("nginx_upstream_backend_process_start_time_seconds",
		"Start time of the process holding the target's listening socket (the first started, e.g. the master of a pre-forking server), as Unix time.")
	restartsDesc = desc("nginx_upstream_backend_restarts_total",
		"Times the target's listening socket or the process holding it changed since the exporter started: a restart of the backend.")
	oomDesc = desc("nginx_upstream_backend_oom_kills_total",
		"Processes killed by the OOM killer in the memory cgroup of the process holding the target's socket (memory.events oom_kill on cgroup v2, memory.oom_control on v1).")
	fpmMaxChildrenDesc = desc("nginx_upstream_phpfpm_max_children",
		"pm.max_children of the php-fpm pool listening at the target, from php-fpm's configuration.")
	fpmPoolDesc = desc("nginx_upstream_phpfpm_pool_info",
		"The php-fpm pool listening at the target, with its process manager; always 1.", "pool", "pm")
	fpmProcessesDesc = desc("nginx_upstream_phpfpm_processes",
		"Worker processes of the php-fpm pool by state, from its status page; the worker serving the status page itself counts as idle.", "state")
	fpmQueueDesc = desc("nginx_upstream_phpfpm_listen_queue",
		"Requests waiting in the php-fpm pool's listen queue, as its status page reports.")
	fpmReachedDesc = desc("nginx_upstream_phpfpm_max_children_reached_total",
		"Times the php-fpm pool hit pm.max_children, as its status page reports (reset when php-fpm restarts).")
	fpmSlowDesc = desc("nginx_upstream_phpfpm_slow_requests_total",
		"Requests of the php-fpm pool that exceeded request_slowlog_timeout, as its status page reports (reset when php-fpm restarts).")
	fpmUpDesc = desc("nginx_upstream_phpfpm_status_up",
		"1 when the php-fpm pool's status page (pm.status_path, read on pm.status_listen when set) answered at the last refresh, else 0; absent when no status path is configured.")
	fpmFailDesc = desc("nginx_upstream_phpfpm_status_failure",
		"1 while the php-fpm status page cannot be read, labelled with the cause: pool_full (served by the pool's own busy workers), timeout, unreachable, invalid_response.", "cause")

	overflowsDesc = prometheus.NewDesc("nginx_upstream_netns_listen_overflows_total",
		"Connections dropped because an accept queue was full, on any listener of the exporter's network namespace (TcpExt ListenOverflows in /proc/net/netstat).", nil, nil)
	dropsDesc = prometheus.NewDesc("nginx_upstream_netns_listen_drops_total",
		"Connections dropped at any listener of the exporter's network namespace, overflows included (TcpExt ListenDrops in /proc/net/netstat).", nil, nil)
)

// Collector exposes a Monitor's state.
type Collector struct{ m *Monitor }

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns the collector of m.
func NewCollector(m *Monitor) *Collector { return &Collector{m: m} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{listenStateDesc, queueLenDesc, queueLimitDesc, saturatedDesc, startDesc,
		restartsDesc, oomDesc, fpmMaxChildrenDesc, fpmPoolDesc, fpmProcessesDesc, fpmQueueDesc, fpmReachedDesc,
		fpmSlowDesc, fpmUpDesc, fpmFailDesc, overflowsDesc, dropsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if ns, ok := c.m.NetStat(); ok {
		ch <- prometheus.MustNewConstMetric(overflowsDesc, prometheus.CounterValue, float64(ns.ListenOverflows))
		ch <- prometheus.MustNewConstMetric(dropsDesc, prometheus.CounterValue, float64(ns.ListenDrops))
	}
	c.m.Each(func(t *discovery.Target, st *State) { collectState(ch, t, st) })
}

func collectState(ch chan<- prometheus.Metric, t *discovery.Target, st *State) {
	lv := []string{t.Upstream, t.Server, t.Address, t.Protocol}
	gauge := func(d *prometheus.Desc, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(lv[:4:4], extra...)...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, lv...)
	}
	for _, s := range []ListenState{Listening, NotListening, ListenUnknown} {
		gauge(listenStateDesc, b2f(st.Listen == s), s.String())
	}
	if st.Listen == Listening {
		gauge(queueLenDesc, float64(st.Listener.Queue))
		gauge(queueLimitDesc, float64(st.Listener.Limit))
	}
	if st.SaturationKnown {
		gauge(saturatedDesc, b2f(st.Saturated))
	}
	if st.Owner != nil {
		gauge(startDesc, float64(st.Owner.Start.UnixNano())/1e9)
	}
	if st.Listen != ListenUnknown {
		counter(restartsDesc, float64(st.Restarts))
	}
	if st.OOMKnown {
		counter(oomDesc, float64(st.OOMKills))
	}
	p := st.Pool
	if p == nil {
		return
	}
	gauge(fpmPoolDesc, 1, p.Name, p.PM)
	if p.MaxChildren > 0 {
		gauge(fpmMaxChildrenDesc, float64(p.MaxChildren))
	}
	if p.StatusPath == "" {
		return
	}
	gauge(fpmUpDesc, b2f(st.Status != nil))
	if st.Status == nil {
		for _, cause := range StatusCauses {
			if cause == st.StatusCause {
				gauge(fpmFailDesc, 1, cause)
			}
		}
		return
	}
	active, _ := st.ActiveProcesses()
	idle, _ := st.IdleProcesses()
	gauge(fpmProcessesDesc, float64(active), "active")
	gauge(fpmProcessesDesc, float64(idle), "idle")
	gauge(fpmQueueDesc, float64(st.Status.ListenQueue))
	counter(fpmReachedDesc, float64(st.Status.MaxChildrenReached))
	counter(fpmSlowDesc, float64(st.Status.SlowRequests))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
