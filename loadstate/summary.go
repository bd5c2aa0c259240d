package loadstate

import (
	"cmp"
	"encoding/binary"
	"hash"
	"hash/fnv"
	"math"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
)

// summary is what the Tracker keeps of a configuration: the parse tree
// (an UpstreamServer is over 400 bytes with its strings) is dropped after
// a load, and only what the comparisons need stays. Most servers are IP
// literals: of them only a fingerprint (about 50 bytes) is kept, for
// "settings changed"; static hostnames keep their names and positions.
// A summary is never modified once built, so that it can be read without
// the Tracker's lock.
type summary struct {
	pidFile string
	// files are the files nginx reads when it loads the configuration
	// (loadFiles), paths sorted.
	files map[string]FileKind
	paths []string
	// static are the static hostname servers, in configuration order;
	// hosts their distinct names.
	static []staticServer
	hosts  []string
	ev     evidenceIndex
	prints serverPrints
}

// staticServer is a server line whose name nginx resolves at load time.
type staticServer struct {
	upstream, server, host, port string
	// source is the first position using it, for messages.
	source string
}

// evidenceIndex is what attributing a worker's peer to a static name
// needs (addEvidence).
type evidenceIndex struct {
	// byPort lists the static names by port.
	byPort map[string][]string
	// literal holds the hashes (literalHash) of the ip:port of IP
	// literal servers on a port of byPort (no other can shadow a name's
	// peer), sorted: 8 bytes a server. Two addresses with one hash
	// would leave a peer unattributed (unknown), never misattributed.
	literal []uint64
	// shared are the ports of names nginx resolves at run time.
	shared map[string]bool
	// blind: an address built from variables with a variable port may
	// reach any peer: no peer can be attributed.
	blind bool
}

// summarize keeps of cfg what the Tracker compares.
func summarize(cfg *nginxconf.Config) *summary {
	s := &summary{pidFile: strings.Clone(cfg.PIDFile), files: loadFiles(cfg)}
	for p := range s.files {
		s.paths = append(s.paths, p)
	}
	sort.Strings(s.paths)
	seenHost := map[string]bool{}
	ev := evidenceIndex{byPort: map[string][]string{}, shared: map[string]bool{}}
	type literalServer struct{ host, port string }
	var literal []literalServer
	for i := range cfg.Servers {
		u := &cfg.Servers[i]
		switch {
		case discovery.IsStaticHostname(u):
			ss := staticServer{upstream: strings.Clone(u.Upstream), server: strings.Clone(u.Server),
				host: strings.Clone(u.Host), port: strings.Clone(u.Port)}
			if len(u.Sources) > 0 {
				ss.source = strings.Clone(u.Sources[0])
			}
			s.static = append(s.static, ss)
			if !seenHost[u.Host] {
				seenHost[u.Host] = true
				s.hosts = append(s.hosts, ss.host)
			}
			if !slices.Contains(ev.byPort[u.Port], u.Host) {
				ev.byPort[ss.port] = append(ev.byPort[ss.port], ss.host)
			}
		case u.RuntimeResolve:
			ev.shared[strings.Clone(u.Port)] = true
		case u.SocketPath == "" && u.Host != "":
			literal = append(literal, literalServer{u.Host, u.Port})
		}
	}
	// Only literals on a port of a static name matter: the others are
	// never compared.
	h := fnv.New64a()
	for _, l := range literal {
		if len(ev.byPort[l.port]) > 0 {
			ev.literal = append(ev.literal, literalHash(h, net.JoinHostPort(trimBrackets(l.host), l.port)))
		}
	}
	slices.Sort(ev.literal)
	ev.literal = slices.Clip(slices.Compact(ev.literal))
	s.static, s.hosts = slices.Clip(s.static), slices.Clip(s.hosts)
	for _, d := range cfg.Dynamic {
		m := dynamicPort.FindStringSubmatch(d.Address)
		if m == nil {
			ev.blind = true
			break
		}
		ev.shared[strings.Clone(m[1])] = true
	}
	s.ev = ev
	s.prints = fingerprint(cfg)
	return s
}

// literalHash hashes an "ip:port" address.
func literalHash(h hash.Hash64, ap string) uint64 {
	h.Reset()
	writeString(h, ap)
	return h.Sum64()
}

// isLiteral reports whether ap is the address of an IP literal server.
func (ev *evidenceIndex) isLiteral(h hash.Hash64, ap string) bool {
	_, ok := slices.BinarySearch(ev.literal, literalHash(h, ap))
	return ok
}

