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

	// Inconclusive is set when the probe ended without a verdict about
	// the backend: the exporter stopped waiting before nginx would have,
	// or the exporter itself lacked resources. Reason is then empty and
	// Success false: neither a failure nginx would log nor a success.
	Inconclusive Inconclusive

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

// Inconclusive names why a probe gave no verdict about the backend. It is
// a closed vocabulary, like Reason, and never a failure reason: nginx
// would not have logged anything for it.
type Inconclusive string

// The causes of a probe without a verdict.
const (
	// InconclusiveProbeTimeout: the exporter's own bound on the probe
	// (--probe.timeout, or the sum of nginx's timeouts for a backend that
	// trickles its header) ended it while nginx would still be waiting.
	InconclusiveProbeTimeout Inconclusive = "probe_timeout"
	// InconclusiveExporterResources: the exporter ran out of something of
	// its own (file descriptors, local ports, socket buffers, memory)
	// before reaching the backend.
	InconclusiveExporterResources Inconclusive = "exporter_resources"
	// InconclusiveNoAnswer: a UDP server neither answered the probe's
	// datagram nor drew an ICMP error before the wait ended. It may be
	// listening (most servers ignore an empty datagram) or datagrams or
	// ICMP may be filtered; nginx logs no error for such a session either.
	InconclusiveNoAnswer Inconclusive = "no_answer"
)

// InconclusiveCauses lists every cause in documentation order.
var InconclusiveCauses = [...]Inconclusive{InconclusiveProbeTimeout, InconclusiveExporterResources, InconclusiveNoAnswer}
