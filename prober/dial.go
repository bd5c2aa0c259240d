package prober

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Dial opens the connection nginx would open to t, recording the resolve
// and connect phases in r. On failure it records the reason and returns
// nil; the caller owns the returned connection.
func Dial(ctx context.Context, t *Peer, r *Result) net.Conn {
	network, address := t.Network, t.Address
	if t.Resolve != nil {
		start := time.Now()
		addr, err := resolveRuntime(ctx, t.Resolve, t.ConnectTimeout)
		r.Phases[PhaseResolve] = time.Since(start)
		if err != nil {
			r.fail(event{outcome: outcomeError, phase: PhaseResolve, err: err, deadline: pastDeadline(ctx)})
			return nil
		}
		address = addr
		r.Address = addr
	}
	if (network == "unix" || network == "unixgram") && t.Worker != nil {
		if err := CheckWorkerAccess(address, t.Worker); err != nil {
			r.fail(event{outcome: outcomeError, phase: PhaseConnect, err: err})
			return nil
		}
	}
	start := time.Now()
	d := net.Dialer{Timeout: t.ConnectTimeout}
	conn, err := d.DialContext(ctx, network, address)
	r.Phases[PhaseConnect] = time.Since(start)
	if err != nil {
		r.fail(event{outcome: outcomeError, phase: PhaseConnect, err: err, deadline: pastDeadline(ctx)})
		return nil
	}
	return conn
}

// resolveRuntime resolves a name through nginx's configured resolvers only,
// never the system's, because that is where nginx would ask.
func resolveRuntime(ctx context.Context, rr *RuntimeResolve, timeout time.Duration) (string, error) {
	if ip := net.ParseIP(rr.Host); ip != nil {
		return net.JoinHostPort(rr.Host, rr.Port), nil
	}
	if rr.System {
		addrs, err := net.DefaultResolver.LookupHost(ctx, rr.Host)
		if err != nil {
			return "", fmt.Errorf("resolving %s: %w", rr.Host, err)
		}
		return net.JoinHostPort(addrs[0], rr.Port), nil
	}
	if len(rr.Resolvers) == 0 {
		return "", &net.DNSError{Err: "no resolver defined to resolve " + rr.Host, Name: rr.Host}
	}
	var lastErr error
	for _, server := range rr.Resolvers {
		server := server
		res := &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, server)
			},
		}
		rctx := ctx
		if timeout > 0 {
			var cancel context.CancelFunc
			rctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		addrs, err := res.LookupHost(rctx, rr.Host)
		if err == nil && len(addrs) > 0 {
			return net.JoinHostPort(addrs[0], rr.Port), nil
		}
		if err == nil {
			err = &net.DNSError{Err: "no addresses", Name: rr.Host, IsNotFound: true}
		}
		lastErr = err
	}
	return "", fmt.Errorf("resolving %s: %w", rr.Host, lastErr)
}

// pastDeadline reports that the probe's own deadline has passed (or the
// probe was cancelled). It reads the clock rather than only ctx.Err():
// a read deadline set to the probe's deadline fires at the same instant
// as the context's timer, and may be seen first.
func pastDeadline(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}
