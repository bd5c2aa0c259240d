//go:build !unix

package fdlimit

import "errors"

// ErrUnsupported is returned where the platform has no RLIMIT_NOFILE.
var ErrUnsupported = errors.New("RLIMIT_NOFILE is not supported on this platform")

// Raise does nothing where there is no RLIMIT_NOFILE.
func Raise() (Limits, error) { return Limits{}, ErrUnsupported }
