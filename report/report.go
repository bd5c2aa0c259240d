// Package report holds the shapes in which the exporter describes its
// targets to people and tools: the `diagnose --output=json` report and the
// GET /api/v1/targets answer are both a Report, so one JSON Schema
// (docs/api/targets.schema.json) serves both, and the status page renders
// the same Target values, so the page, the API and diagnose always agree.
//
// Nothing from the configuration that may be secret is ever put in a
// Target: header values (proxy_set_header, including Host) and TLS key or
// certificate contents are never read; a client certificate is reported
// only as configured or not.
package report

import (
	"errors"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/capacity"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// Verdicts of a target.
const (
	VerdictOK     = "ok"
	VerdictFailed = "failed"
	VerdictDown   = "down"       // marked down in the config, not probed
	VerdictNotRun = "not_probed" // diagnose --list
	// VerdictNoResult: the diagnose run was interrupted before this probe
	// finished.
	VerdictNoResult = "no_result"
	// VerdictPending: the server has not finished its first scheduled
	// probe since the exporter started or the target appeared.
	VerdictPending = "pending"
	// VerdictInconclusive: the probe ended without a verdict about the
	// backend (the exporter's --probe.timeout, or its own resources).
	VerdictInconclusive = "inconclusive"
)

// Verdicts lists every verdict, for documentation and the schema test.
var Verdicts = [...]string{VerdictOK, VerdictFailed, VerdictDown, VerdictNotRun, VerdictNoResult, VerdictPending, VerdictInconclusive}

// Report describes every target of one configuration: diagnose's JSON
// output and the body of GET /api/v1/targets.
type Report struct {
	Config string `json:"config"`
	// Error is set when the configuration could not be loaded.
	Error string `json:"error,omitempty"`
	// Probed is false for diagnose --list.
	Probed bool `json:"probed"`
	// Healthy is true when every probed primary server succeeded:
	// diagnose's exit status 0.
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

	// GeneratedAt and Exporter are set by the server, whose verdicts come
	// from its schedule rather than from probes run for this answer.
	GeneratedAt *time.Time     `json:"generated_at,omitempty"`
	Exporter    *ExporterState `json:"exporter,omitempty"`
	// Facts are what other signals know about the whole configuration
	// (see Fact).
	Facts []Fact `json:"facts,omitempty"`
}

// ExporterState is the serving exporter's own state.
type ExporterState struct {
	Version string `json:"version,omitempty"`
	// ConfigLoaded is false when the last load of nginx's configuration
	// failed: the targets are those of the last good load.
	ConfigLoaded      bool       `json:"config_loaded"`
	ConfigLoadedAt    *time.Time `json:"config_loaded_at,omitempty"`
	IntervalSeconds   float64    `json:"probe_interval_seconds"`
	ConfigFilesLoaded int        `json:"config_files"`
}

// Summary counts targets by outcome.
type Summary struct {
	// Upstreams counts distinct upstream names among the targets.
	Upstreams      int `json:"upstreams,omitempty"`
	Targets        int `json:"targets"`
	Probed         int `json:"probed"`
	Healthy        int `json:"healthy"`
	Failing        int `json:"failing"`
	FailingPrimary int `json:"failing_primary"`
	FailingBackup  int `json:"failing_backup"`
	// Inconclusive counts probes that gave no verdict; NoResult those an
	// interruption stopped before they finished; Pending those the
	// schedule has not probed yet.
	Inconclusive int `json:"inconclusive"`
	NoResult     int `json:"no_result"`
	Pending      int `json:"pending,omitempty"`
	Down         int `json:"down"`
	Dynamic      int `json:"dynamic"`
}

// Target is one upstream server.
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
	// Reason is the failure reason (docs/metrics.md), or the cause of an
	// inconclusive probe; empty on success.
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

	DurationSeconds float64    `json:"duration_seconds"`
	PhasesSeconds   Phases     `json:"phases_seconds,omitempty"`
	HTTPStatus      int        `json:"http_status,omitempty"`
	TLSNotAfter     *time.Time `json:"tls_not_after,omitempty"`
	// LastProbe is when the last probe finished; Probes counts the
	// probes since the target appeared.
	LastProbe *time.Time `json:"last_probe,omitempty"`
	Probes    uint64     `json:"probes,omitempty"`

	// Logged is what nginx's error log says about the server lately.
	Logged *Logged `json:"logged,omitempty"`

	Params   Params   `json:"params"`
	Settings Settings `json:"settings"`
	Sources  []string `json:"sources,omitempty"`

	// Capacity says whether a failing or slow server that listens on
	// this host is full or down (capacity.Summary).
	Capacity *capacity.Summary `json:"capacity,omitempty"`

	// Facts are what other signals (the error log, nginx's running
	// state, saturation) know about this server.
	Facts []Fact `json:"facts,omitempty"`
}

