//go:build !linux

package loadgen

// newFineTimer returns nil: only Linux has a fine timer here, so elsewhere
// an open loop's waits end up to a millisecond late.
func newFineTimer() fineTimer { return nil }
