package collector

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

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
	gzips := newGzipPool()
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
		render := func(out io.Writer) error {
			enc := expfmt.NewEncoder(out, format)
			for _, mf := range mfs {
				if err := enc.Encode(mf); err != nil {
					return err
				}
			}
			if _, err := tw.WriteTo(out); err != nil {
				return err
			}
			for _, x := range extra {
				if _, err := x.WriteTo(out); err != nil {
					return err
				}
			}
			return nil
		}
		if !gzipAccepted(r.Header) {
			if err := render(w); err != nil {
				logger.Debug("error writing metrics", "err", err)
			}
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		if err := gzips.compress(w, render); err != nil {
			logger.Debug("error writing metrics", "err", err)
		}
	})
}

// gzipPool compresses pages with pooled writers. BestSpeed: the page of
// 10,000 targets is 20-30 MB of text that compresses tenfold either way;
// higher levels triple the CPU for a few percent.
type gzipPool struct{ pool sync.Pool }

func newGzipPool() *gzipPool {
	return &gzipPool{pool: sync.Pool{New: func() any {
		gz, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
		return gz
	}}}
}

// compress writes the page render produces to w, gzipped. Rendering in
// a goroutine of its own, feeding the compressor through a pipe, was
// measured slower (BenchmarkScrape10kGzip 22-25 ms against 18-19 ms):
// rendering is a fifth of the time, the pipe adds a copy of the page, and
// a machine busy with probes has no idle core for it.
func (p *gzipPool) compress(w io.Writer, render func(io.Writer) error) error {
	gz := p.pool.Get().(*gzip.Writer)
	gz.Reset(w)
	err := render(gz)
	if cerr := gz.Close(); err == nil {
		err = cerr
	}
	gz.Reset(io.Discard) // drop w before pooling
	p.pool.Put(gz)
	return err
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
