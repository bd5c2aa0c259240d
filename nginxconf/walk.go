package nginxconf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// Defaults nginx applies toward upstream servers.
const (
	defaultTimeout     = 60 * time.Second
	defaultHTTPVersion = "1.0"
	defaultVerifyDepth = 1
	defaultCiphers     = "DEFAULT"
	defaultWeight      = 1
	defaultMaxFails    = 1
	defaultFailTimeout = 10 * time.Second
	defaultServerPort  = "80" // ngx_http_upstream_server: u.default_port = 80
)

// DefaultSSLProtocols returns the proxy_ssl_protocols (and grpc_/uwsgi_)
// default applied when the directive is absent: that of nginx 1.23.4 and
// later. nginx 1.22 (Debian 12) also enabled TLSv1 and TLSv1.1; write the
// directive explicitly when that matters.
func DefaultSSLProtocols() []string { return []string{"TLSv1.2", "TLSv1.3"} }

// settingDirectives are the directives whose effective value is tracked
// through http -> server -> location inheritance, with the kind of value.
var settingDirectives = func() map[string]valueKind {
	m := map[string]valueKind{"resolver": kindList, "proxy_http_version": kindHTTPVersion}
	for _, p := range []string{"proxy", "fastcgi", "uwsgi", "scgi", "grpc", "memcached"} {
		m[p+"_connect_timeout"] = kindTime
		m[p+"_read_timeout"] = kindTime
		m[p+"_send_timeout"] = kindTime
		m[p+"_buffer_size"] = kindSize
	}
	for _, p := range []string{"proxy", "grpc", "uwsgi"} {
		m[p+"_ssl_verify"] = kindFlag
		m[p+"_ssl_server_name"] = kindFlag
		m[p+"_ssl_session_reuse"] = kindFlag
		m[p+"_ssl_verify_depth"] = kindNumber
		m[p+"_ssl_trusted_certificate"] = kindPath
		m[p+"_ssl_certificate"] = kindPath
		m[p+"_ssl_certificate_key"] = kindPath
		m[p+"_ssl_name"] = kindString
		m[p+"_ssl_ciphers"] = kindString
		m[p+"_ssl_protocols"] = kindList
		m[p+"_ssl_crl"] = kindPath
	}
	return m
}()

type valueKind int

const (
	kindString valueKind = iota
	kindList
	kindTime
	kindSize
	kindFlag
	kindNumber
	kindPath
	kindHTTPVersion
)

// check validates a setting directive as nginx does when loading.
func (k valueKind) check(n *node) error {
	if k == kindList {
		if len(n.args) == 0 {
			return n.errorf("invalid number of arguments in %q directive", n.name)
		}
		return nil
	}
	if len(n.args) != 1 {
		return n.errorf("invalid number of arguments in %q directive", n.name)
	}
	// The messages are those of nginx's slot functions
	// (ngx_conf_set_msec_slot and the like, ngx_conf_handler).
	v := n.args[0]
	ok := true
	switch k {
	case kindTime:
		_, ok = parseTime(v, false)
	case kindSize:
		_, ok = parseSize(v)
	case kindNumber:
		if _, ok := parseInt(v); !ok {
			return n.errorf("%q directive invalid number", n.name)
		}
	case kindFlag:
		if v != "on" && v != "off" {
			return n.errorf("invalid value %q in %q directive, it must be \"on\" or \"off\"", v, n.name)
		}
	case kindHTTPVersion:
		if v != "1.0" && v != "1.1" {
			return n.errorf("invalid value %q", v)
		}
	}
	if !ok {
		return n.errorf("%q directive invalid value", n.name)
	}
	return nil
}

// scope is one configuration level (http, server, location, if,
// limit_except). Lookups walk up to the enclosing levels, which is how
// nginx merges a directive that is not set at the inner level.
type scope struct {
	parent *scope
	vals   map[string]*node
	// hostHeader holds, per *_set_header directive name, what this level
	// says about Host. Like every array directive, *_set_header is only
	// inherited when the level sets none at all, so a level that sets
	// any header defines Host (possibly to the default).
	hostHeader map[string]hostSetting
}

