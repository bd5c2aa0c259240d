// Package floor is the smallest prober that does the same I/O as the
// exporter: the same connect, TLS handshake, request and response read,
// on the same schedule (each target once per interval, spread evenly, with
// at most N probes in flight). It has no metrics, no classification and no
// state beyond counters, so its CPU time per probe is the floor the
// exporter is measured against.
package floor

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"math"
	"net"
	"sync/atomic"
	"time"
)

// Target is one address to probe with the exchange of its kind.
type Target struct {
	Kind string `json:"kind"`
	Addr string `json:"addr"`
	Name string `json:"name"` // upstream name, sent as the Host header
}

// Stats are cumulative counters; a benchmark takes the difference of two
// snapshots.
type Stats struct {
	Probes   uint64   `json:"probes"`
	Failures uint64   `json:"failures"`
	LagCount uint64   `json:"lag_count"`
	LagSum   float64  `json:"lag_sum"`
	LagBkts  []uint64 `json:"lag_buckets"` // cumulative-free counts per LagBounds bucket
}

// NginxGroups are the TLS key-exchange groups nginx offers with OpenSSL's
// defaults, as the exporter's prober offers them: the handshake cost
// depends on the group the server picks, so the floor offers the same ones
// to compare like with like.
func NginxGroups() []tls.CurveID {
	return []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}
}

// ClientTLS is the floor's client configuration: no verification when
// roots is nil (nginx's proxy_ssl_verify off), and nginx's groups.
func ClientTLS(roots *x509.CertPool, serverName string) *tls.Config {
	c := &tls.Config{InsecureSkipVerify: roots == nil, RootCAs: roots, ServerName: serverName, CurvePreferences: NginxGroups()}
	return c
}

const numLagBounds = 94

// LagBounds are the upper bounds of the lag histogram buckets, seconds:
// 10µs .. ~100s in steps of 2^(1/4); one more bucket holds the rest.
var LagBounds = func() []float64 {
	b := make([]float64, numLagBounds)
	for i := range b {
		b[i] = 10e-6 * math.Pow(2, float64(i)/4)
	}
	return b
}()

// Prober runs the schedule.
type Prober struct {
	Targets     []Target
	Interval    time.Duration
	Concurrency int
	Timeout     time.Duration
	TLS         *tls.Config

	probes, failures, lagCount, lagSumNs atomic.Uint64
	lag                                  [numLagBounds + 1]atomic.Uint64
}

// Snapshot returns the counters so far.
func (p *Prober) Snapshot() Stats {
	s := Stats{
		Probes:   p.probes.Load(),
		Failures: p.failures.Load(),
		LagCount: p.lagCount.Load(),
		LagSum:   float64(p.lagSumNs.Load()) / 1e9,
		LagBkts:  make([]uint64, len(p.lag)),
	}
	for i := range p.lag {
		s.LagBkts[i] = p.lag[i].Load()
	}
	return s
}

func (p *Prober) observeLag(d time.Duration) {
	if d < 0 {
		d = 0
	}
	p.lagCount.Add(1)
	p.lagSumNs.Add(uint64(d))
	s := d.Seconds()
	i := 0
	for i < len(LagBounds) && s > LagBounds[i] {
		i++
	}
	p.lag[i].Add(1)
}

// Run probes until stop is closed. Target i is first due at
// start + i*Interval/len(Targets) and then every Interval.
func (p *Prober) Run(stop <-chan struct{}) {
	n := len(p.Targets)
	if n == 0 {
		<-stop
		return
	}
	// A fixed pool of workers, fed through an unbuffered channel: a probe
	// starts only when a worker is free, so lag measures lack of capacity.
	type job struct {
		t   *Target
		due time.Time
	}
	work := make(chan job)
	for range p.Concurrency {
		go func() {
			for j := range work {
				p.observeLag(time.Since(j.due))
				if !p.probe(j.t) {
					p.failures.Add(1)
				}
				p.probes.Add(1)
			}
		}()
	}
	defer close(work)
	start := time.Now()
	step := p.Interval / time.Duration(n)
	timer := time.NewTimer(0)
	for k := 0; ; k++ {
		due := start.Add(time.Duration(k/n)*p.Interval + time.Duration(k%n)*step)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-stop:
				return
			case <-timer.C:
			}
		}
		select {
		case <-stop:
			return
		case work <- job{&p.Targets[k%n], due}:
		}
	}
}

func (p *Prober) probe(t *Target) bool {
	deadline := time.Now().Add(p.Timeout)
	d := net.Dialer{Deadline: deadline}
	c, err := d.Dial("tcp", t.Addr)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(deadline)
	switch t.Kind {
	case "http":
		return httpExchange(c, t.Name)
	case "https":
		tc := tls.Client(c, p.TLS)
		if tc.Handshake() != nil {
			return false
		}
		return httpExchange(tc, t.Name)
	case "fastcgi":
		return fastcgiExchange(c)
	case "memcached":
		return memcachedExchange(c, t.Name)
	}
	return true
}

// httpExchange sends the request nginx sends (HTTP/1.0, Host, Connection:
// close) and reads up to the end of the response header.
func httpExchange(c net.Conn, host string) bool {
	req := make([]byte, 0, 128)
	req = append(req, "GET / HTTP/1.0\r\nHost: "...)
	req = append(req, host...)
	req = append(req, "\r\nConnection: close\r\n\r\n"...)
	if _, err := c.Write(req); err != nil {
		return false
	}
	var buf [4096]byte
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
			return bytes.HasPrefix(buf[:n], []byte("HTTP/1."))
		}
		if err != nil {
			return false
		}
	}
	return false
}

// fcgiGetValues is an FCGI_GET_VALUES record asking for FCGI_MAX_CONNS,
// FCGI_MAX_REQS and FCGI_MPXS_CONNS.
var fcgiGetValues = func() []byte {
	var body []byte
	for _, name := range []string{"FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"} {
		body = append(body, byte(len(name)), 0)
		body = append(body, name...)
	}
	pad := (8 - len(body)%8) % 8
	rec := []byte{1, 9, 0, 0, 0, 0, byte(pad), 0}
	binary.BigEndian.PutUint16(rec[4:], uint16(len(body)))
	rec = append(rec, body...)
	return append(rec, make([]byte, pad)...)
}()

// fastcgiExchange sends FCGI_GET_VALUES and reads the whole answer record.
func fastcgiExchange(c net.Conn) bool {
	if _, err := c.Write(fcgiGetValues); err != nil {
		return false
	}
	var buf [512]byte
	if _, err := io.ReadFull(c, buf[:8]); err != nil {
		return false
	}
	n := int(binary.BigEndian.Uint16(buf[4:])) + int(buf[6])
	if buf[0] != 1 || buf[1] != 10 || n > len(buf) {
		return false
	}
	_, err := io.ReadFull(c, buf[:n])
	return err == nil
}

// memcachedExchange sends the "get" nginx's memcached_pass sends (key $uri)
// and reads the first response line.
func memcachedExchange(c net.Conn, name string) bool {
	req := make([]byte, 0, 64)
	req = append(req, "get /"...)
	req = append(req, name...)
	req = append(req, "\r\n"...)
	if _, err := c.Write(req); err != nil {
		return false
	}
	var buf [512]byte
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if bytes.IndexByte(buf[:n], '\n') >= 0 {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}

// ProbeOnce runs one exchange with t, for benchmarks.
func (p *Prober) ProbeOnce(t *Target) bool { return p.probe(t) }
