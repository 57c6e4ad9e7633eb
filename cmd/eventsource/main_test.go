package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventsource/eventsource/internal/testbinary"
	"github.com/eventsource/eventsource/mysqlstore"
)

// binary is the eventsource program built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	var remove func()
	var err error
	if binary, remove, err = testbinary.Build(".", false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	remove()
	os.Exit(code)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// result is what one run of the binary did.
type result struct {
	code           int
	stdout, stderr string
}

// runBinary runs the binary to completion with env added to the test's
// environment.
func runBinary(tb testing.TB, env []string, args ...string) result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	default:
		tb.Fatalf("run eventsource %q: %v\nstderr: %s", args, err, res.stderr)
	}
	if ctx.Err() != nil {
		tb.Fatalf("eventsource %q did not finish in time\nstderr: %s", args, res.stderr)
	}
	return res
}

// mustDB opens a pool on the local MariaDB without a default database.
func mustDB(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := mysqlstore.Open(mysqlstore.Config{Host: "127.0.0.1", Port: 3306, User: "root", Charset: "utf8mb4", PoolSize: 2})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// databaseName returns a fresh database name, dropped when the test ends
// whether or not anything created it.
func databaseName(tb testing.TB, db *sql.DB) string {
	tb.Helper()
	name := "es_eventsource_" + randomHex(6)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
	})
	return name
}