// Fact is one observation a signal other than the probe adds to a target
// or to the report: each signal contributes its facts without changing
// the page, the API or the schema.
type Fact struct {
	// Source names the signal (e.g. "error_log"); Name what it observed.
	Source string `json:"source"`
	Name   string `json:"name"`
	// Value is for people; State is a closed word tools can match on:
	// ok, warning, failing or unknown.
	Value string `json:"value"`
	State string `json:"state"`
	// Lines are verbatim evidence (e.g. nginx's log lines), newest last.
	Lines []string `json:"lines,omitempty"`
}

// Fact states.
const (
	FactOK      = "ok"
	FactWarning = "warning"
	FactFailing = "failing"
	FactUnknown = "unknown"
)

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

// New describes the targets of l before any probe: every probed target
// has the verdict not_probed until AddResults.
func New(config string, l *discovery.Loaded, timeout time.Duration) *Report {
	rep := &Report{
		Config:              config,
		Healthy:             true,
		ProbeTimeoutSeconds: timeout.Seconds(),
		Targets:             make([]Target, 0, len(l.Set.Targets)),
		UnusedUpstreams:     l.Nginx.UnusedUpstreams,
	}
	for _, t := range l.Set.Targets {
		rep.Targets = append(rep.Targets, NewTarget(t))
	}
	rep.Dynamic = DynamicOf(l)
	rep.Summary = Summary{Upstreams: Upstreams(l.Set.Targets), Targets: len(l.Set.Targets), Probed: l.Set.Probed, Down: l.Set.Down, Dynamic: l.Set.Dynamic}
	return rep
}

// Upstreams counts the distinct upstream names of targets.
func Upstreams(targets []*discovery.Target) int {
	seen := make(map[string]struct{})
	for _, t := range targets {
		seen[t.Upstream] = struct{}{}
	}
	return len(seen)
}

// DynamicOf lists the unprobeable *_pass directives of l.
func DynamicOf(l *discovery.Loaded) []Dynamic {
	var out []Dynamic
	for _, d := range l.Nginx.Dynamic {
		out = append(out, Dynamic{Directive: d.Directive, Source: d.Source, Address: d.Address, Reason: d.Reason})
	}
	return out
}

// NewTarget describes t before any probe.
func NewTarget(t *discovery.Target) Target {
	var out Target
	describe(t, &out, nil)
	return out
}

// describe overwrites out with t before any probe. The TLS summary goes
// into tls when given (a Scratch's own), into a new value otherwise.
func describe(t *discovery.Target, out *Target, tls *TLS) {
	s := t.Settings()
	*out = Target{
		Upstream: t.Upstream,
		Server:   t.Server,
		Address:  t.Address,
		Protocol: t.Protocol,
		Implicit: t.Implicit,
		Backup:   s.Params.Backup,
		Down:     s.Params.Down,
		Verdict:  VerdictNotRun,
		Params: Params{
			Weight:             s.Params.Weight,
			MaxFails:           s.Params.MaxFails,
			FailTimeoutSeconds: s.Params.FailTimeout.Seconds(),
			MaxConns:           s.Params.MaxConns,
			Resolve:            s.Params.Resolve,
		},
		Settings: Settings{
			ConnectTimeoutSeconds: s.ConnectTimeout.Seconds(),
			ReadTimeoutSeconds:    s.ReadTimeout.Seconds(),
			SendTimeoutSeconds:    s.SendTimeout.Seconds(),
		},
		Sources: t.Sources,
	}
	if t.Probe == nil {
		out.Verdict = VerdictDown
		return
	}
	p := t.Probe
	out.Network = p.Network
	out.Settings.BufferSizeBytes = p.BufferSize
	if t.Kind.Protocol == protocol.HTTP {
		out.Settings.HTTPVersion = p.Request().HTTP.Version
	}
	out.Settings.RuntimeResolve = p.Resolve != nil && !p.Resolve.System
	if p.TLS != nil {
		if tls == nil {
			tls = new(TLS)
		}
		*tls = TLS{
			Verify:            p.TLS.Verify,
			VerifyName:        p.TLS.VerifyName,
			SNI:               p.TLS.ServerName,
			ClientCertificate: p.TLS.Certificate != "",
		}
		out.Settings.TLS = tls
	}
}

