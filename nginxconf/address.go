package nginxconf

import (
	"errors"
	"strings"
)

// address is the server part of a *_pass or upstream `server` argument.
type address struct {
	// raw is the address as written, without scheme and URI.
	raw string
	// host as written (IPv6 with brackets), port as written or defaulted.
	host        string
	port        string
	portWritten bool
	socketPath  string
}

func (a address) isUnix() bool { return a.socketPath != "" }

// bareHost is host without IPv6 brackets, for UpstreamServer.Host.
func (a address) bareHost() string {
	return strings.TrimSuffix(strings.TrimPrefix(a.host, "["), "]")
}

// uriVars are variables whose value starts the URI of a proxy_pass URL
// ("$request_uri" is "/path?args"), so that `http://app:8080$request_uri`
// has a static address.
var uriVars = map[string]bool{"request_uri": true, "uri": true, "document_uri": true, "is_args": true}

// addressPart cuts rest (after the scheme) at the end of its address, the
// way ngx_parse_url does: at "/" or "?" when a URI may follow, and at a
// variable that is known to start the URI. A unix socket ends at ":" when
// a URI may follow ("unix:/run/app.sock:/uri").
func addressPart(rest string, uriPart bool) string {
	if len(rest) >= 5 && strings.EqualFold(rest[:5], "unix:") {
		if uriPart {
			if i := strings.IndexByte(rest[5:], ':'); i >= 0 {
				return rest[:5+i]
			}
		}
		return rest
	}
	if !uriPart {
		return rest
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		end = i
	}
	for i := 0; i < end; i++ {
		if rest[i] != '$' {
			continue
		}
		name, _ := varName(rest[i+1:])
		if uriVars[strings.ToLower(name)] {
			end = i
			break
		}
	}
	return rest[:end]
}

// errUserinfo rejects "user:password@host" addresses. nginx has no
// userinfo in upstream addresses: it reads "password@host" as the port
// ("invalid port") or "user@host" as the host name ("host not found"), so
// it refuses such a configuration. The message never repeats the address,
// which would put the password into logs.
var errUserinfo = errors.New(`credentials ("user:password@") in an upstream address, which nginx does not accept`)

// parseAddress splits a static address (no variables) into host and port
// as ngx_parse_url does; defaultPort is used when none is written. Errors
// are ngx_parse_url's, which nginx prints as `ERR in upstream "RAW"`.
func parseAddress(raw, defaultPort string) (address, error) {
	a := address{raw: raw}
	if hasUserinfo(raw) {
		return a, errUserinfo
	}
	if len(raw) >= 5 && strings.EqualFold(raw[:5], "unix:") {
		a.socketPath = raw[5:]
		if a.socketPath == "" {
			return a, errors.New("no path in the unix domain socket")
		}
		return a, nil
	}
	if raw == "" {
		return a, errors.New("no host")
	}
	if strings.ContainsAny(raw, "/?") {
		return a, errors.New("invalid host")
	}
	host, port := raw, ""
	if strings.HasPrefix(raw, "[") {
		end := strings.IndexByte(raw, ']')
		if end < 0 {
			return a, errors.New("invalid host")
		}
		host = raw[:end+1]
		switch tail := raw[end+1:]; {
		case tail == "":
		case strings.HasPrefix(tail, ":"):
			port = tail[1:]
			a.portWritten = true
		default:
			return a, errors.New("invalid host")
		}
	} else if i := strings.LastIndexByte(raw, ':'); i >= 0 {
		host, port = raw[:i], raw[i+1:]
		a.portWritten = true
	}
	if host == "" || host == "[]" {
		return a, errors.New("no host")
	}
	if a.portWritten {
		n, ok := parseInt(port)
		if !ok || n < 1 || n > 65535 {
			return a, errors.New("invalid port")
		}
	} else {
		port = defaultPort
	}
	a.host, a.port = host, port
	return a, nil
}

// varName reads a variable name after "$": "name..." or "{name}...".
// It returns the name and the length consumed (0 when there is none).
func varName(s string) (string, int) {
	if strings.HasPrefix(s, "{") {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", 0
		}
		return s[1:end], end + 1
	}
	n := 0
	for n < len(s) {
		c := s[n]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			n++
			continue
		}
		break
	}
	return s[:n], n
}

// expandVars replaces the variables of s for which lookup has a value
// and leaves the others as written. all reports whether every variable
// was replaced.
func expandVars(s string, lookup func(name string) (string, bool)) (out string, all bool) {
	if !strings.Contains(s, "$") {
		return s, true
	}
	var b strings.Builder
	all = true
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		name, n := varName(s[i+1:])
		if n == 0 {
			// A lone "$" is not a variable for our purposes, but nginx
			// would not treat it as static either.
			b.WriteByte('$')
			s = s[i+1:]
			all = false
			continue
		}
		if v, ok := lookup(strings.ToLower(name)); ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+1+n])
			all = false
		}
		s = s[i+1+n:]
	}
	return b.String(), all
}

// hasUserinfo reports whether a TCP address carries "user[:password]@".
// A unix socket path may contain "@" legitimately.
func hasUserinfo(raw string) bool {
	return !hasUnixPrefix(raw) && strings.ContainsRune(raw, '@')
}

// redactUserinfo hides "user:password@" after the scheme of a *_pass
// argument kept for logs (a DynamicPass address).
func redactUserinfo(arg string) string {
	rest, prefix := arg, ""
	if i := strings.Index(arg, "://"); i >= 0 {
		prefix, rest = arg[:i+3], arg[i+3:]
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 || hasUnixPrefix(rest) {
		return arg
	}
	return prefix + "<redacted>@" + rest[at+1:]
}

func hasUnixPrefix(s string) bool { return len(s) >= 5 && strings.EqualFold(s[:5], "unix:") }
