package errorlog

import (
	"bytes"
	"math"
	"net"
	"net/netip"
	"strings"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
)

// ambiguous marks a peer shared by several targets (one server in two
// upstream blocks): its lines are unattributed, never counted twice.
const ambiguous = -1

// Index attributes a peer and protocol to a target of the loaded
// configuration in O(1). It holds only the discovered set: every label it
// yields comes from there, never from log text.
type Index struct {
	targets []*discovery.Target
	// protos are the protocol labels of the set; a label's position
	// numbers it in addrs and names.
	protos []string
	// addrs maps the IP peers (ngx_sock_ntop: "10.0.0.5:8080",
	// "[::1]:80") to the target's position or ambiguous: a key of 20
	// bytes without pointers, where the peer's text would cost a string
	// per target and a map the collector scans.
	addrs map[addrKey]int32
	// names maps, by protocol, the peers that are no IP address and port
	// ("unix:/path", an address with a zone) as nginx prints them.
	names []map[string]int32
	// upstreams are the upstream{} names, for "no live upstreams".
	upstreams map[string]bool
	// named maps protocol label and port to the one upstream with a
	// server given as a host name on that port ("" when several):
	// a peer that matches no target can then still be told to belong to
	// that upstream, the trace of an address nginx resolved once and
	// the configuration no longer yields.
	named map[string]map[string]string
	// resolved maps the host name of targets nginx resolves per request
	// to the target (or ambiguous), for "<host> could not be resolved".
	resolved map[string]int
}

// addrKey is an IP peer of one protocol. is4 tells 10.0.0.5 from
// ::ffff:10.0.0.5, which nginx prints differently.
type addrKey struct {
	ip    [16]byte
	port  uint16
	is4   bool
	proto uint8
}

func keyOf(ap netip.AddrPort, proto int) addrKey {
	a := ap.Addr()
	return addrKey{ip: a.As16(), port: ap.Port(), is4: a.Is4(), proto: uint8(proto)}
}

// proto numbers a protocol label, -1 when no target has it.
func (x *Index) proto(label string) int {
	for i, p := range x.protos {
		if p == label {
			return i
		}
	}
	return -1
}

// NewIndex indexes the targets of set; nil gives an empty index.
func NewIndex(set *discovery.Set) *Index {
	x := &Index{upstreams: map[string]bool{}, named: map[string]map[string]string{}, resolved: map[string]int{}}
	if set == nil {
		return x
	}
	x.targets = set.Targets
	x.addrs = make(map[addrKey]int32, len(set.Targets))
	for i, t := range set.Targets {
		x.upstreams[t.Upstream] = true
		pi := x.proto(t.Protocol)
		if pi < 0 {
			if len(x.protos) > math.MaxUint8 {
				continue // more labels than the protocol table has
			}
			pi = len(x.protos)
			x.protos = append(x.protos, t.Protocol)
			x.names = append(x.names, nil)
		}
		for _, p := range peerNames(t) {
			if ap, ok := plainAddrPort(p); ok {
				k := keyOf(ap, pi)
				if j, ok := x.addrs[k]; ok && j != int32(i) {
					x.addrs[k] = ambiguous
				} else {
					x.addrs[k] = int32(i)
				}
				continue
			}
			m := x.names[pi]
			if m == nil {
				m = map[string]int32{}
				x.names[pi] = m
			}
			if j, ok := m[p]; ok && j != int32(i) {
				m[p] = ambiguous
				continue
			}
			m[p] = int32(i)
		}
		if t.Probe != nil && t.Probe.Resolve != nil && !t.Probe.Resolve.System {
			h := t.Probe.Resolve.Host
			if j, ok := x.resolved[h]; ok && j != i {
				x.resolved[h] = ambiguous
			} else {
				x.resolved[h] = i
			}
		}
		if host, port, ok := namedServer(t); ok && host != "" {
			n := x.named[t.Protocol]
			if n == nil {
				n = map[string]string{}
				x.named[t.Protocol] = n
			}
			if u, ok := n[port]; ok && u != t.Upstream {
				n[port] = ""
			} else {
				n[port] = t.Upstream
			}
		}
	}
	return x
}

// plainAddrPort parses an IP address and port without a zone as nginx
// prints it: the form addrs holds.
func plainAddrPort(p string) (netip.AddrPort, bool) {
	ap, err := netip.ParseAddrPort(p)
	if err != nil || ap.Addr().Zone() != "" || ap.String() != p {
		return netip.AddrPort{}, false
	}
	return ap, true
}

// Len is the number of targets indexed.
func (x *Index) Len() int { return len(x.targets) }

// peerNames are the texts nginx prints for the target's peer.
func peerNames(t *discovery.Target) []string {
	if t.Network == "unix" || t.Network == "unixgram" || strings.HasPrefix(t.Address, "unix:") {
		return []string{t.Address}
	}
	addr := t.Address
	if t.Probe != nil && t.Probe.Network == "tcp" && t.Probe.Address != "" && t.Probe.Resolve == nil {
		addr = t.Probe.Address
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		// "server 10.0.0.5;" in an upstream block: port 80
		// (ngx_http_upstream_server), as the scheme's default for
		// an implicit upstream.
		port := "80"
		if t.Kind.TLS && t.Protocol == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), port)
	}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return []string{ap.String()}
	}
	return []string{addr}
}

