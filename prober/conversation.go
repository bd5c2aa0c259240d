package prober

import (
	"context"
	"errors"
	"math/bits"
	"net"
	"sync"
	"syscall"
	"time"
)

// nginx's defaults for proxy_connect_timeout, proxy_read_timeout,
// proxy_send_timeout and proxy_buffer_size (one memory page), used when a
// target leaves them unset.
const (
	defaultTimeout    = 60 * time.Second
	defaultBufferSize = 4096
)

// errBufferFull reports that the header did not fit the buffer: nginx's
// "upstream sent too big header".
var errBufferFull = errors.New("response header does not fit the buffer")

// Buffers come from size-class pools (powers of two from 4 KiB to 1 MiB) so
// that 10,000 probes an interval reuse the same few dozen buffers whatever
// *_buffer_size each target has. Larger buffers are allocated per probe.
const (
	minBufShift = 12
	maxBufShift = 20
)

var bufPools [maxBufShift - minBufShift + 1]sync.Pool

func getBuf(size int) *[]byte {
	if size < 1 {
		size = defaultBufferSize
	}
	class := 0
	if size > 1<<minBufShift {
		class = bits.Len(uint(size-1)) - minBufShift
	}
	if class >= len(bufPools) {
		b := make([]byte, size)
		return &b
	}
	if v := bufPools[class].Get(); v != nil {
		bp := v.(*[]byte)
		*bp = (*bp)[:size]
		return bp
	}
	b := make([]byte, 1<<(class+minBufShift))
	b = b[:size]
	return &b
}

func putBuf(bp *[]byte) {
	c := cap(*bp)
	if c < 1<<minBufShift || c > 1<<maxBufShift || c&(c-1) != 0 {
		return
	}
	bufPools[bits.Len(uint(c))-1-minBufShift].Put(bp)
}

// aLongTimeAgo is a deadline in the past: setting it wakes every blocked
// read and write on a connection at once.
var aLongTimeAgo = time.Unix(1, 0)

// conversation is one exchange on one connection: every read is bounded in
// bytes by the header buffer and in time by the read timeout (nginx's timer
// between two reads) and by the probe's absolute deadline, which also stops
// a backend trickling one byte per read timeout.
type conversation struct {
	ctx      context.Context
	conn     net.Conn
	r        *Result
	deadline time.Time // the probe's end (ctx deadline); zero when none

	readTimeout time.Duration
	sendTimeout time.Duration

	// The header buffer is taken only once the backend has sent
	// something (see awaitReadable): a probe waiting on a backend that
	// never answers, for a whole read timeout, then holds no buffer.
	size int     // the header limit (BufferSize): len(buf) once taken
	bufp *[]byte // nil until taken
	buf  []byte
	n    int // bytes read into buf
	off  int // bytes of buf already handed out by Read

	written time.Time // end of the request write: start of processing
	first   time.Time // first response byte: start of transfer
	limit   int       // cap on bytes Read may return in total (0: none)
	total   int

	stop func() bool
	wg   sync.WaitGroup
}

// newConversation starts an exchange on conn for t. release must be called
// before the probe returns: it returns the buffer and waits for the
// cancellation watcher, so no goroutine outlives the probe.
func newConversation(ctx context.Context, conn net.Conn, t *Peer, r *Result) *conversation {
	c := conversations.Get().(*conversation)
	c.ctx = ctx
	c.conn = conn
	c.r = r
	c.readTimeout = orDefault(t.ReadTimeout)
	c.sendTimeout = orDefault(t.SendTimeout)
	c.deadline, _ = ctx.Deadline()
	c.size = t.BufferSize
	if c.size <= 0 {
		c.size = defaultBufferSize
	}
	if ctx.Done() != nil {
		raw := conn
		c.wg.Add(1)
		c.stop = context.AfterFunc(ctx, func() {
			defer c.wg.Done()
			raw.SetDeadline(aLongTimeAgo)
		})
	}
	return c
}

func (c *conversation) release() {
	if c.stop != nil && c.stop() {
		c.wg.Done()
	}
	c.wg.Wait()
	if c.bufp != nil {
		putBuf(c.bufp)
	}
	// The watcher has ended (stopped, or Done above): nothing refers to
	// c any more, and the WaitGroup is at zero.
	*c = conversation{}
	conversations.Put(c)
}

