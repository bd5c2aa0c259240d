package report

import (
	"encoding/json"
	"math"
	"strconv"
)

// Phases are the seconds each phase of a probe took, by phase name
// (prober.PhaseNames).
type Phases map[string]float64

// MarshalJSON encodes p exactly as encoding/json encodes a
// map[string]float64: keys sorted, numbers as ES6 prints them. The API
// encodes one per target, and the generic map encoder allocates for every
// key and value (seven in ten of its allocations at 10,000 targets).
func (p Phases) MarshalJSON() ([]byte, error) {
	if p == nil {
		return []byte("null"), nil
	}
	var arr [8]string
	keys := arr[:0]
	for k, v := range p {
		if len(keys) == len(arr) || !plainKey(k) || math.IsInf(v, 0) || math.IsNaN(v) {
			// Not a phase table: the generic encoder, and its errors.
			return json.Marshal(map[string]float64(p))
		}
		keys = append(keys, k)
	}
	return appendPhases(make([]byte, 0, 2+len(keys)*24), p), nil
}

// plainKey: k needs no escaping in JSON.
func plainKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// appendFloat is encoding/json's float64 encoding.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
