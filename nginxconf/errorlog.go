package nginxconf

import (
	"path/filepath"
	"strings"
)

// ErrorLog is one error_log directive of the tree.
type ErrorLog struct {
	// Target is the first argument as written: a file name, "stderr",
	// "memory:SIZE" or "syslog:server=…".
	Target string
	// Path is the file nginx writes, resolved as nginx does
	// (ngx_conf_open_file: relative names against the prefix, see
	// LoadOptions.Prefix); empty for stderr, memory: and syslog: targets.
	Path string
	// Level is the second argument ("error" when absent, nginx's
	// default).
	Level string
	// Context is where the directive is: main, http, server, location,
	// stream or "stream server".
	Context string
	// Source is the directive's "file:line".
	Source string
}

// defaultErrorLogLevel is the level of an error_log without one
// (ngx_log_set_levels leaves NGX_LOG_ERR).
const defaultErrorLogLevel = "error"

// errorLog records an error_log directive found in context. nginx accepts
// it in main, http, server, location, stream and its servers (and mail,
// not read here).
func (w *walker) errorLog(n *node, context string) {
	if len(n.args) < 1 {
		return
	}
	l := ErrorLog{Target: n.args[0], Level: defaultErrorLogLevel, Context: context, Source: n.source()}
	if len(n.args) > 1 {
		l.Level = n.args[1]
	}
	switch t := l.Target; {
	case t == "stderr", strings.HasPrefix(t, "memory:"), strings.HasPrefix(t, "syslog:"):
	case filepath.IsAbs(t):
		l.Path = filepath.Clean(t)
	default:
		// ngx_conf_full_name(cycle, name, 0): the prefix, which the
		// loader only knows as the directory the tree is read from.
		l.Path = filepath.Join(w.prefix, t)
	}
	w.cfg.ErrorLogs = append(w.cfg.ErrorLogs, l)
}
