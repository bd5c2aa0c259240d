package prober

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/testutil"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// readFCGIRequest reads records until the end of the request: a
// GET_VALUES record, or an empty STDIN record. It returns the types seen.
func readFCGIRequest(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var types []byte
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			return types, err
		}
		n := int(hdr[4])<<8 | int(hdr[5]) + int(hdr[6])
		if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
			return types, err
		}
		types = append(types, hdr[1])
		if hdr[1] == fcgiGetValues || (hdr[1] == fcgiStdin && hdr[4] == 0 && hdr[5] == 0) {
			return types, nil
		}
	}
}

func fcgiAnswer(records ...[]byte) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := readFCGIRequest(c); err != nil {
			return
		}
		for _, r := range records {
			c.Write(r)
		}
		waitClosed(c)
	}
}

func rec(typ uint8, id uint16, content string) []byte {
	return appendFCGIRecord(nil, typ, id, []byte(content))
}

func endRequest(protocolStatus byte) []byte {
	return appendFCGIRecord(nil, fcgiEndRequest, 1, []byte{0, 0, 0, 0, protocolStatus, 0, 0, 0})
}

func TestFastCGIProbe(t *testing.T) {
	values := appendFCGIPair(nil, "FCGI_MPXS_CONNS", "0")
	tests := []struct {
		name   string
		ping   string
		handle func(net.Conn)
		buffer int
		want   Reason
		status int
		detail string
	}{
		{name: "get values", handle: fcgiAnswer(appendFCGIRecord(nil, fcgiGetValuesResult, 0, values))},
		{name: "unknown type answer", handle: fcgiAnswer(rec(fcgiUnknownType, 0, "\x09\x00\x00\x00\x00\x00\x00\x00"))},
		{name: "values for a request id", handle: fcgiAnswer(appendFCGIRecord(nil, fcgiGetValuesResult, 1, values)), want: ReasonInvalidResponse},
		{name: "malformed pairs", handle: fcgiAnswer(rec(fcgiGetValuesResult, 0, "\x0f\x01FCGI")), want: ReasonInvalidResponse},
		{name: "HTTP server", handle: respondAfterRead("HTTP/1.1 400 Bad Request\r\n\r\n"), want: ReasonProtocolMismatch, detail: speaksHTTP},
		{name: "TLS server", handle: respondAfterRead("\x15\x03\x03\x00\x02\x02\x32"), want: ReasonProtocolMismatch, detail: speaksTLS},
		{name: "closed", handle: func(c net.Conn) { readFCGIRequest(c) }, want: ReasonPrematureClose},
		{name: "reset", handle: func(c net.Conn) { readFCGIRequest(c); resetClose(c) }, want: ReasonConnectionReset},
		{name: "silent", handle: func(c net.Conn) { readFCGIRequest(c); waitClosed(c) }, want: ReasonReadTimeout},
		{name: "values too big", handle: fcgiAnswer(appendFCGIRecord(nil, fcgiGetValuesResult, 0, appendFCGIPair(nil, "X", strings.Repeat("v", 5000)))), want: ReasonHeaderTooBig},

		{name: "ping", ping: "/ping", status: 200, handle: fcgiAnswer(
			rec(fcgiStdout, 1, "Content-type: text/plain\r\n\r\npong"), rec(fcgiStdout, 1, ""), endRequest(0))},
		{name: "ping status header", ping: "/ping", status: 503, handle: fcgiAnswer(
			rec(fcgiStderr, 1, "PHP Warning: x"), rec(fcgiStdout, 1, "Status: 503 Busy\r\n"), rec(fcgiStdout, 1, "\r\n"), endRequest(0))},
		{name: "ping stdout closed early", ping: "/ping", handle: fcgiAnswer(rec(fcgiStdout, 1, "Status: 200\r\n"), rec(fcgiStdout, 1, "")), want: ReasonPrematureClose},
		{name: "ping overloaded", ping: "/ping", handle: fcgiAnswer(endRequest(2)), want: ReasonPrematureClose, detail: "FCGI_OVERLOADED"},
		{name: "ping wrong request id", ping: "/ping", handle: fcgiAnswer(rec(fcgiStdout, 2, "Status: 200\r\n\r\n")), want: ReasonInvalidResponse},
		{name: "ping bad record type", ping: "/ping", handle: fcgiAnswer(rec(fcgiParams, 1, "x")), want: ReasonInvalidResponse},
		{name: "ping invalid status", ping: "/ping", handle: fcgiAnswer(rec(fcgiStdout, 1, "Status: OK\r\n\r\n")), want: ReasonInvalidResponse},
		{name: "ping header too big", ping: "/ping", handle: fcgiAnswer(rec(fcgiStdout, 1, "X: "+strings.Repeat("a", 5000)+"\r\n\r\n")), want: ReasonHeaderTooBig},
		{name: "ping big header, big buffer", ping: "/ping", buffer: 16 << 10, status: 200, handle: fcgiAnswer(rec(fcgiStdout, 1, "X: "+strings.Repeat("a", 5000)+"\r\n\r\n"), endRequest(0))},
		{name: "ping HTTP server", ping: "/ping", handle: respondAfterRead("HTTP/1.0 200 OK\r\n\r\n"), want: ReasonProtocolMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := serveTCP(t, tt.handle)
			tg := b.target("fastcgi")
			tg.FastCGI.PingPath = tt.ping
			if tt.buffer != 0 {
				tg.BufferSize = tt.buffer
			}
			r := runProbe(t, tg)
			checkResult(t, r, tt.want)
			if r.HTTPStatus != tt.status {
				t.Errorf("status = %d, want %d", r.HTTPStatus, tt.status)
			}
			if !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("detail = %q, want %q", r.Detail, tt.detail)
			}
		})
	}
}

