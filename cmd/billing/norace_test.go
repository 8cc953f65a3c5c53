//go:build !race

package main

// raceEnabled reports whether the tests run under the race detector, which
// makes the SQLite driver and the emulator several times slower.
const raceEnabled = false
