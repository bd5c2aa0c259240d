// Package probehandler serves /probe: an on-demand probe of one upstream
// server, answered with that server's metrics at request time, in the
// style of blackbox_exporter's /probe.
//
// By default only servers that appear in the loaded nginx configuration can
// be probed. blackbox_exporter's /probe accepts any target, which let
// anyone who could reach the exporter make it connect anywhere
// (CVE-2020-16248, server-side request forgery); an exporter that sits
// next to nginx usually reaches networks its callers cannot. AllowAnyTarget
// restores the open behaviour for those who accept that risk.
package probehandler

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/collector"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// DefaultProtocol is the protocol of an arbitrary target when the request
// names none: a connect-only probe, which sends the target no data.
const DefaultProtocol = "tcp"

// Options configure the handler.
type Options struct {
	// Targets returns the targets of the loaded configuration;
	// (*scheduler.Scheduler).Targets satisfies it.
	Targets func() []*discovery.Target
	Prober  prober.Prober
	// Discovery builds arbitrary targets (Logger) through
	// the same code as configured ones.
	Discovery discovery.Options
	// Timeout is the optional cap on each probe (--probe.timeout, 0: none,
	// probes wait as long as nginx would); a shorter scrape
	// timeout announced by Prometheus wins.
	Timeout time.Duration
	// Concurrency bounds the probes one request runs in parallel when a
	// server matches several targets.
	Concurrency int
	// MaxRequests bounds concurrent /probe requests; more are answered
	// with 503. 0 means 1.
	MaxRequests int
	// AllowAnyTarget accepts targets that are not in the configuration.
	AllowAnyTarget bool
	Logger         *slog.Logger
}

// Handler serves /probe.
type Handler struct {
	opts Options
	sem  chan struct{}
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Prober == nil {
		opts.Prober = prober.New()
	}
	if opts.MaxRequests <= 0 {
		opts.MaxRequests = 1
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.Targets == nil {
		opts.Targets = func() []*discovery.Target { return nil }
	}
	return &Handler{opts: opts, sem: make(chan struct{}, opts.MaxRequests)}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case h.sem <- struct{}{}:
		defer func() { <-h.sem }()
	default:
		http.Error(w, fmt.Sprintf("too many concurrent /probe requests (limit %d); retry later", h.opts.MaxRequests), http.StatusServiceUnavailable)
		return
	}

	q := r.URL.Query()
	target := q.Get("target")
	upstream := q.Get("upstream")
	protocol := q.Get("protocol")
	if target == "" {
		http.Error(w, "target parameter is missing: /probe?target=<server as written in the nginx config>[&upstream=<name>]", http.StatusBadRequest)
		return
	}

	targets := match(h.opts.Targets(), target, upstream, protocol)
	if len(targets) == 0 {
		if !h.opts.AllowAnyTarget {
			http.Error(w, notFoundMessage(target, upstream, protocol), http.StatusNotFound)
			return
		}
		t, err := arbitrary(target, upstream, protocol, h.opts.Discovery)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		targets = []*discovery.Target{t}
	}

	timeout := h.timeout(r)
	logger := h.opts.Logger.With("target", target, "upstream", upstream)
	statuses := scheduler.ProbeOnce(r.Context(), targets, h.opts.Prober, h.opts.Concurrency, timeout, nil)
	if r.Context().Err() != nil {
		return // the client went away
	}
	if logger.Enabled(r.Context(), slog.LevelDebug) {
		for i := range statuses {
			st := &statuses[i]
			logger.Debug("on-demand probe finished", "address", st.Target.Address, "protocol", st.Target.Protocol,
				"success", st.Result.Success, "reason", string(st.Result.Reason), "duration", st.Result.Duration)
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collector.New(statusList(statuses)))
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(h.opts.Logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}).ServeHTTP(w, r)
}

// timeout honours Prometheus' announced scrape timeout, leaving half a
// second to write the answer, as blackbox_exporter does.
func (h *Handler) timeout(r *http.Request) time.Duration {
	t := h.opts.Timeout
	if v := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 && !math.IsInf(s, 0) {
			if d := time.Duration(s*float64(time.Second)) - 500*time.Millisecond; d > 0 && (t == 0 || d < t) {
				t = d
			}
		}
	}
	return t
}

// match finds the configured targets for a server as written (or its
// resolved address), narrowed by upstream and protocol when given. A
// server used by several upstreams, or resolving to several addresses,
// matches several targets.
func match(all []*discovery.Target, target, upstream, protocol string) []*discovery.Target {
	var out []*discovery.Target
	for _, t := range all {
		if t.Server != target && t.Address != target {
			continue
		}
		if upstream != "" && t.Upstream != upstream {
			continue
		}
		if protocol != "" && t.Protocol != protocol {
			continue
		}
		out = append(out, t)
	}
	return out
}

func notFoundMessage(target, upstream, protocol string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "target %q", target)
	if upstream != "" {
		fmt.Fprintf(&b, " in upstream %q", upstream)
	}
	if protocol != "" {
		fmt.Fprintf(&b, " with protocol %q", protocol)
	}
	b.WriteString(" is not an upstream server of the loaded nginx configuration. " +
		"Give the server as written in the config (e.g. 127.0.0.1:3000 or unix:/run/php/php-fpm.sock). " +
		"Probing arbitrary targets needs --probe.allow-any-target.")
	return b.String()
}

// arbitrary builds a target from the request alone: host:port, [ipv6]:port
// or unix:/path, as the implicit upstream nginx would create for it, with
// nginx's defaults (discovery.Arbitrary). Host names are resolved by the
// system resolver on each probe.
func arbitrary(target, upstream, label string, opts discovery.Options) (*discovery.Target, error) {
	if label == "" {
		label = DefaultProtocol
	}
	kind, ok := protocol.ParseLabel(label)
	if !ok {
		return nil, fmt.Errorf("unknown protocol %q: want one of %s", label, strings.Join(protocol.Labels(), ", "))
	}
	if path, ok := strings.CutPrefix(target, "unix:"); ok {
		if path == "" || !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("invalid target %q: a unix socket target is unix:/absolute/path", target)
		}
	} else {
		host, port, err := net.SplitHostPort(target)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("invalid target %q: want host:port, [ipv6]:port or unix:/path", target)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("invalid port in target %q", target)
		}
	}
	t, err := discovery.Arbitrary(target, upstream, kind, opts)
	if err != nil {
		return nil, fmt.Errorf("invalid target %q: %w", target, err)
	}
	return t, nil
}

// statusList adapts one probe round to collector.Source.
type statusList []scheduler.Status

func (s statusList) Each(fn func(st *scheduler.Status)) {
	for i := range s {
		st := s[i]
		fn(&st)
	}
}

// Ensure the adapter stays compatible with the collector.
var _ collector.Source = statusList(nil)