// serverPrints are the servers of a configuration reduced to what
// changes() reports: the key (upstream, server, protocol) and a hash of
// the parameters and settings, 16 bytes and about 7 bytes of text each
// (an IPv4 literal server).
type serverPrints struct {
	// names holds, one after the other, each server's record and each
	// distinct upstream name (uvarint length, then the name). A server's
	// record is a tag byte (the protocol's index in protos, plus
	// packedFlag) then the server: packed, an IPv4 address and port as
	// netip writes them (6 bytes), else its uvarint length and text.
	names   string
	protos  []string
	entries []serverPrint // sorted by compare
}

// serverPrint is one server, in 16 bytes.
type serverPrint struct {
	settings [2]uint32
	// server is the offset of the server's record in names.
	server uint32
	// upstream is the offset of the upstream's name in names, or
	// sameAsServer for an implicit upstream named after its one server.
	upstream uint32
}

const (
	sameAsServer = math.MaxUint32
	// packedFlag marks a record whose server is a packed IPv4 literal.
	packedFlag = 0x80
)

// field returns the length-prefixed text at off in names.
func field(names string, off uint32) string {
	var n uint64
	for shift := 0; ; shift += 7 {
		c := names[off]
		off++
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	return names[off : uint64(off)+n]
}

// record returns e's protocol index, whether its server is packed, and
// the server's encoding: 6 bytes when packed, else its text.
func (p *serverPrints) record(e *serverPrint) (proto int, packed bool, enc string) {
	tag := p.names[e.server]
	if tag&packedFlag != 0 {
		return int(tag &^ packedFlag), true, p.names[e.server+1 : e.server+7]
	}
	return int(tag), false, field(p.names, e.server+1)
}

func (p *serverPrints) server(e *serverPrint) string {
	_, packed, enc := p.record(e)
	if !packed {
		return enc
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte([]byte(enc[:4]))), uint16(enc[4])<<8|uint16(enc[5])).String()
}

func (p *serverPrints) upstream(e *serverPrint) string {
	if e.upstream == sameAsServer {
		return p.server(e)
	}
	return field(p.names, e.upstream)
}

func (p *serverPrints) protocol(e *serverPrint) string {
	proto, _, _ := p.record(e)
	return p.protos[proto]
}

// compare orders the keys of a and b (of o) without decoding a packed
// server: an implicit upstream first, then by upstream name, the
// server's encoding and the protocol label. It is a total order in which
// keys are equal exactly when their upstream, server and protocol are:
// sameAsServer is used exactly when the upstream is the server, and a
// server is packed exactly when it is an IPv4 literal written as netip
// writes it.
func (p *serverPrints) compare(a *serverPrint, o *serverPrints, b *serverPrint) int {
	sa, sb := a.upstream == sameAsServer, b.upstream == sameAsServer
	if sa != sb {
		if sa {
			return -1
		}
		return 1
	}
	if !sa {
		if c := strings.Compare(field(p.names, a.upstream), field(o.names, b.upstream)); c != 0 {
			return c
		}
	}
	pa, ka, ea := p.record(a)
	pb, kb, eb := o.record(b)
	if ka != kb {
		if ka {
			return -1
		}
		return 1
	}
	return cmp.Or(strings.Compare(ea, eb), strings.Compare(p.protos[pa], o.protos[pb]))
}

// find returns the entry of p with the upstream, server and protocol of
// o's entry e, nil when there is none.
func (p *serverPrints) find(o *serverPrints, e *serverPrint) *serverPrint {
	i, ok := slices.BinarySearchFunc(p.entries, e, func(x serverPrint, e *serverPrint) int { return p.compare(&x, o, e) })
	if !ok {
		return nil
	}
	return &p.entries[i]
}

// packable returns the packed form of an IPv4 literal server written as
// netip writes it; ok is false for any other server.
func packable(server string) (b [6]byte, ok bool) {
	ap, err := netip.ParseAddrPort(server)
	if err != nil || !ap.Addr().Is4() || ap.String() != server {
		return b, false
	}
	a := ap.Addr().As4()
	copy(b[:], a[:])
	b[4], b[5] = byte(ap.Port()>>8), byte(ap.Port())
	return b, true
}

