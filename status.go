package main

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/capacity"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/diagnose"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/errorlog"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/loadstate"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/statuspage"
)

// What the other signals tell the status page and the API, in the shapes
// diagnose prints: one schema for all of them.

// nginxSection is the running nginx as the tracker last saw it.
func nginxSection(t *loadstate.Tracker) func() *report.Nginx {
	return func() *report.Nginx { return diagnose.NginxSection(t.Result()) }
}

// loggedByTarget looks up what nginx's error log said about a target
// since the exporter started; nil when the log is not read. Each answer
// copies the counters flat (errorlog.Counts, reused by the next answer)
// and converts only the target it writes, into the Logged it is given:
// no map per logged server, and no converted report of them all.
func loggedByTarget(logs *errorlog.Reader) func() (statuspage.LoggedLookup, func()) {
	if logs == nil {
		return nil
	}
	var pool sync.Pool
	return func() (statuspage.LoggedLookup, func()) {
		c, _ := pool.Get().(*errorlog.Counts)
		if c == nil {
			c = new(errorlog.Counts)
		}
		logs.ReadCounts(c)
		lookup := func(k discovery.Key, lg *report.Logged) bool {
			t := c.Find(k)
			if t == nil {
				return false
			}
			errs, body := lg.Errors, lg.BodyErrors
			if errs == nil {
				errs = map[string]int{}
			}
			clear(errs)
			clear(body)
			for _, rc := range c.Reasons(t) {
				if !rc.Body {
					errs[string(rc.Reason)] = int(rc.N)
					continue
				}
				if body == nil {
					body = map[string]int{}
				}
				body[string(rc.Reason)] = int(rc.N)
			}
			*lg = report.Logged{Errors: errs, BodyErrors: body, Last: t.Last.UTC()}
			return true
		}
		return lookup, func() { pool.Put(c) }
	}
}

// capacityFacts says, per server that listens on this host, whether it is
// full or down (the line diagnose prints); nil without a monitor.
func capacityFacts(m *capacity.Monitor) statuspage.TargetFacts {
	if m == nil {
		return nil
	}
	return func(dst []report.Fact, k discovery.Key) []report.Fact {
		st, ok := m.Lookup(k)
		if !ok {
			return dst
		}
		s := st.Summarize(time.Now())
		state := report.FactOK
		switch s.Verdict {
		case capacity.VerdictFull:
			state = report.FactWarning
		case capacity.VerdictDown:
			state = report.FactFailing
		case capacity.VerdictUnknown:
			state = report.FactUnknown
		}
		return append(dst, report.Fact{Source: "capacity", Name: "capacity", Value: s.Line, State: state})
	}
}

// staleFacts says, per static hostname server, when nginx still dials an
// address the name no longer resolves to; nothing when it is not known.
// The tracker's result is indexed at most once a second, not once per row.
func staleFacts(t *loadstate.Tracker) statuspage.TargetFacts {
	var (
		mu    sync.Mutex
		at    time.Time
		stale map[[2]string]loadstate.ServerAddresses
	)
	return func(dst []report.Fact, k discovery.Key) []report.Fact {
		mu.Lock()
		if now := time.Now(); now.Sub(at) > time.Second {
			at = now
			stale = map[[2]string]loadstate.ServerAddresses{}
			for _, sa := range t.Result().Servers {
				if sa.Known && sa.Stale {
					stale[[2]string{sa.Upstream, sa.Server}] = sa
				}
			}
		}
		sa, ok := stale[[2]string{k.Upstream, k.Server}]
		mu.Unlock()
		if !ok {
			return dst
		}
		return append(dst, report.Fact{Source: "running_nginx", Name: "stale address", State: report.FactFailing,
			Value: fmt.Sprintf("nginx still dials %s for %s; DNS now answers %s; reload nginx (nginx -t && nginx -s reload)",
				strings.Join(sa.Nginx, ", "), sa.Server, strings.Join(sa.Now, ", "))})
	}
}

// problemCounts is the summary the page's header adds: servers full, and
// static names nginx dials stale.
func problemCounts(m *capacity.Monitor, t *loadstate.Tracker) statuspage.Facts {
	return func() []report.Fact {
		var out []report.Fact
		if m != nil {
			full := 0
			m.Each(func(_ *discovery.Target, st *capacity.State) {
				if st.SaturationKnown && st.Saturated {
					full++
				}
			})
			state := report.FactOK
			if full > 0 {
				state = report.FactWarning
			}
			out = append(out, report.Fact{Source: "capacity", Name: "full", Value: fmt.Sprintf("%d server(s) full, not down", full), State: state})
		}
		r := t.Result()
		if !r.Up {
			// Unknown is not 0: without nginx's processes, what it dials
			// is not known.
			return append(out, report.Fact{Source: "running_nginx", Name: "stale", State: report.FactUnknown,
				Value: "stale upstream addresses unknown: the running nginx is not seen"})
		}
		stale := 0
		for _, sa := range r.Servers {
			if sa.Known && sa.Stale {
				stale++
			}
		}
		state := report.FactOK
		if stale > 0 {
			state = report.FactFailing
		}
		return append(out, report.Fact{Source: "running_nginx", Name: "stale", Value: fmt.Sprintf("%d stale upstream address(es)", stale), State: state})
	}
}