// hostSetting keeps only the Host header value: other header values may
// be secrets (Authorization) and are never stored.
type hostSetting struct {
	set   bool // proxy_set_header Host appears at this level
	value string
}

func (s *scope) lookup(name string) *node {
	for ; s != nil; s = s.parent {
		if n, ok := s.vals[name]; ok {
			return n
		}
	}
	return nil
}

func (s *scope) host(directive string) hostSetting {
	for ; s != nil; s = s.parent {
		if h, ok := s.hostHeader[directive]; ok {
			return h
		}
	}
	return hostSetting{}
}

// upstream is an upstream{} block.
type upstream struct {
	name      string
	servers   []serverLine
	resolvers []string
	used      bool
	// luaBalancer is the position of a balancer_by_lua_* directive:
	// Lua picks the peer per request and the `server` lines are
	// placeholders (ingress-nginx writes `server 0.0.0.1`).
	luaBalancer string
}

// wctx is where the walk is: the kind of block, the server and location
// around it (for server_name and `set`), and the `if` blocks between the
// location and here.
type wctx struct {
	kind       string
	serverName string
	serverNode *node
	loc        *node
	ifs        []*node
}

type targetKey struct {
	upstream, server string
	proto            protocol.Kind
}

type walker struct {
	// ctx stops a walk of a large tree early (LoadContext).
	ctx       context.Context
	steps     int
	confDir   string
	prefix    string
	pageSize  int
	upstreams map[string]*upstream
	order     []*upstream
	cfg       *Config
	// servers become cfg.Servers when the walk ends; index finds one
	// by key.
	servers serverList
	index   map[targetKey]int
	// fs reads certificate files for nginx's load-time checks; nil
	// skips them (Implicit).
	fs FS
	// implicit are the upstreams nginx creates for static *_pass
	// addresses, in creation order (parity.go).
	implicit []*implicitUpstream
	// implicitByHost indexes implicit by lower-case host, in order.
	implicitByHost map[string][]*implicitUpstream
	// sslChecks are the TLS locations whose files nginx loads.
	sslChecks []sslCheck
	// flow finds the values of variables (finite.go).
	flow *flow
}

func newWalker(ctx context.Context, confDir string, pageSize int) *walker {
	return &walker{
		ctx:       ctx,
		confDir:   confDir,
		pageSize:  pageSize,
		upstreams: map[string]*upstream{},
		cfg:       &Config{},
		index:     map[targetKey]int{},
	}
}