// conversations are reused across probes: waiting for readability costs
// the probe one small allocation (the socket's syscall.RawConn), and
// reusing the conversation saves one.
var conversations = sync.Pool{New: func() any { return new(conversation) }}

// buffer takes the header buffer if it is not taken yet.
func (c *conversation) buffer() {
	if c.bufp == nil {
		c.bufp = getBuf(c.size)
		c.buf = *c.bufp
	}
}

// awaitReadable blocks until conn has something to read (bytes, end of
// stream or an error) or its read deadline passes, without a buffer. It
// polls the socket rather than only waiting for the poller, because
// readiness that arrived before the wait would not be signalled again;
// and it polls rather than peeks, because reading a pending error (a
// reset) clears it, and the Read that follows must see what a plain Read
// sees. Any failure is left to that Read. A connection without a file
// descriptor (TLS) returns at once.
func (c *conversation) awaitReadable() {
	sc, ok := c.conn.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(readable)
}

func orDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return defaultTimeout
	}
	return d
}

// until returns now+d, cut at the probe's deadline.
func (c *conversation) until(d time.Duration) time.Time {
	t := time.Now().Add(d)
	if !c.deadline.IsZero() && c.deadline.Before(t) {
		return c.deadline
	}
	return t
}

// armed re-checks cancellation after a deadline was set: the watcher may
// have fired between computing and setting it.
func (c *conversation) armed() {
	if c.ctx.Err() != nil {
		c.conn.SetDeadline(aLongTimeAgo)
	}
}

// write sends p under the send timeout, as nginx's proxy_send_timeout
// bounds each write of the request.
func (c *conversation) write(p []byte) error {
	c.conn.SetWriteDeadline(c.until(c.sendTimeout))
	c.armed()
	_, err := c.conn.Write(p)
	c.written = time.Now()
	return err
}

// fill reads more bytes into the header buffer. It returns errBufferFull
// when the buffer has no room left.
func (c *conversation) fill() error {
	if c.n == c.size {
		return errBufferFull
	}
	c.conn.SetReadDeadline(c.until(c.readTimeout))
	c.armed()
	if c.bufp == nil {
		c.awaitReadable()
		c.buffer()
	}
	for {
		m, err := c.conn.Read(c.buf[c.n:])
		if m > 0 {
			c.gotBytes()
			c.n += m
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (c *conversation) gotBytes() {
	if c.first.IsZero() {
		c.first = time.Now()
		if !c.written.IsZero() {
			c.r.Phases[PhaseProcessing] = c.first.Sub(c.written)
		}
	}
}

// headerDone records the transfer phase: from the first response byte to
// the end of the header.
func (c *conversation) headerDone() {
	if !c.first.IsZero() {
		c.r.Phases[PhaseTransfer] = time.Since(c.first)
	}
}

// Read makes the conversation an io.Reader for framed protocols (HTTP/2):
// it first hands out what is already buffered, then reads the connection
// under the same timeouts, and fails once limit bytes were returned.
func (c *conversation) Read(p []byte) (int, error) {
	if c.limit > 0 && c.total >= c.limit {
		return 0, errBufferFull
	}
	if c.limit > 0 && len(p) > c.limit-c.total {
		p = p[:c.limit-c.total]
	}
	if c.off < c.n {
		m := copy(p, c.buf[c.off:c.n])
		c.off += m
		c.total += m
		return m, nil
	}
	c.conn.SetReadDeadline(c.until(c.readTimeout))
	c.armed()
	m, err := c.conn.Read(p)
	if m > 0 {
		c.gotBytes()
	}
	c.total += m
	return m, err
}

// fail records a failed read or write: the phase is processing until the
// first response byte, transfer after it.
func (c *conversation) fail(err error, self string) {
	phase := PhaseProcessing
	if !c.first.IsZero() {
		phase = PhaseTransfer
	}
	c.r.fail(event{outcome: outcomeError, phase: phase, err: err, got: c.buf[:c.n], self: self, deadline: pastDeadline(c.ctx)})
}

// failWith records a failure that protocol code recognised, with the
// bytes read so far.
func (c *conversation) failWith(o outcome, err error, self, detail string) {
	c.r.fail(event{outcome: o, phase: PhaseProcessing, err: err, got: c.buf[:c.n], self: self, detail: detail})
}
