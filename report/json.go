package report

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends t to b exactly as encoding/json encodes it (with
// HTML escaping, as json.Marshal and a json.Encoder do), and returns the
// extended buffer. GET /api/v1/targets encodes every target: the
// reflective encoder allocated for each target's phases, times and the
// error log's counts (four allocations and 230 bytes a target at
// 10,000), where this appends into the answer's one buffer.
// TestAppendJSONAsEncodingJSON holds it to encoding/json, for every
// field: a field added to Target, or to what it holds, fails it until it
// is written here. What is rare in a served answer (the capacity summary
// diagnose adds), and a value encoding/json refuses, take encoding/json.
func (t *Target) AppendJSON(b []byte) ([]byte, error) {
	if !t.plain() {
		return t.appendSlow(b)
	}
	b = append(b, `{"upstream":`...)
	b = appendJSONString(b, t.Upstream)
	b = append(b, `,"server":`...)
	b = appendJSONString(b, t.Server)
	b = append(b, `,"address":`...)
	b = appendJSONString(b, t.Address)
	b = append(b, `,"protocol":`...)
	b = appendJSONString(b, t.Protocol)
	b = appendOptString(b, `,"network":`, t.Network)
	b = appendBool(append(b, `,"implicit":`...), t.Implicit)
	b = appendBool(append(b, `,"backup":`...), t.Backup)
	b = appendBool(append(b, `,"down":`...), t.Down)
	b = append(b, `,"verdict":`...)
	b = appendJSONString(b, t.Verdict)
	b = appendBool(append(b, `,"success":`...), t.Success)
	b = appendOptString(b, `,"reason":`, t.Reason)
	b = appendOptString(b, `,"nginx_message":`, t.NginxMessage)
	b = appendOptString(b, `,"hint":`, t.Hint)
	b = appendOptString(b, `,"runbook":`, t.Runbook)
	b = appendOptString(b, `,"detail":`, t.Detail)
	b = appendOptString(b, `,"error":`, t.Error)
	if t.Unverified {
		b = append(b, `,"unverified":true`...)
	}
	b = appendFloat(append(b, `,"duration_seconds":`...), t.DurationSeconds)
	if len(t.PhasesSeconds) > 0 {
		b = appendPhases(append(b, `,"phases_seconds":`...), t.PhasesSeconds)
	}
	if t.HTTPStatus != 0 {
		b = strconv.AppendInt(append(b, `,"http_status":`...), int64(t.HTTPStatus), 10)
	}
	if t.TLSNotAfter != nil {
		b = appendTime(append(b, `,"tls_not_after":`...), *t.TLSNotAfter)
	}
	if t.LastProbe != nil {
		b = appendTime(append(b, `,"last_probe":`...), *t.LastProbe)
	}
	if t.Probes != 0 {
		b = strconv.AppendUint(append(b, `,"probes":`...), t.Probes, 10)
	}
	if lg := t.Logged; lg != nil {
		b = appendCounts(append(b, `,"logged":{"errors":`...), lg.Errors)
		if len(lg.BodyErrors) > 0 {
			b = appendCounts(append(b, `,"body_errors":`...), lg.BodyErrors)
		}
		b = appendTime(append(b, `,"last":`...), lg.Last)
		b = append(b, `,"last_line":`...)
		b = appendJSONString(b, lg.LastLine)
		b = appendBool(append(b, `,"while_probe_passes":`...), lg.WhileProbePasses)
		b = append(b, '}')
	}
	p := &t.Params
	b = strconv.AppendInt(append(b, `,"params":{"weight":`...), int64(p.Weight), 10)
	b = strconv.AppendInt(append(b, `,"max_fails":`...), int64(p.MaxFails), 10)
	b = appendFloat(append(b, `,"fail_timeout_seconds":`...), p.FailTimeoutSeconds)
	b = strconv.AppendInt(append(b, `,"max_conns":`...), int64(p.MaxConns), 10)
	b = appendBool(append(b, `,"resolve":`...), p.Resolve)
	s := &t.Settings
	b = appendFloat(append(b, `},"settings":{"connect_timeout_seconds":`...), s.ConnectTimeoutSeconds)
	b = appendFloat(append(b, `,"read_timeout_seconds":`...), s.ReadTimeoutSeconds)
	b = appendFloat(append(b, `,"send_timeout_seconds":`...), s.SendTimeoutSeconds)
	if s.BufferSizeBytes != 0 {
		b = strconv.AppendInt(append(b, `,"buffer_size_bytes":`...), int64(s.BufferSizeBytes), 10)
	}
	b = appendOptString(b, `,"http_version":`, s.HTTPVersion)
	if s.RuntimeResolve {
		b = append(b, `,"runtime_resolve":true`...)
	}
	if tls := s.TLS; tls != nil {
		b = appendBool(append(b, `,"tls":{"verify":`...), tls.Verify)
		b = appendOptString(b, `,"verify_name":`, tls.VerifyName)
		b = appendOptString(b, `,"sni":`, tls.SNI)
		b = appendBool(append(b, `,"client_certificate":`...), tls.ClientCertificate)
		b = append(b, '}')
	}
	b = append(b, '}')
	if len(t.Sources) > 0 {
		b = appendStrings(append(b, `,"sources":`...), t.Sources)
	}
	if len(t.Facts) > 0 {
		b = append(b, `,"facts":[`...)
		for i := range t.Facts {
			f := &t.Facts[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(append(b, `{"source":`...), f.Source)
			b = appendJSONString(append(b, `,"name":`...), f.Name)
			b = appendJSONString(append(b, `,"value":`...), f.Value)
			b = appendJSONString(append(b, `,"state":`...), f.State)
			if len(f.Lines) > 0 {
				b = appendStrings(append(b, `,"lines":`...), f.Lines)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// plain reports whether AppendJSON writes t itself: no capacity summary,
// every number finite, every time one encoding/json accepts, phases and
// counts whose keys need no escaping.
func (t *Target) plain() bool {
	if t.Capacity != nil {
		return false
	}
	for _, f := range [...]float64{t.DurationSeconds, t.Params.FailTimeoutSeconds,
		t.Settings.ConnectTimeoutSeconds, t.Settings.ReadTimeoutSeconds, t.Settings.SendTimeoutSeconds} {
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return false
		}
	}
	for k, v := range t.PhasesSeconds {
		if !plainKey(k) || math.IsInf(v, 0) || math.IsNaN(v) {
			return false
		}
	}
	if (t.TLSNotAfter != nil && !jsonTime(*t.TLSNotAfter)) || (t.LastProbe != nil && !jsonTime(*t.LastProbe)) {
		return false
	}
	return t.Logged == nil || jsonTime(t.Logged.Last)
}

// appendSlow is encoding/json's encoding of t, errors included.
func (t *Target) appendSlow(b []byte) ([]byte, error) {
	out, err := json.Marshal(t)
	if err != nil {
		return b, err
	}
	return append(b, out...), nil
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

// appendOptString appends the field name and s unless s is empty
// (omitempty).
func appendOptString(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, name...), s)
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendPhases is Phases.MarshalJSON, appended; p's keys are plain.
func appendPhases(b []byte, p Phases) []byte {
	var arr [8]string
	keys := arr[:0]
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		b = appendFloat(b, p[k])
	}
	return append(b, '}')
}

// appendCounts appends m as encoding/json encodes a map[string]int: keys
// sorted, escaped; nil as null.
func appendCounts(b []byte, m map[string]int) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	type kv struct {
		k string
		v int
	}
	// Room for every reason on the stack: a server fails for a few.
	var arr [32]kv
	all := arr[:0]
	for k, v := range m {
		all = append(all, kv{k, v})
	}
	slices.SortFunc(all, func(a, b kv) int { return cmp.Compare(a.k, b.k) })
	b = append(b, '{')
	for i, e := range all {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, e.k)
		b = strconv.AppendInt(append(b, ':'), int64(e.v), 10)
	}
	return append(b, '}')
}

// jsonTime reports whether time.Time.MarshalJSON accepts t: a year of
// four digits and a zone offset under 24 hours.
func jsonTime(t time.Time) bool {
	if y := t.Year(); y < 0 || y > 9999 {
		return false
	}
	_, off := t.Zone()
	return off > -24*3600 && off < 24*3600
}

// appendTime is time.Time.MarshalJSON, appended; t is a jsonTime.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONString is encoding/json's appendString with HTML escaping.
func appendJSONString(dst []byte, src string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(src); {
		if b := src[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, src[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(src[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, src[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029, escaped for JSONP as encoding/json does.
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, src[start:]...)
	return append(dst, '"')
}
