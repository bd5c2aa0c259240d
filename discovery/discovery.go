// Package discovery owns loading: from options to the set of probe
// targets. It parses nginx's configuration (nginxconf), applies the
// exporter's own configuration file, looks up nginx's worker user,
// resolves static hostnames the way nginx does at load time (one peer per
// address), applies the exporter's timeout cap, and keeps the labels every
// metric carries. serve, diagnose and /probe all build targets here.
package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// Key identifies one target; it is also the label set of every per-target
// series.
type Key struct {
	Upstream string
	Server   string
	Address  string
	Protocol string
}

// Target is one probe target with what the metrics need to describe it.
type Target struct {
	Key
	// Kind is the protocol and TLS flag the Protocol label names.
	Kind     protocol.Kind
	Implicit bool
	// ServerSettings are the server's parameters and timeouts, one value
	// for every target of a set with the same ones (most servers of a
	// configuration share them); read-only. Read them through Settings,
	// which also serves a target built without them.
	*ServerSettings
	// Probe is nil for servers marked `down`: nginx sends them nothing.
	Probe *prober.Peer
	// Network is the socket type nginx opens: "tcp", "udp" (stream
	// servers behind `listen … udp`), "unix", or "unixgram" (a unix
	// socket behind a UDP listener).
	Network string
	// Sources are the config positions using this target, for logs.
	Sources []string
	// labels is Key rendered as Prometheus text-format label pairs; see
	// Labels.
	labels string
	// base is the logger Build was given; logger is the target's own,
	// whose handler is the target itself (see targetHandler): no
	// allocation and nothing built until a line is logged, and nothing
	// kept after it.
	base   *slog.Logger
	logger slog.Logger
}

// ServerSettings are what nginx applies toward a target besides its
// address: the server line's parameters and the effective timeouts.
type ServerSettings struct {
	Params nginxconf.ServerParams
	// Timeouts are nginx's effective timeouts (not capped by the
	// exporter's --probe.timeout), exported for alerting on latency.
	ConnectTimeout, ReadTimeout, SendTimeout time.Duration
}

// noSettings is read-only: the settings of a target built without any.
var noSettings = &ServerSettings{}

// Settings returns t's parameters and timeouts; zero ones when t has none.
func (t *Target) Settings() *ServerSettings {
	if t.ServerSettings == nil {
		return noSettings
	}
	return t.ServerSettings
}

// Labels is the target's identity as escaped Prometheus text-format label
// pairs, upstream="…",server="…",address="…",protocol="…": what every
// per-target series of the exporter carries. It is rendered once when the
// target is built and the Key's strings are slices of it, so a target set
// holds one copy of each name, and every exposition (/metrics, capacity)
// reads it rather than keeping one of its own. Empty for a target that
// discovery did not build (tests build some by hand).
func (t *Target) Labels() string { return t.labels }

// labelsLen is the length of k rendered as label pairs.
func labelsLen(k *Key) int {
	return len(pUp) + escapedLen(k.Upstream) + len(pServer) + escapedLen(k.Server) +
		len(pAddr) + escapedLen(k.Address) + len(pProto) + escapedLen(k.Protocol) + 1
}

const (
	pUp     = `upstream="`
	pServer = `",server="`
	pAddr   = `",address="`
	pProto  = `",protocol="`
)

// writeLabels appends k rendered as label pairs to b.
func writeLabels(b *strings.Builder, k *Key) {
	b.WriteString(pUp)
	writeEscaped(b, k.Upstream)
	b.WriteString(pServer)
	writeEscaped(b, k.Server)
	b.WriteString(pAddr)
	writeEscaped(b, k.Address)
	b.WriteString(pProto)
	writeEscaped(b, k.Protocol)
	b.WriteByte('"')
}

// escapedLen is the length of s escaped for the text format: backslash,
// newline and double quote take two bytes, as the Prometheus text encoder
// writes them.
func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\', '\n', '"':
			n++
		}
	}
	return n
}