func (w *walker) run(root []*node) (*Config, error) {
	type httpBlock struct {
		n  *node
		sc *scope
	}
	var https []httpBlock
	var streams []*node
	for _, n := range root {
		switch {
		case n.name == "user" && !n.isBlk:
			if len(n.args) < 1 || len(n.args) > 2 {
				return nil, n.errorf(`invalid number of arguments in "user" directive`)
			}
			w.cfg.User = n.args[0]
			if len(n.args) == 2 {
				w.cfg.Group = n.args[1]
			}
		case n.name == "pid" && !n.isBlk && len(n.args) == 1:
			w.cfg.PIDFile = n.args[0]
		case n.name == "error_log" && !n.isBlk:
			w.errorLog(n, "main")
		case n.name == "http" && n.isBlk:
			sc, err := w.levelScope(n.block, nil)
			if err != nil {
				return nil, err
			}
			https = append(https, httpBlock{n, sc})
		case n.name == "stream" && n.isBlk:
			streams = append(streams, n)
		}
		// mail{} and the rest have no upstreams: ignored.
	}
	// Upstream blocks first: a *_pass may name a block defined after it.
	for _, h := range https {
		for _, n := range h.n.block {
			if n.name == "upstream" && n.isBlk {
				if err := w.addUpstream(n, h.sc); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, h := range https {
		w.flow = newFlow(h.n.block)
		if err := w.walk(h.n.block, h.sc, wctx{kind: "http"}); err != nil {
			return nil, err
		}
	}
	// nginx's checks after parsing http{}: the upstreams first
	// (ngx_http_upstream_init_main_conf), then the locations' TLS files
	// (merge_loc_conf of the proxy, uwsgi and grpc modules, later in
	// nginx's module list). TestNginxParity pins the order.
	if err := w.checkPorts(); err != nil {
		return nil, err
	}
	if err := w.checkSSLFiles(); err != nil {
		return nil, err
	}
	if err := w.streams(streams); err != nil {
		return nil, err
	}
	for _, u := range w.order {
		if !u.used {
			w.cfg.UnusedUpstreams = append(w.cfg.UnusedUpstreams, u.name)
		}
	}
	w.cfg.Servers = w.servers.slice()
	return w.cfg, nil
}

// levelScope collects the settings written directly at one level.
func levelScope(nodes []*node, parent *scope) (*scope, error) {
	sc := &scope{parent: parent}
	for _, n := range nodes {
		if n.isBlk {
			continue
		}
		if k, ok := settingDirectives[n.name]; ok {
			if err := k.check(n); err != nil {
				return nil, err
			}
			if sc.vals == nil {
				sc.vals = map[string]*node{}
			}
			sc.vals[n.name] = n
			continue
		}
		if n.name == "proxy_set_header" || n.name == "grpc_set_header" {
			if len(n.args) != 2 {
				return nil, n.errorf("invalid number of arguments in %q directive", n.name)
			}
			if sc.hostHeader == nil {
				sc.hostHeader = map[string]hostSetting{}
			}
			h := sc.hostHeader[n.name]
			if strings.EqualFold(n.args[0], "Host") {
				h = hostSetting{set: true, value: n.args[1]}
			}
			sc.hostHeader[n.name] = h
		}
	}
	return sc, nil
}

func (w *walker) walk(nodes []*node, sc *scope, c wctx) error {
	var use *node
	if c.kind == "location" || c.kind == "if" || c.kind == "limit_except" {
		var err error
		if use, err = passInUse(nodes); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		if w.steps++; w.steps%256 == 0 {
			if err := w.ctx.Err(); err != nil {
				return fmt.Errorf("nginxconf: load stopped: %w", err)
			}
		}
		if kind, ok := protocol.ByDirective(n.name); ok && !n.isBlk {
			// *_pass is only valid in location, if in location and
			// (proxy_pass) limit_except; nginx rejects it elsewhere.
			// Only the last *_pass of a level is used (passInUse).
			if n == use {
				if err := w.pass(n, kind, sc, c); err != nil {
					return err
				}
			}
			continue
		}
		if n.name == "error_log" && !n.isBlk && c.kind != "if" && c.kind != "limit_except" {
			w.errorLog(n, c.kind)
			continue
		}
		if !n.isBlk {
			continue
		}
		var next wctx
		switch {
		case n.name == "server" && c.kind == "http":
			next = wctx{kind: "server", serverName: serverName(n.block), serverNode: n}
		case n.name == "location" && (c.kind == "server" || c.kind == "location"):
			next = c
			next.kind, next.loc, next.ifs = "location", n, nil
		case n.name == "if" && c.kind == "location":
			// A server-level `if` may not hold a *_pass: not walked.
			next = c
			next.kind = "if"
			next.ifs = append(slices.Clip(c.ifs), n)
		case n.name == "limit_except" && c.kind == "location":
			next = c
			next.kind = "limit_except"
		default:
			continue
		}
		child, err := w.levelScope(n.block, sc)
		if err != nil {
			return err
		}
		if err := w.walk(n.block, child, next); err != nil {
			return err
		}
	}
	return nil
}

// serverName is the name $host stands for in a probe: the first
// server_name that is a plain name (not a wildcard, regex, "_" or empty),
// else "localhost".
func serverName(nodes []*node) string {
	for _, n := range nodes {
		if n.name != "server_name" || n.isBlk {
			continue
		}
		for _, a := range n.args {
			if a == "" || a == "_" || strings.HasPrefix(a, "~") || strings.HasPrefix(a, ".") ||
				strings.ContainsAny(a, "*$") {
				continue
			}
			return a
		}
	}
	return "localhost"
}

func resolverAddrs(n *node) []string {
	if n == nil {
		return nil
	}
	var out []string
	for _, a := range n.args {
		if !strings.Contains(a, "=") {
			out = append(out, a)
		}
	}
	return out
}

func (w *walker) addUpstream(n *node, httpScope *scope) error {
	if len(n.args) != 1 {
		return n.errorf(`invalid number of arguments in "upstream" directive`)
	}
	key := strings.ToLower(n.args[0])
	if _, dup := w.upstreams[key]; dup {
		return n.errorf("duplicate upstream %q", n.args[0])
	}
	if err := checkBackup(n.block); err != nil {
		return err
	}
	u := &upstream{name: n.args[0]}
	u.readBlock(n, httpScope)
	u.servers = make([]serverLine, 0, countServers(n.block))
	for _, c := range n.block {
		if c.name != "server" || c.isBlk {
			continue
		}
		t, err := upstreamServer(c)
		if err != nil {
			return err
		}
		u.servers = append(u.servers, t)
	}
	w.upstreams[key] = u
	w.order = append(w.order, u)
	return nil
}

// countServers counts the `server` lines of an upstream{} block, so
// that its list is allocated once: a server is over 400 bytes, and a
// large configuration has thousands of blocks.
func countServers(block []*node) int {
	n := 0
	for _, c := range block {
		if c.name == "server" && !c.isBlk {
			n++
		}
	}
	return n
}

// serverList is the targets of a walk in chunks: appending to one slice
// would copy the whole list each time it grows (a quarter at a time
// once large), allocating about five times its final size over a load;
// chunks that double up to a bound, copied once into a slice of the
// exact size, allocate about twice.
type serverList struct {
	chunks [][]UpstreamServer
	n      int
}

const maxServerChunk = 1024

// add appends t and returns its index.
func (l *serverList) add(t UpstreamServer) int {
	last := len(l.chunks) - 1
	if last < 0 || len(l.chunks[last]) == cap(l.chunks[last]) {
		size := 16
		if last >= 0 {
			size = min(2*cap(l.chunks[last]), maxServerChunk)
		}
		l.chunks = append(l.chunks, make([]UpstreamServer, 0, size))
		last++
	}
	l.chunks[last] = append(l.chunks[last], t)
	l.n++
	return l.n - 1
}

// at returns the target at index i.
func (l *serverList) at(i int) *UpstreamServer {
	for _, c := range l.chunks {
		if i < len(c) {
			return &c[i]
		}
		i -= len(c)
	}
	panic("nginxconf: server index out of range")
}

// slice returns the targets in order, nil when there are none.
func (l *serverList) slice() []UpstreamServer {
	if l.n == 0 {
		return nil
	}
	out := make([]UpstreamServer, 0, l.n)
	for _, c := range l.chunks {
		out = append(out, c...)
	}
	return out
}

// serverLine is a `server` line of an upstream{} block: what its
// targets have before a *_pass gives them a protocol and settings. A
// third of an UpstreamServer, whose settings are most of its size.
type serverLine struct {
	server, host, port, socketPath string
	params                         ServerParams
}

// target is the target of l in upstream block u.
func (l *serverLine) target(u *upstream) UpstreamServer {
	return UpstreamServer{
		Upstream: u.name, Server: l.server, Host: l.host, Port: l.port, SocketPath: l.socketPath,
		Params: l.params, RuntimeResolve: l.params.Resolve, Resolvers: u.resolvers,
	}
}

// upstreamServer parses a `server` line of an upstream{} block
// (ngx_http_upstream_server).
func upstreamServer(n *node) (serverLine, error) {
	if len(n.args) == 0 {
		return serverLine{}, n.errorf(`invalid number of arguments in "server" directive`)
	}
	a, err := parseAddress(n.args[0], defaultServerPort)
	if errors.Is(err, errUserinfo) {
		return serverLine{}, n.errorf("%v in upstream server", err)
	}
	if err != nil {
		return serverLine{}, n.errorf("%v in upstream %q", err, n.args[0])
	}
	p := ServerParams{Weight: defaultWeight, MaxFails: defaultMaxFails, FailTimeout: defaultFailTimeout}
	for _, arg := range n.args[1:] {
		name, val, hasVal := strings.Cut(arg, "=")
		ok := true
		switch {
		case hasVal && name == "weight":
			p.Weight, ok = parseInt(val)
			ok = ok && p.Weight > 0
		case hasVal && name == "max_fails":
			p.MaxFails, ok = parseInt(val)
		case hasVal && name == "max_conns":
			p.MaxConns, ok = parseInt(val)
		case hasVal && name == "fail_timeout":
			p.FailTimeout, ok = parseTime(val, true)
		case hasVal && name == "slow_start":
			p.SlowStart, ok = parseTime(val, true)
		case hasVal && name == "service":
			p.Service = val
		case !hasVal && name == "backup":
			p.Backup = true
		case !hasVal && name == "down":
			p.Down = true
		case !hasVal && name == "resolve":
			p.Resolve = true
		default:
			// Parameters of other nginx builds (route=, drain) or
			// modules: not ours to judge.
		}
		if !ok {
			return serverLine{}, n.errorf("invalid parameter %q", arg)
		}
	}
	t := serverFor(a)
	return serverLine{server: t.Server, host: t.Host, port: t.Port, socketPath: t.SocketPath, params: p}, nil
}

// serverFor fills the address fields of an UpstreamServer.
func serverFor(a address) UpstreamServer {
	t := UpstreamServer{Server: a.raw}
	if a.isUnix() {
		t.SocketPath = a.socketPath
	} else {
		t.Host, t.Port = a.bareHost(), a.port
	}
	return t
}

// pass handles one *_pass directive. An argument with variables is
// expanded to its candidate values (finite.go): each is a target when
// all are static, else the *_pass is dynamic.
func (w *walker) pass(n *node, kind protocol.Protocol, sc *scope, c wctx) error {
	if len(n.args) != 1 {
		return n.errorf("invalid number of arguments in %q directive", n.name)
	}
	arg := n.args[0]
	if !strings.Contains(arg, "$") {
		r, err := w.resolve(n, kind, arg, false)
		if err != nil {
			return err
		}
		return w.emit(n, kind, sc, c, r, false)
	}
	if kind == protocol.HTTP {
		// nginx prepares TLS for every proxy_pass with variables
		// (ngx_http_proxy_pass sets ssl), so its files are checked.
		w.sslChecks = append(w.sslChecks, sslCheck{prefix: kind.Spec().Prefix, sc: sc})
	}
	cands, ok := w.flow.candidates(arg, c)
	if !ok {
		w.dynamic(n)
		return nil
	}
	var rs []resolved
	var noResolver []string
	for _, cand := range cands {
		r, err := w.resolve(n, kind, cand, true)
		if errors.Is(err, errNoAddress) {
			// nginx fails such a request; no server is involved.
			continue
		}
		if err != nil || r.dynamic {
			w.dynamic(n)
			return nil
		}
		if r.u == nil && !r.a.isUnix() && net.ParseIP(r.a.bareHost()) == nil && sc.lookup("resolver") == nil {
			// nginx resolves such a name per request through
			// `resolver` only: without one it fails the request
			// ("no resolver defined to resolve"), no server is
			// involved.
			noResolver = append(noResolver, r.a.host)
			continue
		}
		rs = append(rs, r)
	}
	if len(noResolver) > 0 {
		w.dynamicBecause(n, fmt.Sprintf("no resolver is defined to resolve %s, which the address may name: nginx fails such requests",
			strings.Join(noResolver, ", ")))
	}
	if len(rs) == 0 {
		if len(noResolver) == 0 {
			w.dynamic(n)
		}
		return nil
	}
	for _, r := range rs {
		if err := w.emit(n, kind, sc, c, r, true); err != nil {
			return err
		}
	}
	return nil
}

// resolved is where one value of a *_pass argument leads.
type resolved struct {
	sch protocol.Scheme
	a   address
	// u is the upstream{} block the address names, if any.
	u *upstream
	// dynamic: the value is not static after all.
	dynamic bool
}

// errNoAddress is a candidate value with an empty address
// ("http://$p" where $p may be empty).
var errNoAddress = errors.New("empty address")

// resolve parses one value of a *_pass argument (the argument itself
// when it has no variables). With variables, what nginx would only find
// at run time makes the value dynamic rather than the load fail.
func (w *walker) resolve(n *node, kind protocol.Protocol, expanded string, hasVars bool) (resolved, error) {
	sch, rest, err := kind.SplitScheme(expanded)
	if err != nil {
		if hasVars {
			return resolved{dynamic: true}, nil
		}
		return resolved{}, n.errorf("invalid URL prefix")
	}
	raw := addressPart(rest, kind.Spec().URIPart)
	if strings.Contains(raw, "$") {
		return resolved{dynamic: true}, nil
	}
	if raw == "" && hasVars {
		return resolved{}, errNoAddress
	}
	a, err := parseAddress(raw, sch.DefaultPort)
	if errors.Is(err, errUserinfo) {
		return resolved{}, n.errorf("%v in %q directive", err, n.name)
	}
	if err != nil {
		if hasVars {
			return resolved{dynamic: true}, nil
		}
		return resolved{}, n.errorf("%v in upstream %q", err, raw)
	}
	// ngx_http_upstream_add: a host without port names an upstream{}
	// block when one exists (case-insensitively).
	var u *upstream
	if !a.isUnix() {
		u = w.upstreams[strings.ToLower(a.host)]
	}
	if u != nil && a.portWritten {
		if !hasVars {
			return resolved{}, n.errorf("upstream %q may not have port %s", a.host, a.port)
		}
		u = nil // at run time the port keeps it from matching the block
	}
	if u == nil && a.port == "" && !a.isUnix() && hasVars {
		// nginx fails such a request at run time ("no port").
		return resolved{dynamic: true}, nil
	}
	return resolved{sch: sch, a: a, u: u}, nil
}

// emit adds the targets of one resolved *_pass value.
func (w *walker) emit(n *node, kind protocol.Protocol, sc *scope, c wctx, r resolved, hasVars bool) error {
	a, u := r.a, r.u
	if w.luaBalanced(n, u) {
		return nil
	}
	target := a
	if u == nil && !a.isUnix() && !hasVars {
		// The implicit upstream nginx creates or shares (parity.go).
		imp := w.implicitFor(a, n)
		if imp.port == 0 {
			return nil // refused after the walk (checkPorts)
		}
		target = imp.addr
		target.port = strconv.Itoa(imp.port)
	}
	set, err := w.settings(sc, kind, r.sch, a, c)
	if err != nil {
		return err
	}
	if r.sch.TLS && !hasVars {
		w.sslChecks = append(w.sslChecks, sslCheck{prefix: kind.Spec().Prefix, sc: sc})
	}
	w.addPass(n, sc, kind, set, target, u, hasVars)
	return nil
}

// implicitServer is the one server of the implicit upstream nginx makes
// of a *_pass or proxy_pass address: nginx's defaults for weight,
// max_fails and fail_timeout (ngx_http_upstream_add,
// ngx_stream_upstream_add).
func implicitServer(a address, p protocol.Protocol, set Settings) UpstreamServer {
	t := serverFor(a)
	t.Upstream = a.raw
	t.Implicit = true
	t.Protocol = p
	t.Params = ServerParams{Weight: defaultWeight, MaxFails: defaultMaxFails, FailTimeout: defaultFailTimeout}
	t.Settings = set
	return t
}

// readBlock reads what upstream block n says of the whole block: its
// resolver (the block's own, nginx 1.27.3+, else the one of outer, the
// http{} or stream{} scope) and a Lua balancer.
func (u *upstream) readBlock(n *node, outer *scope) {
	var res *node
	for _, c := range n.block {
		switch {
		case c.name == "resolver" && !c.isBlk:
			res = c
		case c.name == "balancer_by_lua_block" || c.name == "balancer_by_lua_file":
			u.luaBalancer = c.source()
		}
	}
	if res == nil {
		res = outer.lookup("resolver")
	}
	u.resolvers = resolverAddrs(res)
}

// luaBalanced tells whether ngx_*_lua's balancer picks u's peer per
// request or session, and records n as dynamic when it does: the servers
// of such a block are placeholders, never probed.
func (w *walker) luaBalanced(n *node, u *upstream) bool {
	if u == nil || u.luaBalancer == "" {
		return false
	}
	u.used = true
	w.dynamicBecause(n, fmt.Sprintf("upstream %q is balanced by Lua (balancer at %s): its servers are placeholders",
		u.name, u.luaBalancer))
	return true
}

// addPass adds the targets the *_pass or proxy_pass n sends to with
// protocol p and settings set: the servers of upstream block u, or else
// the implicit upstream nginx makes of a. runtime is set when the address
// comes through variables.
func (w *walker) addPass(n *node, sc *scope, p protocol.Protocol, set Settings, a address, u *upstream, runtime bool) {
	if u != nil {
		u.used = true
		// One position for every server of the block: the targets keep
		// it, so one string and one slice, not one per server. The
		// slice's capacity is its length, so that add appending a later
		// position to one server copies it rather than writing into the
		// others'.
		src := []string{n.source()}
		for i := range u.servers {
			t := u.servers[i].target(u)
			t.Protocol = p
			t.Settings = set
			t.Sources = src[:1:1]
			w.add(t)
		}
		return
	}
	t := implicitServer(a, p, set)
	// With variables nginx resolves the name per request through
	// `resolver` (an IP address or a socket needs no resolving).
	t.RuntimeResolve = runtime && !a.isUnix() && net.ParseIP(t.Host) == nil
	t.Resolvers = resolverAddrs(sc.lookup("resolver"))
	t.Sources = []string{n.source()}
	w.add(t)
}

func (w *walker) dynamic(n *node) { w.dynamicBecause(n, ReasonVariables) }

func (w *walker) dynamicBecause(n *node, reason string) {
	w.cfg.Dynamic = append(w.cfg.Dynamic, DynamicPass{Directive: n.name, Source: n.source(),
		Address: redactUserinfo(n.args[0]), Reason: reason})
}

// add records a target, merging it into an earlier one with the same
// (Upstream, Server, Protocol): see the package documentation for the
// strictest-value rule.
func (w *walker) add(t UpstreamServer) {
	k := targetKey{t.Upstream, t.Server, t.Kind()}
	i, ok := w.index[k]
	if !ok {
		w.index[k] = w.servers.add(t)
		return
	}
	old := w.servers.at(i)
	old.Settings = mergeSettings(old.Settings, t.Settings)
	old.RuntimeResolve = old.RuntimeResolve || t.RuntimeResolve
	if len(old.Resolvers) == 0 {
		old.Resolvers = t.Resolvers
	}
	for _, s := range t.Sources {
		if !slices.Contains(old.Sources, s) {
			old.Sources = append(old.Sources, s)
		}
	}
}

func mergeSettings(a, b Settings) Settings {
	a.ConnectTimeout = min(a.ConnectTimeout, b.ConnectTimeout)
	a.ReadTimeout = min(a.ReadTimeout, b.ReadTimeout)
	a.SendTimeout = min(a.SendTimeout, b.SendTimeout)
	a.BufferSize = min(a.BufferSize, b.BufferSize)
	noReuse := a.SSL.NoSessionReuse && b.SSL.NoSessionReuse
	if !a.SSL.Verify && b.SSL.Verify {
		a.SSL = b.SSL
	}
	// A session nginx offers on some requests is one a backend that
	// cannot resume fails on.
	a.SSL.NoSessionReuse = noReuse
	// HTTPVersion and HostHeader stay those of the first location.
	return a
}

// settings computes the effective settings of a *_pass at scope sc.
func (w *walker) settings(sc *scope, kind protocol.Protocol, sch protocol.Scheme, a address, c wctx) (Settings, error) {
	p := kind.Spec().Prefix
	s := Settings{
		ConnectTimeout: timeSetting(sc, p+"_connect_timeout"),
		ReadTimeout:    timeSetting(sc, p+"_read_timeout"),
		SendTimeout:    timeSetting(sc, p+"_send_timeout"),
		BufferSize:     w.pageSize,
	}
	if n := sc.lookup(p + "_buffer_size"); n != nil {
		s.BufferSize, _ = parseSize(n.args[0])
	}
	if kind == protocol.HTTP {
		s.HTTPVersion = defaultHTTPVersion
		if n := sc.lookup("proxy_http_version"); n != nil {
			s.HTTPVersion = n.args[0]
		}
	}
	if d := kind.Spec().HostHeaderDirective; d != "" {
		s.HostHeader = hostHeader(sc.host(d), sch, a, c.serverName)
	}
	if sch.TLS {
		s.SSL = w.sslSettings(sc, p, c.serverName)
	}
	return s, nil
}

func timeSetting(sc *scope, name string) time.Duration {
	if n := sc.lookup(name); n != nil {
		d, _ := parseTime(n.args[0], false)
		return d
	}
	return defaultTimeout
}

func (w *walker) sslSettings(sc *scope, p, serverName string) SSLSettings {
	s := SSLSettings{
		Enabled:     true,
		VerifyDepth: defaultVerifyDepth,
		Protocols:   DefaultSSLProtocols(),
		Ciphers:     defaultCiphers,
	}
	str := func(name string) string {
		if n := sc.lookup(p + name); n != nil {
			return n.args[0]
		}
		return ""
	}
	s.Verify = str("_ssl_verify") == "on"
	s.ServerName = str("_ssl_server_name") == "on"
	s.NoSessionReuse = str("_ssl_session_reuse") == "off"
	if v := str("_ssl_verify_depth"); v != "" {
		s.VerifyDepth, _ = parseInt(v)
	}
	if v := str("_ssl_ciphers"); v != "" {
		s.Ciphers = v
	}
	if n := sc.lookup(p + "_ssl_protocols"); n != nil {
		s.Protocols = slices.Clone(n.args)
	}
	s.TrustedCertificate = w.confPath(str("_ssl_trusted_certificate"))
	s.Certificate = w.confPath(str("_ssl_certificate"))
	s.CertificateKey = w.confPath(str("_ssl_certificate_key"))
	s.CRL = w.confPath(str("_ssl_crl"))
	if v := str("_ssl_name"); v != "" {
		// "$proxy_host" (the default) stays empty; $host-like names
		// become the server name; anything else request-dependent is
		// unknown and left to the default.
		name, all := expandVars(v, func(name string) (string, bool) {
			switch name {
			case "host", "http_host", "server_name":
				return serverName, true
			case "proxy_host":
				return "", true
			}
			return "", false
		})
		if all {
			s.Name = name
		}
	}
	return s
}

// confPath resolves a file name against the conf prefix, as
// ngx_conf_full_name(cycle, name, 1) does. Names with variables and
// "data:" values are left as written.
func (w *walker) confPath(p string) string {
	if p == "" || filepath.IsAbs(p) || strings.Contains(p, "$") || strings.HasPrefix(p, "data:") {
		return p
	}
	return filepath.Join(w.confDir, p)
}

// hostHeader is the Host header nginx sends: $proxy_host unless
// *_set_header Host overrides it.
func hostHeader(h hostSetting, sch protocol.Scheme, a address, serverName string) string {
	def := proxyHost(sch, a)
	if !h.set {
		return def
	}
	v, all := expandVars(h.value, func(name string) (string, bool) {
		switch name {
		case "host", "http_host", "server_name":
			return serverName, true
		case "proxy_host":
			return def, true
		case "proxy_port":
			return a.port, a.port != ""
		}
		return "", false
	})
	if !all {
		// Built from request data we cannot know: probe with the default.
		return def
	}
	return v
}

// proxyHost is $proxy_host (ngx_http_proxy_set_vars) or, for grpc, the
// default :authority (ngx_http_grpc_pass): the host as written, with the
// port unless it is the scheme's default; "localhost" for a unix socket.
func proxyHost(sch protocol.Scheme, a address) string {
	if a.isUnix() {
		return "localhost"
	}
	if !a.portWritten || a.port == sch.DefaultPort {
		return a.host
	}
	return a.host + ":" + a.port
}
