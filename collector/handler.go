package collector

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Handler serves /metrics: the registry's families (build info, config
// state, self-metrics, Go and process collectors) through the standard
// encoder, then the per-target families through tw. Errors gathering the
// registry are logged and the page is served anyway, as promhttp's
// ContinueOnError does: one broken collector must not blank the page.
func Handler(g prometheus.Gatherer, tw *TextWriter, maxInFlight int, logger *slog.Logger) http.Handler {
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
		enc := expfmt.NewEncoder(w, format)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				logger.Debug("error writing metrics", "err", err)
				return
			}
		}
		if _, err := tw.WriteTo(w); err != nil {
			logger.Debug("error writing metrics", "err", err)
		}
	})
}
