package diagnose

import (
	"encoding/json"
	"io"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/capacity"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// Verdicts of a target in the report.
const (
	VerdictOK       = "ok"
	VerdictFailed   = "failed"
	VerdictDown     = "down"       // marked down in the config, not probed
	VerdictNotRun   = "not_probed" // --list
	VerdictNoResult = "no_result"  // the run was interrupted before this probe finished
	// VerdictInconclusive: the probe ended without a verdict about the
	// backend (the exporter's --probe.timeout, or its own resources).
	VerdictInconclusive = "inconclusive"
)

// Report is the machine-readable result of diagnose (--output=json); the
// table is rendered from it too, so both always agree.
type Report struct {
	Config string `json:"config"`
	// Error is set when the configuration could not be loaded.
	Error string `json:"error,omitempty"`
	// Probed is false for --list.
	Probed bool `json:"probed"`
	// Healthy is true when every probed primary server succeeded: exit
	// status 0.
	Healthy bool    `json:"healthy"`
	Summary Summary `json:"summary"`
	// ProbeTimeoutSeconds is --probe.timeout, the cap on every phase.
	ProbeTimeoutSeconds float64  `json:"probe_timeout_seconds"`
	Notes               []string `json:"notes,omitempty"`
	Targets             []Target `json:"targets"`
	// Dynamic lists *_pass directives whose address is only known per
	// request; they cannot be probed.
	Dynamic []Dynamic `json:"dynamic,omitempty"`
	// UnusedUpstreams are upstream{} blocks no static *_pass uses.
	UnusedUpstreams []string `json:"unused_upstreams,omitempty"`
	// Nginx is the running nginx compared with the disk and DNS; absent
	// when not checked.
	Nginx *Nginx `json:"nginx,omitempty"`
	// ErrorLog is what nginx logged lately, nil when not read.
	ErrorLog *ErrorLogReport `json:"error_log,omitempty"`
}

// Summary counts targets by outcome.
type Summary struct {
	Targets        int `json:"targets"`
	Probed         int `json:"probed"`
	Healthy        int `json:"healthy"`
	Failing        int `json:"failing"`
	FailingPrimary int `json:"failing_primary"`
	FailingBackup  int `json:"failing_backup"`
	// Inconclusive counts probes that gave no verdict; NoResult those an
	// interruption stopped before they finished.
	Inconclusive int `json:"inconclusive"`
	NoResult     int `json:"no_result"`
	Down         int `json:"down"`
	Dynamic      int `json:"dynamic"`
}

// Target is one upstream server in the report.
type Target struct {
	Upstream string `json:"upstream"`
	Server   string `json:"server"`
	Address  string `json:"address"`
	Protocol string `json:"protocol"`
	Network  string `json:"network,omitempty"`
	Implicit bool   `json:"implicit"`
	Backup   bool   `json:"backup"`
	Down     bool   `json:"down"`

	Verdict string `json:"verdict"`
	Success bool   `json:"success"`
	// Reason is the failure reason (docs/metrics.md), empty on success.
	Reason       string `json:"reason,omitempty"`
	NginxMessage string `json:"nginx_message,omitempty"`
	Hint         string `json:"hint,omitempty"`
	Runbook      string `json:"runbook,omitempty"`
	Detail       string `json:"detail,omitempty"`
	// Error is the system error behind the reason (addresses and errno
	// text only).
	Error string `json:"error,omitempty"`
	// Unverified marks a permission verdict this user could not confirm
	// for nginx's worker user.
	Unverified bool `json:"unverified,omitempty"`

	DurationSeconds float64            `json:"duration_seconds"`
	PhasesSeconds   map[string]float64 `json:"phases_seconds,omitempty"`
	HTTPStatus      int                `json:"http_status,omitempty"`
	TLSNotAfter     *time.Time         `json:"tls_not_after,omitempty"`

	// Logged is what nginx's error log says about the server lately.
	Logged *Logged `json:"logged,omitempty"`

	Params   Params   `json:"params"`
	Settings Settings `json:"settings"`
	Sources  []string `json:"sources,omitempty"`

	// Capacity says whether a failing or slow server that listens on
	// this host is full or down (capacity.Summary).
	Capacity *capacity.Summary `json:"capacity,omitempty"`
}

// Params are the server line's parameters.
type Params struct {
	Weight             int     `json:"weight"`
	MaxFails           int     `json:"max_fails"`
	FailTimeoutSeconds float64 `json:"fail_timeout_seconds"`
	MaxConns           int     `json:"max_conns"`
	Resolve            bool    `json:"resolve"`
}

// Settings are the effective nginx settings toward the target. Header
// values and certificate paths are deliberately absent.
type Settings struct {
	ConnectTimeoutSeconds float64 `json:"connect_timeout_seconds"`
	ReadTimeoutSeconds    float64 `json:"read_timeout_seconds"`
	SendTimeoutSeconds    float64 `json:"send_timeout_seconds"`
	BufferSizeBytes       int     `json:"buffer_size_bytes,omitempty"`
	HTTPVersion           string  `json:"http_version,omitempty"`
	// RuntimeResolve: nginx resolves the name while running, through
	// its `resolver`.
	RuntimeResolve bool `json:"runtime_resolve,omitempty"`
	TLS            *TLS `json:"tls,omitempty"`
}

// TLS summarises proxy_ssl_* without paths or key material.
type TLS struct {
	Verify            bool   `json:"verify"`
	VerifyName        string `json:"verify_name,omitempty"`
	SNI               string `json:"sni,omitempty"`
	ClientCertificate bool   `json:"client_certificate"`
}

// Dynamic is a *_pass that cannot be probed.
type Dynamic struct {
	Directive string `json:"directive"`
	Source    string `json:"source"`
	Address   string `json:"address"`
	Reason    string `json:"reason"`
}

func newReport(config string, l *discovery.Loaded, timeout time.Duration) *Report {
	rep := &Report{
		Config:              config,
		Healthy:             true,
		ProbeTimeoutSeconds: timeout.Seconds(),
		Targets:             make([]Target, 0, len(l.Set.Targets)),
		UnusedUpstreams:     l.Nginx.UnusedUpstreams,
	}
	for _, t := range l.Set.Targets {
		rep.Targets = append(rep.Targets, newTarget(t))
	}
	for _, d := range l.Nginx.Dynamic {
		rep.Dynamic = append(rep.Dynamic, Dynamic{Directive: d.Directive, Source: d.Source, Address: d.Address, Reason: d.Reason})
	}
	rep.Summary = Summary{Targets: len(l.Set.Targets), Probed: l.Set.Probed, Down: l.Set.Down, Dynamic: l.Set.Dynamic}
	return rep
}

func newTarget(t *discovery.Target) Target {
	out := Target{
		Upstream: t.Upstream,
		Server:   t.Server,
		Address:  t.Address,
		Protocol: t.Protocol,
		Implicit: t.Implicit,
		Backup:   t.Params.Backup,
		Down:     t.Params.Down,
		Verdict:  VerdictNotRun,
		Params: Params{
			Weight:             t.Params.Weight,
			MaxFails:           t.Params.MaxFails,
			FailTimeoutSeconds: t.Params.FailTimeout.Seconds(),
			MaxConns:           t.Params.MaxConns,
			Resolve:            t.Params.Resolve,
		},
		Settings: Settings{
			ConnectTimeoutSeconds: t.ConnectTimeout.Seconds(),
			ReadTimeoutSeconds:    t.ReadTimeout.Seconds(),
			SendTimeoutSeconds:    t.SendTimeout.Seconds(),
		},
		Sources: t.Sources,
	}
	if t.Probe == nil {
		out.Verdict = VerdictDown
		return out
	}
	p := t.Probe
	out.Network = p.Network
	out.Settings.BufferSizeBytes = p.BufferSize
	if t.Kind.Protocol == protocol.HTTP {
		out.Settings.HTTPVersion = p.HTTP.Version
	}
	out.Settings.RuntimeResolve = p.Resolve != nil && !p.Resolve.System
	if p.TLS != nil {
		out.Settings.TLS = &TLS{
			Verify:            p.TLS.Verify,
			VerifyName:        p.TLS.VerifyName,
			SNI:               p.TLS.ServerName,
			ClientCertificate: p.TLS.Certificate != "",
		}
	}
	return out
}

// addResults fills in the verdicts and the summary from one probe round.
func (rep *Report) addResults(statuses []scheduler.Status) {
	rep.Probed = true
	for i := range statuses {
		st := &statuses[i]
		t := &rep.Targets[i]
		if st.Target.Probe == nil {
			continue
		}
		if !st.HasResult {
			t.Verdict = VerdictNoResult
			rep.Summary.NoResult++
			rep.Healthy = false
			continue
		}
		r := &st.Result
		if r.Address != "" {
			t.Address = r.Address
		}
		t.Success = r.Success
		t.DurationSeconds = r.Duration.Seconds()
		t.PhasesSeconds = make(map[string]float64, len(r.Phases))
		for p, d := range r.Phases {
			t.PhasesSeconds[prober.PhaseNames[p]] = d.Seconds()
		}
		t.HTTPStatus = r.HTTPStatus
		if !r.TLSNotAfter.IsZero() {
			na := r.TLSNotAfter.UTC()
			t.TLSNotAfter = &na
		}
		if r.Success {
			t.Verdict = VerdictOK
			rep.Summary.Healthy++
			continue
		}
		if r.Inconclusive != "" {
			// Unknown is not healthy: the exit status stays 1, and the
			// report says why there is no verdict.
			t.Verdict = VerdictInconclusive
			t.Reason = string(r.Inconclusive)
			t.Hint = inconclusiveHint(r.Inconclusive, rep.ProbeTimeoutSeconds, t)
			if r.Err != nil {
				t.Error = r.Err.Error()
			}
			t.Detail = r.Detail
			rep.Summary.Inconclusive++
			if r.Inconclusive != prober.InconclusiveNoAnswer {
				rep.Healthy = false
			}
			// A silent UDP server is the usual state of a healthy
			// one: nginx logs no error for it either, so it leaves
			// the report healthy.
			continue
		}
		t.Verdict = VerdictFailed
		t.Reason = string(r.Reason)
		t.NginxMessage = r.Reason.NginxMessageOver(t.Network)
		t.Hint = Hint(r.Reason, t.Protocol, t.Network)
		t.Runbook = RunbookURL(r.Reason)
		t.Detail = r.Detail
		if r.Err != nil {
			t.Error = r.Err.Error()
		}
		t.Unverified = unverified(r)
		rep.Summary.Failing++
		if t.Backup {
			rep.Summary.FailingBackup++
		} else {
			rep.Summary.FailingPrimary++
			rep.Healthy = false
		}
	}
}

// SlowAfter is the probe duration from which a healthy server's capacity
// is reported too: a server that answers slowly is often one whose
// requests queue.
const SlowAfter = time.Second

// addCapacity attaches the capacity of each failing, inconclusive (cut by
// --probe.timeout) or slow target.
func (rep *Report) addCapacity(targets []*discovery.Target, caps map[discovery.Key]capacity.Summary) {
	if len(caps) == 0 {
		return
	}
	for i, t := range targets {
		rt := &rep.Targets[i]
		slow := rt.Verdict == VerdictOK && rt.DurationSeconds >= SlowAfter.Seconds()
		if rt.Verdict != VerdictFailed && rt.Verdict != VerdictInconclusive && !slow {
			continue
		}
		if s, ok := caps[t.Key]; ok {
			rt.Capacity = &s
		}
	}
}

func writeJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
