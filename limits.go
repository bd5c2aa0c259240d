package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/fdlimit"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// maxProbeRequests bounds --probe.max-requests: each /probe request probes
// up to --probe.concurrency targets, so both multiply into sockets.
const maxProbeRequests = 1024

// checkDuration says what is wrong with a duration flag, naming the flag
// and its bound, or returns nil.
func checkDuration(flag string, d, bound time.Duration) error {
	if d <= 0 || d > bound {
		return fmt.Errorf("--%s=%s: must be positive and at most %s", flag, d, bound)
	}
	return nil
}

// checkCount says what is wrong with a count flag, or returns nil.
func checkCount(flag string, n, bound int) error {
	if n <= 0 || n > bound {
		return fmt.Errorf("--%s=%d: must be between 1 and %d", flag, n, bound)
	}
	return nil
}

// checkProbeFlags validates the flags shared by every command. An
// unbounded --probe.concurrency once took all the machine's memory; the
// bounds are explained in docs/configuration.md. --probe.timeout is an
// optional cap: 0 (the default) means probes wait as long as nginx would.
func checkProbeFlags(c *commonFlags) error {
	if c.probeTimeout < 0 || c.probeTimeout > scheduler.MaxTimeout {
		return fmt.Errorf("--probe.timeout=%s: must be between 0 (no cap) and %s", c.probeTimeout, scheduler.MaxTimeout)
	}
	return checkCount("probe.concurrency", c.probeConcurrency, scheduler.MaxConcurrency)
}

// checkServeFlags validates the flags of serve.
func checkServeFlags(c *commonFlags, interval time.Duration, pf *probeFlags) error {
	if err := checkProbeFlags(c); err != nil {
		return err
	}
	if err := checkDuration("probe.interval", interval, scheduler.MaxInterval); err != nil {
		return err
	}
	return checkCount("probe.max-requests", pf.maxRequests, maxProbeRequests)
}

// raiseFDLimit lifts the soft open-files limit to the hard one: every
// probe in flight holds a socket. The values are logged at level: serve
// logs them at start, diagnose only with --log.level=debug, its output
// being the report.
func raiseFDLimit(logger *slog.Logger, level slog.Level) {
	l, err := fdlimit.Raise()
	if err != nil {
		logger.Warn("cannot raise the open files limit; probes may fail with too many open files", "err", err,
			"soft", l.Soft, "hard", l.Hard)
		return
	}
	logger.Log(context.Background(), level, "open files limit", "soft_before", l.SoftBefore, "soft", l.Soft, "hard", l.Hard)
}
