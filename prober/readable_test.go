package prober

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestFillAfterPendingReadiness checks the wait for readability that lets
// a waiting probe hold no buffer: what arrived before the wait began (bytes,
// end of stream, a reset) is still seen, exactly as a plain Read sees it.
func TestFillAfterPendingReadiness(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(net.Conn)
		check func(t *testing.T, c *conversation, err error)
	}{
		{"bytes", func(s net.Conn) { s.Write([]byte("HTTP/1.0 200 OK\r\n\r\n")) }, func(t *testing.T, c *conversation, err error) {
			if err != nil || string(c.buf[:c.n]) != "HTTP/1.0 200 OK\r\n\r\n" {
				t.Fatalf("fill = %v with %q, want the bytes sent", err, c.buf[:c.n])
			}
		}},
		{"eof", func(s net.Conn) { s.Close() }, func(t *testing.T, c *conversation, err error) {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("fill = %v, want EOF", err)
			}
		}},
		{"reset", resetClose, func(t *testing.T, c *conversation, err error) {
			// Polling must not consume the pending error: a peek would
			// clear it, and the read would see a plain end of stream.
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("fill = %v, want ECONNRESET", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dialled, served := make(chan struct{}), make(chan struct{})
			b := serveTCP(t, func(s net.Conn) {
				// Only once the client's connect has completed: a reset
				// before would fail the dial.
				<-dialled
				tc.serve(s)
				close(served)
				waitClosed(s)
			})
			conn, err := net.Dial("tcp", b.ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			close(dialled)
			<-served
			// Let the segment arrive, so that readiness is pending
			// before the conversation waits.
			time.Sleep(50 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c := newConversation(ctx, conn, &Peer{ReadTimeout: 2 * time.Second}, &Result{})
			defer c.release()
			start := time.Now()
			err = c.fill()
			if d := time.Since(start); d > time.Second {
				t.Fatalf("fill waited %v for what had already arrived", d)
			}
			tc.check(t, c, err)
		})
	}
}
