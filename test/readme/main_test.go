// Package readme_test holds the README to what the program does.
//
// TestWalkthrough runs every command of the README's ```console blocks
// against a server of its own (its own redis-server on a free port, its own
// database, the program built from this checkout) and compares what each
// prints with the lines the README shows under it. TestConfiguration holds
// docs/configuration.md's tables of environment variables and flags to the flags
// `eventsource serve -h` lists and the variables the server reads.
// TestLinks and TestLayout keep the links of README.md and docs/ and the
// package table of docs/layout.md from going stale.
//
// The README's conventions, which these tests parse:
//
//   - A block ```console holds commands, each on a line that starts with
//     "$ ", followed by exactly the lines it prints (stdout and stderr).
//     Each command runs to its end in a shell (bash -c).
//   - A block ```console NAME is a terminal of its own, whose one command
//     keeps running (redis-cli subscribe) while other blocks run: its first
//     block starts the command and shows what it prints at once; each
//     later block of that NAME, without a "$ " line, shows what it prints
//     next. A terminal that prints more than the README shows fails.
//   - "…" in an expected line matches any text; timestamps
//     (2026-12-07T05:58:05.244499Z) match any timestamp. Ids are exact: the
//     database is new.
//   - "$ go run ." runs the ```go block above it as a program of this
//     module.
//
// Before running a command the test points it at its own services:
// "redis-cli" gets "-p PORT", "bin/eventsource" becomes the program built
// here (with MYSQL_DATABASE and REDIS_PORT in its environment),
// http://127.0.0.1:9090 and http://127.0.0.1:8080 become the test server's
// admin and HTTP listeners, and the Go program's "127.0.0.1:6379" its Redis.
// Nothing touches the Redis on the default port or the default database.
package readme_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/eventsource/eventsource/internal/testbinary"
)

// binary is the eventsource program, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	var remove func()
	var err error
	if binary, remove, err = testbinary.Build("../../cmd/eventsource", false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	remove()
	os.Exit(code)
}
