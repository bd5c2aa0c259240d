// Package farm runs many loopback listeners that behave like the upstream
// servers nginx talks to: plain TCP (accept and close; a memcached "get"
// is answered with a miss), HTTP (answers 200),
// HTTPS (a certificate from a generated CA) and FastCGI (answers
// FCGI_GET_VALUES and simple requests). A fraction of targets can refuse
// connections or hang.
//
// The farm runs in its own process during benchmarks so that its CPU time
// is never counted against the prober being measured.
package farm

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
)

// Kinds of target the farm serves.
const (
	KindTCP     = "tcp"
	KindHTTP    = "http"
	KindHTTPS   = "https"
	KindFastCGI = "fastcgi"
)

// Kinds lists every kind, in a fixed order.
var Kinds = []string{KindTCP, KindHTTP, KindHTTPS, KindFastCGI}

// Behaviours of a target.
const (
	ModeOK     = "ok"
	ModeRefuse = "refuse" // nothing listens: connect gets ECONNREFUSED
	ModeHang   = "hang"   // tcp: connect never completes; others: accepted, never answered
)

// Target is one address served (or deliberately not served) by the farm.
type Target struct {
	Kind string `json:"kind"`
	Addr string `json:"addr"`
	Mode string `json:"mode"`
}

// Spec says how many targets of each kind to run and how many misbehave.
type Spec struct {
	Counts map[string]int // per kind
	Refuse float64        // fraction of targets that refuse
	Hang   float64        // fraction of targets that hang
	Seed   uint64
}

// Farm is a running set of listeners.
type Farm struct {
	Targets []Target
	CAPEM   []byte

	tlsConfig *tls.Config
	mu        sync.Mutex
	closers   []io.Closer
	held      []net.Conn
}

// Loopback addresses are spread so that no single address carries more
// than perIP listeners, and ports are taken from below the ephemeral range
// (32768+ on Linux) so listeners never starve the probers of source ports.
const (
	perIP    = 4000
	portLow  = 10000
	portHigh = 32000
)

// Start opens every listener described by spec.
func Start(spec Spec) (*Farm, error) {
	ca, err := NewCA()
	if err != nil {
		return nil, err
	}
	f := &Farm{CAPEM: ca.CertPEM, tlsConfig: ca.ServerConfig()}
	rng := rand.New(rand.NewPCG(spec.Seed, 0x6661726d))
	used := map[netip.AddrPort]bool{}
	n := 0
	for _, kind := range Kinds {
		for i := 0; i < spec.Counts[kind]; i++ {
			mode := ModeOK
			switch x := rng.Float64(); {
			case x < spec.Refuse:
				mode = ModeRefuse
			case x < spec.Refuse+spec.Hang:
				mode = ModeHang
			}
			ip := netip.AddrFrom4([4]byte{127, 0, byte(1 + (n/perIP)/250), byte(2 + (n/perIP)%250)})
			n++
			t, err := f.open(rng, used, ip, kind, mode)
			if err != nil {
				f.Close()
				return nil, err
			}
			f.Targets = append(f.Targets, t)
		}
	}
	return f, nil
}

func (f *Farm) open(rng *rand.Rand, used map[netip.AddrPort]bool, ip netip.Addr, kind, mode string) (Target, error) {
	var lastErr error
	for try := 0; try < 200; try++ {
		ap := netip.AddrPortFrom(ip, uint16(portLow+rng.IntN(portHigh-portLow)))
		if used[ap] {
			continue
		}
		t := Target{Kind: kind, Addr: ap.String(), Mode: mode}
		var err error
		switch {
		case mode == ModeRefuse:
			// Prove the port is free, then leave it closed.
			var ln net.Listener
			ln, err = net.Listen("tcp4", t.Addr)
			if err == nil {
				ln.Close()
			}
		case mode == ModeHang && kind == KindTCP:
			err = f.listenFull(ap)
		default:
			var ln net.Listener
			ln, err = net.Listen("tcp4", t.Addr)
			if err == nil {
				f.track(ln)
				go f.serve(ln, kind, mode)
			}
		}
		if err == nil {
			used[ap] = true
			return t, nil
		}
		lastErr = err
	}
	return Target{}, fmt.Errorf("farm: no free port on %s: %w", ip, lastErr)
}

func (f *Farm) track(c io.Closer) {
	f.mu.Lock()
	f.closers = append(f.closers, c)
	f.mu.Unlock()
}

