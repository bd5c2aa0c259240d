package nginxconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Default bounds of a configuration tree. Real configurations are far
// below them (the largest we know of, with GeoIP maps and tens of
// thousands of upstreams, stay under 100 MiB and a few thousand files);
// they exist so that nothing in the tree, hostile or broken, can make a
// load hang or exhaust the exporter's memory.
const (
	// DefaultMaxFileBytes bounds one file.
	DefaultMaxFileBytes = 64 << 20
	// DefaultMaxTotalBytes bounds the bytes parsed, a file counting once
	// per inclusion (nginx parses a file included twice twice).
	DefaultMaxTotalBytes = 256 << 20
	// DefaultMaxDirectives bounds the directives parsed, a file counting
	// once per inclusion; directives are counted as the ';' and '{' of
	// the file. Memory follows the directive count more than the bytes
	// (docs/configuration.md has the measurements).
	DefaultMaxDirectives = 1000000
	// DefaultMaxFiles bounds the distinct files read.
	DefaultMaxFiles = 10000
	// DefaultMaxInclusions bounds the file inclusions, a file counting
	// once per inclusion: the include fan-out.
	DefaultMaxInclusions = 100000
	// DefaultMaxIncludeDepth bounds the nesting of includes; the main
	// file is at depth 0.
	DefaultMaxIncludeDepth = 64
)

// ErrLimitExceeded is wrapped by the *ParseError Load returns when the
// configuration tree exceeds one of the LoadOptions limits.
var ErrLimitExceeded = errors.New("configuration limit exceeded")

// ErrNotRegular is wrapped by the error Load returns when the main file
// or an included file is not a regular file (a FIFO, a device, a socket,
// a directory): reading one may never end (/dev/zero, /dev/stdin) or
// never start (a FIFO without writer).
var ErrNotRegular = errors.New("not a regular file")

// limits are LoadOptions' bounds with the defaults applied.
type limits struct {
	fileBytes, totalBytes         int64
	files, inclusions, directives int
	depth                         int
}

func (o LoadOptions) limits() limits {
	orDefault := func(v, def int64) int64 {
		if v <= 0 {
			return def
		}
		return v
	}
	return limits{
		fileBytes:  orDefault(o.MaxFileBytes, DefaultMaxFileBytes),
		totalBytes: orDefault(o.MaxTotalBytes, DefaultMaxTotalBytes),
		files:      int(orDefault(int64(o.MaxFiles), DefaultMaxFiles)),
		inclusions: int(orDefault(int64(o.MaxInclusions), DefaultMaxInclusions)),
		directives: int(orDefault(int64(o.MaxDirectives), DefaultMaxDirectives)),
		depth:      int(orDefault(int64(o.MaxIncludeDepth), DefaultMaxIncludeDepth)),
	}
}

// usage is what (part of) a configuration costs: inclusions, bytes and
// directives parsed, repeats included.
type usage struct {
	inclusions int
	directives int
	bytes      int64
}

// statements is an upper bound of the directives in a file: each ends
// with ';' or opens a block with '{' (those in comments and quoted
// strings count too). It is computed before the file is parsed, so that
// the limit bounds the parser's memory, not only ours.
func statements(data []byte) int {
	return bytes.Count(data, []byte{';'}) + bytes.Count(data, []byte{'{'})
}

// limitError builds the error of an exceeded limit, at the directive (or
// main file) that crossed it.
func limitError(file string, line int, format string, a ...any) *ParseError {
	return &ParseError{File: file, Line: line, Msg: fmt.Sprintf(format, a...), Err: ErrLimitExceeded}
}

// fileKind names the type of a non-regular file for error messages.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeDir != 0:
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "irregular file"
}

// notRegularError reports a file that is not a regular file.
type notRegularError struct {
	name string
	mode fs.FileMode
}

func (e *notRegularError) Error() string {
	return fmt.Sprintf("%q is a %s, not a regular file", e.name, fileKind(e.mode))
}

func (e *notRegularError) Is(target error) bool { return target == ErrNotRegular }

// tooLargeError reports a file larger than the per-file limit.
type tooLargeError struct {
	name  string
	limit int64
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("%q is larger than the per-file limit of %d bytes", e.name, e.limit)
}

func (e *tooLargeError) Is(target error) bool { return target == ErrLimitExceeded }

// readRegular reads a regular file of at most max bytes. It opens with
// O_NONBLOCK so that a FIFO never blocks the open (a FIFO without writer
// would block it forever), refuses anything fstat does not call a regular
// file (the check is on the opened file, so a file swapped for a FIFO
// after the stat is caught), and never reads more than
// max+1 bytes, whatever the file claims its size is: a file that grows
// while it is read cannot make the read endless.
func readRegular(name string, max int64) ([]byte, error) {
	// A stat first, for a clear error where open() would give a vague
	// one (ENXIO for a socket) or have side effects (a tty, a device).
	if st, err := os.Stat(name); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, &notRegularError{name: name, mode: st.Mode()}
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &notRegularError{name: name, mode: st.Mode()}
	}
	if st.Size() > max {
		return nil, &tooLargeError{name: name, limit: max}
	}
	// Size+1 so that the common case reads to EOF in one buffer.
	buf := make([]byte, 0, st.Size()+1)
	b, err := readAllLimited(f, buf, max+1)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, &tooLargeError{name: name, limit: max}
	}
	return b, nil
}

// readAllLimited is io.ReadAll into buf, stopping after n bytes.
func readAllLimited(r io.Reader, buf []byte, n int64) ([]byte, error) {
	lr := &io.LimitedReader{R: r, N: n}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
