package report

import "time"

// ErrorLogReport is what diagnose read from nginx's error logs.
type ErrorLogReport struct {
	Files        []LogFile `json:"files"`
	BytesPerFile int64     `json:"bytes_per_file"`
	// Since is the time written on the oldest entry read.
	Since *time.Time `json:"since,omitempty"`
	// Unattributed counts errors of no single server, by reason.
	Unattributed    map[string]int `json:"unattributed,omitempty"`
	NoLiveUpstreams map[string]int `json:"no_live_upstreams,omitempty"`
	// Intermittent counts servers nginx logged errors for although
	// their probe passes now.
	Intermittent int `json:"intermittent"`
}

// LogFile is one error log.
type LogFile struct {
	Path  string `json:"path"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	Bytes int64  `json:"bytes_read"`
}

// Logged is what nginx logged lately about one server.
type Logged struct {
	Errors     map[string]int `json:"errors"`
	BodyErrors map[string]int `json:"body_errors,omitempty"`
	// Last is the time written on the last error line, in nginx's time
	// zone; LastLine is that line without query strings and header
	// values.
	Last     time.Time `json:"last"`
	LastLine string    `json:"last_line"`
	// WhileProbePasses: nginx failed real requests to a server whose
	// probe passes now.
	WhileProbePasses bool `json:"while_probe_passes"`
}