func writeEscaped(b *strings.Builder, s string) {
	if escapedLen(s) == len(s) {
		b.WriteString(s)
		return
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '"':
			b.WriteString(`\"`)
		default:
			b.WriteByte(c)
		}
	}
}

// setLabels sets t.labels to l, t.Key rendered, and points the Key's
// strings into it when they need no escaping (always, in practice). The
// protocol label is a constant and stays one.
func (t *Target) setLabels(l string) {
	t.labels = l
	i := len(pUp)
	n := escapedLen(t.Upstream)
	if n == len(t.Upstream) {
		t.Upstream = l[i : i+n]
	}
	i += n + len(pServer)
	n = escapedLen(t.Server)
	if n == len(t.Server) {
		t.Server = l[i : i+n]
	}
	i += n + len(pAddr)
	n = escapedLen(t.Address)
	if n == len(t.Address) {
		t.Address = l[i : i+n]
	}
}

// Logger says which target a line is about (upstream, server, address,
// protocol); the target's prober logs through it too. It is part of the
// target, not built: most targets never log, yet probers and the
// scheduler ask for it on every probe. A target discovery did not build
// (tests build some by hand) logs nothing.
func (t *Target) Logger() *slog.Logger {
	if t.base == nil {
		return discardLogger
	}
	return &t.logger
}

// discardLogger is read-only: a logger that drops everything.
var discardLogger = slog.New(slog.DiscardHandler)

// targetHandler is a target's handler: levels are the base logger's,
// which the target's attributes do not change, and each record handled
// gets the attributes through a handler derived for that record alone.
// Lines are rare (a failing target logs when its verdict changes), so
// deriving one per line costs less than keeping one per target that has
// ever logged.
type targetHandler Target

func (h *targetHandler) derived() slog.Handler {
	return h.base.Handler().WithAttrs([]slog.Attr{
		slog.String("upstream", h.Upstream), slog.String("server", h.Server),
		slog.String("address", h.Address), slog.String("protocol", h.Protocol),
	})
}

func (h *targetHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.base.Handler().Enabled(ctx, l)
}

func (h *targetHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.derived().Handle(ctx, r)
}

func (h *targetHandler) WithAttrs(as []slog.Attr) slog.Handler { return h.derived().WithAttrs(as) }

func (h *targetHandler) WithGroup(name string) slog.Handler { return h.derived().WithGroup(name) }

// Set is the result of one discovery.
type Set struct {
	Targets []*Target
	Probed  int
	Down    int
	Dynamic int
	// ErrorLogs are the configuration's error_log directives, for the
	// error-log reader.
	ErrorLogs []nginxconf.ErrorLog
	// Read is when Load began reading the configuration from disk: the
	// set describes the tree as it was at that moment or later. Zero
	// for a set built otherwise.
	Read time.Time
}

// Resolver looks up host names; *net.Resolver satisfies it.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// NginxAddresses says which addresses the running nginx dials for a
// static upstream hostname: those it resolved when it last loaded its
// configuration, which may differ from what the name resolves to now.
// ok is false when that is not known; Build then resolves the name.
type NginxAddresses interface {
	NginxAddresses(host string) (ips []string, ok bool)
}

// Overrides supplies per-upstream probe request settings from the
// exporter's own configuration file. nil means nginx-like defaults.
type Overrides interface {
	Apply(upstream string, t *prober.Peer)
}

// Options tune Load and Build.
type Options struct {
	// NginxConfig is nginx's main configuration file.
	NginxConfig string
	// NginxPrefix is nginx's -p prefix; empty means the directory of
	// NginxConfig.
	NginxPrefix string
	// ExporterConfig is the exporter's own optional configuration file
	// (per-upstream probe requests); empty means nginx-like defaults.
	ExporterConfig string

	Resolver Resolver // nil: net.DefaultResolver
	// Nginx, when set, supplies the addresses the running nginx dials
	// for static hostnames: targets then probe those rather than a fresh
	// lookup, so that a stale address gets the verdict nginx meets.
	Nginx NginxAddresses
	// ResolveTimeout bounds each load-time lookup.
	ResolveTimeout time.Duration
	// Worker is nginx's worker user; nil disables the permission check.
	// Load fills it from the `user` directive.
	Worker *prober.Credentials
	// Overrides come from ExporterConfig; Load fills them.
	Overrides Overrides
	Logger    *slog.Logger
}

