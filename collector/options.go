package collector

// Option leaves optional per-target families out of /metrics. The
// defaults keep every family; the options exist for users who watch tens
// of thousands of servers, where the per-phase and per-timeout series are
// most of the page and of what Prometheus stores (docs/metrics.md, "Series
// per server").
type Option func(*options)

type options struct {
	omit map[string]bool // full family names
}

// WithoutPhases leaves out nginx_upstream_probe_phase_duration_seconds: one
// series per phase (resolve, connect, tls, processing, transfer), five per
// server.
// duration_seconds still gives the whole probe's time.
func WithoutPhases() Option { return omit(namespace + "_probe_phase_duration_seconds") }

// WithoutTimeouts leaves out nginx_upstream_probe_timeout_seconds: three
// series per server that change only with the configuration.
func WithoutTimeouts() Option { return omit(namespace + "_probe_timeout_seconds") }

func omit(name string) Option {
	return func(o *options) {
		if o.omit == nil {
			o.omit = map[string]bool{}
		}
		o.omit[name] = true
	}
}

// selectFamilies returns the families the options keep, in table order.
func selectFamilies(opts []Option) []*family {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	out := make([]*family, 0, len(families))
	for i := range families {
		if !o.omit[families[i].name] {
			out = append(out, &families[i])
		}
	}
	return out
}
