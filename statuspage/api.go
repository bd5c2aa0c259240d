package statuspage

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
)

// api answers GET /api/v1/targets with a report.Report: the document
// diagnose --output=json prints, with the schedule's latest verdicts. The
// targets are encoded one at a time into a buffered stream, so the answer
// for 10,000 targets is never held in memory as one document.
func (h *Handlers) api(w http.ResponseWriter, r *http.Request) {
	f, ok := parseFilter(r)
	if !ok {
		http.Error(w, "unknown state; want one of all, problems, failing, inconclusive, pending, ok, down, backup", http.StatusBadRequest)
		return
	}
	s := h.take(&f, false)
	at := s.at.UTC()
	head := report.Report{
		Config:              h.opts.NginxConfig,
		Probed:              true,
		Healthy:             s.healthy,
		Summary:             s.summary,
		ProbeTimeoutSeconds: h.opts.ProbeTimeout.Seconds(),
		Targets:             []report.Target{},
		GeneratedAt:         &at,
		Exporter:            h.exporterState(s),
		Facts:               h.facts(),
		Nginx:               s.nginx,
	}
	if l := s.cfg.Loaded; l != nil {
		head.Dynamic = report.DynamicOf(l)
		head.UnusedUpstreams = l.Nginx.UnusedUpstreams
	}
	b, err := json.Marshal(&head)
	if err != nil {
		h.fail(w, err)
		return
	}
	// Every string value is escaped, so the unescaped field name occurs
	// once: the targets are written in its place.
	const field = `"targets":[`
	i := bytes.Index(b, []byte(field))
	if i < 0 {
		h.fail(w, errNoTargetsField)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	bw.Write(b[:i+len(field)])
	enc := json.NewEncoder(bw)
	for j := range s.targets {
		if j > 0 {
			bw.WriteByte(',')
		}
		// Encode appends a newline, which JSON allows between values.
		if err := enc.Encode(&s.targets[j]); err != nil {
			h.opts.Logger.Error("encoding a target for the API failed", "err", err)
			return
		}
	}
	bw.Write(b[i+len(field):])
	bw.WriteByte('\n')
	if err := bw.Flush(); err != nil {
		h.opts.Logger.Debug("client went away during /api/v1/targets", "err", err)
	}
}