func (opts *Options) defaults() {
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.ResolveTimeout <= 0 {
		opts.ResolveTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
}

// Build derives the probe targets from cfg.
//
// A set is a few allocations, not a few per target: the targets are one
// slice, their peers another, their labels one string and their source
// positions another. The targets live as long as their set (until the
// next load), and allocated one by one they would be scattered over
// spans shared with the probes' short-lived garbage, which then cannot
// be returned while one target is left in them.
func Build(ctx context.Context, cfg *nginxconf.Config, opts Options) *Set {
	opts.defaults()
	addrs := resolveAll(ctx, cfg.Servers, opts)

	set := &Set{Dynamic: len(cfg.Dynamic), ErrorLogs: cfg.ErrorLogs}
	n := 0
	for i := range cfg.Servers {
		n += peerCount(&cfg.Servers[i], addrs)
	}
	b := newBuilder(opts, n)
	seen := make(map[Key]struct{}, n)
	for i := range cfg.Servers {
		ct := &cfg.Servers[i]
		if r, ok := resolvedPeers(ct, addrs); ok {
			for _, ip := range r.ips {
				b.addOnce(seen, ct, net.JoinHostPort(ip, ct.Port))
			}
			continue
		}
		b.addOnce(seen, ct, "")
	}
	set.Targets = b.build()
	for _, t := range set.Targets {
		if t.Probe == nil {
			set.Down++
		} else {
			set.Probed++
		}
	}
	return set
}

// resolved is the outcome of one load-time lookup.
type resolved struct {
	ips []string
	err error
}

// resolveAll looks up every distinct static hostname once, in parallel,
// as nginx does when it loads its configuration.
func resolveAll(ctx context.Context, targets []nginxconf.UpstreamServer, opts Options) map[string]resolved {
	hosts := map[string]resolved{}
	for i := range targets {
		t := &targets[i]
		if !IsStaticHostname(t) {
			continue
		}
		hosts[t.Host] = resolved{}
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, 32)
	)
	names := make([]string, 0, len(hosts))
	for host := range hosts {
		if opts.Nginx != nil {
			if ips, ok := opts.Nginx.NginxAddresses(host); ok && len(ips) > 0 {
				hosts[host] = resolved{ips: ips}
				continue
			}
		}
		names = append(names, host)
	}
	for _, host := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			lctx, cancel := context.WithTimeout(ctx, opts.ResolveTimeout)
			defer cancel()
			ips, err := opts.Resolver.LookupHost(lctx, host)
			if err == nil && len(ips) == 0 {
				err = &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
			}
			if err != nil {
				opts.Logger.Warn("host not found in upstream: nginx would refuse to load this configuration", "host", host, "err", err)
			}
			mu.Lock()
			hosts[host] = resolved{ips: ips, err: err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return hosts
}

// IsStaticHostname reports whether nginx resolves t's host once, when it
// loads its configuration: a host name (not an IP literal, not a unix
// socket) without the `resolve` parameter or request variables.
func IsStaticHostname(t *nginxconf.UpstreamServer) bool {
	return t.SocketPath == "" && !t.RuntimeResolve && t.Host != "" && net.ParseIP(strings.Trim(t.Host, "[]")) == nil
}

// resolvedPeers returns the load-time lookup of t's host when nginx
// creates one peer per resolved address for it (a static name that
// resolved); otherwise t is one peer, the server itself.
func resolvedPeers(t *nginxconf.UpstreamServer, addrs map[string]resolved) (resolved, bool) {
	r, ok := addrs[t.Host]
	return r, ok && t.SocketPath == "" && r.err == nil
}

// peerCount is how many peers nginx creates for one server line.
func peerCount(t *nginxconf.UpstreamServer, addrs map[string]resolved) int {
	if r, ok := resolvedPeers(t, addrs); ok {
		return len(r.ips)
	}
	return 1
}

// builder builds the targets of one set; see Build.
type builder struct {
	opts Options
	in   *interner
	// targets are the set's, their key alone until build; servers are
	// their servers, in the same order. Allocated for every peer of the
	// configuration, so that they never move: only peers that two server
	// lines share (rare) leave the slice's end unused.
	targets []Target
	servers []*nginxconf.UpstreamServer
	peers   int
	sources sourceTable
}

func newBuilder(opts Options, n int) *builder {
	return &builder{opts: opts, in: newInterner(),
		targets: make([]Target, 0, n), servers: make([]*nginxconf.UpstreamServer, 0, n)}
}

// addOnce queues the peer of ct at addr (empty for the server itself)
// unless seen holds its key already: a name whose lookup lists an
// address twice is one peer to probe.
func (b *builder) addOnce(seen map[Key]struct{}, ct *nginxconf.UpstreamServer, addr string) {
	k := Key{Upstream: ct.Upstream, Server: ct.Server, Address: ct.Server, Protocol: ct.Kind().Label()}
	if addr != "" {
		k.Address = addr
	}
	if _, dup := seen[k]; dup {
		return
	}
	seen[k] = struct{}{}
	b.targets = append(b.targets, Target{Key: k})
	b.servers = append(b.servers, ct)
	if !ct.Params.Down {
		b.peers++
	}
	b.sources.add(ct.Sources)
}

// build builds the queued targets: labels first, so that what the peers
// and TLS settings name (the address, the upstream) shares their bytes.
func (b *builder) build() []*Target {
	peers := make([]prober.Peer, b.peers)
	out := make([]*Target, len(b.targets))
	size := 0
	for i := range b.targets {
		size += labelsLen(&b.targets[i].Key)
	}
	var sb strings.Builder
	sb.Grow(size)
	for i := range b.targets {
		writeLabels(&sb, &b.targets[i].Key)
	}
	labels := sb.String()
	b.sources.build(b.servers)
	b.in.tlsLeft = b.tlsCount()
	for i := range b.targets {
		t, ct := &b.targets[i], b.servers[i]
		// A peer of a load-time lookup has an address of its own;
		// any other is the server as written.
		resolved := t.Address != t.Server
		n := labelsLen(&t.Key)
		t.setLabels(labels[:n])
		labels = labels[n:]
		var p *prober.Peer
		if !ct.Params.Down {
			p, peers = &peers[0], peers[1:]
		}
		b.fill(t, p, ct, resolved)
		out[i] = t
	}
	return out
}

// tlsCount is how many targets speak TLS: at most that many distinct
// TLS settings.
func (b *builder) tlsCount() int {
	n := 0
	for _, ct := range b.servers {
		if !ct.Params.Down && ct.Settings.SSL.Enabled {
			n++
		}
	}
	return n
}

// fill builds t, whose key and labels are set, of a peer of ct; p is
// the target's peer, nil for a server marked `down`. What many targets
// have in common (parameters and timeouts, TLS settings, the probe
// request) comes from the interner, one value per distinct setting,
// never a copy per target.
func (b *builder) fill(t *Target, p *prober.Peer, ct *nginxconf.UpstreamServer, resolved bool) {
	in, opts := b.in, b.opts
	t.Kind = ct.Kind()
	t.Network = ct.Protocol.Network(ct.SocketPath != "")
	t.Implicit = ct.Implicit
	t.ServerSettings = in.settings(ServerSettings{
		Params:         ct.Params,
		ConnectTimeout: ct.Settings.ConnectTimeout,
		ReadTimeout:    ct.Settings.ReadTimeout,
		SendTimeout:    ct.Settings.SendTimeout,
	})
	t.Sources = b.sources.of(ct.Sources)
	t.base = opts.Logger
	t.logger = *slog.New((*targetHandler)(t))
	if p == nil {
		return
	}
	*p = prober.Peer{
		Protocol: ct.Protocol,
		Network:  t.Network,
		// nginx's own timeouts, uncapped: a probe waits as long as nginx
		// would in each phase. The operator's --probe.timeout bounds the
		// whole probe in the scheduler and yields no verdict, never a
		// timeout nginx would not have.
		ConnectTimeout: ct.Settings.ConnectTimeout,
		ReadTimeout:    ct.Settings.ReadTimeout,
		SendTimeout:    ct.Settings.SendTimeout,
		BufferSize:     ct.Settings.BufferSize,
		// The Host header differs per upstream block: on the peer, so
		// that the request itself is shared.
		Host: shareString(ct.Settings.HostHeader, t.Upstream),
	}
	req := prober.Exchange{HTTP: prober.HTTPSettings{
		Version: ct.Settings.HTTPVersion,
		Method:  "GET",
		Path:    "/",
	}}
	if resolved {
		p.Address = t.Address // the label's string
	}
	switch {
	case ct.SocketPath != "":
		p.Address = ct.SocketPath
		if strings.HasSuffix(t.Server, ct.SocketPath) {
			// "unix:" and the path: share the label's string.
			p.Address = t.Server[len(t.Server)-len(ct.SocketPath):]
		}
		p.Worker = opts.Worker
	case ct.RuntimeResolve:
		p.Resolve = &prober.RuntimeResolve{Host: ct.Host, Port: ct.Port, Resolvers: in.resolvers(ct.Resolvers)}
	case !resolved && net.ParseIP(strings.Trim(ct.Host, "[]")) != nil:
		if host := strings.Trim(ct.Host, "[]"); joinsTo(t.Server, host, ct.Port) {
			// Usually written that way: share the label's string.
			p.Address = t.Server
		} else {
			p.Address = net.JoinHostPort(host, ct.Port)
		}
	case !resolved:
		// The name did not resolve at load time. nginx would refuse the
		// configuration; keep asking the system resolver so the verdict
		// recovers when the name does.
		p.Resolve = &prober.RuntimeResolve{Host: ct.Host, Port: ct.Port, System: true}
	}
	if t.Kind.TLS {
		p.TLS = in.tls(tlsSettings(ct, t.Upstream))
	}
	if opts.Overrides != nil {
		// Applied to a value of the peer's own, then shared.
		p.Exchange = new(prober.Exchange)
		*p.Exchange = req
		opts.Overrides.Apply(ct.Upstream, p)
		req = *p.Exchange
	}
	p.Exchange = in.exchange(req)
	p.Logger = t.Logger()
	t.Probe = p
}

// joinsTo reports whether s is net.JoinHostPort(host, port), without
// building that string.
func joinsTo(s, host, port string) bool {
	if strings.IndexByte(host, ':') >= 0 {
		return len(s) == len(host)+len(port)+3 && s[0] == '[' && s[1:1+len(host)] == host &&
			s[1+len(host):3+len(host)] == "]:" && s[3+len(host):] == port
	}
	return len(s) == len(host)+len(port)+1 && s[:len(host)] == host && s[len(host)] == ':' && s[len(host)+1:] == port
}

// sourceTable copies the targets' source positions into one string and
// one slice: the configuration model holds them one string per *_pass
// and one slice per server or upstream block, allocated among the
// parser's garbage, which the set would otherwise keep after the model
// is gone. A position the model shares (one *_pass of a block, every
// server of the block) is copied once; a list the model shares (the
// servers of a block, one after the other) too.
type sourceTable struct {
	// at maps a position, by its bytes' address in the model, to its
	// offset in all (-1 until build writes it).
	at map[*byte]int
	// last and lastCopy are the last list added and, once made, its
	// copy.
	last, lastCopy []string
	nElems, size   int
	all            string
	elems          []string
}

func (s *sourceTable) add(list []string) {
	if len(list) == 0 || sameList(list, s.last) {
		return
	}
	if s.at == nil {
		s.at = map[*byte]int{}
	}
	s.last = list
	s.nElems += len(list)
	for _, src := range list {
		if src == "" {
			continue
		}
		if _, ok := s.at[unsafe.StringData(src)]; !ok {
			s.at[unsafe.StringData(src)] = -1
			s.size += len(src)
		}
	}
}

// sameList reports whether a and b are one list of the model.
func sameList(a, b []string) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

// build writes the shared string: the positions of servers, each once,
// in order. of then hands out copies.
func (s *sourceTable) build(servers []*nginxconf.UpstreamServer) {
	var sb strings.Builder
	sb.Grow(s.size)
	for _, ct := range servers {
		for _, src := range ct.Sources {
			if p := unsafe.StringData(src); src != "" && s.at[p] < 0 {
				s.at[p] = sb.Len()
				sb.WriteString(src)
			}
		}
	}
	s.all = sb.String()
	s.elems = make([]string, 0, s.nElems)
	s.last = nil
}

// of returns the copy of list; lists are asked for in the order add was
// given them (so that "the last list" means the same in both).
func (s *sourceTable) of(list []string) []string {
	if len(list) == 0 {
		return list
	}
	if sameList(list, s.last) {
		return s.lastCopy
	}
	i := len(s.elems)
	for _, src := range list {
		if src == "" {
			s.elems = append(s.elems, "")
			continue
		}
		off := s.at[unsafe.StringData(src)]
		s.elems = append(s.elems, s.all[off:off+len(src)])
	}
	s.last, s.lastCopy = list, s.elems[i:len(s.elems):len(s.elems)]
	return s.lastCopy
}

// tlsSettings maps proxy_ssl_* to the probe. The name nginx sends and
// verifies defaults to $proxy_host: the upstream block's name, or the host
// of an implicit upstream, never the individual server's address.
//
// upstream is ct.Upstream as the target holds it (a slice of its labels),
// so that the names share its bytes.
func tlsSettings(ct *nginxconf.UpstreamServer, upstream string) prober.TLSSettings {
	ssl := ct.Settings.SSL
	name := ssl.Name
	if name == "" {
		name = upstream
		if ct.Implicit {
			if h, _, err := net.SplitHostPort(upstream); err == nil {
				name = h
			}
		}
	}
	s := prober.TLSSettings{
		VerifyName:         name,
		Verify:             ssl.Verify,
		VerifyDepth:        ssl.VerifyDepth,
		TrustedCertificate: ssl.TrustedCertificate,
		Protocols:          ssl.Protocols,
		Ciphers:            ssl.Ciphers,
		Certificate:        ssl.Certificate,
		CertificateKey:     ssl.CertificateKey,
	}
	// Each peer keeps its own session (created with the first one), so
	// the settings themselves can be shared.
	s.SessionReuse = !ssl.NoSessionReuse
	if ssl.ServerName {
		s.ServerName = name
	}
	return s
}

// shareString returns have when it equals s: a string the target keeps
// anyway, so that s's own copy can go with the configuration model.
func shareString(s, have string) string {
	if s == have {
		return have
	}
	return s
}

// resolverAddrs adds nginx's default DNS port to resolver addresses.
func resolverAddrs(in []string) []string {
	out := make([]string, 0, len(in))
	for _, r := range in {
		if _, _, err := net.SplitHostPort(r); err == nil {
			out = append(out, r)
			continue
		}
		out = append(out, net.JoinHostPort(strings.Trim(r, "[]"), "53"))
	}
	return out
}

// String renders the key for logs.
func (k Key) String() string {
	return fmt.Sprintf("%s/%s (%s, %s)", k.Upstream, k.Server, k.Address, k.Protocol)
}
