package nginxconf

import (
	"math"
	"time"
)

// parseTime is ngx_parse_time (src/core/ngx_parse.c). With isSec false it
// parses a millisecond directive value (proxy_read_timeout): units w d h m
// s ms, a bare number means seconds, y and M are refused. With isSec true
// (fail_timeout, slow_start) units y M w d h m s are allowed and ms is not.
// Units must come in decreasing order and may be separated by spaces
// ("1h 30m", "1h30s"). ok is false when nginx would say "invalid value".
func parseTime(s string, isSec bool) (d time.Duration, ok bool) {
	const (
		stStart = iota
		stYear
		stMonth
		stWeek
		stDay
		stHour
		stMin
		stSec
		stMsec
		stLast
	)
	const maxInt = math.MaxInt64
	var (
		value, total int64
		valid        bool
		step         = stStart
		max, scale   int64
	)
	if !isSec {
		step = stMonth
	}
	cutoff, cutlim := int64(maxInt/10), int64(maxInt%10)
	p := 0
	for p < len(s) {
		c := s[p]
		if c >= '0' && c <= '9' {
			if value >= cutoff && (value > cutoff || int64(c-'0') > cutlim) {
				return 0, false
			}
			value = value*10 + int64(c-'0')
			valid = true
			p++
			continue
		}
		p++
		switch c {
		case 'y':
			if step > stStart {
				return 0, false
			}
			step, max, scale = stYear, maxInt/(60*60*24*365), 60*60*24*365
		case 'M':
			if step >= stMonth {
				return 0, false
			}
			step, max, scale = stMonth, maxInt/(60*60*24*30), 60*60*24*30
		case 'w':
			if step >= stWeek {
				return 0, false
			}
			step, max, scale = stWeek, maxInt/(60*60*24*7), 60*60*24*7
		case 'd':
			if step >= stDay {
				return 0, false
			}
			step, max, scale = stDay, maxInt/(60*60*24), 60*60*24
		case 'h':
			if step >= stHour {
				return 0, false
			}
			step, max, scale = stHour, maxInt/(60*60), 60*60
		case 'm':
			if p < len(s) && s[p] == 's' {
				if isSec || step >= stMsec {
					return 0, false
				}
				p++
				step, max, scale = stMsec, maxInt, 1
				break
			}
			if step >= stMin {
				return 0, false
			}
			step, max, scale = stMin, maxInt/60, 60
		case 's':
			if step >= stSec {
				return 0, false
			}
			step, max, scale = stSec, maxInt, 1
		case ' ':
			if step >= stSec {
				return 0, false
			}
			step, max, scale = stLast, maxInt, 1
		default:
			return 0, false
		}
		if step != stMsec && !isSec {
			scale *= 1000
			max /= 1000
		}
		if value > max {
			return 0, false
		}
		value *= scale
		if total > maxInt-value {
			return 0, false
		}
		total += value
		value = 0
		for p < len(s) && s[p] == ' ' {
			p++
		}
	}
	if !valid {
		return 0, false
	}
	if !isSec {
		if value > maxInt/1000 {
			return 0, false
		}
		value *= 1000
	}
	if total > maxInt-value {
		return 0, false
	}
	total += value
	// total is in milliseconds (isSec false) or seconds (isSec true).
	unit := time.Millisecond
	if isSec {
		unit = time.Second
	}
	if total > int64(math.MaxInt64/unit) {
		// nginx accepts it; a Duration cannot hold it. Such a timeout
		// never fires in practice.
		return time.Duration(math.MaxInt64), true
	}
	return time.Duration(total) * unit, true
}

// parseSize is ngx_parse_size: a byte count with an optional k/K or m/M
// suffix. ok is false when nginx would say "invalid value".
func parseSize(s string) (n int, ok bool) {
	if s == "" {
		return 0, false
	}
	scale := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		scale, s = 1024, s[:len(s)-1]
	case 'm', 'M':
		scale, s = 1024*1024, s[:len(s)-1]
	}
	if s == "" {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (math.MaxInt64-int64(c-'0'))/10 {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if v > math.MaxInt64/scale || v*scale > int64(math.MaxInt) {
		return 0, false
	}
	return int(v * scale), true
}

// parseInt is ngx_atoi: decimal digits only, no sign.
func parseInt(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (math.MaxInt-int(c-'0'))/10 {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}
