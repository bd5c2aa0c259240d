package loadstate

import (
	"cmp"
	"encoding/binary"
	"hash"
	"hash/fnv"
	"math"
	"net"
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
// the parameters and settings, about 20 bytes and the server's name each.
type serverPrints struct {
	// names holds every server name, one after the other; words the
	// distinct upstream names, protos the protocol labels.
	names   string
	words   []string
	protos  []string
	entries []serverPrint // sorted by upstream, server, protocol
}

// serverPrint is one server. Its fields are 32 bits wide or less so
// that it packs into 20 bytes.
type serverPrint struct {
	settings [2]uint32
	nameOff  uint32
	// upstream indexes words, or is sameAsServer for an implicit
	// upstream named after its one server.
	upstream uint32
	nameLen  uint16
	protocol uint16 // indexes protos
}

const sameAsServer = math.MaxUint32

func (p *serverPrints) server(e *serverPrint) string {
	return p.names[e.nameOff : e.nameOff+uint32(e.nameLen)]
}

func (p *serverPrints) upstream(e *serverPrint) string {
	if e.upstream == sameAsServer {
		return p.server(e)
	}
	return p.words[e.upstream]
}

func (p *serverPrints) compare(a *serverPrint, o *serverPrints, b *serverPrint) int {
	return cmp.Or(strings.Compare(p.upstream(a), o.upstream(b)), strings.Compare(p.server(a), o.server(b)),
		strings.Compare(p.protos[a.protocol], o.protos[b.protocol]))
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

func fingerprint(cfg *nginxconf.Config) serverPrints {
	var (
		p    serverPrints
		word = map[string]uint32{}
		h    = fnv.New64a()
		size int
	)
	intern := func(s string) uint32 {
		i, ok := word[s]
		if !ok {
			i = uint32(len(p.words))
			word[s] = i
			p.words = append(p.words, strings.Clone(s))
		}
		return i
	}
	proto := func(label string) uint16 {
		i := slices.Index(p.protos, label)
		if i < 0 {
			i = len(p.protos)
			p.protos = append(p.protos, label)
		}
		return uint16(i)
	}
	for i := range cfg.Servers {
		size += len(cfg.Servers[i].Server)
	}
	var names strings.Builder
	names.Grow(size)
	p.entries = make([]serverPrint, 0, len(cfg.Servers))
	for i := range cfg.Servers {
		s := &cfg.Servers[i]
		if len(s.Server) > math.MaxUint16 || names.Len() > math.MaxUint32-len(s.Server) {
			continue // beyond any address nginx accepts
		}
		sum := settingsHash(h, s)
		e := serverPrint{settings: [2]uint32{uint32(sum), uint32(sum >> 32)}, nameOff: uint32(names.Len()),
			nameLen: uint16(len(s.Server)), upstream: sameAsServer, protocol: proto(s.Kind().Label())}
		if s.Upstream != s.Server {
			e.upstream = intern(s.Upstream)
		}
		names.WriteString(s.Server)
		p.entries = append(p.entries, e)
	}
	p.names = names.String()
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
