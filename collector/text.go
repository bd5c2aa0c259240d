package collector

import (
	"bufio"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// TextWriter renders the per-target families straight into the Prometheus
// text format from a snapshot of the scheduler. With 10,000 targets the
// generic path (a const metric and a protobuf message per series, then
// sorting) costs about a second and 170 MB per scrape; here the label set
// of each target is escaped once per configuration and only the values
// are formatted on each scrape.
//
// It emits exactly the series Collector does (a test holds them equal);
// Collector stays the reference and serves /probe.
type TextWriter struct {
	src Source

	mu     sync.Mutex // one scrape renders at a time; buffers are reused
	snap   []scheduler.Status
	labels map[*discovery.Target]string
	buf    []byte
}

// NewTextWriter returns a TextWriter reading src.
func NewTextWriter(src Source) *TextWriter {
	return &TextWriter{src: src, labels: map[*discovery.Target]string{}}
}

// family describes one metric family for the text format.
type family struct {
	name, help, typ string
}

func fam(name, help, typ string) family {
	return family{name: "nginx_upstream_probe_" + name, help: help, typ: typ}
}

var (
	famInfo     = fam("target_info", helpInfo, "gauge")
	famTimeout  = fam("timeout_seconds", helpTimeout, "gauge")
	famRuns     = fam("runs_total", helpRuns, "counter")
	famFailures = fam("failures_total", helpFailures, "counter")
	famSuccess  = fam("success", helpSuccess, "gauge")
	famReason   = fam("failure_reason", helpReason, "gauge")
	famDuration = fam("duration_seconds", helpDuration, "gauge")
	famPhase    = fam("phase_duration_seconds", helpPhase, "gauge")
	famLastRun  = fam("last_run_timestamp_seconds", helpLastRun, "gauge")
	famStatus   = fam("http_status_code", helpStatus, "gauge")
	famExpiry   = fam("tls_certificate_expiry_timestamp_seconds", helpExpiry, "gauge")
)

var escaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

// WriteTo writes every per-target family to w.
func (tw *TextWriter) WriteTo(w io.Writer) (int64, error) {
	tw.mu.Lock()
	defer tw.mu.Unlock()

	tw.snap = tw.snap[:0]
	tw.src.Each(func(st *scheduler.Status) { tw.snap = append(tw.snap, *st) })
	tw.refreshLabels()

	bw := bufio.NewWriterSize(w, 64<<10)
	cw := &countingWriter{w: bw}
	b := tw.buf[:0]
	flush := func() {
		if len(b) > 32<<10 {
			cw.Write(b)
			b = b[:0]
		}
	}
	each := func(f family, fn func(st *scheduler.Status, l string)) {
		b = header(b, f)
		for i := range tw.snap {
			fn(&tw.snap[i], tw.labels[tw.snap[i].Target])
			flush()
		}
	}
	probed := func(fn func(st *scheduler.Status, l string)) func(*scheduler.Status, string) {
		return func(st *scheduler.Status, l string) {
			if st.Target.Probe != nil {
				fn(st, l)
			}
		}
	}
	withResult := func(fn func(st *scheduler.Status, l string)) func(*scheduler.Status, string) {
		return func(st *scheduler.Status, l string) {
			if st.Target.Probe != nil && st.HasResult {
				fn(st, l)
			}
		}
	}

	each(famInfo, func(st *scheduler.Status, l string) {
		t, p := st.Target, st.Target.Params
		b = append(b, famInfo.name...)
		b = append(b, '{')
		b = append(b, l...)
		b = append(b, `,backup="`...)
		b = strconv.AppendBool(b, p.Backup)
		b = append(b, `",down="`...)
		b = strconv.AppendBool(b, p.Down)
		b = append(b, `",weight="`...)
		b = strconv.AppendInt(b, int64(p.Weight), 10)
		b = append(b, `",max_fails="`...)
		b = strconv.AppendInt(b, int64(p.MaxFails), 10)
		b = append(b, `",fail_timeout="`...)
		b = strconv.AppendFloat(b, p.FailTimeout.Seconds(), 'f', -1, 64)
		b = append(b, `",max_conns="`...)
		b = strconv.AppendInt(b, int64(p.MaxConns), 10)
		b = append(b, `",resolve="`...)
		b = strconv.AppendBool(b, p.Resolve)
		b = append(b, `",implicit="`...)
		b = strconv.AppendBool(b, t.Implicit)
		b = append(b, "\"} 1\n"...)
	})
	each(famTimeout, probed(func(st *scheduler.Status, l string) {
		b = sample(b, famTimeout.name, l, "kind", "connect", st.Target.ConnectTimeout.Seconds())
		b = sample(b, famTimeout.name, l, "kind", "read", st.Target.ReadTimeout.Seconds())
		b = sample(b, famTimeout.name, l, "kind", "send", st.Target.SendTimeout.Seconds())
	}))
	each(famRuns, probed(func(st *scheduler.Status, l string) {
		b = sample(b, famRuns.name, l, "", "", float64(st.Runs))
	}))
	each(famFailures, probed(func(st *scheduler.Status, l string) {
		for i, n := range st.Failures {
			if n > 0 {
				b = sample(b, famFailures.name, l, "reason", string(prober.Reasons[i]), float64(n))
			}
		}
	}))
	each(famSuccess, withResult(func(st *scheduler.Status, l string) {
		b = sample(b, famSuccess.name, l, "", "", boolValue(st.Result.Success))
	}))
	each(famReason, withResult(func(st *scheduler.Status, l string) {
		if !st.Result.Success {
			b = sample(b, famReason.name, l, "reason", string(st.Result.Reason), 1)
		}
	}))
	each(famDuration, withResult(func(st *scheduler.Status, l string) {
		b = sample(b, famDuration.name, l, "", "", st.Result.Duration.Seconds())
	}))
	each(famPhase, withResult(func(st *scheduler.Status, l string) {
		for i, d := range st.Result.Phases {
			b = sample(b, famPhase.name, l, "phase", prober.PhaseNames[i], d.Seconds())
		}
	}))
	each(famLastRun, withResult(func(st *scheduler.Status, l string) {
		b = sample(b, famLastRun.name, l, "", "", float64(st.Finished.UnixNano())/1e9)
	}))
	each(famStatus, withResult(func(st *scheduler.Status, l string) {
		if st.Result.HTTPStatus > 0 {
			b = sample(b, famStatus.name, l, "", "", float64(st.Result.HTTPStatus))
		}
	}))
	each(famExpiry, withResult(func(st *scheduler.Status, l string) {
		if !st.Result.TLSNotAfter.IsZero() {
			b = sample(b, famExpiry.name, l, "", "", float64(st.Result.TLSNotAfter.Unix()))
		}
	}))
	cw.Write(b)
	tw.buf = b[:0]
	// Drop this scrape's snapshot (about 400 bytes a target): scrapes
	// are seconds apart, and idle memory counts against small machines.
	tw.snap = nil
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	return cw.n, cw.err
}

// refreshLabels keeps the escaped label set of every current target and
// forgets those of targets gone with a reload.
func (tw *TextWriter) refreshLabels() {
	if len(tw.labels) > 2*len(tw.snap)+16 {
		next := make(map[*discovery.Target]string, len(tw.snap))
		for i := range tw.snap {
			t := tw.snap[i].Target
			if l, ok := tw.labels[t]; ok {
				next[t] = l
			}
		}
		tw.labels = next
	}
	for i := range tw.snap {
		t := tw.snap[i].Target
		if _, ok := tw.labels[t]; !ok {
			tw.labels[t] = `upstream="` + escaper.Replace(t.Upstream) +
				`",server="` + escaper.Replace(t.Server) +
				`",address="` + escaper.Replace(t.Address) +
				`",protocol="` + escaper.Replace(t.Protocol) + `"`
		}
	}
}

func header(b []byte, f family) []byte {
	b = append(b, "# HELP "...)
	b = append(b, f.name...)
	b = append(b, ' ')
	b = append(b, f.help...)
	b = append(b, "\n# TYPE "...)
	b = append(b, f.name...)
	b = append(b, ' ')
	b = append(b, f.typ...)
	return append(b, '\n')
}

// sample appends `name{labels[,k="v"]} value`.
func sample(b []byte, name, labels, k, v string, value float64) []byte {
	b = append(b, name...)
	b = append(b, '{')
	b = append(b, labels...)
	if k != "" {
		b = append(b, ',')
		b = append(b, k...)
		b = append(b, `="`...)
		b = append(b, v...) // reason and phase names need no escaping
		b = append(b, '"')
	}
	b = append(b, "} "...)
	b = appendFloat(b, value)
	return append(b, '\n')
}

// appendFloat formats like the Prometheus text encoder.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 1:
		return append(b, '1')
	case f == 0:
		return append(b, '0')
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
