package scheduler

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/protocol"
)

// countingHandler counts the handlers derived with attributes: building
// a target's logger derives one.
type countingHandler struct {
	slog.Handler
	derived *atomic.Int64
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.derived.Add(1)
	return countingHandler{h.Handler.WithAttrs(as), h.derived}
}

// TestTargetLoggerBuiltOnlyToLog: results that log nothing (a healthy
// target at info level) do not build the target's logger; the first
// failure, logged at warn, does, with the target's labels on the line.
func TestTargetLoggerBuiltOnlyToLog(t *testing.T) {
	var buf bytes.Buffer
	var derived atomic.Int64
	logger := slog.New(countingHandler{slog.NewTextHandler(&buf, nil), &derived})
	tg, err := discovery.Arbitrary("127.0.0.1:8080", "app", protocol.Kind{Protocol: protocol.HTTP}, discovery.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Interval: time.Second, Prober: newCountingProber(), Logger: logger})
	s.Update(set(tg))
	for range 3 {
		r := prober.Result{Success: true, Duration: time.Millisecond}
		s.record(tg, &r, time.Now())
	}
	if n := derived.Load(); n != 0 || buf.Len() != 0 {
		t.Fatalf("healthy results at info level built %d loggers and logged %q", n, buf.String())
	}
	r := prober.Result{Reason: prober.ReasonConnectionRefused, Err: errors.New("connect: connection refused")}
	s.record(tg, &r, time.Now())
	if n := derived.Load(); n != 1 || !strings.Contains(buf.String(), "upstream server failing") || !strings.Contains(buf.String(), "upstream=app") {
		t.Errorf("the first failure built %d loggers and logged %q", n, buf.String())
	}
	if !tg.Logger().Enabled(context.Background(), slog.LevelInfo) || tg.Logger().Enabled(context.Background(), slog.LevelDebug) {
		t.Error("the target's logger does not have its base logger's level")
	}
}
