package prober

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// backend is an in-process server: every accepted connection is handed to
// handle in its own goroutine; Cleanup closes the listener and every open
// connection and waits for all handlers.
type backend struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  chan struct{}
}

func startBackend(t testing.TB, ln net.Listener, handle func(net.Conn)) *backend {
	b := &backend{ln: ln, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns[c] = struct{}{}
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer func() {
					b.mu.Lock()
					delete(b.conns, c)
					b.mu.Unlock()
					c.Close()
				}()
				handle(c)
			}()
		}
	}()
	t.Cleanup(b.close)
	return b
}

func (b *backend) close() {
	close(b.done)
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func serveTCP(t testing.TB, handle func(net.Conn)) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startBackend(t, ln, handle)
}

func serveUnix(t testing.TB, handle func(net.Conn)) (*backend, string) {
	t.Helper()
	path := filepath.Join(testutil.ShortDir(t), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	return startBackend(t, ln, handle), path
}

// target is a target of the backend for a `protocol` label value
// ("https" is HTTP with TLS on).
func (b *backend) target(label string) *Peer {
	pt, ok := protocol.ParseLabel(label)
	if !ok {
		panic("unknown protocol label " + label)
	}
	var tlsSettings *TLSSettings
	if pt.TLS {
		tlsSettings = &TLSSettings{}
	}
	return &Peer{
		Protocol:       pt.Protocol,
		TLS:            tlsSettings,
		Network:        b.ln.Addr().Network(),
		Address:        b.ln.Addr().String(),
		ConnectTimeout: 2 * time.Second,
		ReadTimeout:    time.Second,
		SendTimeout:    time.Second,
		BufferSize:     4096,
		Exchange:       &Exchange{},
	}
}

func runProbe(t testing.TB, tg *Peer) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := &Result{}
	New().Probe(ctx, tg, r)
	return r
}

// readHTTPRequest reads up to the blank line ending a request header.
func readHTTPRequest(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var buf []byte
	tmp := make([]byte, 512)
	for !bytes.Contains(buf, []byte("\r\n\r\n")) {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// waitClosed blocks until the peer closes (or the backend shuts down).
func waitClosed(c net.Conn) {
	c.SetReadDeadline(time.Time{})
	io.Copy(io.Discard, c)
}

// resetClose closes c with an RST instead of a FIN.
func resetClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// respond reads the request and writes resp.
func respond(resp string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := readHTTPRequest(c); err != nil {
			return
		}
		c.Write([]byte(resp))
		waitClosed(c)
	}
}

func checkResult(t *testing.T, r *Result, want Reason) {
	t.Helper()
	if r.Reason != want {
		t.Fatalf("reason = %q (err %v, detail %q), want %q", r.Reason, r.Err, r.Detail, want)
	}
	if (want == ReasonNone) != r.Success {
		t.Fatalf("success = %v with reason %q (err %v)", r.Success, r.Reason, r.Err)
	}
}
