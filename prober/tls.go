package prober

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// tlsFiles loads and caches what the proxy_ssl_* file directives name: the
// trusted CA bundle and the client certificate. Entries are keyed by path
// and reloaded when the file's mtime or size changes, so an exporter that
// reloads nginx's configuration picks up renewed files without a restart.
// One instance belongs to one prober table; there is no global cache.
type tlsFiles struct {
	mu    sync.Mutex
	pools map[string]*poolEntry
	pairs map[[2]string]*pairEntry

	// groups are the key-exchange groups offered, as nginx offers them
	// upstream: nginx sets no groups on its upstream SSL context
	// (ngx_http_upstream_ssl_init_connection), so OpenSSL's client
	// defaults apply. Debian 12's nginx (OpenSSL 3.0) offers x25519,
	// secp256r1, x448, secp521r1 and secp384r1, with a key share for
	// x25519 only (recorded by e2e TestTLSGroupsAsNginx). Go has no X448,
	// so this is that list without it; Go sends it in its own order with
	// a key share for X25519 only. Go's default would lead with hybrid
	// post-quantum groups (X25519MLKEM768, …) that this nginx does not
	// offer: a backend that only accepts one would pass our probe and fail
	// nginx, and their 1.2 KB key share costs ML-KEM key generation on
	// every handshake.
	groups []tls.CurveID
}

type fileStamp struct {
	mtime time.Time
	size  int64
}

type poolEntry struct {
	stamp fileStamp
	pool  *x509.CertPool
	err   error
}

type pairEntry struct {
	cert, key fileStamp
	pair      *tls.Certificate
	err       error
}

func newTLSFiles() *tlsFiles {
	return &tlsFiles{
		pools:  map[string]*poolEntry{},
		pairs:  map[[2]string]*pairEntry{},
		groups: []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP521, tls.CurveP384},
	}
}

func stampOf(path string) (fileStamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mtime: st.ModTime(), size: st.Size()}, nil
}

// pool returns the CA pool from a PEM bundle.
func (f *tlsFiles) pool(path string) (*x509.CertPool, error) {
	stamp, err := stampOf(path)
	if err != nil {
		return nil, fmt.Errorf("proxy_ssl_trusted_certificate: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.pools[path]; ok && e.stamp == stamp {
		return e.pool, e.err
	}
	e := &poolEntry{stamp: stamp}
	data, err := os.ReadFile(path)
	switch {
	case err != nil:
		e.err = fmt.Errorf("proxy_ssl_trusted_certificate: %w", err)
	default:
		e.pool = x509.NewCertPool()
		if !e.pool.AppendCertsFromPEM(data) {
			e.pool, e.err = nil, fmt.Errorf("proxy_ssl_trusted_certificate %s: no PEM certificate", path)
		}
	}
	f.pools[path] = e
	return e.pool, e.err
}

// pair returns the client certificate and key.
func (f *tlsFiles) pair(certPath, keyPath string) (*tls.Certificate, error) {
	cs, err := stampOf(certPath)
	if err != nil {
		return nil, fmt.Errorf("proxy_ssl_certificate: %w", err)
	}
	ks, err := stampOf(keyPath)
	if err != nil {
		return nil, fmt.Errorf("proxy_ssl_certificate_key: %w", err)
	}
	k := [2]string{certPath, keyPath}
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.pairs[k]; ok && e.cert == cs && e.key == ks {
		return e.pair, e.err
	}
	e := &pairEntry{cert: cs, key: ks}
	p, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		e.err = fmt.Errorf("proxy_ssl_certificate: %w", err)
	} else {
		e.pair = &p
	}
	f.pairs[k] = e
	return e.pair, e.err
}

