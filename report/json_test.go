package report

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

var jsonStrings = []string{"", "app", "10.0.0.1:80", `a"b\c`, "<script>&amp;</script>", "\u2028\u2029", "\xff\xfe bad utf-8",
	"\x00\x01\x1f\t\n\r\b\f", "日本語 ü", "read_timeout", "x\u007f\u0080"}

var timeZones = []*time.Location{time.UTC, time.FixedZone("plus", 5*3600+1800), time.FixedZone("minus", -7*3600), time.FixedZone("odd", 23*3600+59*60)}

// fill sets v, and everything it holds, to random values: a field added
// to Target anywhere gets one, so that the comparison with encoding/json
// covers it.
func fill(rng *rand.Rand, v reflect.Value, depth int) {
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		t := time.Unix(rng.Int64N(4e9), rng.Int64N(2e9)%1e9).In(timeZones[rng.IntN(len(timeZones))])
		switch rng.IntN(30) {
		case 0:
			t = time.Time{}
		case 1:
			t = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // encoding/json refuses it
		}
		v.Set(reflect.ValueOf(t))
		return
	case reflect.TypeFor[Phases]():
		if rng.IntN(4) == 0 {
			return
		}
		p := Phases{}
		for _, k := range []string{"connect", "tls", "processing", "transfer", "resolve"} {
			if rng.IntN(3) > 0 {
				p[k] = randFloat(rng)
			}
		}
		if rng.IntN(20) == 0 {
			p["odd<key>"] = 1
		}
		v.Set(reflect.ValueOf(p))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(jsonStrings[rng.IntN(len(jsonStrings))])
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt([]int64{0, 1, -3, 200, math.MaxInt32}[rng.IntN(5)])
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		v.SetUint([]uint64{0, 1, 7, math.MaxUint32}[rng.IntN(4)])
	case reflect.Float64:
		v.SetFloat(randFloat(rng))
	case reflect.Pointer:
		if depth > 0 && rng.IntN(3) == 0 {
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(rng, p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		if rng.IntN(3) == 0 {
			return
		}
		n := rng.IntN(3)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(rng, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		if rng.IntN(4) == 0 {
			return
		}
		m := reflect.MakeMap(v.Type())
		for range rng.IntN(4) {
			k := reflect.New(v.Type().Key()).Elem()
			fill(rng, k, depth+1)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(rng, e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(rng, v.Field(i), depth)
			}
		}
	default:
		panic("fill: no values for " + v.Type().String())
	}
}

func randFloat(rng *rand.Rand) float64 {
	switch rng.IntN(12) {
	case 0:
		return 0
	case 1:
		return 1e-7
	case 2:
		return 3e21
	case 3:
		return -2.5
	case 4:
		if rng.IntN(10) == 0 {
			return math.NaN() // encoding/json refuses it
		}
	}
	return rng.Float64() * 100
}

// TestAppendJSONAsEncodingJSON: AppendJSON writes every Target, byte for
// byte, as encoding/json does, and fails where it fails.
func TestAppendJSONAsEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	fast := 0
	for i := range 5000 {
		var tg Target
		fill(rng, reflect.ValueOf(&tg).Elem(), 0)
		if i%2 == 0 {
			// As the API serves them: no capacity summary.
			tg.Capacity = nil
		}
		want, werr := json.Marshal(&tg)
		got, gerr := tg.AppendJSON([]byte("prefix"))
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%+v: error %v, encoding/json's %v", tg, gerr, werr)
		}
		if werr == nil && string(got) != "prefix"+string(want) {
			t.Fatalf("%+v:\n got %s\nwant prefix%s", tg, got, want)
		}
		if tg.plain() {
			fast++
		}
	}
	if fast < 1000 {
		t.Errorf("only %d of 5000 targets written without encoding/json: the comparison tests little", fast)
	}
}

// TestAppendJSONAllocates: a served target, with phases, times, the
// error log's counts and facts, is appended without allocating.
func TestAppendJSONAllocates(t *testing.T) {
	at := time.Date(2026, 11, 27, 3, 0, 0, 123, time.UTC)
	tg := Target{Upstream: "app", Server: "10.0.0.1:80", Address: "10.0.0.1:80", Protocol: "http", Verdict: VerdictFailed,
		Reason: "connection_refused", PhasesSeconds: Phases{"connect": 0.0003, "tls": 0, "processing": 0, "transfer": 0, "resolve": 0},
		LastProbe: &at, TLSNotAfter: &at, Logged: &Logged{Errors: map[string]int{"connection_refused": 3, "read_timeout": 1}, BodyErrors: map[string]int{"premature_close": 1}, Last: at},
		Sources: []string{"/etc/nginx/nginx.conf:12"}, Facts: []Fact{{Source: "capacity", Name: "capacity", Value: "down", State: FactFailing}}}
	b := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(50, func() { b, _ = tg.AppendJSON(b[:0]) }); n != 0 {
		t.Errorf("%.0f allocations", n)
	}
}
