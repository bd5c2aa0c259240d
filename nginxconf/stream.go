package nginxconf

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// stream{}: the upstreams of ngx_stream_proxy_module.
//
// A stream server proxies every connection (or UDP session) to the one
// `proxy_pass` of its server{} block. The address names a stream
// upstream{} block (stream and http blocks live in separate namespaces)
// or is an implicit upstream; unlike http, an address always needs a
// port. The socket type is the listener's: a server with `listen … udp`
// talks UDP to its upstream servers (unix datagram sockets for `unix:`),
// one with a plain `listen` TCP, and a server with both talks both, so its
// servers are targets twice, as "tcp" (or "tls") and "udp". `proxy_ssl
// on` makes nginx run its TLS handshake before proxying, over TCP only
// (ngx_stream_proxy_init_upstream checks the socket type).
//
// A proxy_pass built from one variable that a stream `map` defines with
// literal values only (the usual map on $ssl_preread_server_name) yields
// each value as a target; any other use of variables is a DynamicPass.
//
// Settings are inherited stream -> server: proxy_connect_timeout (60s),
// proxy_timeout (10m, between two successive reads or writes: both the
// read and the send timeout of a target), proxy_buffer_size (16k),
// resolver, proxy_ssl and the stream proxy_ssl_* family with the same
// defaults as http's. Defaults are ngx_stream_proxy_merge_srv_conf's.

// Stream defaults (ngx_stream_proxy_merge_srv_conf).
const (
	defaultStreamConnectTimeout = 60 * time.Second
	defaultStreamTimeout        = 10 * time.Minute
	defaultStreamBufferSize     = 16 * 1024
)

// streamDirectives are the stream{} settings tracked through stream ->
// server inheritance, with the kind of value nginx accepts.
var streamDirectives = func() map[string]valueKind {
	m := map[string]valueKind{
		"resolver":              kindList,
		"proxy_connect_timeout": kindTime,
		"proxy_timeout":         kindTime,
		"proxy_buffer_size":     kindSize,
		"proxy_ssl":             kindFlag,
	}
	for _, name := range []string{"_ssl_verify", "_ssl_server_name", "_ssl_verify_depth", "_ssl_trusted_certificate",
		"_ssl_certificate", "_ssl_certificate_key", "_ssl_name", "_ssl_ciphers", "_ssl_protocols"} {
		m["proxy"+name] = settingDirectives["proxy"+name]
	}
	return m
}()

// streamScope collects the stream settings written directly at one level.
func streamScope(nodes []*node, parent *scope) (*scope, error) {
	sc := &scope{parent: parent}
	for _, n := range nodes {
		if n.isBlk {
			continue
		}
		k, ok := streamDirectives[n.name]
		if !ok {
			continue
		}
		if err := k.check(n); err != nil {
			return nil, err
		}
		if sc.vals == nil {
			sc.vals = map[string]*node{}
		}
		sc.vals[n.name] = n
	}
	return sc, nil
}

// streamBlock is one stream{} block with its settings.
type streamBlock struct {
	n  *node
	sc *scope
}

