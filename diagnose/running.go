package diagnose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/discovery"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/loadstate"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxproc"
)

// checkRunning looks at the running nginx once. When its workers show
// which addresses it dials, the configuration is loaded again so that
// the probes target those, as serve does.
func checkRunning(ctx context.Context, opts *Options, loaded *discovery.Loaded) (*discovery.Loaded, *Nginx) {
	tr := opts.Running
	tr.Observe(loaded, nil)
	tr.Tick(ctx)
	res := tr.Result()
	for _, s := range res.Servers {
		if s.Source != loadstate.SourceUnknown {
			o := opts.Load
			o.Nginx = tr
			if again, err := discovery.Load(ctx, o); err == nil {
				loaded = again
			}
			break
		}
	}
	return loaded, NginxSection(res)
}

// reloadCommand is how an operator reloads nginx, checking it first.
const reloadCommand = "nginx -t && nginx -s reload (or systemctl reload nginx)"

// NginxSection is the report's section on the running nginx, from the
// tracker's last look: what diagnose prints and the status page and the
// API show.
func NginxSection(r loadstate.Result) *Nginx {
	n := &Nginx{Running: r.Up}
	if !r.Up {
		switch {
		case errors.Is(r.FindErr, nginxproc.ErrNoAccess):
			n.Error = fmt.Sprintf("cannot see nginx's processes (%v): run diagnose where nginx runs, as root, or with the pid file readable; reload and stale-address checks skipped", r.FindErr)
		case r.FindErr != nil:
			n.Error = fmt.Sprintf("nginx is not running (%v); reload and stale-address checks skipped", r.FindErr)
		}
	}
	if r.Known {
		t := r.LastLoad
		n.LastReload = &t
	}
	for _, p := range r.Pending {
		n.ReloadPending = append(n.ReloadPending, PendingFile{Path: p.Path, Kind: string(p.Kind), Change: p.Change})
	}
	n.Changes = r.PendingChanges
	if len(n.ReloadPending) > 0 {
		var files []string
		for _, p := range n.ReloadPending {
			files = append(files, fmt.Sprintf("%s (%s)", p.Path, p.Change))
		}
		msg := fmt.Sprintf("nginx runs an older configuration than the one on disk: changed since its last reload at %s: %s", r.LastLoad.UTC().Format(time.RFC3339), strings.Join(files, ", "))
		if len(n.Changes) > 0 {
			msg += "; a reload " + strings.Join(n.Changes, "; ")
		}
		n.Messages = append(n.Messages, msg+"; fix: "+reloadCommand)
	}
	for _, f := range r.WouldFail {
		n.WouldFail = append(n.WouldFail, Failure{Reason: f.Reason, Message: f.Message})
		n.Messages = append(n.Messages, fmt.Sprintf("the next reload or restart of nginx would fail: nginx: [emerg] %s; fix: %s", f.Message, wouldFailFix(f.Reason)))
	}
	for _, s := range r.Servers {
		switch {
		case s.Stale:
			st := Stale{Upstream: s.Upstream, Server: s.Server, Nginx: s.Nginx, DNS: s.Now, Source: string(s.Source)}
			n.Stale = append(n.Stale, st)
			now := "no address (" + errText(s.NowErr) + ")"
			if len(s.Now) > 0 {
				now = strings.Join(s.Now, ", ")
			}
			fix := "reload nginx: " + reloadCommand
			if s.NowErr != nil {
				fix = "the name no longer resolves, so a reload would fail: fix DNS or the server line first, then " + reloadCommand
			}
			n.Messages = append(n.Messages, fmt.Sprintf("nginx still dials %s for %s; DNS now answers %s; %s", strings.Join(s.Nginx, ", "), s.Server, now, fix))
		case r.Up && s.Source == loadstate.SourceUnknown:
			n.Unknown = append(n.Unknown, s.Server)
		}
	}
	if len(n.Unknown) > 0 {
		n.Messages = append(n.Messages, fmt.Sprintf("unknown which addresses nginx dials for %s: it resolved them at its last load, before the exporter looked, and no worker connection shows them; probes use what DNS answers now (a reload makes both agree)", strings.Join(n.Unknown, ", ")))
	}
	return n
}

func errText(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

func wouldFailFix(reason string) string {
	switch reason {
	case loadstate.ReasonHostNotFound:
		return "make the name resolve again, or change the server line (nginx resolves static names at every reload and start); then nginx -t"
	case loadstate.ReasonFileMissing:
		return "restore the file (or fix the path) before the next reload or reboot; then nginx -t"
	}
	return "correct the configuration at the position shown; then nginx -t"
}

func writeNginx(w io.Writer, n *Nginx, p palette) {
	if n == nil {
		return
	}
	fmt.Fprintln(w)
	switch {
	case n.Error != "":
		fmt.Fprintf(w, "%s %s\n", p.dim("running nginx:"), n.Error)
	case n.LastReload != nil:
		fmt.Fprintf(w, "%s last loaded its configuration at %s\n", p.dim("running nginx:"), n.LastReload.UTC().Format(time.RFC3339))
	}
	for _, m := range n.Messages {
		style := p.yellow
		if strings.HasPrefix(m, "nginx still dials") || strings.HasPrefix(m, "the next reload") {
			style = p.red
		}
		fmt.Fprintf(w, "  %s\n", style(m))
	}
}
