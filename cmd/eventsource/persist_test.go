package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/eventsource/eventsource/internal/testserver"
	"github.com/eventsource/eventsource/messages"
)

func TestPersistSafeWritesMisuse(t *testing.T) {
	t.Parallel()
	// Nothing may connect: both services point at a port nothing listens on.
	env := []string{"MYSQL_PORT=1", "REDIS_PORT=1"}
	event := []string{"persist", "--pid", "p", "--domain", "d", "--name", "n", "--data", "1"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"--event-id with --query", []string{"persist", "--query", `{"$insert":{}}`, "--event-id", "e1"}, `"eventId"`},
		{"empty --event-id", append(event, "--event-id", ""), "--event-id is empty"},
		{"negative --expect-version", append(event, "--expect-version", "-1"), "-expect-version: negative"},
		{"--expect-version not a number", append(event, "--expect-version", "two"), "expect-version"},
		{"--expect-version across streams", []string{"persist", "--expect-version", "0", "--query",
			`{"$insert":{"$documents":[{"pid":"a","domain":"d","name":"n","data":1},{"pid":"b","domain":"d","name":"n","data":1}]}}`}, "one stream"},
		{"--expect-version without a pid", []string{"persist", "--expect-version", "0", "--query",
			`{"$insert":{"$documents":{"domain":"d","name":"n","data":1}}}`}, "no domain or pid"},
		{"--expect-version without documents", []string{"persist", "--expect-version", "0", "--query", `{"$insert":{}}`}, "no $insert.$documents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runBinary(t, env, tt.args...)
			if res.code != 2 || res.stdout != "" || !strings.Contains(res.stderr, tt.want) || !strings.Contains(res.stderr, "usage: eventsource persist") {
				t.Errorf("exit status %d, stdout %q, stderr:\n%s\nwant 2, nothing, and %q with the usage", res.code, res.stdout, res.stderr, tt.want)
			}
		})
	}
}

// persistReply runs the persist command and decodes the OK it printed.
func persistReply(t *testing.T, args ...string) messages.OK {
	t.Helper()
	res := runBinary(t, nil, append([]string{"persist"}, args...)...)
	if res.code != 0 {
		t.Fatalf("persist %q: exit status %d\nstderr: %s", args, res.code, res.stderr)
	}
	var ok messages.OK
	if err := json.Unmarshal([]byte(res.stdout), &ok); err != nil {
		t.Fatalf("persist %q printed %q: %v", args, res.stdout, err)
	}
	return ok
}

func TestPersistSafeWrites(t *testing.T) {
	t.Parallel()
	_, dbName := testserver.Database(t, "es_eventsource")
	prefix := "es-eventsource-test:" + randomHex(6) + ":"
	testserver.Start(t, testserver.Config(t, dbName, prefix), nil)
	channel := []string{"--persist-channel", prefix + "persist"}
	pid := "order-" + randomHex(4)
	event := func(name string, more ...string) []string {
		return append(append(append([]string{}, channel...), "--pid", pid, "--domain", "shop", "--name", name, "--data", `{"n":1}`), more...)
	}

	first := persistReply(t, event("created", "--event-id", pid+"-created", "--expect-version", "0")...)
	if first.AffectedRows != 1 || first.InsertID == 0 || first.Duplicate {
		t.Fatalf("first persist: %+v, want 1 row", first)
	}
	// Run again as it was: a duplicate with the first insert id.
	again := persistReply(t, event("created", "--event-id", pid+"-created", "--expect-version", "0")...)
	if again.AffectedRows != 0 || again.InsertID != first.InsertID || !again.Duplicate {
		t.Errorf("retry: %+v, want 0 rows, insert id %d and duplicate", again, first.InsertID)
	}
	res := runBinary(t, nil, append([]string{"persist"}, append(channel, "--query", fmt.Sprintf(`{"$insert":{"$documents":[{"pid":%q,"domain":"shop","name":"paid","data":1,"eventId":"p1"},{"pid":%q,"domain":"shop","name":"shipped","data":2,"eventId":"p2"}]}}`, pid, pid))...)...)
	if res.code != 0 || !strings.Contains(res.stdout, `"affectedRows":2`) {
		t.Fatalf("persist --query with event ids: exit status %d, stdout %q\nstderr: %s", res.code, res.stdout, res.stderr)
	}

	// A stale expectation: exit status 1, a message that says so, nothing
	// printed or stored.
	for _, args := range [][]string{
		event("cancelled", "--expect-version", "1"),
		append(channel, "--expect-version", "2", "--query",
			fmt.Sprintf(`{"$insert":{"$documents":{"pid":%q,"domain":"shop","name":"cancelled","data":1}}}`, pid)),
	} {
		res := runBinary(t, nil, append([]string{"persist"}, args...)...)
		if res.code != 1 || res.stdout != "" || !strings.Contains(res.stderr, "conflict, nothing stored: the stream is at version 3") {
			t.Errorf("persist %q: exit status %d, stdout %q, stderr %q; want 1, nothing, and the conflict", args, res.code, res.stdout, res.stderr)
		}
	}
	if ok := persistReply(t, append(channel, "--expect-version", "3", "--query",
		fmt.Sprintf(`{"$insert":{"$documents":{"pid":%q,"domain":"shop","name":"delivered","data":1}}}`, pid))...); ok.AffectedRows != 1 {
		t.Errorf("persist --query at version 3: %+v, want 1 row", ok)
	}
	// An event id stored with other content is a conflict too.
	res = runBinary(t, nil, append([]string{"persist"}, event("renamed", "--event-id", pid+"-created")...)...)
	if res.code != 1 || !strings.Contains(res.stderr, "conflict, nothing stored") || !strings.Contains(res.stderr, pid+"-created") {
		t.Errorf("reused event id: exit status %d, stderr %q; want 1 and the conflict naming it", res.code, res.stderr)
	}
}
