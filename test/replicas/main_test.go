// Package replicas_test runs several real eventsource servers, as
// processes, on one Redis and one MariaDB, and checks that they act as one:
// each request answered exactly once, a dead server's streams ended by the
// survivors, every server full refusing once.
package replicas_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the eventsource program, built once by TestMain (with -race
// when the tests are).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eventsource-replicas-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "eventsource")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../../cmd/eventsource")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build eventsource:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	stopCluster()
	os.RemoveAll(dir)
	os.Exit(code)
}
