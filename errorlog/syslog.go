package errorlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"time"
)

// syslogDatagram bounds one message: nginx sends at most
// NGX_SYSLOG_MAX_STR (NGX_MAX_ERROR_STR plus the header) per datagram.
const syslogDatagram = 4096

// Syslog receives the error log nginx sends with
// `error_log syslog:server=unix:PATH` on a unix datagram socket, for
// containers whose log file is a link to /dev/stderr.
type Syslog struct {
	conn *net.UnixConn
	path string
}

// ListenSyslog creates the socket at path. A stale socket left by an
// earlier run is replaced; any other file there is an error. The socket
// is made writable by everyone so that nginx's workers can send to it
// whatever their user: restrict access with the directory that holds it.
func ListenSyslog(path string) (*Syslog, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("syslog receiver: %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("syslog receiver: removing stale socket: %w", err)
		}
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("syslog receiver: %w", err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		conn.Close()
		return nil, fmt.Errorf("syslog receiver: %w", err)
	}
	return &Syslog{conn: conn, path: path}, nil
}

// Close closes and removes the socket of a receiver that never served.
func (s *Syslog) Close() error {
	err := s.conn.Close()
	os.Remove(s.path)
	return err
}

// Path is the socket's path.
func (s *Syslog) Path() string { return s.path }

// Serve counts every message received into r until ctx is done, then
// closes and removes the socket.
func (s *Syslog) Serve(ctx context.Context, r *Reader) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		// Unblocks the read below.
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
	}()
	defer func() {
		s.conn.Close()
		os.Remove(s.path)
	}()
	buf := make([]byte, syslogDatagram)
	for {
		n, _, err := s.conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			return fmt.Errorf("syslog receiver: %w", err)
		}
		msg := syslogMessage(buf[:n])
		var st lineState
		r.consume(&st, msg)
		r.consume(&st, []byte{'\n'})
	}
}

// syslogMessage strips the RFC 3164 header nginx writes
// (ngx_syslog_add_header: "<PRI>Mmm dd hh:mm:ss [HOSTNAME ]TAG: ") and
// returns the error-log line that follows. A message without that header
// is returned as is, and is then counted as unparsed.
func syslogMessage(b []byte) []byte {
	b = bytes.TrimRight(b, "\n")
	if len(b) < 1 || b[0] != '<' {
		return b
	}
	gt := bytes.IndexByte(b, '>')
	if gt < 0 || gt > 4 {
		return b
	}
	rest := b[gt+1:]
	// "Mmm dd hh:mm:ss " is 16 bytes (the day is space-padded).
	if len(rest) < 16 || rest[15] != ' ' {
		return b
	}
	rest = rest[16:]
	// The tag ends with ": "; a hostname before it has no colon.
	for range 2 {
		sp := bytes.IndexByte(rest, ' ')
		if sp < 0 {
			return b
		}
		if sp > 0 && rest[sp-1] == ':' {
			return rest[sp+1:]
		}
		rest = rest[sp+1:]
	}
	return b
}
