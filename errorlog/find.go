package errorlog

import (
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/nginxconf"
)

// DefaultPath is where nginx writes when no error_log applies: the
// compiled-in NGX_ERROR_LOG_PATH of Debian's and the official packages
// (--error-log-path=/var/log/nginx/error.log).
const DefaultPath = "/var/log/nginx/error.log"

// FindOptions say which logs to read besides the configuration's.
type FindOptions struct {
	// Paths are read in addition to those of the configuration
	// (--nginx.error-log), or instead of them when FromConfig is false.
	Paths      []string
	FromConfig bool
	// SyslogSocket is the receiver's socket, "" for none: an error_log
	// syslog:server=unix:<it> is read through the receiver.
	SyslogSocket string
}

// Find lists the files to tail: every error_log of the loaded tree that
// is a file (main, http, server, location; each once), nginx's default
// when neither main nor http sets one, and the given paths. stderr,
// memory: and syslog: targets cannot be read from here: each is logged
// once per load, with what to do instead.
func Find(logs []nginxconf.ErrorLog, opts FindOptions, logger *slog.Logger) []string {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		p = filepath.Clean(p)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if opts.FromConfig {
		outer := false
		for _, l := range logs {
			if l.Context == "main" || l.Context == "http" {
				outer = true
			}
			switch {
			case l.Path != "":
				add(l.Path)
			case strings.HasPrefix(l.Target, "syslog:"):
				if sock := syslogUnixPath(l.Target); sock != "" && opts.SyslogSocket != "" && filepath.Clean(sock) == filepath.Clean(opts.SyslogSocket) {
					logger.Debug("error log received through the syslog receiver", "error_log", l.Target, "position", l.Source)
					continue
				}
				logger.Info("not reading an error_log sent to syslog; point it at the receiver: error_log syslog:server=unix:PATH and --nginx.error-log.syslog-socket=PATH",
					"error_log", l.Target, "position", l.Source)
			case l.Target == "stderr":
				logger.Info("not reading an error_log written to stderr; use the syslog receiver (--nginx.error-log.syslog-socket) or a file", "position", l.Source)
			default:
				logger.Info("not reading an in-memory error_log (memory:), which only a debugger can read", "error_log", l.Target, "position", l.Source)
			}
		}
		if !outer {
			add(DefaultPath)
		}
	}
	for _, p := range opts.Paths {
		add(p)
	}
	return out
}

// syslogUnixPath is the socket of "syslog:server=unix:/path,…", "" for
// other servers.
func syslogUnixPath(target string) string {
	params := strings.TrimPrefix(target, "syslog:")
	for _, p := range strings.Split(params, ",") {
		if v, ok := strings.CutPrefix(p, "server=unix:"); ok {
			return v
		}
	}
	return ""
}
