package discovery

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// interner hands out one value per distinct setting while a set is built:
// the targets of a configuration mostly share their parameters, timeouts,
// TLS settings and probe request, so 10,000 targets hold a handful of values, not 10,000 copies.
// The values are read-only once built: probes only read them.
type interner struct {
	shared       map[ServerSettings]*ServerSettings
	tlsSettings  map[tlsKey]*prober.TLSSettings
	tlsCommon    map[tlsCommonKey]int
	exchanges    map[exchangeKey]*prober.Exchange
	protocols    map[protocolsKey][]string
	resolverSets map[string][]string
	// lastProtocols and lastKey are the last protocol list keyed and
	// its key, when haveLast (protocolsKey).
	lastProtocols []string
	lastKey       protocolsKey
	haveLast      bool
	// tlsFree is where new TLS settings go, tlsChunk the size of its
	// last allocation, tlsLeft how many more there can be at most (the
	// targets with TLS not built yet): see newTLS.
	tlsFree  []prober.TLSSettings
	tlsChunk int
	tlsLeft  int
}

func newInterner() *interner {
	return &interner{
		shared:       map[ServerSettings]*ServerSettings{},
		tlsSettings:  map[tlsKey]*prober.TLSSettings{},
		tlsCommon:    map[tlsCommonKey]int{},
		exchanges:    map[exchangeKey]*prober.Exchange{},
		protocols:    map[protocolsKey][]string{},
		resolverSets: map[string][]string{},
	}
}

// settings returns the shared value equal to s.
func (in *interner) settings(s ServerSettings) *ServerSettings {
	if v, ok := in.shared[s]; ok {
		return v
	}
	// A new value rather than &s: s would then move to the heap on every
	// call, found or not.
	v := new(ServerSettings)
	*v = s
	in.shared[s] = v
	return v
}

// tlsKey is a comparable TLSSettings (sessions belong to the peer, not
// to the settings, so settings are shared whatever the reuse): the names,
// which differ per upstream block without proxy_ssl_name, and the rest,
// which few blocks differ in, by its number in tlsCommon. Small enough
// for the map to keep keys inline (a key over 128 bytes is allocated
// per entry).
type tlsKey struct {
	serverName, verifyName string
	common                 int
}

// tlsCommonKey is what TLS settings have besides the names.
type tlsCommonKey struct {
	verify      bool
	verifyDepth int
	trusted     string
	protocols   protocolsKey
	ciphers     string
	certificate string
	key         string
	reuse       bool
}

// tls returns the shared value equal to s.
func (in *interner) tls(s prober.TLSSettings) *prober.TLSSettings {
	if in.tlsLeft > 0 {
		in.tlsLeft--
	}
	ck := tlsCommonKey{
		verify: s.Verify, verifyDepth: s.VerifyDepth, trusted: s.TrustedCertificate,
		protocols: in.protocolsKey(s.Protocols),
		ciphers:   s.Ciphers, certificate: s.Certificate, key: s.CertificateKey, reuse: s.SessionReuse,
	}
	common, ok := in.tlsCommon[ck]
	if !ok {
		common = len(in.tlsCommon)
		in.tlsCommon[ck] = common
	}
	k := tlsKey{serverName: s.ServerName, verifyName: s.VerifyName, common: common}
	if v, ok := in.tlsSettings[k]; ok {
		return v
	}
	v := in.newTLS()
	*v = s
	// The list is the configuration model's; one copy per distinct list
	// outlives it.
	p, ok := in.protocols[ck.protocols]
	if !ok {
		p = slices.Clip(slices.Clone(s.Protocols))
		in.protocols[ck.protocols] = p
	}
	v.Protocols = p
	in.tlsSettings[k] = v
	return v
}

// protocolsKey returns the key of the protocol list p. The model has a
// list per *_pass, nearly always equal to the one before: that one's
// key is reused rather than joined again.
func (in *interner) protocolsKey(p []string) protocolsKey {
	if in.haveLast && slices.Equal(p, in.lastProtocols) && (p == nil) == (in.lastProtocols == nil) {
		return in.lastKey
	}
	k := protocolsKey{joined: joinKey(p), n: len(p), isNil: p == nil}
	in.lastProtocols, in.lastKey, in.haveLast = p, k, true
	return k
}

// protocolsKey is a comparable TLS protocol list.
type protocolsKey struct {
	joined string
	// n and isNil tell [""] from [] and [] from nil.
	n     int
	isNil bool
}

// newTLS returns a new zero TLSSettings. They are allocated in chunks,
// growing and never larger than what is left to build: with
// proxy_ssl_verify off every upstream block has its own (the name it
// would verify is the block's), so there are as many as targets with
// TLS; with a common proxy_ssl_name, a handful.
func (in *interner) newTLS() *prober.TLSSettings {
	if len(in.tlsFree) == 0 {
		in.tlsChunk = min(max(2*in.tlsChunk, 8), in.tlsLeft+1, 1024)
		in.tlsFree = make([]prober.TLSSettings, in.tlsChunk)
	}
	v := &in.tlsFree[0]
	in.tlsFree = in.tlsFree[1:]
	return v
}

// exchangeKey is a comparable Exchange; extra encodes the headers and
// expected statuses, empty without either (the common case: no
// formatting).
type exchangeKey struct {
	version, host, method, path string
	ping, memcachedKey, service string
	extra                       string
}

// exchange returns the shared value equal to e.
func (in *interner) exchange(e prober.Exchange) *prober.Exchange {
	k := exchangeKey{
		version: e.HTTP.Version, host: e.HTTP.Host, method: e.HTTP.Method, path: e.HTTP.Path,
		ping: e.FastCGI.PingPath, memcachedKey: e.Memcached.Key, service: e.GRPC.Service,
	}
	if e.HTTP.Headers != nil || e.HTTP.ExpectStatus != nil {
		// %#v tells nil from empty and quotes every string.
		k.extra = fmt.Sprintf("%#v %#v", e.HTTP.Headers, e.HTTP.ExpectStatus)
	}
	if v, ok := in.exchanges[k]; ok {
		return v
	}
	v := new(prober.Exchange)
	*v = e
	in.exchanges[k] = v
	return v
}

// resolvers returns the shared resolver addresses of the `resolver`
// addresses rs (resolverAddrs): every server resolved at run time under
// one `resolver` directive has the same.
func (in *interner) resolvers(rs []string) []string {
	k := joinKey(rs)
	if v, ok := in.resolverSets[k]; ok && len(v) == len(rs) {
		return v
	}
	v := resolverAddrs(rs)
	in.resolverSets[k] = v
	return v
}

// joinKey joins strings unambiguously for a map key: directive arguments
// cannot hold a NUL byte.
func joinKey(ss []string) string {
	return strings.Join(ss, "\x00")
}
