package statuspage

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/report"
	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/scheduler"
)

// api answers GET /api/v1/targets with a report.Report: the document
// diagnose --output=json prints, with the schedule's latest verdicts. A
// first pass counts the summary; then each target is described into one
// reused report.Target, appended as JSON into one reused buffer
// (Target.AppendJSON) and written into a 32 KiB buffer onto the client,
// so the answer for 10,000 targets is never held in memory, as a
// document or as a slice of targets.
func (h *Handlers) api(w http.ResponseWriter, r *http.Request) {
	f, ok := parseFilter(r)
	if !ok {
		http.Error(w, "unknown state; want one of all, problems, failing, inconclusive, pending, ok, down, backup", http.StatusBadRequest)
		return
	}
	cfg := h.config()
	ans := h.scratch(&cfg)
	defer h.releaseScratch(ans)
	s := h.count(ans, cfg, &f, nil)
	defer s.done()
	at := s.at.UTC()
	head := report.Report{
		Config:              h.opts.NginxConfig,
		Probed:              true,
		Healthy:             s.healthy,
		Summary:             s.summary,
		ProbeTimeoutSeconds: h.opts.ProbeTimeout.Seconds(),
		Targets:             []report.Target{},
		GeneratedAt:         &at,
		Exporter:            h.exporterState(s.cfg),
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
	bw := h.writer(w)
	defer h.release(bw)
	bw.Write(b[:i+len(field)])
	var (
		sc     report.Scratch
		n      int
		encErr error
		buf    = ans.json[:0]
	)
	// No lock is held while a target is encoded: Each hands out a copy.
	h.opts.Source.Each(func(st *scheduler.Status) {
		verdict, _ := report.VerdictOf(st, report.VerdictPending)
		if encErr != nil || !f.matchVerdict(st.Target.Key, verdict, st.Target.Settings().Params.Backup) {
			return
		}
		t := h.describe(&sc, st, s)
		if n > 0 {
			bw.WriteByte(',')
		}
		n++
		// As json.Encoder.Encode writes it, with its newline, which JSON
		// allows between values.
		if buf, encErr = t.AppendJSON(buf[:0]); encErr == nil {
			buf = append(buf, '\n')
			bw.Write(buf)
		}
	})
	ans.json = buf
	if encErr != nil {
		h.opts.Logger.Error("encoding a target for the API failed", "err", encErr)
		return
	}
	bw.Write(b[i+len(field):])
	bw.WriteByte('\n')
	if err := bw.Flush(); err != nil {
		h.opts.Logger.Debug("client went away during /api/v1/targets", "err", err)
	}
}