// listenFull opens a listener whose accept queue is full and never drained:
// the kernel drops further SYNs, so a client's connect() hangs until its
// own timeout, like a backend behind a firewall that drops packets.
func (f *Farm) listenFull(ap netip.AddrPort) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	sa := &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return err
	}
	if err := syscall.Listen(fd, 0); err != nil {
		syscall.Close(fd)
		return err
	}
	f.track(fdCloser(fd))
	// With a backlog of 0 Linux queues one connection; fill the queue.
	for i := 0; i < 2; i++ {
		d := net.Dialer{Timeout: 50e6}
		c, err := d.Dial("tcp4", ap.String())
		if err != nil {
			break
		}
		f.mu.Lock()
		f.held = append(f.held, c)
		f.mu.Unlock()
	}
	return nil
}

type fdCloser int

func (c fdCloser) Close() error { return syscall.Close(int(c)) }

// Close stops every listener.
func (f *Farm) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.closers {
		c.Close()
	}
	for _, c := range f.held {
		c.Close()
	}
	f.closers, f.held = nil, nil
}

func (f *Farm) serve(ln net.Listener, kind, mode string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: keep serving.
			continue
		}
		go f.handle(c, kind, mode)
	}
}

func (f *Farm) handle(c net.Conn, kind, mode string) {
	defer c.Close()
	if mode == ModeHang {
		// Never answer; hold the connection until the client gives up.
		io.Copy(io.Discard, c)
		return
	}
	switch kind {
	case KindTCP:
		serveTCP(c)
	case KindHTTP:
		serveHTTP(c)
	case KindHTTPS:
		tc := tls.Server(c, f.tlsConfig)
		if err := tc.Handshake(); err != nil {
			return
		}
		serveHTTP(tc)
	case KindFastCGI:
		serveFastCGI(c)
	}
}

// serveTCP closes the connection once the client closes its side or sends
// a line; a memcached "get" line is answered "END" (a miss), so that the
// same listener serves connect-only probes and memcached_pass probes.
func serveTCP(c net.Conn) {
	var buf [512]byte
	n, _ := c.Read(buf[:])
	if n >= 4 && string(buf[:4]) == "get " {
		c.Write([]byte("END\r\n"))
	}
}

var httpResponse = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")

// serveHTTP reads one request header and answers 200.
func serveHTTP(c net.Conn) {
	br := bufio.NewReaderSize(c, 1024)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			break
		}
	}
	c.Write(httpResponse)
}

// FastCGI record types used here.
const (
	fcgiBeginRequest    = 1
	fcgiEndRequest      = 3
	fcgiParams          = 4
	fcgiStdin           = 5
	fcgiStdout          = 6
	fcgiGetValues       = 9
	fcgiGetValuesResult = 10
)

func fcgiRecord(typ byte, id uint16, content []byte) []byte {
	pad := (8 - len(content)%8) % 8
	b := make([]byte, 8, 8+len(content)+pad)
	b[0] = 1
	b[1] = typ
	binary.BigEndian.PutUint16(b[2:], id)
	binary.BigEndian.PutUint16(b[4:], uint16(len(content)))
	b[6] = byte(pad)
	b = append(b, content...)
	return append(b, make([]byte, pad)...)
}

func fcgiPair(name, value string) []byte {
	return append(append([]byte{byte(len(name)), byte(len(value))}, name...), value...)
}

var (
	fcgiValuesAnswer = fcgiRecord(fcgiGetValuesResult, 0, append(append(
		fcgiPair("FCGI_MAX_CONNS", "50"),
		fcgiPair("FCGI_MAX_REQS", "50")...),
		fcgiPair("FCGI_MPXS_CONNS", "0")...))
	fcgiStdoutBody = []byte("Status: 200 OK\r\nContent-Type: text/plain\r\n\r\npong")
)

// serveFastCGI answers FCGI_GET_VALUES, or a whole request (php-fpm
// ping.path style) with "pong".
func serveFastCGI(c net.Conn) {
	br := bufio.NewReaderSize(c, 1024)
	var hdr [8]byte
	buf := make([]byte, 0, 1024)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		typ := hdr[1]
		id := binary.BigEndian.Uint16(hdr[2:])
		n := int(binary.BigEndian.Uint16(hdr[4:])) + int(hdr[6])
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return
		}
		switch typ {
		case fcgiGetValues:
			c.Write(fcgiValuesAnswer)
			return
		case fcgiStdin:
			if hdr[4] == 0 && hdr[5] == 0 {
				out := fcgiRecord(fcgiStdout, id, fcgiStdoutBody)
				out = append(out, fcgiRecord(fcgiStdout, id, nil)...)
				out = append(out, fcgiRecord(fcgiEndRequest, id, make([]byte, 8))...)
				c.Write(out)
				return
			}
		case fcgiBeginRequest, fcgiParams:
		default:
			return
		}
	}
}
