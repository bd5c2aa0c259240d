package collector

import (
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// TextWriter renders the per-target families straight into the Prometheus
// text format while reading the scheduler. With 10,000 targets the
// generic path (a const metric and a protobuf message per series, then
// sorting) costs about a second and 170 MB per scrape; here the label set
// of each target is escaped once per configuration and only the values
// are formatted on each scrape.
//
// It renders the same families table as Collector (a test holds the two
// pages equal); Collector stays the reference and serves /probe.
//
// It keeps no snapshot: the text format wants each family's series
// together, so it reads the source once per family, rendering each target
// from the copy Each hands it (read under that target's lock alone) into
// a bounded buffer, and writes the buffer between targets. No lock is held
// while writing to the client, so a client that stops reading holds
// nothing but its own connection (bounded by the server's write timeout).
// Each family is consistent per target; a probe that ends during a scrape
// shows in the families read after it, as it would in the next scrape.
//
// WriteTo renders in the calling goroutine; Handler renders the same
// bytes from segments (segments, below) that several goroutines render
// at once, reading a RangeSource in ranges of targets.
type TextWriter struct {
	src      Source
	families []*family

	mu     sync.Mutex // guards labels and infos; never held while writing
	labels map[*discovery.Target]*renderedLabels
	// infos interns the rendered info labels: most servers share their
	// parameters (weight=1, max_fails=1, …), so 10,000 targets have a
	// handful of distinct strings, not 10,000 copies of ~110 bytes.
	infos map[string]string

	pages sync.Pool // *page, reused between scrapes, freed by the GC when idle

	// perTarget is each family's bytes per target in the last scrape
	// (-1 before the first), which cuts the next one's ranges of targets
	// into segments of about segmentBytes.
	perTarget []atomic.Int64
}

// RangeSource is a Source that can also be read in ranges of targets from
// several goroutines at once (*scheduler.Scheduler): Handler renders the
// per-target families of such a source in parallel. The targets of one
// call to Ranges stay the same for every range read through it.
type RangeSource interface {
	Source
	Ranges() (n int, each func(from, to int, fn func(st *scheduler.Status)))
}

// renderedLabels are the escaped label pairs of one target.
type renderedLabels struct {
	target string // upstream="…",server="…",address="…",protocol="…"
	info   string // ,backup="…",… of the info family
}

// page is the per-scrape state: the targets in the order the first family
// read them, with their labels, so that later families find their labels
// without the map, and a bounded output buffer.
type page struct {
	targets []*discovery.Target
	labels  []*renderedLabels
	buf     []byte
	// bytes counts each family's bytes in a scrape through Handler.
	bytes []atomic.Int64
	// cache holds, in a scrape through Handler reading ranges, the labels
	// of the target at each position once the first family rendered it:
	// the other families' segments may run meanwhile, so they fall back
	// to the map where it is not set yet.
	cache []atomic.Pointer[renderedLabels]
}

// flushSize bounds the buffer a scrape renders into before writing: the
// page of 10,000 targets is ~20 MB and is never held whole.
const flushSize = 32 << 10

// NewTextWriter returns a TextWriter reading src and rendering every
// family the options keep.
func NewTextWriter(src Source, opts ...Option) *TextWriter {
	tw := &TextWriter{src: src, families: selectFamilies(opts), labels: map[*discovery.Target]*renderedLabels{}, infos: map[string]string{}}
	tw.perTarget = make([]atomic.Int64, len(tw.families))
	for i := range tw.perTarget {
		tw.perTarget[i].Store(-1)
	}
	return tw
}

var escaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

// EscapeLabelValue escapes a label value for the text format: backslash,
// newline and double quote, as the Prometheus text encoder does.
func EscapeLabelValue(v string) string { return escaper.Replace(v) }

// TargetLabels is t's escaped label pairs
// upstream="…",server="…",address="…",protocol="…", the identity every
// per-target family of this exporter carries. A target discovery built
// carries them already (discovery.Target.Labels): that one string is
// returned, not a copy, so every cache of rendered labels shares it.
func TargetLabels(t *discovery.Target) string {
	if l := t.Labels(); l != "" {
		return l
	}
	return `upstream="` + escaper.Replace(t.Upstream) +
		`",server="` + escaper.Replace(t.Server) +
		`",address="` + escaper.Replace(t.Address) +
		`",protocol="` + escaper.Replace(t.Protocol) + `"`
}

// WriteTo writes every per-target family to w.
func (tw *TextWriter) WriteTo(w io.Writer) (int64, error) {
	p, _ := tw.pages.Get().(*page)
	if p == nil {
		p = &page{}
	}
	defer tw.release(p)

	cw := &countingWriter{w: w}
	var s series
	s.init()
	s.b = p.buf[:0]
	defer func() { p.buf = s.b[:0] }()
	for _, f := range tw.families {
		s.b = header(s.b, f)
		j := 0
		tw.src.Each(func(st *scheduler.Status) {
			if cw.err != nil {
				return
			}
			l := tw.labelsAt(p, j, st.Target)
			j++
			if !f.scope.has(st) {
				return
			}
			s.add(f, st, l.target, l.info)
			if len(s.b) >= flushSize {
				cw.Write(s.b)
				s.b = s.b[:0]
			}
		})
		if cw.err != nil {
			return cw.n, cw.err
		}
	}
	cw.Write(s.b)
	tw.forget(p)
	return cw.n, cw.err
}

// series appends the samples of per-target families to b. Its yield is
// made once, not once per target and family.
type series struct {
	b                   []byte
	name, target, label string
	yield               func(lv string, v float64)
}

func (s *series) init() {
	s.yield = func(lv string, v float64) { s.b = sample(s.b, s.name, s.target, s.label, lv, v) }
}

// add appends family f's series of the target of st, whose escaped
// labels are target (and info, those of an info family).
func (s *series) add(f *family, st *scheduler.Status, target, info string) {
	if f.info != nil {
		s.b = append(s.b, f.name...)
		s.b = append(s.b, '{')
		s.b = append(s.b, target...)
		s.b = append(s.b, info...)
		s.b = append(s.b, "} 1\n"...)
		return
	}
	s.name, s.target, s.label = f.name, target, f.label
	f.values(st, s.yield)
}

// segments appends the segments of every per-target family to segs, in
// the order WriteTo writes them, for Handler to render in parallel; done
// is to be called once they are written (ok: all of them). A RangeSource
// is read in ranges of targets, each family's HELP and TYPE in its first;
// another source once per family.
func (tw *TextWriter) segments(segs []segment, segBytes int) (_ []segment, done func(ok bool)) {
	p, _ := tw.pages.Get().(*page)
	if p == nil {
		p = &page{}
	}
	if len(p.bytes) != len(tw.families) {
		p.bytes = make([]atomic.Int64, len(tw.families))
	}
	for i := range p.bytes {
		p.bytes[i].Store(0)
	}
	rs, ranged := tw.src.(RangeSource)
	if !ranged {
		for fi := range tw.families {
			segs = append(segs, tw.segment(p, fi, true, -1, tw.src.Each))
		}
	} else {
		n, each := rs.Ranges()
		p.targets = slices.Grow(p.targets[:0], n)[:n]
		if cap(p.cache) < n {
			p.cache = make([]atomic.Pointer[renderedLabels], n)
		}
		p.cache = p.cache[:n]
		for fi := range tw.families {
			step := n
			if per := tw.perTarget[fi].Load(); per < 0 {
				step = 256 // first scrape: no size known yet
			} else if per > 0 {
				step = int(int64(segBytes) / per)
			}
			step = max(step, 1)
			for from := 0; ; from += step {
				to := min(from+step, n)
				segs = append(segs, tw.segment(p, fi, from == 0, from, func(fn func(*scheduler.Status)) { each(from, to, fn) }))
				if to >= n {
					break
				}
			}
		}
	}
	return segs, func(ok bool) {
		if ok {
			tw.forget(p)
			if n := int64(len(p.targets)); n > 0 {
				for fi := range tw.families {
					tw.perTarget[fi].Store(p.bytes[fi].Load() / n)
				}
			}
		}
		tw.release(p)
	}
}

// segment renders family fi for the targets each yields (with its HELP
// and TYPE if first). The first family records the targets in p for
// forget: at from onwards when read in ranges, with their labels for the
// other families, else appended (from < 0).
func (tw *TextWriter) segment(p *page, fi int, first bool, from int, each func(func(*scheduler.Status))) segment {
	return func(sw *segWriter) error {
		f := tw.families[fi]
		s := &sw.series
		s.b = *sw.buf
		if first {
			s.b = header(s.b, f)
		}
		var err error
		j := from
		each(func(st *scheduler.Status) {
			if err != nil {
				return
			}
			t := st.Target
			var l *renderedLabels
			switch {
			case from < 0:
				if fi == 0 {
					p.targets = append(p.targets, t)
				}
			case fi == 0:
				p.targets[j] = t
				l = tw.labelsOf(t)
				p.cache[j].Store(l)
			default:
				l = p.cache[j].Load()
			}
			j++
			if !f.scope.has(st) {
				return
			}
			target, info := t.Labels(), ""
			if l == nil && (target == "" || f.info != nil) {
				l = tw.labelsOf(t)
			}
			if l != nil {
				target, info = l.target, l.info
			}
			s.add(f, st, target, info)
			if len(s.b) >= sw.e.chunkBytes {
				*sw.buf = s.b
				err = sw.flush(false)
				s.b = *sw.buf
			}
		})
		*sw.buf = s.b
		s.b = nil
		p.bytes[fi].Add(sw.n + int64(len(*sw.buf)))
		return err
	}
}

// release returns p to the pool without references to targets, so a
// reload's old targets can be collected.
func (tw *TextWriter) release(p *page) {
	clear(p.targets)
	clear(p.labels)
	for i := range p.cache {
		p.cache[i].Store(nil)
	}
	p.cache = p.cache[:0]
	p.targets, p.labels = p.targets[:0], p.labels[:0]
	tw.pages.Put(p)
}

// labelsAt returns the escaped labels of t, the j-th target of a family:
// those p holds at j when an earlier family read the same target there,
// else those rendered for t once per configuration, which p then holds.
func (tw *TextWriter) labelsAt(p *page, j int, t *discovery.Target) *renderedLabels {
	if j < len(p.targets) && p.targets[j] == t {
		return p.labels[j]
	}
	l := tw.labelsOf(t)
	if j < len(p.targets) {
		// The targets changed with a reload during this scrape.
		p.targets[j], p.labels[j] = t, l
	} else {
		p.targets, p.labels = append(p.targets, t), append(p.labels, l)
	}
	return l
}

// labelsOf returns the escaped labels of t, rendered once per
// configuration.
func (tw *TextWriter) labelsOf(t *discovery.Target) *renderedLabels {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	l, ok := tw.labels[t]
	if !ok {
		l = renderLabels(t)
		if v, ok := tw.infos[l.info]; ok {
			l.info = v
		} else {
			tw.infos[l.info] = l.info
		}
		tw.labels[t] = l
	}
	return l
}

// forget drops the labels of targets gone with a reload: the map holds
// the targets themselves, so keeping a past generation's labels would
// keep that whole target set alive (about 8 MB at 10,000 targets). The
// slack of 16 keeps a reload of a few targets from rebuilding the map.
func (tw *TextWriter) forget(p *page) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if len(tw.labels) <= len(p.targets)+16 {
		return
	}
	next := make(map[*discovery.Target]*renderedLabels, len(p.targets))
	for _, t := range p.targets {
		if l, ok := tw.labels[t]; ok {
			next[t] = l
		}
	}
	tw.labels = next
	// Strings in use stay referenced by their labels; the next targets
	// intern afresh, so values gone with a reload go too.
	tw.infos = map[string]string{}
}

