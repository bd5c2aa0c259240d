package diagnose

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// ColorMode selects when the table is coloured.
type ColorMode string

// The colour modes of --color.
const (
	ColorAuto   ColorMode = "auto"
	ColorAlways ColorMode = "always"
	ColorNever  ColorMode = "never"
)

// IsTerminal reports whether w is a terminal. It asks the tty driver
// (TCGETS) rather than checking for a character device, because /dev/null
// is a character device too.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// useColor applies the mode: auto colours a terminal unless NO_COLOR is
// set to anything non-empty (https://no-color.org).
func useColor(mode ColorMode, w io.Writer, isTerminal func(io.Writer) bool, getenv func(string) string) bool {
	switch mode {
	case ColorAlways:
		return true
	case ColorNever:
		return false
	}
	return getenv("NO_COLOR") == "" && getenv("TERM") != "dumb" && isTerminal(w)
}

// palette wraps text in ANSI SGR sequences, or not at all.
type palette struct{ on bool }

func (p palette) wrap(code, s string) string {
	if !p.on || s == "" {
		return s
	}
	return fmt.Sprintf("\x1b[%sm%s\x1b[0m", code, s)
}

func (p palette) red(s string) string    { return p.wrap("1;31", s) }
func (p palette) green(s string) string  { return p.wrap("32", s) }
func (p palette) yellow(s string) string { return p.wrap("33", s) }
func (p palette) dim(s string) string    { return p.wrap("2", s) }
func (p palette) bold(s string) string   { return p.wrap("1", s) }
