package collector

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/gzipcat"
)

// The page of 10,000 targets is 20-30 MB of text; rendered and gzipped by
// one goroutine it took 60 ms of a scrape (of which the compression two
// thirds), too slow for a 50 ms budget on a machine whose other core idles
// between probes. So the page is cut into segments in a fixed order (the
// registry's families, then each per-target family in ranges of targets,
// then the other signals' writers), rendered and compressed by a few
// workers at once into pooled chunks, and written strictly in order.
//
// Memory stays small and constant: workers take segments in order and at
// most window segments are taken and not yet written; each of them holds
// at most slotChunks chunks waiting plus the one being filled. A client
// that stops reading stops the workers within a window.
//
// gzip: each segment is its own deflate stream ended with a sync flush,
// the segments concatenated into one gzip member (internal/gzipcat).

const (
	// chunkBytes is the size at which a segment hands a chunk to the
	// writer: large writes to the client, few hand-overs, and a dozen of
	// them in flight are well under a megabyte.
	chunkBytes = 64 << 10
	// segmentBytes is the size a per-target family's range of targets is
	// cut to (from the bytes per target of the previous scrape): a few
	// per core at 10,000 targets, so that workers stay busy to the end.
	segmentBytes = 256 << 10
	// maxWorkers: more than four gains nothing a scrape needs and takes
	// cores from probing.
	maxWorkers = 4
	// slotChunks is how many chunks of one segment may wait for the writer.
	slotChunks = 2
)

// segment renders one part of the page into sw.
type segment func(sw *segWriter) error

// PartsWriter is an extra writer of Handler whose output can be cut into
// parts, which Handler renders as segments, several at once, like the
// ranges of the per-target families: a signal with a family per target
// is otherwise one sequential segment, the page's tail.
type PartsWriter interface {
	io.WriterTo
	// AppendParts appends to parts the parts of one scrape: rendered in
	// order into one writer, they are the bytes WriteTo writes. Each part
	// is called at most once, from any goroutine, concurrently with the
	// others; partBytes is the size to cut them to. done is called once
	// every part has returned or will never be called.
	AppendParts(parts []func(w io.Writer) error, partBytes int) (_ []func(w io.Writer) error, done func())
}

// chunk is part of a segment's output, plain or compressed, with the
// CRC-32 and length of the plain bytes it covers (gzip only).
type chunk struct {
	buf *[]byte
	crc uint32
	n   int64
	// end marks the end of a segment, with the error that ended it and
	// the value of a panic in it (re-raised in the handler's goroutine,
	// where net/http recovers it as before).
	end      bool
	err      error
	panicked any
}

// exposition writes pages of segments. Its settings are fields so that
// tests can cut pages into tiny segments.
type exposition struct {
	chunkBytes   int
	segmentBytes int
	// workers returns how many goroutines render; 1 renders in the
	// handler's goroutine alone.
	workers func() int

	bufs sync.Pool // *[]byte of chunkBytes capacity
	gzs  sync.Pool // *gzipcat.Segment

	// held counts the chunk buffers out of the pool, peak the most seen:
	// the memory a scrape holds, which tests bound.
	held, peak atomic.Int64
}

func newExposition() *exposition {
	return &exposition{
		chunkBytes:   chunkBytes,
		segmentBytes: segmentBytes,
		workers:      func() int { return min(runtime.GOMAXPROCS(0), maxWorkers) },
	}
}

func (e *exposition) getBuf() *[]byte {
	n := e.held.Add(1)
	for p := e.peak.Load(); n > p && !e.peak.CompareAndSwap(p, n); p = e.peak.Load() {
		// another buffer was taken meanwhile: try again against its peak
	}
	if b, ok := e.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, e.chunkBytes+e.chunkBytes/4)
	return &b
}

func (e *exposition) putBuf(b *[]byte) {
	if b == nil {
		return
	}
	e.held.Add(-1)
	*b = (*b)[:0]
	e.bufs.Put(b)
}

// sink is the writer's end: the client, through a gzip member or not.
type sink struct {
	w io.Writer
	m *gzipcat.Member
}

func (s *sink) put(c chunk) error {
	if s.m != nil {
		return s.m.Write(*c.buf, c.crc, c.n)
	}
	_, err := s.w.Write(*c.buf)
	return err
}

// write writes the page of segs to w, gzipped if gz. ctx ending (the
// client gone) stops the workers; every goroutine started has ended when
// write returns.
func (e *exposition) write(ctx context.Context, w io.Writer, gz bool, segs []segment) error {
	s := &sink{w: w}
	if gz {
		s.m = gzipcat.NewMember(w)
	}
	var err error
	if workers := min(e.workers(), len(segs)); workers <= 1 {
		err = e.sequential(ctx, s, gz, segs)
	} else {
		var panicked any
		if err, panicked = e.parallel(ctx, s, gz, segs, workers); panicked != nil {
			panic(panicked)
		}
	}
	if err == nil && gz {
		err = s.m.Close()
	}
	return err
}

// sequential renders and writes each segment in turn, without goroutines.
func (e *exposition) sequential(ctx context.Context, s *sink, gz bool, segs []segment) error {
	sw := e.newSegWriter(gz, func(c chunk) error {
		err := s.put(c)
		e.putBuf(c.buf)
		return err
	})
	defer sw.release()
	for _, seg := range segs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("rendering metrics: %w", err)
		}
		if err := sw.run(seg); err != nil {
			return err
		}
	}
	return nil
}