// namedServer splits a server written with a host name into host and
// port; ok is false for addresses and unix sockets.
func namedServer(t *discovery.Target) (host, port string, ok bool) {
	if t.Network == "unix" || t.Network == "unixgram" || strings.HasPrefix(t.Address, "unix:") {
		return "", "", false
	}
	h, p, err := net.SplitHostPort(t.Server)
	if err != nil {
		h, p = t.Server, "80"
	}
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return "", "", false
	}
	return h, p, true
}

// Attribution is what a peer is to the target set.
type Attribution struct {
	// Target is the one target the peer belongs to, nil when none.
	Target *discovery.Target
	// Upstream is set when the peer belongs to no target but its port and
	// protocol name exactly one upstream with a server given by name.
	Upstream string
	// Peer is the peer text, for logs only.
	Peer string
	// Protocol is the protocol label the peer was looked up with (a
	// stream line over TCP is tcp or tls).
	Protocol string
	// pos is Target's position in the index.
	pos int32
}

// Attribute finds the target of an entry's peer. Peer is the upstream
// field after the scheme.
func (x *Index) Attribute(protocol string, peer []byte) Attribution {
	if protocol != streamProtocol {
		return x.attribute(protocol, peer)
	}
	// A stream line does not say whether proxy_ssl wraps the connection:
	// the peer belongs to the tcp or the tls target that has it, and to
	// neither when both do.
	a, b := x.attribute("tcp", peer), x.attribute("tls", peer)
	switch {
	case a.Target != nil && b.Target != nil:
		return Attribution{Peer: string(cut(peer, "\"")), Protocol: protocol}
	case b.Target != nil, a.Target == nil && a.Upstream == "" && b.Upstream != "":
		return b
	}
	return a
}

func (x *Index) attribute(protocol string, peer []byte) Attribution {
	if protocol == "" || len(peer) == 0 {
		return Attribution{}
	}
	pi := x.proto(protocol)
	var m map[string]int32
	if pi >= 0 {
		m = x.names[pi]
	}
	if bytes.HasPrefix(peer, []byte("unix:")) {
		// "unix:PATH:URI" (nginx adds the colon for AF_UNIX): a path
		// may hold colons, so try each split, shortest first.
		for i := len("unix:"); i < len(peer); i++ {
			if peer[i] != ':' && peer[i] != '"' {
				continue
			}
			if j, ok := m[string(peer[:i])]; ok {
				return x.result(j, peer[:i], protocol)
			}
			if peer[i] == '"' {
				break
			}
		}
		return Attribution{Peer: "unix:" + string(cut(peer[len("unix:"):], ":\"")), Protocol: protocol}
	}
	p := cut(peer, "/\"")
	if j, ok := m[string(p)]; ok {
		return x.result(j, p, protocol)
	}
	if ap, err := netip.ParseAddrPort(string(p)); err == nil {
		if pi >= 0 && ap.Addr().Zone() == "" {
			if j, ok := x.addrs[keyOf(ap, pi)]; ok {
				return x.result(j, p, protocol)
			}
		} else if j, ok := m[ap.String()]; ok {
			return x.result(j, p, protocol)
		}
		a := Attribution{Peer: string(p), Protocol: protocol}
		if u := x.named[protocol][itoa(ap.Port())]; u != "" {
			a.Upstream = u
		}
		return a
	}
	return Attribution{Peer: string(p), Protocol: protocol}
}

func (x *Index) result(j int32, peer []byte, protocol string) Attribution {
	if j == ambiguous {
		return Attribution{Peer: string(peer), Protocol: protocol}
	}
	return Attribution{Target: x.targets[j], Protocol: protocol, pos: j}
}

// AttributeHost finds the one target whose name nginx resolves per
// request and failed to resolve.
func (x *Index) AttributeHost(host []byte) Attribution {
	if j, ok := x.resolved[string(host)]; ok && j != ambiguous {
		return Attribution{Target: x.targets[j], pos: int32(j)}
	}
	return Attribution{}
}

// Upstream reports whether name is an upstream of the set; for "no live
// upstreams" the upstream field holds the group's name.
func (x *Index) Upstream(peer []byte) (string, bool) {
	name := string(cut(peer, "/\""))
	if x.upstreams[name] {
		return name, true
	}
	return "", false
}

// cut returns b up to the first byte of any of stop.
func cut(b []byte, stop string) []byte {
	if i := bytes.IndexAny(b, stop); i >= 0 {
		return b[:i]
	}
	return b
}

func itoa(p uint16) string {
	var b [5]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + p%10)
		p /= 10
		if p == 0 {
			return string(b[i:])
		}
	}
}