// FromStatus describes a target with its latest probe: the one value
// diagnose, the API and the status page all render. noResult is the
// verdict of a probeable target without a finished probe (no_result for
// an interrupted diagnose, pending for the schedule).
func FromStatus(st *scheduler.Status, capSeconds float64, noResult string) Target {
	t := NewTarget(st.Target)
	t.SetStatus(st, capSeconds, noResult)
	return t
}

// SetStatus fills in the verdict from st's latest probe.
func (t *Target) SetStatus(st *scheduler.Status, capSeconds float64, noResult string) {
	t.setStatus(st, capSeconds, noResult, nil)
}

// Scratch describes one target at a time into storage it reuses: the
// status page and the API describe thousands of targets per request, one
// after the other, without a Target (and its phases map and times) per
// server. The facts are still decided by NewTarget and SetStatus's code.
type Scratch struct {
	t         Target
	tls       TLS
	phases    Phases
	lastProbe time.Time
	notAfter  time.Time
	logged    Logged
	facts     []Fact
	// hints keeps the hint and runbook of each failure seen: a few
	// reasons repeat over thousands of servers, and building the hint's
	// text per server allocated about 5 MB per page of 10,000.
	hints map[hintKey][2]string
}

type hintKey struct {
	reason            prober.Reason
	protocol, network string
}

func (s *Scratch) hint(r prober.Reason, label, network string) (hint, runbook string) {
	k := hintKey{r, label, network}
	if h, ok := s.hints[k]; ok {
		return h[0], h[1]
	}
	hint, runbook = Hint(r, label, network), RunbookURL(r)
	if s.hints == nil {
		s.hints = map[hintKey][2]string{}
	}
	s.hints[k] = [2]string{hint, runbook}
	return hint, runbook
}

// Describe describes st as FromStatus does. The Target, and everything it
// points to that Scratch owns, is valid until the next call.
func (s *Scratch) Describe(st *scheduler.Status, capSeconds float64, noResult string) *Target {
	describe(st.Target, &s.t, &s.tls)
	s.t.setStatus(st, capSeconds, noResult, s)
	return &s.t
}

// SetLogged attaches a copy of lg, held by s, to the Target Describe
// returned.
func (s *Scratch) SetLogged(lg *Logged) *Logged {
	s.logged = *lg
	s.t.Logged = &s.logged
	return &s.logged
}

// AddFacts appends facts to the Target Describe returned, in storage s
// reuses.
func (s *Scratch) AddFacts(facts []Fact) {
	if len(facts) == 0 {
		return
	}
	if s.t.Facts == nil {
		s.t.Facts = s.facts[:0]
	}
	s.t.Facts = append(s.t.Facts, facts...)
	s.facts = s.t.Facts
}

// VerdictOf is the verdict SetStatus gives st, and its reason (the
// failure reason, or the cause of a probe without verdict): enough to
// count and order targets without describing them.
func VerdictOf(st *scheduler.Status, noResult string) (verdict, reason string) {
	switch r := &st.Result; {
	case st.Target.Probe == nil:
		return VerdictDown, ""
	case !st.HasResult:
		return noResult, ""
	case r.Success:
		return VerdictOK, ""
	case r.Inconclusive != "":
		return VerdictInconclusive, string(r.Inconclusive)
	default:
		return VerdictFailed, string(r.Reason)
	}
}