// parallel renders segments with workers goroutines and writes them in
// order from the calling goroutine.
func (e *exposition) parallel(ctx context.Context, s *sink, gz bool, segs []segment, workers int) (err error, panicked any) {
	ctx, cancel := context.WithCancel(ctx)
	// window bounds the segments taken and not yet written: two per
	// worker lets each start its next segment while the writer catches
	// up, and segment i's chunks go through slots[i%window], which no
	// other segment taken meanwhile uses.
	window := 2 * workers
	slots := make([]chan chunk, window)
	for i := range slots {
		slots[i] = make(chan chunk, slotChunks)
	}
	tokens := make(chan struct{}, window)
	var next atomic.Int64
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		for _, ch := range slots {
			for len(ch) > 0 {
				e.putBuf((<-ch).buf)
			}
		}
	}()
	for range workers {
		wg.Go(func() {
			var slot chan chunk
			sw := e.newSegWriter(gz, func(c chunk) error {
				select {
				case slot <- c:
					return nil
				case <-ctx.Done():
					e.putBuf(c.buf)
					return fmt.Errorf("rendering metrics: %w", ctx.Err())
				}
			})
			defer sw.release()
			for {
				select {
				case tokens <- struct{}{}:
				case <-ctx.Done():
					return
				}
				i := int(next.Add(1) - 1)
				if i >= len(segs) {
					return
				}
				slot = slots[i%window]
				end := chunk{end: true}
				func() {
					defer func() { end.panicked = recover() }()
					end.err = sw.run(segs[i])
				}()
				select {
				case slot <- end:
				case <-ctx.Done():
					return
				}
				if end.err != nil || end.panicked != nil {
					return
				}
			}
		})
	}
	for i := range segs {
		slot := slots[i%window]
		for {
			var c chunk
			select {
			case c = <-slot:
			case <-ctx.Done():
				return fmt.Errorf("writing metrics: %w", ctx.Err()), nil
			}
			if c.end {
				if c.err != nil || c.panicked != nil {
					return c.err, c.panicked
				}
				break
			}
			err := s.put(c)
			e.putBuf(c.buf)
			if err != nil {
				return err, nil
			}
		}
		<-tokens
	}
	return nil, nil
}

// segWriter is what a segment renders into: plain bytes collected in a
// chunk buffer that is handed on (or compressed) when full. One per
// worker, reused for each segment it renders.
type segWriter struct {
	e    *exposition
	buf  *[]byte // plain bytes
	emit func(chunk) error
	// gz compresses into zbuf; nil: plain.
	gz   *gzipcat.Segment
	zbuf *[]byte
	// n counts the plain bytes of the current segment.
	n int64
	// series renders per-target samples into buf.
	series series
}

func (e *exposition) newSegWriter(gz bool, emit func(chunk) error) *segWriter {
	sw := &segWriter{e: e, emit: emit, buf: e.getBuf()}
	if gz {
		if z, ok := e.gzs.Get().(*gzipcat.Segment); ok {
			sw.gz = z
		} else {
			sw.gz = gzipcat.NewSegment()
		}
		sw.zbuf = e.getBuf()
	}
	sw.series.init()
	return sw
}

func (sw *segWriter) release() {
	sw.e.putBuf(sw.buf)
	sw.buf = nil
	if sw.gz != nil {
		sw.e.putBuf(sw.zbuf)
		sw.gz.Reset(nil) // drop the output buffer before pooling
		sw.e.gzs.Put(sw.gz)
		sw.gz, sw.zbuf = nil, nil
	}
}

// run renders seg and hands on all of its output.
func (sw *segWriter) run(seg segment) error {
	sw.n = 0
	*sw.buf = (*sw.buf)[:0]
	if sw.gz != nil {
		sw.gz.Reset((*sw.zbuf)[:0])
	}
	if err := seg(sw); err != nil {
		return err
	}
	return sw.flush(true)
}

// AvailableBuffer returns the free space of the chunk being filled, as
// bufio.Writer's does: a part that appends to it and writes the result
// is not copied (see Write).
func (sw *segWriter) AvailableBuffer() []byte {
	return (*sw.buf)[len(*sw.buf):]
}

// Write implements io.Writer for the registry's encoder and the extra
// writers.
func (sw *segWriter) Write(p []byte) (int, error) {
	if b := *sw.buf; len(p) > 0 && len(p) <= cap(b)-len(b) && &p[0] == &b[:len(b)+1][len(b)] {
		*sw.buf = b[:len(b)+len(p)] // rendered in place, from AvailableBuffer
	} else {
		*sw.buf = append(b, p...)
	}
	if err := sw.flush(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush hands the output on once a chunk is full, or at the segment's
// end.
func (sw *segWriter) flush(end bool) error {
	b := sw.buf
	if len(*b) < sw.e.chunkBytes && !end {
		return nil
	}
	sw.n += int64(len(*b))
	if sw.gz == nil {
		if len(*b) == 0 {
			return nil
		}
		sw.buf = sw.e.getBuf()
		return sw.emit(chunk{buf: b})
	}
	if _, err := sw.gz.Write(*b); err != nil {
		return fmt.Errorf("compressing metrics: %w", err)
	}
	*b = (*b)[:0]
	if end {
		if err := sw.gz.End(); err != nil {
			return fmt.Errorf("compressing metrics: %w", err)
		}
	} else if sw.gz.Len() < sw.e.chunkBytes {
		return nil // few compressed bytes yet: hand on larger writes
	}
	next := sw.e.getBuf()
	compressed, crc, n := sw.gz.Take(*next)
	c := chunk{buf: sw.zbuf, crc: crc, n: n}
	*c.buf = compressed
	sw.zbuf = next
	return sw.emit(c)
}
