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
	"sync/atomic"
	"time"

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
	// base and log make Logger: built on first use, because a logger
	// with its attributes costs about 300 bytes and most targets never
	// log anything. An atomic pointer rather than a sync.Once: 8 bytes
	// instead of 24 per target; two first calls racing build two loggers
	// and keep one.
	base *slog.Logger
	log  atomic.Pointer[slog.Logger]
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

// labelEscaper escapes a label value for the text format: backslash,
// newline and double quote, as the Prometheus text encoder does.
var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

// renderLabels sets t.labels from t.Key, and points the Key's strings
// into it when they need no escaping (always, in practice). The protocol
// label is a constant and stays one.
func (t *Target) renderLabels() {
	up, server, addr := labelEscaper.Replace(t.Upstream), labelEscaper.Replace(t.Server), labelEscaper.Replace(t.Address)
	const (
		pUp     = `upstream="`
		pServer = `",server="`
		pAddr   = `",address="`
		pProto  = `",protocol="`
	)
	t.labels = pUp + up + pServer + server + pAddr + addr + pProto + labelEscaper.Replace(t.Protocol) + `"`
	i := len(pUp)
	if up == t.Upstream {
		t.Upstream = t.labels[i : i+len(up)]
	}
	i += len(up) + len(pServer)
	if server == t.Server {
		t.Server = t.labels[i : i+len(server)]
	}
	i += len(server) + len(pAddr)
	if addr == t.Address {
		t.Address = t.labels[i : i+len(addr)]
	}
}

// Logger says which target a line is about (upstream, server, address,
// protocol); the target's prober logs through it too. Until a record at
// an enabled level is handled it is a small stand-in (~64 bytes, not the
// ~300 of a logger with the target's attributes): most targets never log,
// yet probers and the scheduler ask for it on every probe.
func (t *Target) Logger() *slog.Logger {
	if l := t.log.Load(); l != nil {
		return l
	}
	l := slog.New(&lazyHandler{t: t})
	if t.log.CompareAndSwap(nil, l) {
		return l
	}
	return t.log.Load()
}

// discardLogger is read-only: a logger that drops everything.
var discardLogger = slog.New(slog.DiscardHandler)

// lazyHandler is a target's handler: levels are the base logger's, which
// the target's attributes do not change, and the first record handled
// builds the base handler with the attributes.
type lazyHandler struct {
	t    *Target
	once sync.Once
	h    slog.Handler
}

func (h *lazyHandler) base() slog.Handler {
	if h.t.base == nil {
		return discardLogger.Handler()
	}
	return h.t.base.Handler()
}

func (h *lazyHandler) built() slog.Handler {
	h.once.Do(func() {
		t := h.t
		h.h = h.base().WithAttrs([]slog.Attr{
			slog.String("upstream", t.Upstream), slog.String("server", t.Server),
			slog.String("address", t.Address), slog.String("protocol", t.Protocol),
		})
	})
	return h.h
}

func (h *lazyHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.base().Enabled(ctx, l)
}

func (h *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.built().Handle(ctx, r)
}

func (h *lazyHandler) WithAttrs(as []slog.Attr) slog.Handler { return h.built().WithAttrs(as) }

func (h *lazyHandler) WithGroup(name string) slog.Handler { return h.built().WithGroup(name) }

// Set is the result of one discovery.
type Set struct {
	Targets []*Target
	Probed  int
	Down    int
	Dynamic int
	// ErrorLogs are the configuration's error_log directives, for the
	// error-log reader.
	ErrorLogs []nginxconf.ErrorLog
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
func Build(ctx context.Context, cfg *nginxconf.Config, opts Options) *Set {
	opts.defaults()
	addrs := resolveAll(ctx, cfg.Servers, opts)

	set := &Set{Dynamic: len(cfg.Dynamic), ErrorLogs: cfg.ErrorLogs}
	seen := make(map[Key]bool, len(cfg.Servers))
	in := newInterner()
	for i := range cfg.Servers {
		ct := &cfg.Servers[i]
		for _, addr := range addressesOf(ct, addrs) {
			t := newTarget(ct, addr, opts, in)
			if seen[t.Key] {
				// Two server lines resolving to one peer: nginx keeps
				// both, one probe is enough.
				continue
			}
			seen[t.Key] = true
			if t.Probe == nil {
				set.Down++
			} else {
				set.Probed++
			}
			set.Targets = append(set.Targets, t)
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

// addressesOf lists the peers nginx creates for one server line: the
// resolved addresses of a static name, else the server itself.
func addressesOf(t *nginxconf.UpstreamServer, addrs map[string]resolved) []string {
	if r, ok := addrs[t.Host]; ok && t.SocketPath == "" && r.err == nil {
		out := make([]string, 0, len(r.ips))
		for _, ip := range r.ips {
			out = append(out, net.JoinHostPort(ip, t.Port))
		}
		return out
	}
	return []string{""}
}

// newTarget builds the target of one peer of ct. What many targets have
// in common (parameters and timeouts, TLS settings, the probe request)
// comes from in, one value per distinct setting, never a copy per target.
func newTarget(ct *nginxconf.UpstreamServer, addr string, opts Options, in *interner) *Target {
	kind := ct.Kind()
	t := &Target{
		Key: Key{
			Upstream: ct.Upstream,
			Server:   ct.Server,
			Address:  ct.Server,
			Protocol: kind.Label(),
		},
		Kind:     kind,
		Network:  ct.Protocol.Network(ct.SocketPath != ""),
		Implicit: ct.Implicit,
		ServerSettings: in.settings(ServerSettings{
			Params:         ct.Params,
			ConnectTimeout: ct.Settings.ConnectTimeout,
			ReadTimeout:    ct.Settings.ReadTimeout,
			SendTimeout:    ct.Settings.SendTimeout,
		}),
		Sources: ct.Sources,
	}
	if addr != "" {
		t.Address = addr
	}
	t.renderLabels()
	t.base = opts.Logger
	if ct.Params.Down {
		return t
	}
	p := &prober.Peer{
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
	if addr != "" {
		p.Address = t.Address // the label's string
	}
	switch {
	case ct.SocketPath != "":
		p.Address = ct.SocketPath
		p.Worker = opts.Worker
	case ct.RuntimeResolve:
		p.Resolve = &prober.RuntimeResolve{Host: ct.Host, Port: ct.Port, Resolvers: resolverAddrs(ct.Resolvers)}
	case addr == "" && net.ParseIP(strings.Trim(ct.Host, "[]")) != nil:
		p.Address = net.JoinHostPort(strings.Trim(ct.Host, "[]"), ct.Port)
		if p.Address == t.Server {
			// Usually written that way: share the label's string.
			p.Address = t.Server
		}
	case addr == "":
		// The name did not resolve at load time. nginx would refuse the
		// configuration; keep asking the system resolver so the verdict
		// recovers when the name does.
		p.Resolve = &prober.RuntimeResolve{Host: ct.Host, Port: ct.Port, System: true}
	}
	if kind.TLS {
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
	p.Logger = t.Logger
	t.Probe = p
	return t
}

// tlsSettings maps proxy_ssl_* to the probe. The name nginx sends and
// verifies defaults to $proxy_host: the upstream block's name, or the host
// of an implicit upstream, never the individual server's address.
//
// upstream is ct.Upstream as the target holds it (a slice of its labels),
// so that the names share its bytes.
func tlsSettings(ct *nginxconf.UpstreamServer, upstream string) *prober.TLSSettings {
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
	s := &prober.TLSSettings{
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
