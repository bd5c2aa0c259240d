package testutil

import (
	"io"
	"net"
	"net/http"
	"net/http/fcgi"
	"sync/atomic"
	"testing"
	"time"
)

// OKHandler answers every request 200 "ok", as any healthy app server.
func OKHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
}

// ServeHTTP serves h on l until the test ends and returns the address
// nginx would write for it: "unix:PATH" for a unix socket.
func ServeHTTP(tb testing.TB, l net.Listener, h http.Handler) string {
	tb.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	return serve(tb, l, func() { srv.Serve(l) }, func() { srv.Close() })
}

// serve runs loop until the test ends, then stops it and waits for it to
// return (goleak must not see the accept loop), and returns l's address
// as nginx writes it.
func serve(tb testing.TB, l net.Listener, loop, stop func()) string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop()
	}()
	tb.Cleanup(func() {
		stop()
		<-done
	})
	if l.Addr().Network() == "unix" {
		return "unix:" + l.Addr().String()
	}
	return l.Addr().String()
}

// HTTPBackend serves OKHandler on 127.0.0.1 until the test ends and
// returns its "ip:port".
func HTTPBackend(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ServeHTTP(tb, l, OKHandler())
}

// FastCGIBackend serves FastCGI on l (answering "pong", as php-fpm answers
// a ping) until the test ends and returns the address nginx would write
// for it: "unix:PATH" for a unix socket.
func FastCGIBackend(tb testing.TB, l net.Listener) string {
	tb.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "pong") })
	return serve(tb, l, func() { fcgi.Serve(l, h) }, func() { l.Close() })
}

// DeadAddr is "127.0.0.1:PORT" where nothing listens: connecting to it is
// refused.
func DeadAddr(tb testing.TB) string {
	tb.Helper()
	return FreeAddr(tb)
}

// CountingListener accepts TCP connections on loopback and closes them at
// once, counting them: a backend that is up, and proof of whether anything
// connected to it. It stops when the test ends.
func CountingListener(tb testing.TB) (addr string, accepted *atomic.Int64) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	accepted = new(atomic.Int64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	tb.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String(), accepted
}
