// Package server wires the exporter's HTTP endpoints: the metrics page,
// health and readiness checks, the reload trigger and the landing page.
// TLS and authentication are applied around it by exporter-toolkit, so
// every route here is covered by --web.config.file.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/exporter-toolkit/web"
)

// Reloader reloads the configuration; *reload.Manager satisfies it.
type Reloader interface {
	Reload(ctx context.Context) error
}

// Options configure the handler.
type Options struct {
	MetricsPath string
	// Metrics serves MetricsPath.
	Metrics  http.Handler
	Reloader Reloader
	// Ready reports whether a configuration has been loaded.
	Ready   func() bool
	Version string
	Logger  *slog.Logger
	// Extra routes (e.g. /probe) mounted as given.
	Extra map[string]http.Handler
	// Landing serves / (the status page); nil means exporter-toolkit's
	// page of links.
	Landing http.Handler
}

// New returns the exporter's HTTP handler.
func New(opts Options) (http.Handler, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle(opts.MetricsPath, opts.Metrics)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "Healthy")
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if opts.Ready != nil && !opts.Ready() {
			http.Error(w, "Not ready: no nginx configuration loaded yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Ready")
	})
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "This endpoint requires a POST request.", http.StatusMethodNotAllowed)
			return
		}
		if err := opts.Reloader.Reload(r.Context()); err != nil {
			http.Error(w, fmt.Sprintf("failed to reload config: %s", err), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "Reloaded")
	})
	for path, h := range opts.Extra {
		mux.Handle(path, h)
	}
	switch {
	case opts.MetricsPath == "/" || opts.MetricsPath == "":
	case opts.Landing != nil:
		mux.Handle("/", opts.Landing)
	default:
		links := []web.LandingLinks{
			{Address: opts.MetricsPath, Text: "Metrics"},
			{Address: "/-/healthy", Text: "Health"},
			{Address: "/-/ready", Text: "Readiness"},
		}
		if _, ok := opts.Extra["/probe"]; ok {
			links = append(links, web.LandingLinks{Address: "/probe", Text: "On-demand probe (/probe?target=<server>&upstream=<upstream>)"})
		}
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "nginx upstream exporter",
			Description: "Probes every upstream server in nginx's configuration the way nginx talks to it",
			Version:     opts.Version,
			Links:       links,
		})
		if err != nil {
			return nil, fmt.Errorf("building landing page: %w", err)
		}
		mux.Handle("/", landing)
	}
	return mux, nil
}
