//go:build !race

package party_test

// raceDetector is set when the tests run with -race, whose instrumentation
// makes goroutine stacks deeper: byte counts of stacks are only logged then.
const raceDetector = false
