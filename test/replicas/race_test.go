//go:build race

package replicas_test

// raceEnabled builds the servers with -race when the tests run with it.
const raceEnabled = true
