package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/net/netutil"
)

// Limits bound what one client can hold: a client that stops reading, or
// never sends a request, or keeps an idle connection open, costs one
// connection for at most the matching timeout, and the number of
// connections is capped so that fds cannot run out.
type Limits struct {
	// ReadTimeout bounds reading a whole request, headers included.
	ReadTimeout time.Duration
	// WriteTimeout bounds a response from the end of the request headers:
	// a scraper that stops reading is disconnected after it.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle for this long.
	IdleTimeout time.Duration
	// MaxConnections caps simultaneous connections per listener; more
	// wait in the kernel's accept queue. 0 means no limit.
	MaxConnections int
}

// NewHTTPServer returns the server for h with the limits applied.
func NewHTTPServer(h http.Handler, lim Limits, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		// Timed-out and reset clients are the client's problem, not an
		// error of the exporter: debug level.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
}

// Serve serves srv on l through exporter-toolkit (TLS and authentication
// of --web.config.file), at most maxConnections connections at once.
func Serve(l net.Listener, srv *http.Server, flags *web.FlagConfig, maxConnections int, logger *slog.Logger) error {
	if maxConnections > 0 {
		l = netutil.LimitListener(l, maxConnections)
	}
	return web.Serve(l, srv, flags, logger)
}

// ListenAndServe listens on every --web.listen-address and serves srv on
// each with the connection limit. Systemd socket activation and vsock
// addresses are left to exporter-toolkit, which owns those listeners, so
// the connection limit does not apply to them (the timeouts do).
func ListenAndServe(srv *http.Server, flags *web.FlagConfig, maxConnections int, logger *slog.Logger) error {
	if flags.WebSystemdSocket != nil && *flags.WebSystemdSocket || hasVsock(flags) {
		logger.Warn("--web.max-connections applies to TCP listen addresses only; not limiting these listeners")
		return web.ListenAndServe(srv, flags, logger)
	}
	if flags.WebListenAddresses == nil || len(*flags.WebListenAddresses) == 0 {
		return errors.New("no --web.listen-address given")
	}
	listeners := make([]net.Listener, 0, len(*flags.WebListenAddresses))
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for _, addr := range *flags.WebListenAddresses {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", addr, err)
		}
		listeners = append(listeners, l)
	}
	errs := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { errs <- Serve(l, srv, flags, maxConnections, logger) }()
	}
	// As exporter-toolkit's ServeMultiple: the first listener to fail ends
	// serving (Shutdown closes them all with ErrServerClosed).
	err := <-errs
	for range len(listeners) - 1 {
		if e := <-errs; err == nil || errors.Is(err, http.ErrServerClosed) {
			err = e
		}
	}
	return err
}

func hasVsock(flags *web.FlagConfig) bool {
	if flags.WebListenAddresses == nil {
		return false
	}
	for _, a := range *flags.WebListenAddresses {
		if strings.HasPrefix(a, "vsock://") {
			return true
		}
	}
	return false
}