// tlsVersions maps proxy_ssl_protocols to a version range. nginx's default
// (since 1.23.4) is "TLSv1.2 TLSv1.3". SSLv2/SSLv3 are ignored: Go does not
// speak them and neither does a current OpenSSL.
func tlsVersions(protocols []string) (lo, hi uint16) {
	if len(protocols) == 0 {
		return tls.VersionTLS12, tls.VersionTLS13
	}
	for _, p := range protocols {
		var v uint16
		switch p {
		case "TLSv1":
			v = tls.VersionTLS10
		case "TLSv1.1":
			v = tls.VersionTLS11
		case "TLSv1.2":
			v = tls.VersionTLS12
		case "TLSv1.3":
			v = tls.VersionTLS13
		default:
			continue
		}
		if lo == 0 || v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	if lo == 0 {
		return tls.VersionTLS12, tls.VersionTLS13
	}
	return lo, hi
}

var (
	errCertVerify     = errors.New("upstream SSL certificate verify error")
	errCertName       = errors.New("upstream SSL certificate does not match")
	errNoTrusted      = errors.New("no proxy_ssl_trusted_certificate for proxy_ssl_verify")
	errNoPeerCert     = errors.New("upstream sent no SSL certificate")
	errClientCertFile = errors.New("cannot load proxy_ssl_certificate")
)

// handshake runs the TLS handshake nginx would run over conn (already in
// c) and swaps c.conn for the TLS connection. It records the tls phase and
// the leaf's expiry, even when the handshake or verification fails.
func (f *tlsFiles) handshake(c *conversation, t *Peer, alpn []string) bool {
	s := t.TLS
	lo, hi := tlsVersions(s.Protocols)
	cfg := &tls.Config{
		// nginx completes the handshake whatever the certificate
		// (ngx_ssl_verify_callback accepts all) and checks the result
		// afterwards (ngx_http_upstream_ssl_handshake); so do we, which
		// also lets us read the expiry of a certificate we reject.
		InsecureSkipVerify: true,
		ServerName:         s.ServerName, // empty: no SNI (proxy_ssl_server_name off)
		MinVersion:         lo,
		MaxVersion:         hi,
		NextProtos:         alpn,
		CurvePreferences:   f.groups,
	}
	if s.Certificate != "" && s.CertificateKey != "" {
		pair, err := f.pair(s.Certificate, s.CertificateKey)
		if err != nil {
			c.r.fail(event{outcome: outcomeClientCertificate, phase: PhaseTLS, err: err, detail: errClientCertFile.Error()})
			return false
		}
		// OpenSSL sends the configured certificate whatever CAs the
		// server names; Go's Certificates field would filter.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return pair, nil }
	}
	var sessions *Sessions
	if s.SessionReuse {
		// The peer's own sessions, if a session ever arrived; the cache
		// creates them when the first one does.
		if sessions = t.peerSessions(); sessions != nil {
			sessions.begin()
		}
		cfg.ClientSessionCache = (*peerSessions)(t)
	}
	tc := tls.Client(c.conn, cfg)
	start := time.Now()
	// The handshake runs under proxy_connect_timeout as one budget
	// (ngx_ssl_handshake arms the timer once), cut at the probe deadline.
	c.conn.SetDeadline(c.until(orDefault(t.ConnectTimeout)))
	c.armed()
	err := tc.Handshake()
	c.r.Phases[PhaseTLS] = time.Since(start)
	c.conn.SetDeadline(time.Time{})
	c.armed()
	state := tc.ConnectionState()
	if sessions != nil {
		sessions.end(err == nil && state.DidResume)
	}
	if len(state.PeerCertificates) > 0 {
		c.r.TLSNotAfter = state.PeerCertificates[0].NotAfter
	}
	if err != nil {
		c.r.fail(event{outcome: outcomeError, phase: PhaseTLS, err: err, deadline: pastDeadline(c.ctx)})
		return false
	}
	if s.Verify {
		if err := f.verify(state.PeerCertificates, s); err != nil {
			c.r.fail(event{outcome: outcomeCertificate, phase: PhaseTLS, err: err, detail: err.Error()})
			return false
		}
	}
	c.conn = tc
	return true
}

// verify checks the chain and the name as nginx does with proxy_ssl_verify:
// against proxy_ssl_trusted_certificate only, with OpenSSL's depth rule (at
// most VerifyDepth intermediates: a chain of VerifyDepth+2 certificates
// counting leaf and anchor), and the name with X509_check_host/ip.
func (f *tlsFiles) verify(certs []*x509.Certificate, s *TLSSettings) error {
	if len(certs) == 0 {
		return errNoPeerCert
	}
	if s.TrustedCertificate == "" {
		return errNoTrusted
	}
	roots, err := f.pool(s.TrustedCertificate)
	if err != nil {
		return err
	}
	opts := x509.VerifyOptions{Roots: roots}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		return fmt.Errorf("%w: %w", errCertVerify, err)
	}
	depthOK := false
	for _, ch := range chains {
		if len(ch) <= s.VerifyDepth+2 {
			depthOK = true
			break
		}
	}
	if !depthOK {
		return fmt.Errorf("%w: certificate chain too long (proxy_ssl_verify_depth %d)", errCertVerify, s.VerifyDepth)
	}
	if s.VerifyName != "" && !matchesName(certs[0], s.VerifyName) {
		return fmt.Errorf("%w %q", errCertName, s.VerifyName)
	}
	return nil
}

