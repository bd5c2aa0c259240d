package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/server"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
)

// limitedServer serves the exporter of a generated configuration with n
// refusing loopback targets through the same server.Serve path as serve,
// with the given limits.
func limitedServer(t *testing.T, n int, interval time.Duration, lim server.Limits) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("upstream many {\n")
	for i := range n {
		// Port 1 on addresses of 127.0.0.0/8: refused, never reached.
		fmt.Fprintf(&b, "    server 127.1.%d.%d:1;\n", i/250, i%250+1)
	}
	b.WriteString("}\nserver { listen 127.0.0.1:8080; location / { proxy_pass http://many; } }\n")
	conf := testutil.WriteNginxConf(t, b.String())

	addr, _ := serveExporter(t, conf, serveOptions{interval: interval, probeTimeout: time.Second, concurrency: 64, limits: lim})
	return addr
}

// stallingConn sends GET path and never reads. Its receive buffer is
// shrunk so that the page fills the socket buffers and the server's
// writes block, as with a scraper that stopped reading.
func stallingConn(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		t.Fatal(err)
	}
	return conn
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// settle waits until the goroutines and fds of the process are back
// within slack of the baseline.
func settle(t *testing.T, what string, baseG, baseFD, slack int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g, fd := runtime.NumGoroutine(), openFDs(t)
		if g <= baseG+slack && fd <= baseFD+slack {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d goroutines (baseline %d), %d fds (baseline %d)", what, g, baseG, fd, baseFD)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStalledScraperHoldsNoOne: clients that send GET /metrics for a page
// of 5,000 targets and never read must not keep anyone else from
// scraping, and are disconnected after the write timeout.
func TestStalledScraperHoldsNoOne(t *testing.T) {
	// Long enough for a few scrapes of a 10 MB page under -race on a
	// loaded 2-core machine (one took 2.3 s there).
	const writeTimeout = 20 * time.Second
	// Probed every 3 s so that every target has a verdict: a page of
	// about 10 MB, more than loopback's socket buffers (tcp_wmem's 4 MB
	// maximum) can absorb.
	addr := limitedServer(t, 5000, 3*time.Second, server.Limits{
		ReadTimeout: 5 * time.Second, WriteTimeout: writeTimeout, IdleTimeout: 10 * time.Second, MaxConnections: 32,
	})
	client := &http.Client{Timeout: 10 * time.Second}
	scrape := func() (int, int, time.Duration) {
		start := time.Now()
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatalf("scrape: %v", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("scrape body: %v", err)
		}
		return resp.StatusCode, len(body), time.Since(start)
	}
	var code, pageSize int
	for deadline := time.Now().Add(20 * time.Second); ; {
		code, pageSize, _ = scrape()
		if code == http.StatusOK && pageSize > 8<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first scrapes: status %d, %d bytes; want 200 and a page over 8 MB", code, pageSize)
		}
		time.Sleep(500 * time.Millisecond)
	}
	client.CloseIdleConnections()
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)

	// Two stalled scrapers: fewer than --web.max-requests (4), as a
	// stalled scraper may hold its own slot until the write timeout.
	stalled := []net.Conn{stallingConn(t, addr, "/metrics"), stallingConn(t, addr, "/metrics")}
	// Wait for the first byte of each response: the server is then
	// writing, and its write deadline (set when it read the request) has
	// begun. On a loaded machine a request may be read late.
	for i, c := range stalled {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("stalled conn %d: no response began: %v", i, err)
		}
	}
	started := time.Now()
	time.Sleep(300 * time.Millisecond) // let their writes fill the buffers and block

	for i := range 3 {
		code, n, took := scrape()
		if code != http.StatusOK || n < pageSize*9/10 {
			t.Fatalf("scrape %d while stalled: status %d, %d bytes (page %d)", i, code, n, pageSize)
		}
		if took > writeTimeout/2 {
			t.Errorf("scrape %d while stalled took %v", i, took)
		}
	}
	if time.Since(started) >= writeTimeout {
		t.Fatalf("scrapes outlasted the write timeout: the test proves nothing (took %v)", time.Since(started))
	}

	// The server gives up on the stalled ones after the write timeout:
	// reading after it drains what was buffered, then hits the end.
	time.Sleep(time.Until(started.Add(writeTimeout + 500*time.Millisecond)))
	var wg sync.WaitGroup
	for i, conn := range stalled {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = conn.SetReadDeadline(time.Now().Add(writeTimeout + 5*time.Second))
			n, err := io.Copy(io.Discard, conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("stalled conn %d still open %v after its request", i, time.Since(started))
				return
			}
			if n >= int64(pageSize) {
				t.Errorf("stalled conn %d got the whole page (%d bytes): it never stalled", i, n)
			}
		}()
	}
	wg.Wait()
	if took := time.Since(started); took > writeTimeout+2*time.Second {
		t.Errorf("stalled connections closed after %v, write timeout %v", took, writeTimeout)
	}
	for _, c := range stalled {
		c.Close()
	}
	client.CloseIdleConnections()
	settle(t, "after the stalled scrapers", baseG, baseFD, 2)
}

// TestIdleConnectionsClosed: a keep-alive connection left idle after a
// request is closed after the idle timeout, and one that never sends a
// request after the read timeout, so idle clients cannot exhaust fds.
func TestIdleConnectionsClosed(t *testing.T) {
	const idle, read = time.Second, 2 * time.Second
	addr := limitedServer(t, 1, time.Hour, server.Limits{ReadTimeout: read, WriteTimeout: 5 * time.Second, IdleTimeout: idle, MaxConnections: 8})
	time.Sleep(200 * time.Millisecond) // the scheduler's goroutines start
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)

	closedAfter := func(conn net.Conn, br *bufio.Reader) time.Duration {
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("want the server to close the connection, got %v", err)
		}
		return time.Since(start)
	}

	keepAlive, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer keepAlive.Close()
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	fmt.Fprintf(keepAlive, "GET /-/healthy HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	br := bufio.NewReader(keepAlive)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("status %d, close %v: want a kept-alive 200", resp.StatusCode, resp.Close)
	}
	if took := closedAfter(keepAlive, br); took < idle/2 || took > idle+time.Second {
		t.Errorf("idle keep-alive connection closed after %v, idle timeout %v", took, idle)
	}

	// The silent one has waited about idle already; it goes at read.
	if took := closedAfter(silent, bufio.NewReader(silent)); took > read+time.Second {
		t.Errorf("silent connection still open %v later, read timeout %v", took, read)
	}
	keepAlive.Close()
	silent.Close()
	settle(t, "after idle connections", baseG, baseFD, 2)
}

// TestConnectionLimit: connections beyond --web.max-connections wait to
// be accepted instead of costing an fd and a goroutine each.
func TestConnectionLimit(t *testing.T) {
	const limit = 4
	addr := limitedServer(t, 1, time.Hour, server.Limits{ReadTimeout: 2 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: time.Second, MaxConnections: limit})
	var held []net.Conn
	for range limit {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond) // let the server accept them
	start := time.Now()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/-/healthy")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.CloseIdleConnections()
	// Served only once the read timeout freed a slot of the silent ones.
	if took := time.Since(start); took < time.Second {
		t.Errorf("request beyond the limit served after %v: the limit did not hold", took)
	}
	for _, h := range held {
		h.Close()
	}
}