// streams walks every stream{} block of the main context: upstream{}
// blocks first (a proxy_pass may name a block defined after it), then
// the servers. Stream upstream blocks join w.order, so that those no
// static proxy_pass uses are listed in UnusedUpstreams.
func (w *walker) streams(roots []*node) error {
	blocks := make([]streamBlock, 0, len(roots))
	for _, n := range roots {
		sc, err := streamScope(n.block, nil)
		if err != nil {
			return err
		}
		blocks = append(blocks, streamBlock{n, sc})
	}
	ups := map[string]*upstream{}
	maps := map[string][]string{}
	for _, b := range blocks {
		for _, n := range b.n.block {
			switch {
			case n.name == "upstream" && n.isBlk:
				if err := w.streamUpstream(n, b.sc, ups); err != nil {
					return err
				}
			case n.name == "map" && n.isBlk && len(n.args) == 2:
				name := strings.ToLower(strings.TrimPrefix(n.args[1], "$"))
				maps[name] = streamMapValues(n)
			case n.name == "error_log" && !n.isBlk:
				w.errorLog(n, "stream")
			}
		}
	}
	for _, b := range blocks {
		for _, n := range b.n.block {
			if n.name == "server" && n.isBlk {
				if err := w.streamServer(n, b.sc, ups, maps); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// streamMapValues lists the values a stream `map` can give its variable, in
// the order written, the default last ("" when there is none, as nginx
// gives an empty value). nil means a value is built from variables: the
// choices are not finite.
func streamMapValues(n *node) []string {
	var vals []string
	def := ""
	for _, c := range n.block {
		if c.isBlk {
			return nil
		}
		switch {
		case len(c.args) == 0 && (c.name == "hostnames" || c.name == "volatile"):
			continue
		case len(c.args) != 1 || strings.Contains(c.args[0], "$"):
			return nil
		case c.name == "default":
			def = c.args[0]
		default:
			vals = append(vals, c.args[0])
		}
	}
	vals = append(vals, def)
	out := vals[:0]
	for _, v := range vals {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// streamCandidates expands a proxy_pass argument built from one variable
// that a `map` of literal values defines: every address it can take, in
// the map's order. ok is false for anything else (several variables,
// other variables, values nginx could not use), which stays dynamic.
func streamCandidates(arg string, maps map[string][]string) (addrs []string, ok bool) {
	i := strings.IndexByte(arg, '$')
	name, n := varName(arg[i+1:])
	if n == 0 || strings.Contains(arg[i+1+n:], "$") {
		return nil, false
	}
	vals, known := maps[strings.ToLower(name)]
	if !known || vals == nil {
		return nil, false
	}
	for _, v := range vals {
		a := arg[:i] + v + arg[i+1+n:]
		if a == "" {
			// The empty default: nginx fails such a session ("no
			// host"), there is nothing to probe.
			continue
		}
		addrs = append(addrs, a)
	}
	return addrs, len(addrs) > 0
}

// streamUpstream reads an upstream{} block of stream{}
// (ngx_stream_upstream_server): the same server parameters as http, but
// an address without port is refused.
func (w *walker) streamUpstream(n *node, streamScope *scope, ups map[string]*upstream) error {
	if len(n.args) != 1 {
		return n.errorf(`invalid number of arguments in "upstream" directive`)
	}
	key := strings.ToLower(n.args[0])
	if _, dup := ups[key]; dup {
		return n.errorf("duplicate upstream %q", n.args[0])
	}
	u := &upstream{name: n.args[0]}
	u.readBlock(n, streamScope)
	u.servers = make([]serverLine, 0, countServers(n.block))
	for _, c := range n.block {
		if c.name != "server" || c.isBlk {
			continue
		}
		if len(c.args) == 0 {
			return c.errorf(`invalid number of arguments in "server" directive`)
		}
		if a, err := parseAddress(c.args[0], ""); err == nil && !a.isUnix() && !a.portWritten {
			return c.errorf("no port in upstream %q", a.raw)
		}
		t, err := upstreamServer(c)
		if err != nil {
			return err
		}
		u.servers = append(u.servers, t)
	}
	ups[key] = u
	w.order = append(w.order, u)
	return nil
}

// streamServer handles one server{} of stream{}: its listeners decide the
// protocols, its proxy_pass the servers.
func (w *walker) streamServer(n *node, parent *scope, ups map[string]*upstream, maps map[string][]string) error {
	if err := w.ctx.Err(); err != nil {
		return fmt.Errorf("nginxconf: load stopped: %w", err)
	}
	sc, err := streamScope(n.block, parent)
	if err != nil {
		return err
	}
	var kinds []protocol.Protocol
	var pass *node
	for _, c := range n.block {
		if c.isBlk {
			continue
		}
		switch c.name {
		case "error_log":
			w.errorLog(c, "stream server")
		case "listen":
			if len(c.args) == 0 {
				return c.errorf(`invalid number of arguments in "listen" directive`)
			}
			p := protocol.TCP
			if slices.Contains(c.args[1:], "udp") {
				p = protocol.UDP
			}
			if !slices.Contains(kinds, p) {
				kinds = append(kinds, p)
			}
		case "proxy_pass":
			if pass != nil {
				return c.errorf(`"proxy_pass" directive is duplicate`)
			}
			if len(c.args) != 1 {
				return c.errorf(`invalid number of arguments in "proxy_pass" directive`)
			}
			pass = c
		}
	}
	if len(kinds) == 0 {
		return n.errorf(`no "listen" is defined for server`)
	}
	if pass == nil {
		// "no handler for server" unless another module (return,
		// a third-party one) handles it: nothing to probe either way.
		return nil
	}
	arg := pass.args[0]
	if !strings.Contains(arg, "$") {
		a, err := parseAddress(arg, "")
		if errors.Is(err, errUserinfo) {
			return pass.errorf("%v in %q directive", err, pass.name)
		}
		if err != nil {
			return pass.errorf("%v in upstream %q", err, arg)
		}
		u := lookupStream(ups, a)
		if u != nil && a.portWritten {
			return pass.errorf("upstream %q may not have port %s", a.host, a.port)
		}
		if u == nil && !a.portWritten && !a.isUnix() {
			return pass.errorf("no port in upstream %q", a.raw)
		}
		w.streamTargets(pass, sc, kinds, serverName(n.block), a, u, false)
		return nil
	}
	// Built from variables, often a map on $ssl_preread_server_name:
	// nginx picks the address per session (ngx_stream_proxy_eval). When
	// the map's values are all literal, every choice is known and each
	// is a target; a choice that names no upstream block is resolved
	// at run time through `resolver`.
	cands, ok := streamCandidates(arg, maps)
	type choice struct {
		a address
		u *upstream
	}
	var choices []choice
	for _, c := range cands {
		a, err := parseAddress(c, "")
		if err != nil {
			ok = false
			break
		}
		u := lookupStream(ups, a)
		if u != nil && a.portWritten {
			u = nil // at run time the port keeps it from matching the block
		}
		if u == nil && !a.portWritten && !a.isUnix() {
			ok = false // nginx fails such a session: "no port"
			break
		}
		choices = append(choices, choice{a, u})
	}
	if !ok {
		w.dynamic(pass)
		return nil
	}
	for _, c := range choices {
		w.streamTargets(pass, sc, kinds, serverName(n.block), c.a, c.u, true)
	}
	return nil
}

// lookupStream is the stream upstream{} block a host names, nil for none
// (or a unix socket).
func lookupStream(ups map[string]*upstream, a address) *upstream {
	if a.isUnix() {
		return nil
	}
	return ups[strings.ToLower(a.host)]
}

// streamTargets adds the targets of one proxy_pass address for each
// protocol its server listens with: the servers of upstream block u, or
// the implicit upstream of a. runtime is set for an address chosen
// through variables, which nginx resolves per session.
func (w *walker) streamTargets(pass *node, sc *scope, kinds []protocol.Protocol, name string, a address, u *upstream, runtime bool) {
	// ngx_stream_lua's balancer picks the peer per session.
	if w.luaBalanced(pass, u) {
		return
	}
	for _, p := range kinds {
		w.addPass(pass, sc, p, w.streamSettings(sc, p, name), a, u, runtime)
	}
}

// streamSettings are the effective settings of a stream server's
// proxy_pass toward servers of protocol p.
func (w *walker) streamSettings(sc *scope, p protocol.Protocol, serverName string) Settings {
	timeout := func(name string, def time.Duration) time.Duration {
		if n := sc.lookup(name); n != nil {
			d, _ := parseTime(n.args[0], false)
			return d
		}
		return def
	}
	s := Settings{
		ConnectTimeout: timeout("proxy_connect_timeout", defaultStreamConnectTimeout),
		// proxy_timeout bounds the wait between two reads or two
		// writes, in both directions.
		ReadTimeout: timeout("proxy_timeout", defaultStreamTimeout),
		SendTimeout: timeout("proxy_timeout", defaultStreamTimeout),
		BufferSize:  defaultStreamBufferSize,
	}
	if n := sc.lookup("proxy_buffer_size"); n != nil {
		s.BufferSize, _ = parseSize(n.args[0])
	}
	if n := sc.lookup("proxy_ssl"); n != nil && n.args[0] == "on" && p.SupportsTLS() {
		s.SSL = w.sslSettings(sc, "proxy", serverName)
	}
	return s
}

// streamImplicit is Implicit for the stream protocols: the server nginx
// creates for `proxy_pass address;` in a stream server of an otherwise
// empty configuration, with the listener's protocol and `proxy_ssl on`
// for TLS.
func streamImplicit(address string, kind protocol.Kind) (UpstreamServer, error) {
	if kind.TLS && !kind.Protocol.SupportsTLS() {
		return UpstreamServer{}, fmt.Errorf("nginx does not speak %s over TLS", kind.Protocol)
	}
	a, err := parseAddress(address, "")
	if err != nil {
		return UpstreamServer{}, fmt.Errorf("%w in %q", err, address)
	}
	if !a.isUnix() && !a.portWritten {
		return UpstreamServer{}, fmt.Errorf("no port in upstream %q", a.raw)
	}
	sc := &scope{}
	if kind.TLS {
		sc.vals = map[string]*node{"proxy_ssl": {name: "proxy_ssl", args: []string{"on"}}}
	}
	w := newWalker(context.Background(), ".", 0)
	return implicitServer(a, kind.Protocol, w.streamSettings(sc, kind.Protocol, "localhost")), nil
}