// respondAfterRead answers as soon as anything arrives, like a server of
// another protocol that does not understand the request.
func respondAfterRead(resp string) func(net.Conn) {
	return func(c net.Conn) {
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Read(buf); err != nil {
			return
		}
		// Read what else the client sent, so that closing sends a FIN.
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		c.Read(buf)
		c.Write([]byte(resp))
		waitClosed(c)
	}
}

// startPHPFPM runs php-fpm on listen (a socket path or 127.0.0.1:port) with
// a minimal pool and stops it at cleanup.
func startPHPFPM(t *testing.T, dir, listen string) {
	t.Helper()
	bin := "/usr/sbin/php-fpm8.2"
	if _, err := os.Stat(bin); err != nil {
		if p, err := exec.LookPath("php-fpm"); err == nil {
			bin = p
		} else if os.Getenv("CI") == "true" {
			t.Fatalf("php-fpm is required in CI: %v", err)
		} else {
			t.Skip("php-fpm not installed (apt-get install php-fpm); skipping the real FastCGI backend test")
		}
	}
	conf := filepath.Join(dir, "fpm.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(`[global]
pid = %[1]s/fpm.pid
error_log = %[1]s/fpm.log
daemonize = no
[probe]
listen = %[2]s
pm = static
pm.max_children = 1
ping.path = /ping
`, dir, listen)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-F", "-n", "-y", conf}
	if os.Geteuid() == 0 {
		args = append(args, "-R")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "fpm.log"))
			t.Logf("php-fpm log:\n%s", log)
		}
	})
	network := "tcp"
	if strings.HasPrefix(listen, "/") {
		network = "unix"
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout(network, listen, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("php-fpm did not start listening on %s: %v", listen, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestFastCGIRealPHPFPM(t *testing.T) {
	dir := testutil.ShortDir(t)
	sock := filepath.Join(dir, "fpm.sock")
	addr := testutil.FreeAddr(t)
	startPHPFPM(t, dir, sock)
	dir2 := testutil.ShortDir(t)
	startPHPFPM(t, dir2, addr)

	for _, where := range []struct{ network, address string }{{"unix", sock}, {"tcp", addr}} {
		for _, ping := range []string{"", "/ping"} {
			t.Run(where.network+ping, func(t *testing.T) {
				tg := &Peer{Protocol: protocol.FastCGI, Network: where.network, Address: where.address,
					ConnectTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, SendTimeout: 2 * time.Second, BufferSize: 4096,
					Exchange: &Exchange{}}
				tg.FastCGI.PingPath = ping
				r := runProbe(t, tg)
				checkResult(t, r, ReasonNone)
				if ping != "" && r.HTTPStatus != 200 {
					t.Errorf("ping status = %d", r.HTTPStatus)
				}
			})
		}
	}

	// fastcgi_pass to an HTTP server.
	b := serveTCP(t, respondAfterRead("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"))
	r := runProbe(t, b.target("fastcgi"))
	checkResult(t, r, ReasonProtocolMismatch)
	// And php-fpm behind proxy_pass http://: it does not answer HTTP.
	tg := &Peer{Protocol: protocol.HTTP, Network: "unix", Address: sock, ConnectTimeout: time.Second, ReadTimeout: time.Second, SendTimeout: time.Second, BufferSize: 4096}
	r = runProbe(t, tg)
	if r.Success {
		t.Errorf("HTTP probe of php-fpm succeeded")
	}
}
