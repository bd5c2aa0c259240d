package prober

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func bigHeader(n int) string {
	var b strings.Builder
	b.WriteString("HTTP/1.1 200 OK\r\n")
	for b.Len() < n {
		b.WriteString("X-Filler: " + strings.Repeat("a", 100) + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func TestHTTPProbe(t *testing.T) {
	tests := []struct {
		name       string
		handle     func(net.Conn)
		buffer     int
		expect     []int
		want       Reason
		wantStatus int
		detail     string
	}{
		{name: "ok", handle: respond("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), wantStatus: 200},
		{name: "any status is success", handle: respond("HTTP/1.0 503 Service Unavailable\r\n\r\n"), wantStatus: 503},
		{name: "unexpected status", handle: respond("HTTP/1.1 500 Oops\r\n\r\n"), expect: []int{200, 204}, want: ReasonInvalidResponse, wantStatus: 500},
		{name: "expected status", handle: respond("HTTP/1.1 204 No Content\r\n\r\n"), expect: []int{200, 204}, wantStatus: 204},
		{name: "lenient like nginx", handle: respond("HTTP/1.1 200\nX_Odd@Name: v\nNoColon\nHTTP/1.1 200 OK\nTab:\tv\t\n\n"), wantStatus: 200},
		{name: "IIS status text", handle: respond("HTTP/1.1 403.1 Forbidden\r\n\r\n"), wantStatus: 403},
		{name: "10k header in 4k buffer", handle: respond(bigHeader(10 << 10)), want: ReasonHeaderTooBig},
		{name: "12k header in 32k buffer", handle: respond(bigHeader(12 << 10)), buffer: 32 << 10, wantStatus: 200},
		{name: "premature close", handle: func(c net.Conn) {
			readHTTPRequest(c)
			c.Write([]byte("HTTP/1.1 200 OK\r\nX-A: b"))
		}, want: ReasonPrematureClose},
		{name: "close without answer", handle: func(c net.Conn) { readHTTPRequest(c) }, want: ReasonPrematureClose},
		{name: "reset", handle: func(c net.Conn) { readHTTPRequest(c); resetClose(c) }, want: ReasonConnectionReset},
		{name: "silent", handle: func(c net.Conn) { readHTTPRequest(c); waitClosed(c) }, want: ReasonReadTimeout},
		{name: "banner", handle: respond("SSH-2.0-OpenSSH_9.2\r\n"), want: ReasonInvalidResponse},
		{name: "garbage", handle: respond("\x00\x01garbage"), want: ReasonInvalidResponse},
		{name: "HTTP/0.9 version", handle: respond("HTTP/0.9 200 OK\r\n\r\n"), want: ReasonInvalidResponse},
		{name: "bad status code", handle: respond("HTTP/1.1 2x0 OK\r\n\r\n"), want: ReasonInvalidResponse},
		{name: "header line starts with space", handle: respond("HTTP/1.1 200 OK\r\n Folded: x\r\n\r\n"), want: ReasonInvalidResponse},
		{name: "empty header name", handle: respond("HTTP/1.1 200 OK\r\n: x\r\n\r\n"), want: ReasonInvalidResponse},
		{name: "CR without LF", handle: respond("HTTP/1.1 200 OK\r\nA: b\rC: d\r\n\r\n"), want: ReasonInvalidResponse},
		{name: "duplicate content-length", handle: respond("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"), want: ReasonInvalidResponse},
		{name: "invalid content-length", handle: respond("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), want: ReasonInvalidResponse},
		{name: "content-length and chunked", handle: respond("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n"), want: ReasonInvalidResponse},
		{name: "unknown transfer-encoding", handle: respond("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), want: ReasonInvalidResponse},
		{name: "TLS server", handle: respond("\x15\x03\x01\x00\x02\x02\x46"), want: ReasonProtocolMismatch, detail: speaksTLS},
		{name: "FastCGI server", handle: respond("\x01\x06\x00\x01\x00\x00\x00\x00"), want: ReasonProtocolMismatch, detail: speaksFastCGI},
		{name: "HTTP/2 server", handle: respond("\x00\x00\x00\x04\x00\x00\x00\x00\x00"), want: ReasonProtocolMismatch, detail: speaksHTTP2},
		{name: "memcached server", handle: respond("ERROR\r\n"), want: ReasonProtocolMismatch, detail: speaksMemcached},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := serveTCP(t, tt.handle)
			tg := b.target("http")
			if tt.buffer != 0 {
				tg.BufferSize = tt.buffer
			}
			tg.HTTP.ExpectStatus = tt.expect
			r := runProbe(t, tg)
			checkResult(t, r, tt.want)
			if r.HTTPStatus != tt.wantStatus {
				t.Errorf("status = %d, want %d", r.HTTPStatus, tt.wantStatus)
			}
			if tt.detail != "" && !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("detail = %q, want it to name %q", r.Detail, tt.detail)
			}
		})
	}
}

func TestHTTPRequestAsNginx(t *testing.T) {
	got := make(chan []byte, 1)
	b := serveTCP(t, func(c net.Conn) {
		req, _ := readHTTPRequest(c)
		got <- req
		c.Write([]byte("HTTP/1.1 200 OK\r\n\r\n"))
	})
	tg := b.target("http")
	tg.HTTP.Host = "backend.example"
	r := runProbe(t, tg)
	checkResult(t, r, ReasonNone)
	want := "GET / HTTP/1.0\r\nHost: backend.example\r\nConnection: close\r\n\r\n"
	if s := string(<-got); s != want {
		t.Errorf("request = %q, want %q", s, want)
	}

	tg.HTTP = HTTPSettings{Version: "1.1", Host: "h", Method: "HEAD", Path: "/healthz", Headers: [][2]string{{"X-Probe", "1"}}}
	r = runProbe(t, tg)
	checkResult(t, r, ReasonNone)
	want = "HEAD /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\nX-Probe: 1\r\n\r\n"
	if s := string(<-got); s != want {
		t.Errorf("request = %q, want %q", s, want)
	}
	if r.Phases[PhaseProcessing] <= 0 {
		t.Errorf("processing phase not recorded: %v", r.Phases)
	}
}

func TestHTTPUnix(t *testing.T) {
	b, _ := serveUnix(t, respond("HTTP/1.1 200 OK\r\n\r\n"))
	r := runProbe(t, b.target("http"))
	checkResult(t, r, ReasonNone)
}

// A backend that trickles one byte at a time never trips nginx's read
// timeout (it is between reads); the probe still ends by its deadline,
// and says it stopped waiting: nginx would still be reading.
func TestHTTPTricklerEndsAtDeadline(t *testing.T) {
	b := serveTCP(t, func(c net.Conn) {
		readHTTPRequest(c)
		for i := 0; ; i++ {
			if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nX: ")[i%8 : i%8+1]); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	tg := b.target("http")
	tg.BufferSize = 1 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	r := &Result{}
	start := time.Now()
	New().Probe(ctx, tg, r)
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("probe took %v, past its deadline", d)
	}
	checkInconclusive(t, r, InconclusiveProbeTimeout)
}

func checkInconclusive(t *testing.T, r *Result, want Inconclusive) {
	t.Helper()
	if r.Success || r.Reason != ReasonNone || r.Inconclusive != want {
		t.Fatalf("success %v reason %q inconclusive %q (err %v), want no verdict (%s)", r.Success, r.Reason, r.Inconclusive, r.Err, want)
	}
}

func TestHTTPCancel(t *testing.T) {
	b := serveTCP(t, func(c net.Conn) { readHTTPRequest(c); waitClosed(c) })
	tg := b.target("http")
	tg.ReadTimeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(200*time.Millisecond, cancel)
	r := &Result{}
	start := time.Now()
	New().Probe(ctx, tg, r)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancelled probe took %v", d)
	}
	// A cancelled probe says nothing about the backend.
	checkInconclusive(t, r, InconclusiveProbeTimeout)
}

func TestParserSplitAnywhere(t *testing.T) {
	resp := []byte("HTTP/1.1 404 Not Found\r\nServer: x\r\nContent-Length: 12\r\n\r\nbody")
	for i := 1; i < len(resp); i++ {
		var p respParser
		res := p.parse(resp[:i])
		if res != parseAgain && res != parseDone {
			t.Fatalf("split at %d: %v", i, res)
		}
		if res == parseAgain {
			res = p.parse(resp)
		}
		if res != parseDone || p.Status() != 404 {
			t.Fatalf("split at %d: result %v status %d", i, res, p.Status())
		}
	}
}

func TestCGIHeader(t *testing.T) {
	tests := []struct {
		in     string
		want   parseResult
		status int
	}{
		{"Content-Type: text/plain\r\n\r\n", parseDone, 200},
		{"Status: 404 Not Found\r\n\r\n", parseDone, 404},
		{"Location: /x\r\n\r\n", parseDone, 302},
		{"Status: 4\r\n\r\n", parseInvalid, 0},
		{"Status: abc\r\n\r\n", parseInvalid, 0},
		{"X-Powered-By: PHP\r\nStatus: 503\r\n\r\n", parseDone, 503},
	}
	for _, tt := range tests {
		var p respParser
		p.reset(true)
		got := p.parse([]byte(tt.in))
		if got != tt.want || (got == parseDone && p.Status() != tt.status) {
			t.Errorf("%q: %v status %d, want %v %d", tt.in, got, p.Status(), tt.want, tt.status)
		}
	}
}

func TestSniff(t *testing.T) {
	tests := map[string]string{
		"HTTP/1.1 400 Bad Request": speaksHTTP,
		"\x16\x03\x03\x00\x10":     speaksTLS,
		"\x01\x0a\x00\x00":         speaksFastCGI,
		"SSH-2.0":                  "",
		"":                         "",
	}
	for in, want := range tests {
		if got := sniff([]byte(in)); got != want {
			t.Errorf("sniff(%q) = %q, want %q", in, got, want)
		}
	}
}
