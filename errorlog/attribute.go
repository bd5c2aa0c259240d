package errorlog

import (
	"bytes"
	"hash/maphash"
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
	// addrs maps the IPv4 peers (ngx_sock_ntop: "10.0.0.5:8080") to the
	// target's position or ambiguous, in two flat arrays rather than a
	// map: 12 bytes a slot without pointers.
	addrs peerTable
	// addrs6 maps the other IP peers ("[::1]:80", "[::ffff:10.0.0.5]:80"),
	// nil while there are none: few configurations have them.
	addrs6 map[addrKey]int32
	// names maps, by protocol, the peers that are no IP address and port
	// ("unix:/path", an address with a zone) as nginx prints them.
	names []map[string]int32
	// upstreams holds the position of one target of each upstream{}
	// name, for "no live upstreams": the name is the target's own
	// string, never a copy.
	upstreams nameTable
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

// packed4 packs an IPv4 peer and protocol number into 64 bits: address,
// port, protocol and a set low byte, so that no key is 0 (an empty slot).
func packed4(ap netip.AddrPort, proto int) uint64 {
	a := ap.Addr().As4()
	return uint64(a[0])<<56 | uint64(a[1])<<48 | uint64(a[2])<<40 | uint64(a[3])<<32 |
		uint64(ap.Port())<<16 | uint64(uint8(proto))<<8 | 1
}

// peerTable is an open-addressing hash table from packed IPv4 peers to
// positions, sized once for the set (at most three quarters full).
type peerTable struct {
	keys  []uint64 // 0 marks an empty slot
	pos   []int32
	shift uint8
}

// tableSize returns the power of two that holds n entries at most three
// quarters full, and the shift that maps a 64-bit hash to it.
func tableSize(n int) (size int, shift uint8) {
	size, shift = 8, 61
	for size < n+n/3+1 {
		size <<= 1
		shift--
	}
	return size, shift
}

func newPeerTable(n int) peerTable {
	size, shift := tableSize(n)
	return peerTable{keys: make([]uint64, size), pos: make([]int32, size), shift: shift}
}

// slot returns where k is, or the empty slot where it would go.
func (t *peerTable) slot(k uint64) int {
	// Fibonacci hashing: the product's top bits mix every bit of k.
	mask := len(t.keys) - 1
	for i := int((k * 0x9E3779B97F4A7C15) >> t.shift); ; i = (i + 1) & mask {
		if t.keys[i] == k || t.keys[i] == 0 {
			return i
		}
	}
}

// add records position i for k, or ambiguous when another has k.
func (t *peerTable) add(k uint64, i int32) {
	s := t.slot(k)
	switch {
	case t.keys[s] == 0:
		t.keys[s], t.pos[s] = k, i
	case t.pos[s] != i:
		t.pos[s] = ambiguous
	}
}

func (t *peerTable) get(k uint64) (int32, bool) {
	if len(t.keys) == 0 {
		return 0, false
	}
	s := t.slot(k)
	return t.pos[s], t.keys[s] != 0
}

// nameTable is an open-addressing hash table of target positions by
// upstream name, compared with the targets' own strings: 4 bytes a slot.
type nameTable struct {
	slots []int32 // position plus one, 0 when empty
	seed  maphash.Seed
}

func newNameTable(n int) nameTable {
	size, _ := tableSize(n)
	return nameTable{slots: make([]int32, size), seed: maphash.MakeSeed()}
}

// findName returns the slot of name (its position plus one there) or
// the empty slot where it would go; h is name's hash.
func findName[S string | []byte](t *nameTable, targets []*discovery.Target, h uint64, name S) int {
	mask := len(t.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		if p := t.slots[i]; p == 0 || targets[p-1].Upstream == string(name) {
			return i
		}
	}
}

func (t *nameTable) add(targets []*discovery.Target, i int) {
	name := targets[i].Upstream
	s := findName(t, targets, maphash.String(t.seed, name), name)
	if t.slots[s] == 0 {
		t.slots[s] = int32(i + 1)
	}
}

// lookup returns the target's string equal to name.
func (t *nameTable) lookup(targets []*discovery.Target, name []byte) (string, bool) {
	if len(t.slots) == 0 {
		return "", false
	}
	p := t.slots[findName(t, targets, maphash.Bytes(t.seed, name), name)]
	if p == 0 {
		return "", false
	}
	return targets[p-1].Upstream, true
}

// hasUpstream reports whether an upstream{} of the set is named name.
func (x *Index) hasUpstream(name string) bool {
	t := &x.upstreams
	return len(t.slots) > 0 && t.slots[findName(t, x.targets, maphash.String(t.seed, name), name)] != 0
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
	x := &Index{named: map[string]map[string]string{}, resolved: map[string]int{}}
	if set == nil {
		return x
	}
	x.targets = set.Targets
	// Each target has one peer and one upstream: the set's size bounds
	// both tables.
	x.addrs = newPeerTable(len(set.Targets))
	x.upstreams = newNameTable(len(set.Targets))
	for i, t := range set.Targets {
		x.upstreams.add(x.targets, i)
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
				if ap.Addr().Is4() {
					x.addrs.add(packed4(ap, pi), int32(i))
					continue
				}
				if x.addrs6 == nil {
					x.addrs6 = map[addrKey]int32{}
				}
				k := keyOf(ap, pi)
				if j, ok := x.addrs6[k]; ok && j != int32(i) {
					x.addrs6[k] = ambiguous
				} else {
					x.addrs6[k] = int32(i)
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
			if j, ok := x.lookupAddr(ap, pi); ok {
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

// lookupAddr finds an IP peer without a zone of protocol number pi.
func (x *Index) lookupAddr(ap netip.AddrPort, pi int) (int32, bool) {
	if ap.Addr().Is4() {
		return x.addrs.get(packed4(ap, pi))
	}
	j, ok := x.addrs6[keyOf(ap, pi)]
	return j, ok
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
	return x.upstreams.lookup(x.targets, cut(peer, "/\""))
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
