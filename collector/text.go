package collector

import (
	"bufio"
	"compress/gzip"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// WriteText writes the per-target series of src in the Prometheus text
// format (version 0.0.4): the same families, label sets and values as
// Collect, without going through client_golang's Gather.
//
// Gather builds a protobuf message per series, checks it for consistency
// and sorts every family by label values: with 10,000 targets (about
// 140,000 series) that costs close to a second of CPU per scrape. Here each
// target's label set is rendered once and every family is one linear pass
// over a snapshot of the statuses.
func WriteText(w io.Writer, src Source) error {
	sn := snapshotPool.Get().(*snapshot)
	defer snapshotPool.Put(sn)
	sn.take(src)
	bw := bufio.NewWriterSize(w, 64<<10)
	sn.write(bw)
	return bw.Flush()
}

// snapshot is one scrape's copy of the statuses with each target's label
// set pre-rendered (`upstream="…",server="…",address="…",protocol="…"`).
type snapshot struct {
	st     []scheduler.Status
	labels []byte
	ends   []int // labels[ends[i-1]:ends[i]] is target i's label set
	line   []byte
}

var snapshotPool = sync.Pool{New: func() any { return &snapshot{} }}

func (sn *snapshot) take(src Source) {
	sn.st = sn.st[:0]
	sn.labels = sn.labels[:0]
	sn.ends = sn.ends[:0]
	src.Each(func(st *scheduler.Status) {
		sn.st = append(sn.st, *st)
		t := st.Target
		sn.labels = append(sn.labels, `upstream="`...)
		sn.labels = appendEscaped(sn.labels, t.Upstream)
		sn.labels = append(sn.labels, `",server="`...)
		sn.labels = appendEscaped(sn.labels, t.Server)
		sn.labels = append(sn.labels, `",address="`...)
		sn.labels = appendEscaped(sn.labels, t.Address)
		sn.labels = append(sn.labels, `",protocol="`...)
		sn.labels = appendEscaped(sn.labels, t.Protocol)
		sn.labels = append(sn.labels, '"')
		sn.ends = append(sn.ends, len(sn.labels))
	})
}

func (sn *snapshot) lv(i int) []byte {
	start := 0
	if i > 0 {
		start = sn.ends[i-1]
	}
	return sn.labels[start:sn.ends[i]]
}

// write emits the families in the order Collect emits them. fam writes one
// family: each is called per target and calls emit once per sample, with
// the labels that follow the target's own.
func (sn *snapshot) write(w *bufio.Writer) {
	fam := func(name, help, typ string, each func(i int, st *scheduler.Status, emit func(extra string, v float64))) {
		full := namespace + "_probe_" + name
		header := false
		for i := range sn.st {
			st := &sn.st[i]
			each(i, st, func(extra string, v float64) {
				if !header {
					w.WriteString("# HELP ")
					w.WriteString(full)
					w.WriteByte(' ')
					w.WriteString(escapeHelp(help))
					w.WriteString("\n# TYPE ")
					w.WriteString(full)
					w.WriteByte(' ')
					w.WriteString(typ)
					w.WriteByte('\n')
					header = true
				}
				l := append(sn.line[:0], full...)
				l = append(l, '{')
				l = append(l, sn.lv(i)...)
				l = append(l, extra...)
				l = append(l, "} "...)
				l = appendFloat(l, v)
				l = append(l, '\n')
				w.Write(l)
				sn.line = l
			})
		}
	}
	probed := func(st *scheduler.Status) bool { return st.Target.Probe != nil }
	done := func(st *scheduler.Status) bool { return st.Target.Probe != nil && st.HasResult }

	var extra []byte
	fam("target_info", helpOf(infoDesc), "gauge", func(_ int, st *scheduler.Status, emit func(string, float64)) {
		t := st.Target
		p := t.Params
		extra = append(extra[:0], `,backup="`...)
		extra = strconv.AppendBool(extra, p.Backup)
		extra = append(extra, `",down="`...)
		extra = strconv.AppendBool(extra, p.Down)
		extra = append(extra, `",weight="`...)
		extra = strconv.AppendInt(extra, int64(p.Weight), 10)
		extra = append(extra, `",max_fails="`...)
		extra = strconv.AppendInt(extra, int64(p.MaxFails), 10)
		extra = append(extra, `",fail_timeout="`...)
		extra = strconv.AppendFloat(extra, p.FailTimeout.Seconds(), 'f', -1, 64)
		extra = append(extra, `",max_conns="`...)
		extra = strconv.AppendInt(extra, int64(p.MaxConns), 10)
		extra = append(extra, `",resolve="`...)
		extra = strconv.AppendBool(extra, p.Resolve)
		extra = append(extra, `",implicit="`...)
		extra = strconv.AppendBool(extra, t.Implicit)
		extra = append(extra, '"')
		emit(string(extra), 1)
	})
	fam("timeout_seconds", helpOf(timeoutDesc), "gauge", func(_ int, st *scheduler.Status, emit func(string, float64)) {
		if !probed(st) {
			return
		}
		emit(`,kind="connect"`, st.Target.ConnectTimeout.Seconds())
		emit(`,kind="read"`, st.Target.ReadTimeout.Seconds())
		emit(`,kind="send"`, st.Target.SendTimeout.Seconds())
	})
	fam("runs_total", helpOf(runsDesc), "counter", func(_ int, st *scheduler.Status, emit func(string, float64)) {
		if probed(st) {
			emit("", float64(st.Runs))
		}
	})
	fam("failures_total", helpOf(failuresDesc), "counter", func(_ int, st *scheduler.Status, emit func(string, float64)) {
		if !probed(st) {
			return
		}
		for i, n := range st.Failures {
			if n > 0 {
				emit(reasonLabel[i], float64(n))
			}
		}
	})
	fam("success", helpOf(successDesc), "gauge", func(_ int, st *scheduler.Status, emit func(string, float64)) {
		if done(st) {
			emit("", boolValue(st.Result.Success))
		}
	})
	fam("failure_reason", helpOf(reasonDesc), "gauge", func(_ int, st *scheduler.Status, emit func(string, float64)) {
		if done(st) && !st.Result.Success {
			emit(`,reason="`+escapeLabel(string(st.Result.Reason))+`"`, 1)
		}
	})
	fam("duration_seconds", helpOf(durationDesc), "gauge", func(_ int, st *scheduler.Status, emit func(string, float64)) {
		if done(st) {
			emit("", st.Result.Duration.Seconds())
		}
	})
	fam("phase_duration_seconds", helpOf(phaseDesc), "gauge", func(_ int, st *scheduler.Status, emit func(string, float64)) {
		if !done(st) {
			return
		}
		for i, d := range st.Result.Phases {
			emit(phaseLabel[i], d.Seconds())
		}
	})
	fam("last_run_timestamp_seconds", helpOf(lastRunDesc), "gauge", func(_ int, st *scheduler.Status, emit func(string, float64)) {
		if done(st) {
			emit("", float64(st.Finished.UnixNano())/1e9)
		}
	})
	fam("http_status_code", helpOf(statusDesc), "gauge", func(_ int, st *scheduler.Status, emit func(string, float64)) {
		if done(st) && st.Result.HTTPStatus > 0 {
			emit("", float64(st.Result.HTTPStatus))
		}
	})
	fam("tls_certificate_expiry_timestamp_seconds", helpOf(expiryDesc), "gauge", func(_ int, st *scheduler.Status, emit func(string, float64)) {
		if done(st) && !st.Result.TLSNotAfter.IsZero() {
			emit("", float64(st.Result.TLSNotAfter.Unix()))
		}
	})
	// Drop references to targets so the pool does not pin an old
	// configuration.
	clear(sn.st)
}

var (
	reasonLabel = func() []string {
		out := make([]string, len(prober.Reasons))
		for i, r := range prober.Reasons {
			out[i] = `,reason="` + escapeLabel(string(r)) + `"`
		}
		return out
	}()
	phaseLabel = func() []string {
		out := make([]string, len(prober.PhaseNames))
		for i, p := range prober.PhaseNames {
			out[i] = `,phase="` + p + `"`
		}
		return out
	}()
	helps sync.Map // *prometheus.Desc -> help text
)

// helpOf extracts the help text of a Desc built in this package, so the
// two exposition paths can never disagree on it.
func helpOf(d *prometheus.Desc) string {
	if h, ok := helps.Load(d); ok {
		return h.(string)
	}
	s := d.String()
	h := ""
	if i := strings.Index(s, "help: "); i >= 0 {
		if q, err := strconv.QuotedPrefix(s[i+len("help: "):]); err == nil {
			h, _ = strconv.Unquote(q)
		}
	}
	helps.Store(d, h)
	return h
}

func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

func escapeLabel(s string) string { return string(appendEscaped(nil, s)) }

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// appendFloat formats v as expfmt does.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case v == 1:
		return append(b, '1')
	case v == 0:
		return append(b, '0')
	case v == -1:
		return append(b, "-1"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, +1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// Handler serves g (the exporter's own metrics) followed by the
// per-target series of src, in the text format, gzip-compressed (at the
// fastest level) when the client accepts it. g must not also gather src.
func Handler(g prometheus.Gatherer, src Source, errorLog func(error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mfs, err := g.Gather()
		if err != nil && errorLog != nil {
			errorLog(err)
		}
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		var out io.Writer = w
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzipPool.Get().(*gzip.Writer)
			gz.Reset(w)
			defer func() {
				gz.Close()
				gzipPool.Put(gz)
			}()
			out = gz
		}
		enc := expfmt.NewEncoder(out, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return
			}
		}
		WriteText(out, src)
	})
}

var gzipPool = sync.Pool{New: func() any {
	gz, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return gz
}}
