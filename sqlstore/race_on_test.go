//go:build race

package sqlstore_test

// raceDetector reports whether the tests run under -race.
const raceDetector = true
