//go:build !linux

package prober

// readable says yes at once where the wait is not implemented: the probe
// then takes its buffer before reading, as it always did.
func readable(uintptr) bool { return true }
