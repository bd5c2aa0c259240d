package prober

import (
	"time"
)

// Phase is one step of a probe, named as blackbox_exporter names them.
type Phase int

// The phases of a probe, in the order they happen.
const (
	PhaseResolve Phase = iota
	PhaseConnect
	PhaseTLS
	PhaseProcessing
	PhaseTransfer
	numPhases
)

// PhaseNames holds the label value of each phase, indexed by Phase.
var PhaseNames = [numPhases]string{"resolve", "connect", "tls", "processing", "transfer"}

func (p Phase) String() string { return PhaseNames[p] }

// Result is the outcome of one probe. Probers fill it in place so that the
// scheduler can reuse one Result per target without allocating.
type Result struct {
	Success bool
	Reason  Reason
	// Unknown: the probe ended without a verdict (a UDP server that
	// neither answered nor drew an ICMP error). Success is false and
	// Reason empty: it is neither healthy nor failing, and is exported as
	// such (docs/metrics.md).
	Unknown bool
	// Err is the underlying error, for logs only: it may hold addresses and
	// system messages, never request headers, so it must not become a label.
	Err error
	// Detail says more about a failure for humans, e.g. which protocol the
	// backend actually speaks on a protocol_mismatch.
	Detail string
	// Address is the peer actually dialled, when the probe resolved it at
	// run time.
	Address string

	Duration time.Duration
	Phases   [numPhases]time.Duration

	// HTTPStatus is the status code read from the backend, 0 when none.
	HTTPStatus int
	// TLSNotAfter is the leaf certificate's expiry, zero when no
	// certificate was seen.
	TLSNotAfter time.Time
}

// Reset clears r for the next probe.
func (r *Result) Reset() { *r = Result{} }

// Fail records a failure with its reason and cause and returns nil-safe r
// for chaining in probers.
func (r *Result) Fail(reason Reason, err error) {
	r.Success = false
	r.Reason = reason
	r.Err = err
}
