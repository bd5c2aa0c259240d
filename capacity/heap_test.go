package capacity

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// TestHeap10k bounds what a Monitor keeps per local target between
// refreshes (with a scrape's TextWriter), and what one steady-state
// refresh allocates, at 10,000 listening unix sockets.
func TestHeap10k(t *testing.T) {
	testutil.SkipUnlessHeapIsTheExporters(t)
	targets := benchTargets(t, 10000)
	ctx := context.Background()
	before := testutil.LiveHeap()
	m := New(Options{Targets: func() []*discovery.Target { return targets }, Interval: 15 * time.Second})
	tw := NewTextWriter(m)
	for range 3 {
		m.Refresh(ctx)
		if _, err := tw.WriteTo(io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	kept := int64(testutil.LiveHeap()) - int64(before)
	n := 0
	m.Each(func(_ *discovery.Target, st *State) {
		if st.Listen == Listening && st.Owner != nil {
			n++
		}
	})
	if n != len(targets) {
		t.Fatalf("%d of %d targets listening with a known owner", n, len(targets))
	}

	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	m.Refresh(ctx)
	runtime.ReadMemStats(&b)
	refresh := b.TotalAlloc - a.TotalAlloc
	// The kernel's answer, for comparison: one dump alone, sized as the
	// monitor sizes it.
	runtime.ReadMemStats(&a)
	if _, err := dumpListeners(m.dumped[0], m.dumped[1]); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&b)
	dump := b.TotalAlloc - a.TotalAlloc
	runtime.ReadMemStats(&a)
	if _, err := tw.WriteTo(io.Discard); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&b)
	scrape := b.TotalAlloc - a.TotalAlloc
	testutil.WriteHeapProfile(t)
	runtime.KeepAlive(m)
	runtime.KeepAlive(tw)
	t.Logf("kept %d B (%.1f B/target); a refresh allocates %d B (%.1f B/target; the sock_diag dump alone %d B), a scrape %d B (%.1f B/target)",
		kept, float64(kept)/10000, refresh, float64(refresh)/10000, dump, scrape, float64(scrape)/10000)
	// Measured 137 B (143 before the slots held listeners apart and the
	// trackers indexes): every target here listens, the case that
	// gains least.
	if kept > 145*10000 {
		t.Errorf("kept %d B, more than 145 B a target", kept)
	}
	if extra := int64(refresh) - int64(dump); extra > 20*10000 {
		t.Errorf("a refresh allocates %d B beyond the dump, more than 20 B a target", extra)
	}
	if scrape > 16*10000 {
		t.Errorf("a scrape allocates %d B, more than 16 B a target", scrape)
	}
}