// setStatus is SetStatus, keeping the phases and times in s when given.
func (t *Target) setStatus(st *scheduler.Status, capSeconds float64, noResult string, s *Scratch) {
	if st.Target.Probe == nil {
		return
	}
	if !st.HasResult {
		t.Verdict = noResult
		return
	}
	r := &st.Result
	if r.Address != "" {
		t.Address = r.Address
	}
	if !st.Finished.IsZero() {
		// Into s's storage when reused, so that nothing escapes then.
		if s != nil {
			t.LastProbe = &s.lastProbe
		} else {
			t.LastProbe = new(time.Time)
		}
		*t.LastProbe = st.Finished.UTC()
	}
	t.Probes = st.Runs
	t.Success = r.Success
	t.DurationSeconds = r.Duration.Seconds()
	if s != nil && s.phases != nil {
		// Every phase is always set, so the map is overwritten whole.
		t.PhasesSeconds = s.phases
	} else {
		t.PhasesSeconds = make(Phases, len(r.Phases))
		if s != nil {
			s.phases = t.PhasesSeconds
		}
	}
	for p, d := range r.Phases {
		t.PhasesSeconds[prober.PhaseNames[p]] = d.Seconds()
	}
	t.HTTPStatus = r.HTTPStatus
	if !r.TLSNotAfter.IsZero() {
		if s != nil {
			t.TLSNotAfter = &s.notAfter
		} else {
			t.TLSNotAfter = new(time.Time)
		}
		*t.TLSNotAfter = r.TLSNotAfter.UTC()
	}
	if r.Success {
		t.Verdict = VerdictOK
		return
	}
	if r.Err != nil {
		t.Error = r.Err.Error()
	}
	if r.Inconclusive != "" {
		// Unknown is not healthy (but for a silent UDP server, see
		// Count): the report says why there is no verdict, and what
		// would give one.
		t.Verdict = VerdictInconclusive
		t.Reason = string(r.Inconclusive)
		t.Hint = inconclusiveHint(r.Inconclusive, capSeconds, t)
		t.Detail = r.Detail
		return
	}
	t.Verdict = VerdictFailed
	t.Reason = string(r.Reason)
	t.NginxMessage = r.Reason.NginxMessageOver(t.Network)
	if s != nil {
		t.Hint, t.Runbook = s.hint(r.Reason, t.Protocol, t.Network)
	} else {
		t.Hint, t.Runbook = Hint(r.Reason, t.Protocol, t.Network), RunbookURL(r.Reason)
	}
	t.Detail = r.Detail
	t.Unverified = r.Err != nil && errors.Is(r.Err, prober.ErrCannotCheck)
}

// Count adds t's outcome to the summary and says whether t keeps the
// report healthy (a failing backup does; an unknown verdict does not).
func (s *Summary) Count(t *Target) (healthy bool) {
	return s.CountVerdict(t.Verdict, t.Reason, t.Backup)
}

// CountVerdict is Count for a target known by its verdict and reason
// (VerdictOf) and whether it is a backup.
func (s *Summary) CountVerdict(verdict, reason string, backup bool) (healthy bool) {
	switch verdict {
	case VerdictOK:
		s.Healthy++
	case VerdictNoResult:
		s.NoResult++
		return false
	case VerdictPending:
		s.Pending++
		return false
	case VerdictInconclusive:
		s.Inconclusive++
		// A silent UDP server is the usual state of a healthy one:
		// nginx logs no error for it either, so it leaves the report
		// healthy.
		return reason == string(prober.InconclusiveNoAnswer)
	case VerdictFailed:
		s.Failing++
		if backup {
			s.FailingBackup++
			return true
		}
		s.FailingPrimary++
		return false
	}
	return true
}

// AddResults fills in the verdicts and the summary from one probe round;
// statuses are in the order of rep.Targets.
func (rep *Report) AddResults(statuses []scheduler.Status) {
	rep.Probed = true
	for i := range statuses {
		t := &rep.Targets[i]
		t.SetStatus(&statuses[i], rep.ProbeTimeoutSeconds, VerdictNoResult)
		if !rep.Summary.Count(t) {
			rep.Healthy = false
		}
	}
}
