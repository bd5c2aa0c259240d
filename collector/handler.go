package collector

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Handler serves /metrics: the registry's families (build info, config
// state, self-metrics, Go and process collectors) through the standard
// encoder, then the per-target families through tw, then those of other
// signals' text writers (extra), which render their own families as tw
// does. Errors gathering the registry are logged and the page is served
// anyway, as promhttp's ContinueOnError does: one broken collector must
// not blank the page.
//
// The page is rendered in segments by up to min(GOMAXPROCS, 4) goroutines
// and written in order (exposition.go); the per-target families of a
// RangeSource in ranges of targets, each family still consistent per
// target. Extra writers may be called from several goroutines at once, as
// concurrent scrapes already call them; those that are PartsWriters are
// rendered in parts, several at once.
func Handler(g prometheus.Gatherer, tw *TextWriter, maxInFlight int, logger *slog.Logger, extra ...io.WriterTo) http.Handler {
	return newHandler(g, tw, maxInFlight, logger, newExposition(), extra...)
}

func newHandler(g prometheus.Gatherer, tw *TextWriter, maxInFlight int, logger *slog.Logger, e *exposition, extra ...io.WriterTo) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if maxInFlight <= 0 {
		maxInFlight = 4
	}
	sem := make(chan struct{}, maxInFlight)
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		default:
			http.Error(w, "Limit of concurrent scrapes reached, try again later.", http.StatusServiceUnavailable)
			return
		}
		mfs, err := g.Gather()
		if err != nil {
			logger.Error("error gathering metrics", "err", err)
		}
		segs := make([]segment, 0, 64)
		segs = append(segs, func(sw *segWriter) error {
			enc := expfmt.NewEncoder(sw, format)
			for _, mf := range mfs {
				if err := enc.Encode(mf); err != nil {
					return fmt.Errorf("encoding %s: %w", mf.GetName(), err)
				}
			}
			return nil
		})
		segs, done := tw.segments(segs, e.segmentBytes)
		var parts []func(io.Writer) error
		for _, x := range extra {
			if pw, ok := x.(PartsWriter); ok {
				var done func()
				parts, done = pw.AppendParts(parts[:0], e.segmentBytes)
				// After write: every segment has returned by then.
				defer done()
				for _, p := range parts {
					segs = append(segs, func(sw *segWriter) error { return p(sw) })
				}
				continue
			}
			segs = append(segs, func(sw *segWriter) error {
				_, err := x.WriteTo(sw)
				return err
			})
		}
		w.Header().Set("Content-Type", string(format))
		gz := gzipAccepted(r.Header)
		if gz {
			w.Header().Set("Content-Encoding", "gzip")
		}
		err = e.write(r.Context(), w, gz, segs)
		done(err == nil)
		if err != nil {
			logger.Debug("error writing metrics", "err", err)
		}
	})
}

func gzipAccepted(h http.Header) bool {
	for _, part := range strings.Split(h.Get("Accept-Encoding"), ",") {
		part = strings.TrimSpace(part)
		if part == "gzip" || strings.HasPrefix(part, "gzip;") {
			return true
		}
	}
	return false
}
