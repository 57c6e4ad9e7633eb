// Package replicas_test runs several real eventsource servers, as
// processes, on one Redis and one MariaDB, and checks that they act as one:
// each request answered exactly once, a dead server's streams ended by the
// survivors, every server full refusing once.
package replicas_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/eventsource/eventsource/internal/testbinary"
)

// binary is the eventsource program, built once by TestMain (with -race
// when the tests are).
var binary string

func TestMain(m *testing.M) {
	var remove func()
	var err error
	if binary, remove, err = testbinary.Build("../../cmd/eventsource", raceEnabled); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stopCluster()
	remove()
	os.Exit(code)
}
