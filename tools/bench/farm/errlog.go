package farm

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LogWriter appends to an nginx error log what nginx would write for the
// farm's failing targets if requests reached them: one upstream error per
// failing target per Interval, spread evenly, plus lines that are no
// upstream error (one per otherEvery targets per Interval, so a farm
// without failures still has a log that moves), in nginx's exact format
// (src/core/ngx_log.c, ngx_http_log_error). It runs in the farm's process
// so that its CPU is never counted as the exporter's.
type LogWriter struct {
	Path string
	// Targets[i] is the only server of upstream Names(i).
	Targets []Target
	Names   func(i int) string
	// Server is the server_name written in the client fields.
	Server   string
	Interval time.Duration
	// RotateEvery > 0 renames Path to Path+".1" and reopens Path that
	// often, as logrotate does; PIDFile's process (nginx, when one runs on
	// the same file) is then told to reopen its logs (SIGUSR1).
	RotateEvery time.Duration
	PIDFile     string
}

// otherEvery: one line per interval that is no upstream error (a missing
// favicon, an oversized body) per this many targets.
const otherEvery = 20

// Run writes until stop is closed.
func (w *LogWriter) Run(stop <-chan struct{}) error {
	var failing []int
	for i, t := range w.Targets {
		if t.Mode != ModeOK {
			failing = append(failing, i)
		}
	}
	f, err := os.OpenFile(w.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("error log: %w", err)
	}
	defer func() { f.Close() }()
	others := len(w.Targets) / otherEvery
	if len(failing) == 0 && others == 0 {
		<-stop
		return nil
	}
	const tick = 100 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	lastRotate := start
	pid := os.Getpid()
	var conn uint64
	var written, otherWritten int // lines due so far, over all intervals
	var buf []byte
	for {
		select {
		case <-stop:
			return nil
		case now := <-t.C:
			if w.RotateEvery > 0 && now.Sub(lastRotate) >= w.RotateEvery {
				lastRotate = now
				if err := os.Rename(w.Path, w.Path+".1"); err != nil {
					return fmt.Errorf("error log rotation: %w", err)
				}
				nf, err := os.OpenFile(w.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
				if err != nil {
					return fmt.Errorf("error log rotation: %w", err)
				}
				f.Close()
				f = nf
				w.signalReopen()
			}
			intervals := now.Sub(start).Seconds() / w.Interval.Seconds()
			// nginx writes each entry with its own write(2).
			for due := int(float64(len(failing)) * intervals); written < due; written++ {
				i := failing[written%len(failing)]
				conn++
				buf = AppendErrorLine(buf[:0], now, pid, conn, w.Names(i), w.Targets[i], w.Server)
				if _, err := f.Write(buf); err != nil {
					return fmt.Errorf("error log: %w", err)
				}
			}
			for due := int(float64(others) * intervals); otherWritten < due; otherWritten++ {
				conn++
				buf = AppendOtherLine(buf[:0], now, pid, conn, otherWritten, w.Server)
				if _, err := f.Write(buf); err != nil {
					return fmt.Errorf("error log: %w", err)
				}
			}
		}
	}
}

// signalReopen tells the process of PIDFile to reopen its log files, as
// `nginx -s reopen` does after logrotate renamed them.
func (w *LogWriter) signalReopen() {
	if w.PIDFile == "" {
		return
	}
	raw, err := os.ReadFile(w.PIDFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil && !errors.Is(err, syscall.ESRCH) {
		fmt.Fprintf(os.Stderr, "farm: reopen signal to nginx %d: %v\n", pid, err)
	}
}

// header is "YYYY/MM/DD HH:MM:SS [level] PID#TID: *CONN " in nginx's local
// time (ngx_log_error_core).
func header(b []byte, now time.Time, level string, pid int, conn uint64) []byte {
	b = now.AppendFormat(b, "2006/01/02 15:04:05")
	b = append(b, " ["...)
	b = append(b, level...)
	b = append(b, "] "...)
	b = strconv.AppendInt(b, int64(pid), 10)
	b = append(b, '#')
	b = strconv.AppendInt(b, int64(pid), 10)
	b = append(b, ": *"...)
	b = strconv.AppendUint(b, conn, 10)
	return append(b, ' ')
}

// AppendErrorLine appends the entry nginx writes when a request to
// upstream (whose one server is t) fails as t fails, newline included.
// The configuration confgen writes routes /NAME to upstream NAME.
func AppendErrorLine(b []byte, now time.Time, pid int, conn uint64, upstream string, t Target, server string) []byte {
	b = header(b, now, "error", pid, conn)
	switch {
	case t.Mode == ModeRefuse:
		b = append(b, "connect() failed (111: Connection refused) while connecting to upstream"...)
	case t.Kind == KindTCP:
		// The farm's hanging TCP targets have a full accept queue: the
		// connect never completes.
		b = append(b, "upstream timed out (110: Connection timed out) while connecting to upstream"...)
	case t.Kind == KindHTTPS:
		// Accepted, never answered: the handshake waits.
		b = append(b, "upstream timed out (110: Connection timed out) while SSL handshaking to upstream"...)
	default:
		b = append(b, "upstream timed out (110: Connection timed out) while reading response header from upstream"...)
	}
	b = append(b, ", client: 127.0.0.1, server: "...)
	b = append(b, server...)
	b = append(b, `, request: "GET /`...)
	b = append(b, upstream...)
	b = append(b, ` HTTP/1.1", upstream: "`...)
	// u->schema and the peer as ngx_http_upstream_init_request prints
	// them: proxy_pass without a URI passes the request's URI on;
	// fastcgi and memcached print no URI.
	switch t.Kind {
	case KindHTTP, KindHTTPS:
		b = append(b, t.Kind...)
		b = append(b, "://"...)
		b = append(b, t.Addr...)
		b = append(b, '/')
		b = append(b, upstream...)
	case KindFastCGI:
		b = append(b, "fastcgi://"...)
		b = append(b, t.Addr...)
	default:
		b = append(b, "memcached://"...)
		b = append(b, t.Addr...)
	}
	b = append(b, `", host: "`...)
	b = append(b, server...)
	return append(b, "\"\n"...)
}

// AppendOtherLine appends an entry that is no upstream error; k picks
// which of two everyday ones.
func AppendOtherLine(b []byte, now time.Time, pid int, conn uint64, k int, server string) []byte {
	b = header(b, now, "error", pid, conn)
	if k%2 == 0 {
		// ngx_http_static_handler for a file that is not there.
		b = append(b, `open() "/usr/share/nginx/html/favicon.ico" failed (2: No such file or directory), client: 127.0.0.1, server: `...)
		b = append(b, server...)
		b = append(b, `, request: "GET /favicon.ico HTTP/1.1", host: "`...)
	} else {
		// ngx_http_core_module: client_max_body_size exceeded.
		b = append(b, `client intended to send too large body: 2097152 bytes, client: 127.0.0.1, server: `...)
		b = append(b, server...)
		b = append(b, `, request: "POST /upload HTTP/1.1", host: "`...)
	}
	b = append(b, server...)
	return append(b, "\"\n"...)
}