// matchesName is X509_check_host / X509_check_ip as nginx calls them: SAN
// entries first; the subject CN only when the certificate has no DNS SAN.
func matchesName(cert *x509.Certificate, name string) bool {
	if ip := net.ParseIP(strings.Trim(name, "[]")); ip != nil {
		for _, a := range cert.IPAddresses {
			if a.Equal(ip) {
				return true
			}
		}
		return false
	}
	if len(cert.DNSNames) > 0 {
		for _, n := range cert.DNSNames {
			if matchHostPattern(n, name) {
				return true
			}
		}
		return false
	}
	return cert.Subject.CommonName != "" && matchHostPattern(cert.Subject.CommonName, name)
}

// matchHostPattern matches a certificate name, with a wildcard allowed as
// the whole left-most label.
func matchHostPattern(pattern, host string) bool {
	pattern = strings.TrimSuffix(strings.ToLower(pattern), ".")
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if pattern == host {
		return true
	}
	if rest, ok := strings.CutPrefix(pattern, "*."); ok && strings.Count(rest, ".") >= 1 {
		if i := strings.IndexByte(host, '.'); i > 0 && host[i+1:] == rest {
			return true
		}
	}
	return false
}

// fullHandshakeEvery is how many successful resumptions a target gets
// before one full handshake: a resumed handshake carries no certificate
// (Go restores the chain of the original one), so this bounds how old the
// certificate facts get — about 2.5 minutes at the default 15 s interval.
const fullHandshakeEvery = 10

// Sessions keeps one target's TLS session as nginx keeps a peer's with
// proxy_ssl_session_reuse on (ngx_http_upstream_save_round_robin_peer_session):
// the session of the last successful handshake is offered on the next
// connection, and kept when resuming it fails, so a backend that cannot
// resume fails every probe after the first, as it fails every request
// through nginx after the first (e2e TestNginxSessionReuseAgainstBrokenResumption).
// It implements tls.ClientSessionCache for that one target.
// The zero value is ready to use.
type Sessions struct {
	mu      sync.Mutex
	state   *tls.ClientSessionState
	resumed int  // successful resumptions since the last full handshake
	skip    bool // this handshake is a full one: offer nothing
}

// begin prepares one handshake of the peer. After
// fullHandshakeEvery successful resumptions it offers nothing once; never
// after a failed resumption, which nginx would not retry in full either.
func (s *Sessions) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skip = s.resumed >= fullHandshakeEvery
	if s.skip {
		s.resumed = 0
	}
}

// end records whether the handshake resumed the session successfully.
func (s *Sessions) end(resumed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if resumed {
		s.resumed++
	}
}

// Get implements tls.ClientSessionCache.
func (s *Sessions) Get(string) (*tls.ClientSessionState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.skip || s.state == nil {
		return nil, false
	}
	return s.state, true
}

// Put implements tls.ClientSessionCache: a new session replaces the old
// one. Go puts nil to drop a session after a failed handshake, which
// OpenSSL's client (and so nginx) does not: it is ignored, so a backend
// that cannot resume keeps being offered the session. An expired session
// is never offered by Go, and the full handshake that follows puts a new
// one.
func (s *Sessions) Put(_ string, cs *tls.ClientSessionState) {
	if cs == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = cs
}

// peerSessions is a Peer seen as the tls.ClientSessionCache of its own
// sessions (TLSSettings.SessionReuse): it offers nothing until a session
// arrives, and creates the peer's Sessions with the first one, so a peer
// that never completes a handshake allocates nothing.
type peerSessions Peer

// peerSessions returns p's sessions, nil while none arrived.
func (p *Peer) peerSessions() *Sessions {
	return (*Sessions)(atomic.LoadPointer(&p.sessions))
}

// Get implements tls.ClientSessionCache.
func (c *peerSessions) Get(key string) (*tls.ClientSessionState, bool) {
	s := (*Peer)(c).peerSessions()
	if s == nil {
		return nil, false
	}
	return s.Get(key)
}

// Put implements tls.ClientSessionCache, creating the peer's sessions
// with the first session. A nil session (Go dropping one) creates
// nothing: Sessions ignores it.
func (c *peerSessions) Put(key string, cs *tls.ClientSessionState) {
	if cs == nil {
		return
	}
	p := (*Peer)(c)
	s := p.peerSessions()
	if s == nil {
		s = &Sessions{}
		if !atomic.CompareAndSwapPointer(&p.sessions, nil, unsafe.Pointer(s)) {
			s = p.peerSessions()
		}
	}
	s.Put(key, cs)
}
