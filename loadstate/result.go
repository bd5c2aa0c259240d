package loadstate

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
)

// Reasons a reload or restart would fail: the closed vocabulary of the
// reason label of nginx_upstream_config_reload_would_fail.
const (
	ReasonHostNotFound = "host_not_found"
	ReasonFileMissing  = "file_missing"
	ReasonParseError   = "parse_error"
)

// Reasons lists every reason, in the order they are exported.
var Reasons = []string{ReasonHostNotFound, ReasonFileMissing, ReasonParseError}

// Result is what the Tracker knows after a tick.
type Result struct {
	// Up: nginx's master was found and is alive. FindErr says why not.
	Up      bool
	FindErr error
	// Known: a generation of nginx has been seen (the fields below
	// describe it).
	Known bool
	// LastLoad is when the current generation started.
	LastLoad time.Time
	// Witnessed: the exporter was running when nginx loaded: it knows
	// the configuration and the addresses nginx loaded.
	Witnessed      bool
	Reloads        uint64
	Current, Old   int
	Pending        []PendingFile
	PendingChanges []string
	WouldFail      []Failure
	Servers        []ServerAddresses
	// Probing says which configuration the probes follow (ProbingDisk,
	// ProbingLoaded); empty before the first set was applied.
	Probing string
}

// PendingFile is a file changed since nginx loaded it.
type PendingFile struct {
	Path   string
	Kind   FileKind
	Change string // modified, removed, added
}

// Failure is one reason the next reload or restart would fail, with the
// message nginx would print.
type Failure struct {
	Reason  string
	Message string
}

// ServerAddresses compares, for one static hostname server, the
// addresses nginx dials with what the name resolves to now.
type ServerAddresses struct {
	Upstream, Server, Host, Port string
	// Nginx are the addresses nginx dials (IPs); Source says how the
	// exporter knows; SourceUnknown leaves Nginx empty.
	Nginx  []string
	Source Source
	// Now is what the name resolves to now; NowErr when it does not.
	Now    []string
	NowErr error
	// Known: Stale is a fact, not a guess.
	Known, Stale bool
}

// Result returns the state after the last tick.
func (t *Tracker) Result() Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.result
	r.Probing = t.probing
	return r
}

// derive computes the Result. t.mu is held.
func (t *Tracker) derive(cfg *summary) Result {
	r := Result{Up: t.up, FindErr: t.findErr, Reloads: t.reloads, Probing: t.probing}
	if t.genKey != (genKey{}) {
		r.Known = true
		r.LastLoad = t.genKey.start
		r.Witnessed = t.seenLoad
		if t.snap != nil && t.up {
			r.Current, r.Old = len(t.snap.Current), len(t.snap.Old)
		}
		r.Pending = t.pending(cfg)
		if len(r.Pending) > 0 && t.loaded != nil && cfg != nil {
			r.PendingChanges = changes(&t.loaded.prints, &cfg.prints)
		}
	}
	r.WouldFail = t.wouldFail(cfg)
	if cfg != nil {
		r.Servers = t.servers(cfg)
	}
	return r
}