// TestHeap10kNotListening bounds what a Monitor keeps per local target
// where nothing listens (a backend down: the usual half of a large
// configuration), at 10,000 loopback TCP addresses.
func TestHeap10kNotListening(t *testing.T) {
	testutil.SkipUnlessHeapIsTheExporters(t)
	var targets []*discovery.Target
	for i := range 10000 {
		tg, err := discovery.Arbitrary(fmt.Sprintf("127.1.%d.%d:%d", 1+i/250, 1+i%250, 1024+i), "", protocol.Kind{Protocol: protocol.HTTP}, discovery.Options{})
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, tg)
	}
	ctx := context.Background()
	before := testutil.LiveHeap()
	m := New(Options{Targets: func() []*discovery.Target { return targets }, Interval: 15 * time.Second})
	tw := NewTextWriter(m)
	for range 3 {
		m.Refresh(ctx)
		if _, err := tw.WriteTo(io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	kept := int64(testutil.LiveHeap()) - int64(before)
	n := 0
	m.Each(func(_ *discovery.Target, st *State) {
		if st.Listen == NotListening {
			n++
		}
	})
	// Something else on this host may listen on a few of the ports.
	if n < len(targets)-10 {
		t.Fatalf("%d of %d targets not listening", n, len(targets))
	}
	runtime.KeepAlive(m)
	runtime.KeepAlive(tw)
	t.Logf("kept %d B (%.1f B/target)", kept, float64(kept)/10000)
	// Measured 35.5 B (106.2 B with a 28-byte slot a target in each of
	// the two views, a map for the index and a 24-byte tracker each).
	if kept > 42*10000 {
		t.Errorf("kept %d B, more than 42 B a target", kept)
	}
}

// blockingWriter blocks its first Write until release is closed.
type blockingWriter struct {
	buf      bytes.Buffer
	started  chan struct{}
	release  chan struct{}
	didBlock bool
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	if !w.didBlock {
		w.didBlock = true
		close(w.started)
		<-w.release
	}
	return w.buf.Write(p)
}

// TestScrapeHoldsItsView: a scrape that a slow client holds up renders
// the state of one refresh, whatever refreshes run meanwhile (the race
// detector watches the view not being reused under it), and the next
// scrape shows the new state.
func TestScrapeHoldsItsView(t *testing.T) {
	targets := benchTargets(t, 100)
	ctx := context.Background()
	m := New(Options{Targets: func() []*discovery.Target { return targets }, Interval: time.Second})
	m.Refresh(ctx)
	var before bytes.Buffer
	if _, err := NewTextWriter(m).WriteTo(&before); err != nil {
		t.Fatal(err)
	}
	if before.Len() < 64<<10 {
		t.Fatalf("page of %d bytes: too small to flush while rendering", before.Len())
	}
	w := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error)
	go func() {
		_, err := NewTextWriter(m).WriteTo(w)
		done <- err
	}()
	<-w.started
	// Every socket file removed: nothing listens at the paths now.
	for _, tg := range targets {
		if err := os.Remove(tg.Probe.Address); err != nil {
			t.Fatal(err)
		}
	}
	m.Refresh(ctx)
	m.Refresh(ctx)
	m.Refresh(ctx)
	close(w.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w.buf.String() != before.String() {
		t.Error("the held scrape changed under a refresh")
	}
	var after bytes.Buffer
	if _, err := NewTextWriter(m).WriteTo(&after); err != nil {
		t.Fatal(err)
	}
	if want := `nginx_upstream_backend_listener_state{upstream="` + targets[0].Upstream + `",server="` + targets[0].Server + `",address="` + targets[0].Address + `",protocol="fastcgi",state="not_listening"} 1`; !strings.Contains(after.String(), want) {
		t.Errorf("after the refreshes, no %s", want)
	}
}

// TestLayoutFind: every key is found at its position (in a table where
// probe sequences collide), an absent key is not, and of a key given
// twice the last position is found.
func TestLayoutFind(t *testing.T) {
	var targets []*discovery.Target
	for i := range 1000 {
		targets = append(targets, &discovery.Target{Key: discovery.Key{Upstream: "u", Server: fmt.Sprint(i), Address: fmt.Sprint(i), Protocol: "http"}})
	}
	l := newLayout(targets)
	for i, tg := range targets {
		if got := l.find(tg.Key); got != i {
			t.Fatalf("find(%v) = %d, want %d", tg.Key, got, i)
		}
	}
	for _, k := range []discovery.Key{{Upstream: "u", Server: "x"}, {Upstream: "u", Server: "1", Address: "2", Protocol: "http"}, {}} {
		if got := l.find(k); got != -1 {
			t.Errorf("absent key %v found at %d", k, got)
		}
	}
	dup := append(targets[:10:10], &discovery.Target{Key: targets[3].Key})
	l = newLayout(dup)
	if got := l.find(targets[3].Key); got != 10 {
		t.Errorf("key given at 3 and 10 found at %d, want 10", got)
	}
	if got := l.find(targets[7].Key); got != 7 {
		t.Errorf("key 7 found at %d", got)
	}
	if got := newLayout(nil).find(targets[0].Key); got != -1 {
		t.Errorf("found in an empty layout at %d", got)
	}
}

// TestKnownProcessesCompact: over many refreshes the processes the
// targets' trackers name stay few (each refresh adds its owners, the
// ones no tracker names are dropped), the owner stays known and no
// restart is counted, and a new socket at a target's path after the
// compactions still counts as one restart.
func TestKnownProcessesCompact(t *testing.T) {
	targets := benchTargets(t, 4)
	ctx := context.Background()
	m := New(Options{Targets: func() []*discovery.Target { return targets }, Interval: time.Second})
	grew := false
	for i := range 60 {
		m.Refresh(ctx)
		for _, tg := range targets {
			st, ok := m.Lookup(tg.Key)
			if !ok || st.Listen != Listening || st.Owner == nil || st.Owner.PID != os.Getpid() || st.Restarts != 0 {
				t.Fatalf("refresh %d: %s: %+v", i, tg.Probe.Address, st)
			}
		}
		m.refreshMu.Lock()
		n := len(m.known)
		m.refreshMu.Unlock()
		if n > 2*1+16 {
			t.Fatalf("refresh %d: %d processes known for one owner", i, n)
		}
		grew = grew || n > 2
	}
	if !grew {
		t.Fatal("known processes never grew: no compaction was tested")
	}
	path := targets[2].Probe.Address
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 16); err != nil {
		t.Fatal(err)
	}
	m.Refresh(ctx)
	m.Refresh(ctx)
	for i, tg := range targets {
		st, _ := m.Lookup(tg.Key)
		want := uint64(0)
		if i == 2 {
			want = 1
		}
		if st.Restarts != want || st.Owner == nil {
			t.Errorf("%s: %d restarts (want %d), owner %v", tg.Probe.Address, st.Restarts, want, st.Owner)
		}
	}
	// Another target set, in another order with one target fewer: the
	// trackers follow their targets, restarts and all.
	moved := []*discovery.Target{targets[3], targets[2], targets[0]}
	m.opts.Targets = func() []*discovery.Target { return moved }
	m.Refresh(ctx)
	m.Refresh(ctx)
	for _, tg := range moved {
		st, _ := m.Lookup(tg.Key)
		want := uint64(0)
		if tg == targets[2] {
			want = 1
		}
		if st.Restarts != want || st.Owner == nil {
			t.Errorf("after the set changed: %s: %d restarts (want %d), owner %v", tg.Probe.Address, st.Restarts, want, st.Owner)
		}
	}
	if _, ok := m.Lookup(targets[1].Key); ok {
		t.Error("a target that left the set is still looked up")
	}
	m.refreshMu.Lock()
	n := len(m.tracked)
	m.refreshMu.Unlock()
	if n != len(moved) {
		t.Errorf("%d trackers for %d targets", n, len(moved))
	}
}
