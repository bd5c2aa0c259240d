package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// rangeSource is a frozen RangeSource.
type rangeSource struct{ fakeSource }

func (r rangeSource) Ranges() (int, func(from, to int, fn func(st *scheduler.Status))) {
	return len(r.fakeSource), func(from, to int, fn func(st *scheduler.Status)) { r.fakeSource[from:to].Each(fn) }
}

// blob writes n bytes of text in writes of varied sizes, as the capacity
// writer does, or nothing (n = 0).
type blob int

func (b blob) WriteTo(w io.Writer) (int64, error) {
	var written int64
	line := 0
	for size := 1; written < int64(b); size = size*7%40009 + 1 {
		var chunk []byte
		for len(chunk) < size {
			chunk = fmt.Appendf(chunk, "nginx_upstream_blob{line=\"%d\"} %d\n", line, line)
			line++
		}
		chunk = chunk[:min(len(chunk), int(int64(b)-written))]
		n, err := w.Write(chunk)
		written += int64(n)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// testRegistry gathers the same families on every call.
func testRegistry() *prometheus.Registry {
	reg := prometheus.NewPedanticRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nginx_upstream_test_gauge", Help: "A gauge."}, []string{"k"})
	for i := range 50 {
		g.WithLabelValues(fmt.Sprint(i)).Set(float64(i) / 3)
	}
	reg.MustRegister(g, NewLogs(logsFixture()))
	return reg
}

// referencePage is the page rendered by one goroutine through the
// encoder and the writers' own WriteTo, in the handler's order.
func referencePage(t *testing.T, reg prometheus.Gatherer, src Source, extra ...io.WriterTo) []byte {
	t.Helper()
	var b bytes.Buffer
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewTextWriter(src).WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for _, x := range extra {
		if _, err := x.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// get serves /metrics through h and returns the page, decompressed if
// gz; gzipT also has gzip(1) test the compressed page.
func get(t *testing.T, h http.Handler, gz bool, gzipT ...bool) []byte {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if got := w.Header().Get("Content-Encoding") == "gzip"; got != gz {
		t.Fatalf("gzip %v requested, Content-Encoding %q", gz, w.Header().Get("Content-Encoding"))
	}
	if !gz {
		return w.Body.Bytes()
	}
	z := w.Body.Bytes()
	if bin, err := exec.LookPath("gzip"); err == nil && len(gzipT) > 0 && gzipT[0] {
		cmd := exec.Command(bin, "-t")
		cmd.Stdin = bytes.NewReader(z)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gzip -t: %v: %s", err, out)
		}
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	// One member: a client reading only the first gets the whole page.
	zr.Multistream(false)
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if rest := zrRemaining(t, z); rest != 0 {
		t.Fatalf("%d bytes after the first gzip member", rest)
	}
	return plain
}

// zrRemaining is how many bytes follow the first gzip member of z.
func zrRemaining(t *testing.T, z []byte) int {
	t.Helper()
	r := bytes.NewReader(z)
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	if _, err := io.Copy(io.Discard, zr); err != nil {
		t.Fatal(err)
	}
	return r.Len()
}

func frozenSources(n int) map[string]Source {
	big := bigSource(n)
	return map[string]Source{
		"fixture":        fixture(),
		"fixture-ranged": rangeSource{fixture()},
		"big":            big,
		"big-ranged":     rangeSource{big},
		"empty-ranged":   rangeSource{},
	}
}

// TestParallelPageIsTheSequentialPage: whatever the workers and however
// the page is cut (segments of one target, chunks of one byte, empty
// segments), the page served, plain or gzipped, is byte for byte the
// one rendered sequentially from the same state.
func TestParallelPageIsTheSequentialPage(t *testing.T) {
	defer goleak.VerifyNone(t)
	extra := []io.WriterTo{&LogsText{src: logsFixture()}, blob(0), blob(150 << 10), blob(777)}
	n := 600
	if testutil.RaceEnabled {
		n = 200 // the race detector makes each chunk's hand-over slow
	}
	for name, src := range frozenSources(n) {
		want := referencePage(t, testRegistry(), src, extra...)
		for _, workers := range []int{1, 2, 4, 7} {
			for _, cut := range []struct{ chunk, segment int }{{chunkBytes, segmentBytes}, {1, 1}, {37, 1}, {100, 2000}, {4 << 10, 1 << 20}} {
				e := newExposition()
				e.chunkBytes, e.segmentBytes = cut.chunk, cut.segment
				e.workers = func() int { return workers }
				h := newHandler(testRegistry(), NewTextWriter(src), 1, nil, e, extra...)
				// Twice: the second scrape cuts ranges by the first's sizes.
				for scrape := range 2 {
					for _, gz := range []bool{false, true} {
						if len(want) > 100<<10 && (cut.chunk == 1 || cut.chunk < 4<<10 && (workers == 2 || cut.chunk < 100 && (gz || scrape > 0))) {
							continue // tiny chunks of a large page: a few times are enough
						}
						if got := get(t, h, gz, scrape == 0 && cut.chunk != chunkBytes); !bytes.Equal(got, want) {
							t.Fatalf("%s, %d workers, chunks %d, segments %d, scrape %d, gzip %v: page differs at byte %d of %d/%d",
								name, workers, cut.chunk, cut.segment, scrape, gz, firstDiff(got, want), len(got), len(want))
						}
					}
				}
				if held := e.held.Load(); held != 0 {
					t.Errorf("%s, %d workers: %d chunk buffers not returned", name, workers, held)
				}
			}
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestRangedSegmentsCutFamilies: a ranged source's families are cut into
// several segments once the sizes are known, the HELP and TYPE only in a
// family's first.
func TestRangedSegmentsCutFamilies(t *testing.T) {
	tw := NewTextWriter(rangeSource{bigSource(1000)})
	h := newHandler(prometheus.NewRegistry(), tw, 1, nil, newExposition())
	get(t, h, false) // learns the sizes
	segs, done := tw.segments(nil, 16<<10)
	defer done(false)
	if len(segs) <= 2*len(tw.families) {
		t.Fatalf("%d segments for %d families of 1,000 targets at 16 KB", len(segs), len(tw.families))
	}
	e := newExposition()
	headers := 0
	for _, seg := range segs {
		var b bytes.Buffer
		sw := e.newSegWriter(false, func(c chunk) error { b.Write(*c.buf); e.putBuf(c.buf); return nil })
		if err := sw.run(seg); err != nil {
			t.Fatal(err)
		}
		sw.release()
		if b.Len() > 2*(16<<10) {
			t.Errorf("a segment of %d bytes, cut for 16 KB", b.Len())
		}
		headers += strings.Count(b.String(), "# HELP ")
	}
	if headers != len(tw.families) {
		t.Errorf("%d HELP lines, want one per family (%d)", headers, len(tw.families))
	}
}

// failingWriter is a client that goes away after n bytes.
type failingWriter struct {
	httptest.ResponseRecorder
	n int
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("client gone")
	}
	return len(p), nil
}

// blockingWriter is a client that stops reading until ctx ends.
type blockingWriter struct {
	httptest.ResponseRecorder
	ctx     context.Context
	writes  atomic.Int64
	blocked chan struct{}
	once    sync.Once
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	if b.writes.Add(1) > 3 {
		b.once.Do(func() { close(b.blocked) })
		<-b.ctx.Done()
		return 0, b.ctx.Err()
	}
	return len(p), nil
}

// TestClientGoneStopsWorkers: a client that fails or stops reading ends
// the scrape with every goroutine it started, the chunks it held back in
// the pool, and no more chunks held meanwhile than the window allows.
func TestClientGoneStopsWorkers(t *testing.T) {
	defer goleak.VerifyNone(t)
	src := rangeSource{bigSource(5000)}
	for _, gz := range []bool{false, true} {
		for _, after := range []int{0, 10, 100 << 10} {
			e := newExposition()
			e.workers = func() int { return 4 }
			h := newHandler(testRegistry(), NewTextWriter(src), 1, nil, e, blob(1<<20))
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			h.ServeHTTP(&failingWriter{n: after}, req)
			if held := e.held.Load(); held != 0 {
				t.Errorf("gzip %v, fail after %d: %d chunk buffers not returned", gz, after, held)
			}
		}

		e := newExposition()
		const workers = 4
		e.workers = func() int { return workers }
		h := newHandler(testRegistry(), NewTextWriter(src), 1, nil, e, blob(1<<20))
		ctx, cancel := context.WithCancel(context.Background())
		w := &blockingWriter{ctx: ctx, blocked: make(chan struct{})}
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil).WithContext(ctx)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		served := make(chan struct{})
		go func() { h.ServeHTTP(w, req); close(served) }()
		<-w.blocked
		time.Sleep(100 * time.Millisecond) // let the workers run into the window
		// Each worker: its buffer, its compressor's, one it is sending;
		// the window's slots; the one the writer is writing.
		bound := int64(workers*3 + 2*workers*slotChunks + 1)
		if peak := e.peak.Load(); peak > bound {
			t.Errorf("gzip %v: %d chunk buffers held by a stalled scrape, want at most %d", gz, peak, bound)
		}
		cancel()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Fatal("the scrape did not end with its client")
		}
		if held := e.held.Load(); held != 0 {
			t.Errorf("gzip %v, stalled: %d chunk buffers not returned", gz, held)
		}
	}
}

type panicking struct{}

func (panicking) WriteTo(io.Writer) (int64, error) { panic("broken writer") }

// TestPanicInSegment: a panic while rendering a segment reaches the
// handler's goroutine, where net/http recovers it, as it did when the
// page was rendered there; the workers end.
func TestPanicInSegment(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, workers := range []int{1, 3} {
		e := newExposition()
		e.workers = func() int { return workers }
		h := newHandler(testRegistry(), NewTextWriter(rangeSource{bigSource(2000)}), 1, nil, e, panicking{}, blob(1<<20))
		func() {
			defer func() {
				if r := recover(); r != "broken writer" {
					t.Errorf("%d workers: recovered %v", workers, r)
				}
			}()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/metrics", nil))
		}()
	}
}

// TestPageWhileProbing: scrapes in parallel with a scheduler recording
// results and a reload (run with -race): every page parses, and each
// family has each target at most once.
func TestPageWhileProbing(t *testing.T) {
	defer goleak.VerifyNone(t)
	src := bigSource(500)
	targets := make([]*discovery.Target, len(src))
	for i := range src {
		targets[i] = src[i].Target
	}
	s := scheduler.New(scheduler.Options{Interval: 100 * time.Millisecond, Concurrency: 16, Prober: halfFailing{new(atomic.Uint64)}})
	s.Update(&discovery.Set{Targets: targets, Probed: len(targets)})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { s.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }()

	e := newExposition()
	e.chunkBytes, e.segmentBytes = 4<<10, 16<<10
	e.workers = func() int { return 4 }
	h := newHandler(prometheus.NewRegistry(), NewTextWriter(s), 2, nil, e)
	for i := range 6 {
		if i == 3 {
			s.Update(&discovery.Set{Targets: targets[:400], Probed: 400})
		}
		page := get(t, h, i%2 == 0)
		parser := expfmt.NewTextParser(model.UTF8Validation)
		if _, err := parser.TextToMetricFamilies(bytes.NewReader(page)); err != nil {
			t.Fatalf("scrape %d: %v", i, err)
		}
		seen := map[string]bool{}
		for _, line := range strings.Split(string(page), "\n") {
			if line == "" || line[0] == '#' {
				continue
			}
			series := line[:strings.LastIndexByte(line, ' ')]
			if seen[series] {
				t.Fatalf("scrape %d: %s twice", i, series)
			}
			seen[series] = true
		}
	}
}

// TestOneProcRendersInline: with GOMAXPROCS=1 the page is rendered in the
// handler's goroutine, one chunk buffer at a time, and is the same page.
func TestOneProcRendersInline(t *testing.T) {
	defer goleak.VerifyNone(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	src := rangeSource{bigSource(2000)}
	want := referencePage(t, testRegistry(), src)
	for _, gz := range []bool{false, true} {
		e := newExposition()
		h := newHandler(testRegistry(), NewTextWriter(src), 1, nil, e)
		if got := get(t, h, gz); !bytes.Equal(got, want) {
			t.Fatalf("gzip %v: page differs at byte %d", gz, firstDiff(got, want))
		}
		// The segment's buffer, the compressor's, the chunk being written.
		if peak := e.peak.Load(); peak > 3 {
			t.Errorf("gzip %v: %d chunk buffers held at once, want at most 3 without workers", gz, peak)
		}
	}
}

// partsBlob is a PartsWriter of lines lines cut into parts parts; the
// even parts render into the writer's free space when it lends it, the
// odd ones write each line. It records misuse: a part called twice or
// after done, done called before every part returned.
type partsBlob struct {
	lines, parts int
	// panicAt makes that part panic (-1: none).
	panicAt int

	mu       sync.Mutex
	scrapes  int // AppendParts calls
	dones    int
	misused  []string
	inFlight int
}

func (pb *partsBlob) line(b []byte, i int) []byte {
	return fmt.Appendf(b, "nginx_upstream_parts{line=\"%d\",q=\"a\\\"b\"} %d\n", i, i*i)
}

func (pb *partsBlob) render(w io.Writer, p int) error {
	from, to := p*pb.lines/pb.parts, (p+1)*pb.lines/pb.parts
	if p == pb.panicAt {
		panic("broken part")
	}
	if ab, ok := w.(interface{ AvailableBuffer() []byte }); ok && p%2 == 0 {
		b := ab.AvailableBuffer()
		for i := from; i < to; i++ {
			if b = pb.line(b, i); len(b) >= 300 {
				if _, err := w.Write(b); err != nil {
					return err
				}
				b = ab.AvailableBuffer()
			}
		}
		_, err := w.Write(b)
		return err
	}
	for i := from; i < to; i++ {
		if _, err := w.Write(pb.line(nil, i)); err != nil {
			return err
		}
	}
	return nil
}

func (pb *partsBlob) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	for p := range pb.parts {
		if err := pb.render(cw, p); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
}

func (pb *partsBlob) AppendParts(parts []func(io.Writer) error, _ int) ([]func(io.Writer) error, func()) {
	pb.mu.Lock()
	pb.scrapes++
	pb.mu.Unlock()
	called := make([]bool, pb.parts)
	finished := false
	for p := range pb.parts {
		parts = append(parts, func(w io.Writer) error {
			pb.mu.Lock()
			if called[p] || finished {
				pb.misused = append(pb.misused, fmt.Sprintf("part %d called twice or after done", p))
			}
			called[p] = true
			pb.inFlight++
			pb.mu.Unlock()
			defer func() {
				pb.mu.Lock()
				pb.inFlight--
				pb.mu.Unlock()
			}()
			return pb.render(w, p)
		})
	}
	return parts, func() {
		pb.mu.Lock()
		defer pb.mu.Unlock()
		if finished || pb.inFlight != 0 {
			pb.misused = append(pb.misused, "done called twice or while a part runs")
		}
		finished = true
		pb.dones++
	}
}

// check reports misuse, and scrapes whose done was not called.
func (pb *partsBlob) check(t *testing.T) {
	t.Helper()
	pb.mu.Lock()
	defer pb.mu.Unlock()
	for _, m := range pb.misused {
		t.Error(m)
	}
	if pb.scrapes == 0 || pb.dones != pb.scrapes {
		t.Errorf("%d scrapes of the parts writer, done called %d times", pb.scrapes, pb.dones)
	}
}

// TestPartsWriterPages: the parts of a PartsWriter, rendered by several
// workers into chunks of any size, make the page its WriteTo writes; done
// is called once per scrape, after every part, also when the client goes
// away or a part panics.
func TestPartsWriterPages(t *testing.T) {
	defer goleak.VerifyNone(t)
	src := rangeSource{bigSource(300)}
	pb := &partsBlob{lines: 4000, parts: 9, panicAt: -1}
	extra := []io.WriterTo{blob(777), pb, &LogsText{src: logsFixture()}, &partsBlob{lines: 5, parts: 3, panicAt: -1}}
	want := referencePage(t, testRegistry(), src, extra...)
	for _, workers := range []int{1, 2, 4} {
		for _, cut := range []struct{ chunk, segment int }{{chunkBytes, segmentBytes}, {1, 1}, {333, 100}, {4 << 10, 1 << 20}} {
			e := newExposition()
			e.chunkBytes, e.segmentBytes = cut.chunk, cut.segment
			e.workers = func() int { return workers }
			h := newHandler(testRegistry(), NewTextWriter(src), 1, nil, e, extra...)
			for _, gz := range []bool{false, true} {
				if got := get(t, h, gz); !bytes.Equal(got, want) {
					t.Fatalf("%d workers, chunks %d, gzip %v: page differs at byte %d of %d/%d",
						workers, cut.chunk, gz, firstDiff(got, want), len(got), len(want))
				}
			}
			if held := e.held.Load(); held != 0 {
				t.Errorf("%d workers: %d chunk buffers not returned", workers, held)
			}
			for _, after := range []int{0, 100, 300 << 10} {
				h.ServeHTTP(&failingWriter{n: after}, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			}
		}
	}
	pb.check(t)
	for _, workers := range []int{1, 3} {
		e := newExposition()
		e.workers = func() int { return workers }
		broken := &partsBlob{lines: 4000, parts: 9, panicAt: 5}
		h := newHandler(testRegistry(), NewTextWriter(src), 1, nil, e, broken)
		func() {
			defer func() {
				if r := recover(); r != "broken part" {
					t.Errorf("%d workers: recovered %v", workers, r)
				}
			}()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/metrics", nil))
		}()
		broken.check(t)
	}
}