func (t *Tracker) pending(cfg *summary) []PendingFile {
	var out []PendingFile
	for path, b := range t.baseline {
		change := ""
		switch {
		case b.changedBefore:
			change = "modified"
		case b.at.exists && !b.now.exists:
			change = "removed"
		case !b.at.exists && b.now.exists:
			change = "added"
		case b.at.exists && (b.at.size != b.now.size || b.at.hash != b.now.hash):
			change = "modified"
		}
		if change != "" {
			out = append(out, PendingFile{Path: path, Kind: b.kind, Change: change})
		}
	}
	if cfg != nil {
		for path, kind := range cfg.files {
			if _, ok := t.baseline[path]; !ok {
				// A file the tree on disk reads that nginx did not:
				// a new include, a new certificate.
				out = append(out, PendingFile{Path: path, Kind: kind, Change: "added"})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// changes describes what a reload would change in the targets: servers
// added or removed, settings changed.
func changes(loaded, disk *serverPrints) []string {
	var out []string
	for i := range disk.entries {
		s := &disk.entries[i]
		server, upstream, proto := disk.server(s), disk.upstream(s), disk.protocol(s)
		old := loaded.find(disk, s)
		switch {
		case old == nil:
			out = append(out, fmt.Sprintf("adds server %s to upstream %s (%s)", server, upstream, proto))
		case old.settings != s.settings:
			out = append(out, fmt.Sprintf("changes the settings of server %s in upstream %s (%s)", server, upstream, proto))
		}
	}
	for i := range loaded.entries {
		s := &loaded.entries[i]
		if disk.find(loaded, s) == nil {
			out = append(out, fmt.Sprintf("removes server %s from upstream %s (%s)", loaded.server(s), loaded.upstream(s), loaded.protocol(s)))
		}
	}
	sort.Strings(out)
	return out
}

// wouldFail lists what would make nginx refuse its configuration now,
// with nginx's own wording (ngx_parse_url's "host not found in upstream",
// ngx_ssl_certificate's "cannot load certificate", ngx_conf_parse's
// "open() ... failed").
func (t *Tracker) wouldFail(cfg *summary) []Failure {
	// nginx -t, when it ran, is nginx's own word.
	out := slices.Clone(t.testFailures)
	var pe *nginxconf.ParseError
	if err := t.diskErr; err != nil && errors.As(err, &pe) {
		switch {
		case errors.Is(err, nginxconf.ErrLimitExceeded):
			// The exporter's own bound, not nginx's rule.
		case isNotExist(err):
			out = append(out, Failure{Reason: ReasonFileMissing, Message: fmt.Sprintf("%s in %s:%d", pe.Msg, pe.File, pe.Line)})
		default:
			out = append(out, Failure{Reason: ReasonParseError, Message: fmt.Sprintf("%s in %s:%d", pe.Msg, pe.File, pe.Line)})
		}
	}
	if cfg == nil {
		return out
	}
	seen := map[string]bool{}
	for i := range cfg.static {
		s := &cfg.static[i]
		if seen[s.server] {
			continue
		}
		seen[s.server] = true
		if r, ok := t.current[s.host]; ok && r.err != nil {
			msg := fmt.Sprintf("host not found in upstream %q", s.server)
			if s.source != "" {
				msg += " (used at " + s.source + ")"
			}
			out = append(out, Failure{Reason: ReasonHostNotFound, Message: msg})
		}
	}
	for _, p := range cfg.paths {
		kind := cfg.files[p]
		if kind == KindConfig {
			continue // a missing include fails the exporter's own load above
		}
		if statFile(p, false).exists {
			// Present, or unreadable to the exporter (nginx's master
			// runs as root and may read it): unknown, not missing.
			continue
		}
		out = append(out, Failure{Reason: ReasonFileMissing, Message: missingMessage(kind, p)})
	}
	return out
}

func missingMessage(kind FileKind, path string) string {
	switch kind {
	case KindCertificate:
		return fmt.Sprintf("cannot load certificate %q: BIO_new_file() failed (SSL: error:80000002:system library::No such file or directory)", path)
	case KindCertificateKey:
		return fmt.Sprintf("cannot load certificate key %q: BIO_new_file() failed (SSL: error:80000002:system library::No such file or directory)", path)
	case KindCRL:
		return fmt.Sprintf("X509_LOOKUP_load_file(\"%s\") failed (SSL: error:80000002:system library::No such file or directory)", path)
	case KindTrustedCertificate:
		return fmt.Sprintf("SSL_CTX_load_verify_locations(\"%s\") failed (SSL: error:80000002:system library::No such file or directory)", path)
	}
	return fmt.Sprintf("open() %q failed (2: No such file or directory)", path)
}

// servers compares nginx's addresses with today's for every static
// hostname server.
func (t *Tracker) servers(cfg *summary) []ServerAddresses {
	type key struct{ upstream, server string }
	seen := map[key]bool{}
	var out []ServerAddresses
	for i := range cfg.static {
		s := &cfg.static[i]
		k := key{s.upstream, s.server}
		if seen[k] {
			continue
		}
		seen[k] = true
		sa := ServerAddresses{Upstream: s.upstream, Server: s.server, Host: s.host, Port: s.port, Source: SourceUnknown}
		if r, ok := t.current[s.host]; ok {
			sa.Now, sa.NowErr = r.ips, r.err
		}
		if kn, ok := t.nginxAddrs[s.host]; ok && t.up && kn.source != SourceUnknown {
			sa.Nginx, sa.Source = kn.ips, kn.source
			switch {
			case sa.NowErr != nil:
				sa.Known, sa.Stale = true, true
			case kn.source == SourceLoad:
				sa.Known, sa.Stale = true, !slices.Equal(kn.ips, sa.Now)
			default:
				// Evidence is partial: it proves staleness when nginx
				// dials an address the name no longer gives, and
				// proves nothing otherwise.
				for _, ip := range kn.ips {
					if !slices.Contains(sa.Now, ip) {
						sa.Known, sa.Stale = true, true
					}
				}
			}
		}
		out = append(out, sa)
	}
	return out
}
