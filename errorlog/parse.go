package errorlog

import (
	"bytes"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// MaxLine is nginx's limit for one log entry (NGX_MAX_ERROR_STR in
// src/core/ngx_log.h), newlines of continuation lines included.
const MaxLine = 2048

// Level is an nginx log level (err_levels in src/core/ngx_log.c).
type Level uint8

// Levels in nginx's order, most severe first.
const (
	LevelUnknown Level = iota
	LevelEmerg
	LevelAlert
	LevelCrit
	LevelError
	LevelWarn
	LevelNotice
	LevelInfo
	LevelDebug
)

var levelNames = [...]string{"", "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"}

// String is the level as nginx writes it between brackets.
func (l Level) String() string { return levelNames[l] }

// Stage is the action nginx names after "while" (log->action, set by
// ngx_http_upstream_connect, ngx_http_upstream_ssl_init_connection,
// ngx_http_upstream_send_request, ngx_http_upstream_process_header and
// ngx_http_upstream_process_upstream in src/http/ngx_http_upstream.c).
type Stage uint8

// Stages, in the order a request goes through them.
const (
	StageNone Stage = iota
	StageConnect
	StageTLSHandshake
	StageSend
	StageHeader
	// StageBody: the status line was already sent to the client, so the
	// failure truncates a response rather than producing a 502 or 504.
	StageBody
)

var stageActions = [...]string{
	StageConnect:      "connecting to upstream",
	StageTLSHandshake: "SSL handshaking to upstream",
	StageSend:         "sending request to upstream",
	StageHeader:       "reading response header from upstream",
	StageBody:         "reading upstream",
}

// String is the action as nginx words it.
func (s Stage) String() string {
	if int(s) < len(stageActions) {
		return stageActions[s]
	}
	return ""
}

// Kind says what a parsed entry is.
type Kind uint8

const (
	// KindOther: a well-formed entry that is no upstream failure (start-up,
	// reload, client errors, FastCGI stderr, continuation lines).
	KindOther Kind = iota
	// KindUpstreamError: a failure talking to an upstream server, with a
	// reason.
	KindUpstreamError
	// KindNoLiveUpstreams: "no live upstreams": every server of the group
	// is marked failed. Peer holds the group's name.
	KindNoLiveUpstreams
	// KindUnparsed: not an nginx entry (garbage, a cut line), or an entry
	// at level error or worse about an upstream whose message has no
	// reason in the vocabulary.
	KindUnparsed
)

// Entry is one parsed log line. Its byte slices point into the line.
type Entry struct {
	Kind   Kind
	Level  Level
	Reason prober.Reason
	Stage  Stage
	// Time is the entry's timestamp as written (nginx's local time).
	Time [19]byte
	// Protocol is the `protocol` label named by the scheme of the
	// upstream field ("http", "fastcgi", "grpcs"), "" when there is no
	// usable upstream field.
	Protocol string
	// Peer is the upstream field after the scheme: "10.0.0.5:8080/x",
	// "unix:/run/php.sock:". The peer is its head; attribution splits
	// it (a unix path may itself hold a colon).
	Peer []byte
	// Message is the text between the header and " while …".
	Message []byte
	// Host is the name of "<host> could not be resolved": the runtime
	// resolver failed, and no peer exists to name.
	Host []byte
}

// Timestamp parses Time in loc; the zero time when it is malformed.
func (e *Entry) Timestamp(loc *time.Location) time.Time {
	t, err := time.ParseInLocation("2006/01/02 15:04:05", string(e.Time[:]), loc)
	if err != nil {
		return time.Time{}
	}
	return t
}

// isHeader reports whether line starts like an nginx entry:
// "YYYY/MM/DD HH:MM:SS [". Continuation lines do not.
func isHeader(line []byte) bool {
	if len(line) < 21 {
		return false
	}
	const pat = "dddd/dd/dd dd:dd:dd ["
	for i := 0; i < len(pat); i++ {
		c := line[i]
		if pat[i] == 'd' {
			if c < '0' || c > '9' {
				return false
			}
		} else if c != pat[i] {
			return false
		}
	}
	return true
}

// Parse parses one entry (its first physical line). It never fails: what
// it cannot read is KindUnparsed.
func Parse(line []byte, e *Entry) {
	*e = Entry{Kind: KindUnparsed}
	if !isHeader(line) {
		return
	}
	copy(e.Time[:], line[:19])
	rest := line[21:]
	end := bytes.IndexByte(rest, ']')
	if end < 0 || end > 8 {
		return
	}
	e.Level = parseLevel(rest[:end])
	if e.Level == LevelUnknown {
		return
	}
	rest = rest[end+1:]
	// " PID#TID: " then "*CONN " when the line belongs to a connection
	// (ngx_log_error_core).
	if len(rest) < 2 || rest[0] != ' ' {
		return
	}
	colon := bytes.Index(rest, []byte(": "))
	if colon < 0 || colon > 48 {
		return
	}
	msg := rest[colon+2:]
	if len(msg) > 0 && msg[0] == '*' {
		sp := bytes.IndexByte(msg, ' ')
		if sp < 0 {
			return
		}
		msg = msg[sp+1:]
	}
	e.Kind = KindOther
	e.Message = msg

	// The stage anchors the fields: " while ACTION, client: ". The
	// message before it may hold backend text, the fields after it
	// client text; the action is nginx's own.
	var fields []byte
	best, udp := -1, false
	for _, a := range actions {
		i, n, isUDP := indexAction(msg, a.text)
		if i >= 0 && (best < 0 || i < best) {
			best, udp = i, isUDP
			e.Stage = a.stage
			e.Message = msg[:i]
			fields = msg[i+n:]
		}
	}
	e.Reason, e.Kind = classifyMessage(e.Message, e.Stage, e.Level)
	if i := bytes.Index(e.Message, []byte(" could not be resolved (")); i > 0 && e.Kind == KindUpstreamError {
		// ngx_http_upstream_resolve_handler: "%V could not be resolved
		// (%i: %s)" with the host of the *_pass.
		e.Host = e.Message[:i]
	}
	if e.Kind != KindUpstreamError && e.Kind != KindNoLiveUpstreams {
		return
	}
	if fields != nil {
		e.Protocol, e.Peer = upstreamField(fields)
		if e.Protocol == streamProtocol {
			// A stream line names no scheme: the client field says
			// UDP, the TLS stage says TLS; otherwise tcp or tls.
			switch {
			case udp:
				e.Protocol = "udp"
			case e.Stage == StageTLSHandshake:
				e.Protocol = "tls"
			}
		}
	}
}

// actions are the texts nginx sets as log->action around an upstream, with
// the stage each stands for. The http module's come from
// ngx_http_upstream.c; the stream module (ngx_stream_proxy_module.c) uses
// the first two as well, and its own while it relays a session.
var actions = []struct {
	text  string
	stage Stage
}{
	{stageActions[StageConnect], StageConnect},
	{stageActions[StageTLSHandshake], StageTLSHandshake},
	{stageActions[StageSend], StageSend},
	{stageActions[StageHeader], StageHeader},
	{stageActions[StageBody], StageBody},
	{"proxying and sending to upstream", StageSend},
	{"proxying and reading from upstream", StageHeader},
}

// indexAction finds " while ACTION, client: " (", udp client: " for a
// stream UDP session) in msg. It returns the position, the length up to
// the client's address, and whether the client is a UDP one.
func indexAction(msg []byte, action string) (int, int, bool) {
	off := 0
	for {
		i := bytes.Index(msg[off:], []byte(" while "))
		if i < 0 {
			return -1, 0, false
		}
		i += off
		r := msg[i+len(" while "):]
		if bytes.HasPrefix(r, []byte(action)) {
			n := len(" while ") + len(action)
			switch rest := r[len(action):]; {
			case bytes.HasPrefix(rest, []byte(", client: ")):
				return i, n + len(", client: "), false
			case bytes.HasPrefix(rest, []byte(", udp client: ")):
				return i, n + len(", udp client: "), true
			}
		}
		off = i + 1
	}
}

func parseLevel(b []byte) Level {
	for l := LevelEmerg; l <= LevelDebug; l++ {
		if string(b) == levelNames[l] {
			return l
		}
	}
	return LevelUnknown
}

// errnoOf returns the errno of the last " (N: " in msg, -1 when none.
// nginx prints a system error as " (%d: %s)" (ngx_log_errno), and the
// number is what holds across C libraries: musl and glibc word the text
// differently.
func errnoOf(msg []byte) int {
	for end := len(msg); end > 0; {
		i := bytes.LastIndex(msg[:end], []byte(" ("))
		if i < 0 {
			return -1
		}
		n, j := 0, i+2
		for j < len(msg) && j < i+6 && msg[j] >= '0' && msg[j] <= '9' {
			n = n*10 + int(msg[j]-'0')
			j++
		}
		if j > i+2 && j+1 < len(msg) && msg[j] == ':' && msg[j+1] == ' ' {
			return n
		}
		end = i
	}
	return -1
}

// errno numbers as Linux defines them (asm-generic/errno*.h); nginx
// prints the number, whatever C library words the text.
const (
	errnoENOENT       = 2
	errnoEAGAIN       = 11
	errnoEACCES       = 13
	errnoEPIPE        = 32
	errnoENETUNREACH  = 101
	errnoECONNRESET   = 104
	errnoETIMEDOUT    = 110
	errnoECONNREFUSED = 111
	errnoEHOSTUNREACH = 113
)

func hasPrefix(b []byte, s string) bool { return bytes.HasPrefix(b, []byte(s)) }
func contains(b []byte, s string) bool  { return bytes.Contains(b, []byte(s)) }

// classifyMessage is the one place of this package that names a reason:
// from nginx's message, the stage and the errno, as the mapping table of
// docs/metrics.md ("read from the log line") documents it.
func classifyMessage(msg []byte, stage Stage, level Level) (prober.Reason, Kind) {
	switch {
	case hasPrefix(msg, "no live upstreams"):
		return prober.ReasonNone, KindNoLiveUpstreams
	case contains(msg, " could not be resolved ("), hasPrefix(msg, "host not found in upstream"):
		return prober.ReasonDNSError, KindUpstreamError
	}
	if stage == StageNone {
		return prober.ReasonNone, KindOther
	}
	switch {
	case hasPrefix(msg, "FastCGI sent in stderr"),
		hasPrefix(msg, "client "),
		hasPrefix(msg, "upstream server temporarily disabled"),
		hasPrefix(msg, "an upstream response is buffered"):
		// The application speaking, the client leaving, or a consequence
		// of errors counted on their own lines.
		return prober.ReasonNone, KindOther
	case hasPrefix(msg, "upstream timed out"):
		return timeoutReason(stage), KindUpstreamError
	case hasPrefix(msg, "upstream prematurely closed"):
		// "connection", "FastCGI stdout", "FastCGI request".
		return prober.ReasonPrematureClose, KindUpstreamError
	case hasPrefix(msg, "upstream sent too big header"):
		return prober.ReasonHeaderTooBig, KindUpstreamError
	case hasPrefix(msg, "upstream sent unsupported FastCGI protocol version"):
		// 72 is the "H" of "HTTP/": fastcgi_pass to an HTTP server.
		return prober.ReasonProtocolMismatch, KindUpstreamError
	case hasPrefix(msg, "upstream sent "), hasPrefix(msg, "upstream rejected request"),
		hasPrefix(msg, "unexpected FastCGI request id"):
		// invalid header/status, duplicate header line (1.23.0+), no
		// valid HTTP/1.0 header, invalid FastCGI record type, goaway,
		// too large http2 frame, RST_STREAM.
		return prober.ReasonInvalidResponse, KindUpstreamError
	case hasPrefix(msg, "upstream SSL certificate"):
		// "verify error: (N:…)", "does not match \"name\"".
		return prober.ReasonTLSCertificateInvalid, KindUpstreamError
	case stage == StageTLSHandshake && (contains(msg, "wrong version number") || contains(msg, "packet length too long")):
		// A plain-text server answered the ClientHello: OpenSSL 1.1
		// (1408F10B) and 3 (0A00010B) word it alike; the code differs.
		return prober.ReasonProtocolMismatch, KindUpstreamError
	case hasPrefix(msg, "SSL_do_handshake() failed"), hasPrefix(msg, "peer closed connection in SSL handshake"):
		return prober.ReasonTLSHandshakeFailed, KindUpstreamError
	}
	switch errnoOf(msg) {
	case errnoECONNREFUSED:
		return prober.ReasonConnectionRefused, KindUpstreamError
	case errnoENOENT:
		return prober.ReasonSocketNotFound, KindUpstreamError
	case errnoEACCES:
		return prober.ReasonPermissionDenied, KindUpstreamError
	case errnoEAGAIN:
		if stage == StageConnect {
			return prober.ReasonBacklogFull, KindUpstreamError
		}
	case errnoEHOSTUNREACH:
		return prober.ReasonNoRouteToHost, KindUpstreamError
	case errnoENETUNREACH:
		return prober.ReasonNetworkUnreachable, KindUpstreamError
	case errnoETIMEDOUT:
		return timeoutReason(stage), KindUpstreamError
	case errnoECONNRESET, errnoEPIPE:
		if stage == StageTLSHandshake {
			return prober.ReasonTLSHandshakeFailed, KindUpstreamError
		}
		return prober.ReasonConnectionReset, KindUpstreamError
	}
	if level != LevelUnknown && level <= LevelError {
		return prober.ReasonNone, KindUnparsed
	}
	return prober.ReasonNone, KindOther
}

// timeoutReason names a timeout by the stage it cut, as nginx's
// *_connect_timeout covers the connect and the TLS handshake and
// *_read_timeout the rest (a send timeout reads as read_timeout, as the
// probes report it).
func timeoutReason(s Stage) prober.Reason {
	switch s {
	case StageConnect:
		return prober.ReasonConnectTimeout
	case StageTLSHandshake:
		return prober.ReasonTLSHandshakeTimeout
	}
	return prober.ReasonReadTimeout
}

// schemes are the values of u->schema, the scheme nginx prints before the
// peer: the protocol label is the scheme's name.
var schemes = [...]string{"http", "https", "fastcgi", "uwsgi", "suwsgi", "scgi", "grpc", "grpcs", "memcached"}

// upstreamField finds nginx's own `upstream: "…"` field in the fields
// after ", client: ", in the fixed order of ngx_http_log_error_handler
// (src/http/ngx_http_request.c): client, server, request, subrequest,
// upstream, host, referrer. The request line, Host and referrer are the
// client's bytes and may contain `, upstream: "…"`: the field is read
// where nginx puts it, after a request line parsed as nginx accepts it,
// and a line that stays ambiguous yields no peer at all.
func upstreamField(f []byte) (string, []byte) {
	// client: addr_text has neither comma nor quote.
	i := bytes.Index(f, []byte(", server: "))
	if i < 0 || bytes.IndexByte(f[:i], '"') >= 0 {
		return "", nil
	}
	f = f[i+len(", server: "):]
	// server: the configured server_name, which precedes any client
	// text: the first request or upstream field is the real one.
	req := bytes.Index(f, []byte(`, request: "`))
	up := bytes.Index(f, []byte(`, upstream: "`))
	switch {
	case req >= 0 && (up < 0 || req < up):
		rest, ok := skipRequest(f[req+len(`, request: "`):])
		if !ok {
			return "", nil
		}
		f = rest
	case up >= 0:
		f = f[up:]
	default:
		return "", nil
	}
	if hasPrefix(f, `, subrequest: "`) {
		// sr->uri is decoded and may hold anything: accept only an
		// unambiguous end.
		n := bytes.Count(f, []byte(`", upstream: "`))
		if n != 1 {
			return "", nil
		}
		f = f[bytes.Index(f, []byte(`", upstream: "`))+1:]
	}
	if !hasPrefix(f, `, upstream: "`) {
		return "", nil
	}
	v := f[len(`, upstream: "`):]
	for _, s := range schemes {
		if len(v) > len(s)+3 && hasPrefix(v, s) && string(v[len(s):len(s)+3]) == "://" {
			return s, v[len(s)+3:]
		}
	}
	if len(v) > 0 && (v[0] >= '0' && v[0] <= '9' || v[0] == '[' || hasPrefix(v, "unix:")) {
		// The stream module prints the bare peer
		// (ngx_stream_proxy_log_error): a stream{} target.
		return streamProtocol, v
	}
	return "", nil
}

// streamProtocol is the `protocol` of a stream{} line over TCP: the
// `tcp` label, or `tls` when proxy_ssl wraps the connection, which
// attribution tells by the target.
const streamProtocol = "tcp"

// skipRequest skips the request line and its closing quote. Since 1.21.1
// nginx refuses spaces and control characters in the request line, so it
// is METHOD SP URI SP HTTP/d.d with a URI free of spaces (an HTTP/0.9
// request line, without version, is not told apart and yields no peer); older versions accepted spaces in the URI, and
// then only a single possible end is accepted.
func skipRequest(r []byte) ([]byte, bool) {
	sp := bytes.IndexByte(r, ' ')
	if sp <= 0 {
		return nil, false
	}
	for _, c := range r[:sp] {
		if (c < 'A' || c > 'Z') && c != '_' && c != '-' {
			return nil, false
		}
	}
	uri := r[sp+1:]
	sp2 := bytes.IndexByte(uri, ' ')
	if sp2 < 0 {
		// A cut line: no field follows.
		return nil, false
	}
	if v, ok := versionEnd(uri[sp2+1:]); ok {
		return v, true
	}
	// A space inside the URI (nginx before 1.21.1): the end must be the
	// only ` HTTP/d.d"` followed by a field or the end of the line.
	var found []byte
	n := 0
	for off := sp2; off < len(uri); {
		j := bytes.Index(uri[off:], []byte(" HTTP/"))
		if j < 0 {
			break
		}
		j += off
		if v, ok := versionEnd(uri[j+1:]); ok && (len(v) == 0 || hasPrefix(v, ", ")) {
			found = v
			n++
		}
		off = j + 1
	}
	if n != 1 {
		return nil, false
	}
	return found, true
}

// versionEnd matches `HTTP/d.d"` at the start of b and returns what
// follows.
func versionEnd(b []byte) ([]byte, bool) {
	if len(b) < 9 || !hasPrefix(b, "HTTP/") || b[5] < '0' || b[5] > '9' || b[6] != '.' || b[7] < '0' || b[7] > '9' || b[8] != '"' {
		return nil, false
	}
	return b[9:], true
}
