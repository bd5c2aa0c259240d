package prober

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// TestInFlightMemoryPerTarget measures what one probe holds while it waits
// on a backend that accepted the connection and never answers: at 10,000
// targets with a tenth of them hanging, a thousand probes wait at once for
// a whole read timeout, so their heap and stacks are a large part of the
// exporter's memory.
//
// The backend is a listener that never accepts: the kernel completes the
// connection and queues what the probe sends, so the backend side costs
// the test's heap nothing and every byte measured is the prober's.
func TestInFlightMemoryPerTarget(t *testing.T) {
	testutil.SkipUnlessHeapIsTheExporters(t)
	const n = 1000
	// The goroutines' own descriptors are allocated once and reused:
	// create n first so that the first protocol measured does not
	// count them.
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go wg.Done()
	}
	wg.Wait()
	// Bounds (heap, stack) per waiting probe, with headroom over what
	// Go 1.26 measures here (docs/performance.md): 0.8-1.2 KB of heap
	// without TLS (the connection, the conversation, its cancellation
	// watcher), 4.1 KB in a TLS handshake (crypto/tls's connection,
	// ClientHello and key shares); stacks of 3-8 KB. Holding a header
	// buffer (4 KB) or a request buffer while waiting crosses the bound.
	for _, tc := range []struct {
		label       string
		pingPath    string
		heap, stack int64
	}{
		{label: "memcached", heap: 2 << 10, stack: 12 << 10},
		{label: "http", heap: 2 << 10, stack: 12 << 10},
		{label: "uwsgi", heap: 2 << 10, stack: 12 << 10},
		{label: "scgi", heap: 2 << 10, stack: 12 << 10},
		{label: "grpc", heap: 2 << 10, stack: 12 << 10},
		{label: "fastcgi", heap: 2 << 10, stack: 12 << 10},
		{label: "fastcgi", pingPath: "/ping", heap: 2 << 10, stack: 12 << 10},
		// https waits in the handshake: no ServerHello ever comes.
		{label: "https", heap: 6 << 10, stack: 12 << 10},
	} {
		name := tc.label
		if tc.pingPath != "" {
			name += "-ping"
		}
		t.Run(name, func(t *testing.T) {
			heap, stack := inFlightCost(t, n, tc.label, tc.pingPath)
			t.Logf("%s: %d B heap, %d B stack per waiting probe", name, heap, stack)
			if heap > tc.heap {
				t.Errorf("%d B heap per waiting probe, over the %d B bound", heap, tc.heap)
			}
			if stack > tc.stack {
				t.Errorf("%d B stack per waiting probe, over the %d B bound", stack, tc.stack)
			}
		})
	}
}

// inFlightCost starts n probes of label against a listener that never
// accepts, waits until every one is blocked reading, and returns the heap
// and stack bytes per waiting probe.
func inFlightCost(t *testing.T, n int, label, pingPath string) (heap, stack int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pt, ok := protocol.ParseLabel(label)
	if !ok {
		t.Fatalf("unknown label %q", label)
	}
	tg := &Peer{
		Protocol:       pt.Protocol,
		Network:        "tcp",
		Address:        ln.Addr().String(),
		ConnectTimeout: time.Minute,
		ReadTimeout:    time.Minute,
		SendTimeout:    time.Minute,
		BufferSize:     4096,
		Exchange:       &Exchange{FastCGI: FastCGISettings{PingPath: pingPath}},
	}
	if pt.TLS {
		tg.TLS = &TLSSettings{}
	}
	p := New()
	// One probe first, so that lazily built shared state (the TLS
	// stack's tables, pools) is not counted per probe.
	warm(t, p, tg)

	results := make([]Result, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runtime.GC()
	baseHeap := testutil.LiveHeap()
	baseStack := stackInuse()
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Probe(ctx, tg, &results[i])
		}()
	}
	waitBlockedReading(t, n)
	heapNow := testutil.LiveHeap()
	// A waiting probe's stack grew while it dialled; each collection
	// halves a stack using under a quarter of it, as the many
	// collections of a whole read timeout do in the exporter.
	for range 4 {
		runtime.GC()
	}
	stackNow := stackInuse()
	if t.Name() == "TestInFlightMemoryPerTarget/https" {
		testutil.WriteHeapProfile(t)
	}
	cancel()
	wg.Wait()
	for i := range results {
		if results[i].Success {
			t.Fatalf("probe %d succeeded against a backend that never answers", i)
		}
	}
	return (int64(heapNow) - int64(baseHeap)) / int64(n), (int64(stackNow) - int64(baseStack)) / int64(n)
}

// warm runs one probe to its end against the never-answering listener.
func warm(t *testing.T, p *Table, tg *Peer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var r Result
	p.Probe(ctx, tg, &r)
	if r.Success {
		t.Fatal("warm-up probe succeeded against a backend that never answers")
	}
}

func stackInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.StackInuse
}

// waitBlockedReading waits until n goroutines are blocked reading a
// connection inside the prober (RawRead: waiting for readability with no
// buffer yet).
func waitBlockedReading(t *testing.T, n int) {
	t.Helper()
	buf := make([]byte, 8<<20)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := runtime.Stack(buf, true)
		got := 0
		for _, g := range bytes.Split(buf[:m], []byte("\n\n")) {
			reading := bytes.Contains(g, []byte("internal/poll.(*FD).Read(")) || bytes.Contains(g, []byte("internal/poll.(*FD).RawRead("))
			if reading && bytes.Contains(g, []byte("prober.(*Table).Probe(")) {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d probes blocked reading after 10s", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
