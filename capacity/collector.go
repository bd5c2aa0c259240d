package capacity

import (
	"io"
	"strconv"
	"sync/atomic"

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
	// free: the extra label values come from php-fpm's configuration
	// and are escaped; the others are closed sets needing none.
	free bool
	// poolOnly: series only for a target with a php-fpm pool, whose
	// state is never in a plain slot (State.fitsSlot), so the text
	// rendering skips the plain slots without reading their state.
	poolOnly bool
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
		name: "nginx_upstream_phpfpm_pool_info", typ: prometheus.GaugeValue, poolOnly: true, free: true, labels: []string{"pool", "pm"},
		help: "The php-fpm pool listening at the target, with its process manager; always 1.",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Pool != nil {
				yield(1, st.Pool.Name, st.Pool.PM)
			}
		},
	},
	{
		name: "nginx_upstream_phpfpm_max_children", typ: prometheus.GaugeValue, poolOnly: true,
		help: "pm.max_children of the php-fpm pool listening at the target, from php-fpm's configuration.",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Pool != nil && st.Pool.MaxChildren > 0 {
				yield(float64(st.Pool.MaxChildren), "", "")
			}
		},
	},
	{
		name: "nginx_upstream_phpfpm_status_up", typ: prometheus.GaugeValue, poolOnly: true,
		help: "1 when the php-fpm pool's status page (pm.status_path, read on pm.status_listen when set) answered at the last refresh, else 0; absent when no status path is configured.",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Pool != nil && st.Pool.StatusPath != "" {
				yield(b2f(st.Status != nil), "", "")
			}
		},
	},
	{
		name: "nginx_upstream_phpfpm_status_failure", typ: prometheus.GaugeValue, poolOnly: true, labels: []string{"cause"},
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
		name: "nginx_upstream_phpfpm_processes", typ: prometheus.GaugeValue, poolOnly: true, labels: []string{"state"},
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
		name: "nginx_upstream_phpfpm_listen_queue", typ: prometheus.GaugeValue, poolOnly: true,
		help: "Requests waiting in the php-fpm pool's listen queue, as its status page reports.",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Status != nil && st.Pool != nil {
				yield(float64(st.Status.ListenQueue), "", "")
			}
		},
	},
	{
		name: "nginx_upstream_phpfpm_max_children_reached_total", typ: prometheus.CounterValue, poolOnly: true,
		help: "Times the php-fpm pool hit pm.max_children, as its status page reports (reset when php-fpm restarts).",
		values: func(st *State, yield func(float64, string, string)) {
			if st.Status != nil && st.Pool != nil {
				yield(float64(st.Status.MaxChildrenReached), "", "")
			}
		},
	},
	{
		name: "nginx_upstream_phpfpm_slow_requests_total", typ: prometheus.CounterValue, poolOnly: true,
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
//
// collector.Handler renders it in parts (AppendParts): each family in
// ranges of targets, rendered by several goroutines at once like the
// probe families. At 10,000 local targets it is some 20 % of a scrape's
// CPU; as one part it was the page's sequential tail.
type TextWriter struct {
	m *Monitor
	// perTarget is each family's bytes per target in the last complete
	// scrape (-1 before the first), which cuts the next one's ranges.
	perTarget []atomic.Int64
}

var _ collector.PartsWriter = (*TextWriter)(nil)

// NewTextWriter returns a TextWriter over m.
func NewTextWriter(m *Monitor) *TextWriter {
	tw := &TextWriter{m: m, perTarget: make([]atomic.Int64, len(families))}
	for i := range tw.perTarget {
		tw.perTarget[i].Store(-1)
	}
	return tw
}

// WriteTo writes the families of every local target to w, as the parts
// of AppendParts do, in one goroutine.
func (tw *TextWriter) WriteTo(w io.Writer) (int64, error) {
	ns, nsOK := tw.m.NetStat()
	v := tw.m.acquire()
	defer v.release()
	bw := &bufWriter{w: w, b: make([]byte, 0, flushAt+bufSlack)}
	if nsOK {
		if err := netstat(bw, ns); err != nil {
			return bw.n, err
		}
	}
	if v.anyPresent() {
		r := newRenderer(v)
		for fi := range families {
			if _, err := r.family(bw, fi, 0, len(v.layout.targets)); err != nil {
				return bw.n, err
			}
		}
	}
	return bw.n, bw.flush()
}

// AppendParts implements collector.PartsWriter. Every part reads the one
// view acquired here, so each family is consistent across its ranges and
// with the others; the view is released when the last part is done (or
// by done, for parts that never ran).
func (tw *TextWriter) AppendParts(parts []func(io.Writer) error, partBytes int) (_ []func(io.Writer) error, done func()) {
	ns, nsOK := tw.m.NetStat()
	sc := &scrape{tw: tw, v: tw.m.acquire(), bytes: make([]atomic.Int64, len(families))}
	first := len(parts)
	if nsOK {
		parts = append(parts, func(w io.Writer) (err error) {
			defer func() { sc.partDone(err) }()
			return netstat(w, ns)
		})
	}
	n := len(sc.v.layout.targets)
	present := sc.v.anyPresent()
	if present {
		for fi := range families {
			step := n
			if per := tw.perTarget[fi].Load(); per < 0 {
				step = 256 // first scrape: no size known yet
			} else if per > 0 {
				step = int(min(int64(partBytes)/per, int64(n)))
			}
			step = max(step, 1)
			for from := 0; ; from += step {
				to := min(from+step, n)
				parts = append(parts, func(w io.Writer) (err error) {
					defer func() { sc.partDone(err) }()
					m, err := newRenderer(sc.v).family(w, fi, from, to)
					sc.bytes[fi].Add(m)
					return err
				})
				if to >= n {
					break
				}
			}
		}
	}
	sc.left.Store(int32(len(parts) - first))
	if len(parts) == first {
		sc.release()
	}
	return parts, func() {
		sc.release()
		if present && n > 0 && sc.left.Load() == 0 && !sc.failed.Load() {
			for fi := range families {
				tw.perTarget[fi].Store(sc.bytes[fi].Load() / int64(n))
			}
		}
	}
}

// scrape is one scrape's parts' shared state.
type scrape struct {
	tw       *TextWriter
	v        *view
	bytes    []atomic.Int64 // per family
	left     atomic.Int32   // parts not yet done
	failed   atomic.Bool
	released atomic.Bool
}

func (sc *scrape) release() {
	if sc.released.CompareAndSwap(false, true) {
		sc.v.release()
	}
}

func (sc *scrape) partDone(err error) {
	if err != nil {
		sc.failed.Store(true)
	}
	if sc.left.Add(-1) == 0 {
		sc.release()
	}
}

// availableBuffer is a writer that lends its free space to append to
// (bufio.Writer's AvailableBuffer): a part renders straight into it and
// Write then copies nothing.
type availableBuffer interface {
	AvailableBuffer() []byte
}

const (
	// flushAt is the rendered size at which a part writes: small enough
	// that the series after it fit the free space of the writer's buffer.
	flushAt = 4 << 10
	// bufSlack is room for the series that crosses flushAt.
	bufSlack = 4 << 10
)

// partBuf is what a part appends to: the writer's free space when it
// lends it, else a buffer of its own.
type partBuf struct {
	w  io.Writer
	ab availableBuffer
	b  []byte
	n  int64
}

func newPartBuf(w io.Writer) partBuf {
	pb := partBuf{w: w}
	pb.ab, _ = w.(availableBuffer)
	pb.reset()
	return pb
}

func (pb *partBuf) reset() {
	if pb.ab != nil {
		pb.b = pb.ab.AvailableBuffer()
	} else {
		pb.b = pb.b[:0]
	}
}

func (pb *partBuf) write(force bool) error {
	if len(pb.b) < flushAt && !force || len(pb.b) == 0 {
		return nil
	}
	pb.n += int64(len(pb.b))
	_, err := pb.w.Write(pb.b)
	pb.reset()
	return err
}

// netstat writes the namespace's counters.
func netstat(w io.Writer, ns NetStat) error {
	pb := newPartBuf(w)
	for _, c := range []struct {
		name, help string
		v          uint64
	}{
		{overflowsName, overflowsHelp, ns.ListenOverflows},
		{dropsName, dropsHelp, ns.ListenDrops},
	} {
		pb.b = collector.AppendHeader(pb.b, c.name, c.help, prometheus.CounterValue)
		pb.b = append(pb.b, c.name...)
		pb.b = append(pb.b, ' ')
		pb.b = strconv.AppendUint(pb.b, c.v, 10)
		pb.b = append(pb.b, '\n')
	}
	return pb.write(true)
}

// renderer renders families of one view; one per part, or one for all
// of WriteTo.
type renderer struct {
	v  *view
	pb partBuf
	f  *family
	// st is the state read for the current target.
	st State
	// The current target's labels, rendered once per target and family:
	// the string discovery rendered, else into lb.
	ls string
	lb []byte
	// yield is series, bound once.
	yield func(val float64, l1, l2 string)
}

func newRenderer(v *view) *renderer {
	r := &renderer{v: v}
	r.yield = r.series
	return r
}

// anyPresent says whether any target listens on this host: without one,
// no family is written, not even its HELP and TYPE.
func (v *view) anyPresent() bool {
	for i := range v.slots {
		if v.slots[i].flags&slotPresent != 0 {
			return true
		}
	}
	return false
}

// family writes family fi of the targets at positions [from, to) to w,
// with its HELP and TYPE if from is 0, and returns the bytes written.
func (r *renderer) family(w io.Writer, fi, from, to int) (int64, error) {
	r.f = &families[fi]
	v := r.v
	r.pb.w, r.pb.n = w, 0
	r.pb.ab, _ = w.(availableBuffer)
	r.pb.reset()
	if from == 0 {
		r.pb.b = collector.AppendHeader(r.pb.b, r.f.name, r.f.help, r.f.typ)
	}
	for j := from; j < to; j++ {
		s := &v.slots[j]
		if s.flags&slotPresent == 0 || r.f.poolOnly && s.flags&slotRare == 0 {
			continue
		}
		r.st, _ = v.state(j)
		t := v.layout.targets[j]
		if r.ls, r.lb = t.Labels(), r.lb[:0]; r.ls == "" {
			r.lb = appendTargetLabels(r.lb, t, v.layout.escape[j/64]&(1<<(j%64)) != 0)
		}
		r.f.values(&r.st, r.yield)
		if err := r.pb.write(false); err != nil {
			return r.pb.n, err
		}
	}
	err := r.pb.write(true)
	return r.pb.n, err
}

// series appends one sample of the current family and target.
func (r *renderer) series(val float64, l1, l2 string) {
	f := r.f
	b := append(r.pb.b, f.name...)
	b = append(b, '{')
	b = append(b, r.ls...)
	b = append(b, r.lb...)
	for k, name := range f.labels {
		lv := l1
		if k == 1 {
			lv = l2
		}
		b = append(b, ',')
		b = append(b, name...)
		b = append(b, `="`...)
		if f.free {
			b = collector.AppendEscapedLabelValue(b, lv)
		} else {
			b = append(b, lv...)
		}
		b = append(b, '"')
	}
	b = append(b, "} "...)
	b = collector.AppendFloat(b, val)
	r.pb.b = append(b, '\n')
}

// bufWriter buffers WriteTo's output; it lends its free space to the
// parts.
type bufWriter struct {
	w   io.Writer
	b   []byte
	n   int64
	err error
}

func (bw *bufWriter) AvailableBuffer() []byte { return bw.b[len(bw.b):] }

func (bw *bufWriter) Write(p []byte) (int, error) {
	if bw.err != nil {
		return 0, bw.err
	}
	if len(p) > 0 && len(p) <= cap(bw.b)-len(bw.b) && &p[0] == &bw.b[:len(bw.b)+1][len(bw.b)] {
		bw.b = bw.b[:len(bw.b)+len(p)] // rendered in place
	} else {
		bw.b = append(bw.b, p...)
	}
	if len(bw.b) >= flushAt {
		return len(p), bw.flush()
	}
	return len(p), nil
}

func (bw *bufWriter) flush() error {
	if bw.err != nil || len(bw.b) == 0 {
		return bw.err
	}
	m, err := bw.w.Write(bw.b)
	bw.n += int64(m)
	bw.b = bw.b[:0]
	bw.err = err
	return err
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
