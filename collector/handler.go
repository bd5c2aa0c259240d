package collector

import (
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzip"
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
func Handler(g prometheus.Gatherer, tw *TextWriter, maxInFlight int, logger *slog.Logger, extra ...io.WriterTo) http.Handler {
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
		w.Header().Set("Content-Type", string(format))
		var out io.Writer = w
		if gzipAccepted(r.Header) {
			// BestSpeed: the page of 10,000 targets is ~20 MB of text
			// that compresses tenfold either way; higher levels triple
			// the CPU for a few percent.
			w.Header().Set("Content-Encoding", "gzip")
			gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
			defer gz.Close()
			out = gz
		}
		enc := expfmt.NewEncoder(out, format)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				logger.Debug("error writing metrics", "err", err)
				return
			}
		}
		if _, err := tw.WriteTo(out); err != nil {
			logger.Debug("error writing metrics", "err", err)
			return
		}
		for _, x := range extra {
			if _, err := x.WriteTo(out); err != nil {
				logger.Debug("error writing metrics", "err", err)
				return
			}
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