func renderLabels(t *discovery.Target) *renderedLabels {
	l := &renderedLabels{target: TargetLabels(t)}
	for i := range families {
		f := &families[i]
		if f.info == nil {
			continue
		}
		var sb strings.Builder
		for j, v := range f.info(t) {
			sb.WriteString(",")
			sb.WriteString(f.infoLabels[j])
			sb.WriteString(`="`)
			sb.WriteString(escaper.Replace(v))
			sb.WriteString(`"`)
		}
		l.info = sb.String()
	}
	return l
}

func header(b []byte, f *family) []byte {
	return AppendHeader(b, f.name, f.help, f.typ)
}

// AppendHeader appends the HELP and TYPE lines of a counter or gauge
// family.
func AppendHeader(b []byte, name, help string, typ prometheus.ValueType) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, help...)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	if typ == prometheus.CounterValue {
		return append(b, " counter\n"...)
	}
	return append(b, " gauge\n"...)
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
		b = append(b, v...) // reason, phase and kind names need no escaping
		b = append(b, '"')
	}
	b = append(b, "} "...)
	b = AppendFloat(b, value)
	return append(b, '\n')
}

// AppendFloat appends a sample value formatted as the Prometheus text
// encoder formats it.
func AppendFloat(b []byte, f float64) []byte {
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
	case f > -1e6 && f < 1e6 && f == math.Trunc(f):
		// Counters, status codes and timeouts: 'g' writes integers
		// under 10^6 as they are, and AppendInt is several times faster
		// than the shortest-float search.
		return strconv.AppendInt(b, int64(f), 10)
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
