//go:build race

package server_test

// raceEnabled: the race detector multiplies memory several times, so the
// memory test sends smaller frames under it.
const raceEnabled = true