func fingerprint(cfg *nginxconf.Config) serverPrints {
	var (
		p        serverPrints
		upstream = map[string]uint32{}
		h        = fnv.New64a()
		size     int
		names    []byte
	)
	proto := func(label string) int {
		i := slices.Index(p.protos, label)
		if i < 0 {
			i = len(p.protos)
			p.protos = append(p.protos, label)
		}
		return i
	}
	for i := range cfg.Servers {
		size += 1 + binary.MaxVarintLen64 + len(cfg.Servers[i].Server)
	}
	names = make([]byte, 0, size)
	p.entries = make([]serverPrint, 0, len(cfg.Servers))
	for i := range cfg.Servers {
		s := &cfg.Servers[i]
		pi := proto(s.Kind().Label())
		if pi >= packedFlag || len(names) > math.MaxUint32-2*(binary.MaxVarintLen64+len(s.Server)+len(s.Upstream)+1) {
			continue // beyond any configuration nginx loads
		}
		e := serverPrint{server: uint32(len(names)), upstream: sameAsServer}
		if b, ok := packable(s.Server); ok {
			names = append(names, byte(pi)|packedFlag)
			names = append(names, b[:]...)
		} else {
			names = append(names, byte(pi))
			names = binary.AppendUvarint(names, uint64(len(s.Server)))
			names = append(names, s.Server...)
		}
		if s.Upstream != s.Server {
			off, ok := upstream[s.Upstream]
			if !ok {
				off = uint32(len(names))
				upstream[s.Upstream] = off
				names = binary.AppendUvarint(names, uint64(len(s.Upstream)))
				names = append(names, s.Upstream...)
			}
			e.upstream = off
		}
		sum := settingsHash(h, s)
		e.settings = [2]uint32{uint32(sum), uint32(sum >> 32)}
		p.entries = append(p.entries, e)
	}
	p.names = string(names)
	// A key seen twice keeps its last server, as an index by key would.
	slices.SortStableFunc(p.entries, func(a, b serverPrint) int { return p.compare(&a, &p, &b) })
	out := p.entries[:0]
	for i := range p.entries {
		if i+1 < len(p.entries) && p.compare(&p.entries[i], &p, &p.entries[i+1]) == 0 {
			continue
		}
		out = append(out, p.entries[i])
	}
	p.entries = slices.Clip(out)
	return p
}

// settingsHash hashes a server's parameters and settings: equal hashes
// stand for reflect.DeepEqual of both, which is what "changes the
// settings" compared when the whole model was kept. Every field is
// walked (a field added later counts without a change here).
func settingsHash(h hash.Hash64, s *nginxconf.UpstreamServer) uint64 {
	h.Reset()
	hashValue(h, reflect.ValueOf(s.Params))
	hashValue(h, reflect.ValueOf(s.Settings))
	return h.Sum64()
}

func hashValue(h hash.Hash64, v reflect.Value) {
	var b [8]byte
	num := func(u uint64) {
		binary.LittleEndian.PutUint64(b[:], u)
		h.Write(b[:])
	}
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			num(1)
		} else {
			num(0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		num(uint64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		num(v.Uint())
	case reflect.Float32, reflect.Float64:
		num(math.Float64bits(v.Float()))
	case reflect.String:
		writeString(h, v.String())
	case reflect.Struct:
		for i := range v.NumField() {
			hashValue(h, v.Field(i))
		}
	case reflect.Slice, reflect.Array:
		// DeepEqual tells a nil slice from an empty one.
		if v.Kind() == reflect.Slice && v.IsNil() {
			num(math.MaxUint64)
			return
		}
		num(uint64(v.Len()))
		for i := range v.Len() {
			hashValue(h, v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			num(math.MaxUint64)
			return
		}
		// Order-independent: the sum of the entries' own hashes.
		var sum uint64
		it := v.MapRange()
		for it.Next() {
			e := fnv.New64a()
			hashValue(e, it.Key())
			hashValue(e, it.Value())
			sum += e.Sum64()
		}
		num(uint64(v.Len()))
		num(sum)
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			num(math.MaxUint64)
			return
		}
		num(1)
		hashValue(h, v.Elem())
	default:
		// Channels and functions: DeepEqual compares them by identity,
		// which a model loaded afresh never shares.
		num(uint64(v.Kind()))
	}
}

// writeString writes s with its length, so that ("ab","c") and
// ("a","bc") differ.
func writeString(h hash.Hash64, s string) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(len(s)))
	h.Write(b[:])
	h.Write([]byte(s))
}
