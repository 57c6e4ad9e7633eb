// Package testbinary builds the eventsource program for tests that run it
// as a process.
package testbinary

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build compiles the main package in dir (relative to the test's package)
// into a temporary directory, with the race detector when race is set, and
// returns the program's path and a function that removes it. The compiler's
// output goes to stderr.
func Build(dir string, race bool) (binary string, remove func(), err error) {
	tmp, err := os.MkdirTemp("", "eventsource-test-")
	if err != nil {
		return "", nil, fmt.Errorf("build eventsource: %w", err)
	}
	remove = func() { _ = os.RemoveAll(tmp) }
	binary = filepath.Join(tmp, "eventsource")
	args := []string{"build", "-o", binary}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, dir)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		remove()
		return "", nil, fmt.Errorf("build eventsource from %s: %w", dir, err)
	}
	return binary, remove, nil
}