func TestMisuse(t *testing.T) {
	t.Parallel()
	// Any connection attempt would be a bug: point both services at a port
	// nothing listens on, so a wrongly started command fails instead of
	// touching the shared ones.
	env := []string{"MYSQL_PORT=1", "REDIS_PORT=1", "MYSQL_DATABASE=es_eventsource_never"}
	tests := []struct {
		name string
		args []string
		env  []string
		want []string // substrings of stderr
	}{
		{"no arguments", nil, nil, []string{"usage: eventsource <command>", "serve", "migrate", "fetch", "persist"}},
		{"unknown command", []string{"frobnicate"}, nil, []string{`unknown command "frobnicate"`, "usage: eventsource <command>"}},
		{"flag before the command", []string{"--log-json", "serve"}, nil, []string{`unknown command "--log-json"`, "usage: eventsource"}},
		{"unknown flag of serve", []string{"serve", "--no-such-flag"}, nil, []string{"no-such-flag", "usage: eventsource serve"}},
		{"unknown flag of fetch", []string{"fetch", "--pid", "p", "--bogus"}, nil, []string{"bogus", "usage: eventsource fetch"}},
		{"unknown flag of persist", []string{"persist", "--bogus"}, nil, []string{"bogus", "usage: eventsource persist"}},
		{"unknown flag of migrate", []string{"migrate", "--bogus"}, nil, []string{"bogus", "usage: eventsource migrate"}},
		{"flag without its value", []string{"fetch", "--pid"}, nil, []string{"pid", "usage: eventsource fetch"}},
		{"bad duration", []string{"serve", "--accept-timeout", "soon"}, nil, []string{"accept-timeout", "usage: eventsource serve"}},
		{"stray argument to migrate", []string{"migrate", "extra"}, nil, []string{`unexpected argument "extra"`, "usage: eventsource migrate"}},
		{"stray argument to serve", []string{"serve", "--log-json", "extra"}, nil, []string{`unexpected argument "extra"`, "usage: eventsource serve"}},
		{"stray argument to fetch", []string{"fetch", "--pid", "p", "extra"}, nil, []string{`unexpected argument "extra"`, "usage: eventsource fetch"}},
		{
			"persist without --pid",
			[]string{"persist", "--domain", "d", "--name", "n", "--data", "{}"}, nil,
			[]string{"--pid is required", "usage: eventsource persist"},
		},
		{
			"persist with --data not JSON",
			[]string{"persist", "--pid", "p", "--domain", "d", "--name", "n", "--data", "not json"}, nil,
			[]string{"--data is not valid JSON", "usage: eventsource persist"},
		},
		{"persist without anything", []string{"persist"}, nil, []string{"usage: eventsource persist"}},
		{
			"persist with --query and event flags",
			[]string{"persist", "--query", `{"$insert":{}}`, "--pid", "p"}, nil,
			[]string{"not both", "usage: eventsource persist"},
		},
		{"persist with --query not an object", []string{"persist", "--query", `[1]`}, nil, []string{"eventsource persist: --query: a JSON array, not an object"}},
		{
			"fetch with --query and --pid",
			[]string{"fetch", "--query", `{"$select":{}}`, "--pid", "p"}, nil,
			[]string{"not both", "usage: eventsource fetch"},
		},
		{"fetch without a query", []string{"fetch"}, nil, []string{"usage: eventsource fetch"}},
		{"fetch with an empty --pid", []string{"fetch", "--pid", ""}, nil, []string{"--pid is empty", "usage: eventsource fetch"}},
		{"fetch with --query not JSON", []string{"fetch", "--query", "{"}, nil, []string{"eventsource fetch: --query: unexpected end of JSON input (at byte 1)"}},
		{"fetch with a negative --window", []string{"fetch", "--pid", "p", "--window", "-1"}, nil, []string{"--window -1 is negative", "usage: eventsource fetch"}},
		{"fetch with a bad --redis", []string{"fetch", "--pid", "p", "--redis", "nohostport"}, nil, []string{"--redis", "usage: eventsource fetch"}},
		{"serve with a bad --log-level", []string{"serve", "--log-level", "loud"}, nil, []string{"log-level"}},
		{"migrate with a bad MYSQL_PORT", []string{"migrate"}, []string{"MYSQL_PORT=abc"}, []string{"MYSQL_PORT", "not a number"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runBinary(t, append(slices.Clone(env), tt.env...), tt.args...)
			if res.code != 2 {
				t.Errorf("exit status %d, want 2", res.code)
			}
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr does not mention %q", w)
				}
			}
			if t.Failed() {
				t.Logf("stderr:\n%s", res.stderr)
			}
		})
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	db := mustDB(t)
	tests := []struct {
		name string
		// args gets the database name when flag is set; otherwise it goes
		// in MYSQL_DATABASE.
		flag bool
	}{
		{"MYSQL_DATABASE", false},
		{"--database", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name := databaseName(t, db)
			env := []string{"MYSQL_DATABASE=" + name}
			args := []string{"migrate"}
			if tt.flag {
				env = []string{"MYSQL_DATABASE=es_eventsource_unused_" + randomHex(4)}
				args = append(args, "--database", name)
			}
			for i := range 2 { // idempotent
				res := runBinary(t, env, args...)
				if res.code != 0 {
					t.Fatalf("run %d: exit status %d\nstderr: %s", i+1, res.code, res.stderr)
				}
				if want := "migrated " + name + ".event\n"; !strings.HasPrefix(res.stdout, want) { // then the grants for serve
					t.Fatalf("run %d: stdout %q, want %q", i+1, res.stdout, want)
				}
			}
			var n int
			err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'event'`, name).Scan(&n)
			if err != nil || n != 8 {
				t.Fatalf("%s.event has %d columns (%v), want 8 (6 and the invisible eventId and version)", name, n, err)
			}
			if tt.flag {
				var unused int
				if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, strings.TrimPrefix(env[0], "MYSQL_DATABASE=")).Scan(&unused); err != nil || unused != 0 {
					t.Fatalf("--database did not win over MYSQL_DATABASE (%v)", err)
				}
			}
		})
	}
}

// lockedLines collects the lines a process writes, safe to read while it
// runs.
type lockedLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *lockedLines) add(line string) {
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
}

func (l *lockedLines) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

func (l *lockedLines) String() string { return strings.Join(l.snapshot(), "\n") }

// waitFor polls check until it returns nil, failing with its last error
// after timeout.
func waitFor(tb testing.TB, timeout time.Duration, check func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// orderedKeys returns the keys of a JSON object in the order written.
func orderedKeys(tb testing.TB, line string) []string {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		tb.Fatalf("%q is not a JSON object", line)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			tb.Fatalf("%q: %v", line, err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			tb.Fatalf("%q: %v", line, err)
		}
	}
	return keys
}

// outputLines splits stdout into lines, each of which must end in "\n".
func outputLines(tb testing.TB, stdout string) []string {
	tb.Helper()
	if stdout == "" {
		return nil
	}
	if !strings.HasSuffix(stdout, "\n") {
		tb.Fatalf("stdout %q does not end in a newline", stdout)
	}
	return strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
}

type eventRow struct {
	Timestamp string `json:"timestamp"`
	PID       string `json:"pid"`
	Domain    string `json:"domain"`
	Name      string `json:"name"`
	Data      any    `json:"data"`
	ID        int64  `json:"id"`
}

var isoMicros = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

// TestServeEndToEnd runs the real server and talks to it with the persist
// and fetch subcommands.
func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	db := mustDB(t)
	dbName := databaseName(t, db)
	env := []string{"MYSQL_DATABASE=" + dbName}
	if res := runBinary(t, env, "migrate"); res.code != 0 {
		t.Fatalf("migrate: exit status %d\nstderr: %s", res.code, res.stderr)
	}
	prefix := "es-eventsource-test:" + randomHex(6) + ":"
	fetchCh, persistCh, nextCh := prefix+"fetch", prefix+"persist", prefix+"fetch-next"

	// At debug, where each persist's "persist ended" is logged.
	serve := exec.Command(binary, "serve",
		"--fetch-channel", fetchCh, "--persist-channel", persistCh, "--fetch-next-channel", nextCh,
		"--commit-channel", fetchCh+":committed", "--finished-channel", fetchCh+":finished",
		"--log-json", "--log-level", "debug", "--shutdown-grace", "2s", "--admin", "127.0.0.1:0")
	serve.Env = append(os.Environ(), env...)
	var serveStdout bytes.Buffer
	serve.Stdout = &serveStdout
	stderrPipe, err := serve.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	var logs lockedLines
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderrPipe)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			logs.add(sc.Text())
		}
	}()
	exited := make(chan error, 1)
	go func() {
		<-readDone // Wait closes the pipe: read it all first
		exited <- serve.Wait()
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = serve.Process.Kill()
			<-exited
		}
	})

	waitFor(t, 30*time.Second, func() error {
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("serve exited early: %v\nstderr:\n%s", err, logs.String())
		default:
		}
		for _, line := range logs.snapshot() {
			if strings.Contains(line, "eventsource serving") {
				return nil
			}
		}
		return errors.New(`serve has not logged "eventsource serving"`)
	})

	pid := "order-" + randomHex(4)
	// persist: one event from flags, then two from a query.
	res := runBinary(t, nil, "persist", "--persist-channel", persistCh,
		"--pid", pid, "--domain", "shop", "--name", "created", "--data", `{"total":42}`)
	if res.code != 0 {
		t.Fatalf("persist: exit status %d\nstderr: %s", res.code, res.stderr)
	}
	lines := outputLines(t, res.stdout)
	if len(lines) != 1 {
		t.Fatalf("persist printed %q, want one line", res.stdout)
	}
	var firstID int64
	if _, err := fmt.Sscanf(lines[0], `{"fieldCount":0,"affectedRows":1,"insertId":%d,`, &firstID); err != nil {
		t.Fatalf("persist printed %s: %v", lines[0], err)
	}
	want := `{"fieldCount":0,"affectedRows":1,"insertId":` + strconv.FormatInt(firstID, 10) + `,"serverStatus":2,"warningCount":0,"message":"","protocol41":true,"changedRows":0}`
	if lines[0] != want {
		t.Fatalf("persist printed\n%s\nwant\n%s", lines[0], want)
	}

	query := fmt.Sprintf(`{"$insert":{"$documents":[{"pid":%q,"domain":"shop","name":"paid","data":{"method":"card"}},{"pid":%q,"domain":"shop","name":"shipped","data":"<&>"}]}}`, pid, pid)
	res = runBinary(t, nil, "persist", "--persist-channel", persistCh, "--query", query)
	if res.code != 1 || res.stdout != "" || !strings.Contains(res.stderr, "bad_request") {
		t.Fatalf("persist of data that is not JSON text: exit status %d, stdout %q, stderr %q; want 1, nothing, bad_request", res.code, res.stdout, res.stderr)
	}
	query = fmt.Sprintf(`{"$insert":{"$documents":[{"pid":%q,"domain":"shop","name":"paid","data":{"method":"card"}},{"pid":%q,"domain":"shop","name":"shipped","data":["<&>"]}]}}`, pid, pid)
	res = runBinary(t, nil, "persist", "--persist-channel", persistCh, "--query", query)
	if res.code != 0 {
		t.Fatalf("persist --query: exit status %d\nstderr: %s", res.code, res.stderr)
	}
	want = `{"fieldCount":0,"affectedRows":2,"insertId":` + strconv.FormatInt(firstID+1, 10) + `,"serverStatus":2,"warningCount":0,"message":"&Records: 2  Duplicates: 0  Warnings: 0","protocol41":true,"changedRows":0}` + "\n"
	if res.stdout != want {
		t.Fatalf("persist --query printed\n%s\nwant\n%s", res.stdout, want)
	}

	// fetch with the shorthand: every column, in the table's order.
	res = runBinary(t, nil, "fetch", "--fetch-channel", fetchCh, "--pid", pid, "--timeout", "30s")
	if res.code != 0 {
		t.Fatalf("fetch: exit status %d\nstderr: %s", res.code, res.stderr)
	}
	lines = outputLines(t, res.stdout)
	if len(lines) != 3 {
		t.Fatalf("fetch printed %d lines, want 3:\n%s", len(lines), res.stdout)
	}
	wantRows := []struct {
		name, data string
	}{{"created", `{"total":42}`}, {"paid", `{"method":"card"}`}, {"shipped", `["<&>"]`}}
	for i, line := range lines {
		if keys := orderedKeys(t, line); !slices.Equal(keys, []string{"timestamp", "pid", "domain", "name", "data", "id"}) {
			t.Fatalf("row %d keys %q", i, keys)
		}
		var row eventRow
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatal(err)
		}
		if !isoMicros.MatchString(row.Timestamp) {
			t.Errorf("row %d timestamp %q, want ISO-8601 UTC with microseconds", i, row.Timestamp)
		}
		ts, err := time.Parse(time.RFC3339Nano, row.Timestamp)
		if err != nil || time.Since(ts).Abs() > time.Minute {
			t.Errorf("row %d timestamp %q is not about now (%v)", i, row.Timestamp, err)
		}
		data, ok := row.Data.(string)
		if row.PID != pid || row.Domain != "shop" || row.Name != wantRows[i].name || row.ID != firstID+int64(i) || !ok || !jsonSame(data, wantRows[i].data) {
			t.Errorf("row %d = %s, want %s with data %s and id %d", i, line, wantRows[i].name, wantRows[i].data, firstID+int64(i))
		}
	}
	if !strings.Contains(lines[2], `"data":"[\"<&>\"]"`) {
		t.Errorf("row 2 = %s, want the data text with <&> unescaped", lines[2])
	}

	// fetch with a query: chosen columns, order, limit; exact bytes.
	res = runBinary(t, nil, "fetch", "--fetch-channel", fetchCh, "--timeout", "30s",
		"--query", fmt.Sprintf(`{"$select":{"$columns":["name","id"],"$where":{"pid":%q},"$orderBy":{"id":-1},"$limit":2}}`, pid))
	if res.code != 0 {
		t.Fatalf("fetch --query: exit status %d\nstderr: %s", res.code, res.stderr)
	}
	want = fmt.Sprintf("{\"name\":\"shipped\",\"id\":%d}\n{\"name\":\"paid\",\"id\":%d}\n", firstID+2, firstID+1)
	if res.stdout != want {
		t.Fatalf("fetch --query printed\n%s\nwant\n%s", res.stdout, want)
	}

	// fetch --decode --window: data as JSON values.
	res = runBinary(t, nil, "fetch", "--fetch-channel", fetchCh, "--timeout", "30s", "--decode", "--window", "2", "--pid", pid, "--name", "paid")
	if res.code != 0 {
		t.Fatalf("fetch --decode: exit status %d\nstderr: %s", res.code, res.stderr)
	}
	if lines = outputLines(t, res.stdout); len(lines) != 1 || !strings.Contains(lines[0], `"name":"paid","data":{"method":"card"},"id":`) {
		t.Fatalf("fetch --decode printed %q", res.stdout)
	}

	// fetch of nothing prints nothing and succeeds.
	res = runBinary(t, nil, "fetch", "--fetch-channel", fetchCh, "--timeout", "30s", "--pid", "nobody-"+randomHex(4))
	if res.code != 0 || res.stdout != "" {
		t.Fatalf("fetch of no rows: exit status %d, stdout %q\nstderr: %s", res.code, res.stdout, res.stderr)
	}

	// A query the server refuses fails with status 1 and the reason.
	res = runBinary(t, nil, "fetch", "--fetch-channel", fetchCh, "--timeout", "30s", "--query", `{"$select":{"$where":{"nosuch":1}}}`)
	if res.code != 1 || res.stdout != "" || !strings.Contains(res.stderr, "bad_request") {
		t.Fatalf("fetch of an unknown column: exit status %d, stdout %q, stderr %q; want 1, nothing, bad_request", res.code, res.stdout, res.stderr)
	}

	// SIGTERM: a clean exit.
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v (want exit status 0)\nstderr:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not exit within 30s of SIGTERM\nstderr:\n%s", logs.String())
	}
	if serveStdout.Len() != 0 {
		t.Errorf("serve wrote to stdout: %q", serveStdout.String())
	}

	// Every stderr line is a JSON log record; streams and persists name
	// their channel.
	type record struct {
		Level   string `json:"level"`
		Msg     string `json:"msg"`
		Channel string `json:"channel"`
		Ending  string `json:"ending"`
		Rows    *int   `json:"rows"`
		Reason  string `json:"reason"`
		Fetch   string `json:"fetch"`
		Version string `json:"version"`
	}
	var streams, persists, refused []record
	var sawServing, sawStopped bool
	for _, line := range logs.snapshot() {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Msg == "" || r.Level == "" {
			t.Errorf("stderr line is not a JSON log record: %q", line)
			continue
		}
		switch r.Msg {
		case "eventsource serving":
			sawServing = r.Fetch == fetchCh && r.Version == buildVersion(t)
		case "eventsource stopped":
			sawStopped = true
		case "stream ended":
			streams = append(streams, r)
		case "persist ended":
			persists = append(persists, r)
		case "request refused":
			refused = append(refused, r)
		}
		if r.Channel != "" && (r.Channel == fetchCh || r.Channel == persistCh || r.Channel == nextCh) {
			t.Errorf("log names a request channel as a stream's: %q", line)
		}
	}
	if !sawServing || !sawStopped {
		t.Errorf(`logs lack "eventsource serving" with fetch=%s and version=%s (%v) or "eventsource stopped" (%v)`, fetchCh, buildVersion(t), sawServing, sawStopped)
	}
	// Three fetches streamed 3, 2, 1 and 0 rows and ended with "end".
	var rows []int
	channels := map[string]bool{}
	for _, r := range streams {
		if r.Channel == "" || r.Ending != "end" || r.Rows == nil {
			t.Errorf("stream ended record %+v lacks channel, ending end or rows", r)
			continue
		}
		channels[r.Channel] = true
		rows = append(rows, *r.Rows)
	}
	if !slices.Equal(rows, []int{3, 2, 1, 0}) || len(channels) != 4 {
		t.Errorf("stream ended records: rows %v on %d channels, want [3 2 1 0] on 4", rows, len(channels))
	}
	var persisted []int
	for _, r := range persists {
		if r.Channel == "" || channels[r.Channel] || r.Rows == nil {
			t.Errorf("persist ended record %+v lacks its own channel or rows", r)
			continue
		}
		if r.Ending == "end" {
			persisted = append(persisted, *r.Rows)
		}
	}
	if !slices.Equal(persisted, []int{1, 2}) {
		t.Errorf("persists that ended with end: rows %v, want [1 2]", persisted)
	}
	// The two requests with bad queries were refused on their channels.
	if len(refused) != 2 {
		t.Errorf("%d request refused records, want 2", len(refused))
	}
	for _, r := range refused {
		if r.Channel == "" || channels[r.Channel] || r.Reason != "bad_request" {
			t.Errorf("request refused record %+v lacks its own channel or reason bad_request", r)
		}
	}
	if t.Failed() {
		t.Logf("serve stderr:\n%s", logs.String())
	}
}

func jsonSame(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}
