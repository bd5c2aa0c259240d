package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/internal/cgroupfs"
)

// memLimitFlags mirror Prometheus's --auto-gomemlimit flags: the exporter
// usually runs as a sidecar under a container memory limit, and without a
// soft limit the Go heap may grow to twice its live size between
// collections regardless of that limit.
type memLimitFlags struct {
	auto  bool
	ratio float64
}

func (f memLimitFlags) check() error {
	if f.ratio <= 0 || f.ratio > 1 {
		return fmt.Errorf("--auto-gomemlimit.ratio must be in (0, 1], not %g", f.ratio)
	}
	return nil
}

// applyMemLimit sets the Go runtime's soft memory limit to ratio × the
// memory limit of the exporter's cgroup (and its ancestors), unless
// GOMEMLIMIT is set, which always wins. It returns the limit set, 0 when
// none was.
func applyMemLimit(logger *slog.Logger, f memLimitFlags, proc string) int64 {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		logger.Info("Go memory limit from the environment", "GOMEMLIMIT", v)
		return 0
	}
	if !f.auto {
		return 0
	}
	cg, err := cgroupfs.Self(proc)
	if err != nil {
		logger.Debug("no memory cgroup found; no Go memory limit set", "err", err)
		return 0
	}
	limit, err := cg.Limit()
	switch {
	case errors.Is(err, cgroupfs.ErrNoLimit):
		logger.Debug("the memory cgroup has no limit; no Go memory limit set", "cgroup", cg.Dir)
		return 0
	case err != nil:
		logger.Warn("cannot read the memory cgroup's limit; no Go memory limit set", "cgroup", cg.Dir, "err", err)
		return 0
	}
	soft := int64(float64(limit) * f.ratio)
	debug.SetMemoryLimit(soft)
	logger.Info("Go memory limit set from the memory cgroup", "cgroup_limit_bytes", limit, "gomemlimit_bytes", soft, "ratio", f.ratio)
	return soft
}

// defaultGCPercent is the collector's target when GOGC is not set: with a
// live heap of about 16 MB at 10,000 targets, Go's default of 100 lets the
// heap grow to twice that between collections. 50, as Prometheus itself
// has used since 2.53, bounds that growth to half the live heap for a few
// more collections (docs/performance.md measures both).
const defaultGCPercent = 50

// applyGCPercent sets defaultGCPercent unless GOGC is set, which wins.
func applyGCPercent(logger *slog.Logger) {
	if v := os.Getenv("GOGC"); v != "" {
		logger.Info("garbage collector target from the environment", "GOGC", v)
		return
	}
	debug.SetGCPercent(defaultGCPercent)
}
