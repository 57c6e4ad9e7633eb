package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/eventsource/eventsource/admin"
)

func TestConsumersCommand(t *testing.T) {
	t.Parallel()
	s := startAdminServer(t, "tok-"+randomHex(8))
	// run runs 'consumers [verb] --admin ADDR args...'.
	run := func(args ...string) result {
		t.Helper()
		command := []string{"consumers"}
		if len(args) > 0 && (args[0] == "reset" || args[0] == "delete") {
			command, args = append(command, args[0]), args[1:]
		}
		return runBinary(t, s.env(), append(append(command, "--admin", s.admin), args...)...)
	}
	if res := run(); res.code != 0 || res.stdout != "NAME  POSITION  NEWEST  LAG  HELD BY\n" {
		t.Fatalf("no consumers: exit status %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
	}

	ctx := context.Background()
	store := s.srv.Consumers()
	query := fmt.Sprintf(`{"$select":{"$where":{"pid":%q}}}`, s.pid)
	if _, err := store.Acquire(ctx, "orders", query, s.srv.ServerID(), "stream-1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Acquire(ctx, "audit", `{"$select":{"$orderBy":{"name":true}}}`, "s2", "stream-2", false); err != nil {
		t.Fatal(err)
	}
	if err := store.Release(ctx, "audit", "stream-2", 1); err != nil {
		t.Fatal(err)
	}

	res := run()
	lines := outputLines(t, res.stdout)
	if res.code != 0 || len(lines) != 3 {
		t.Fatalf("exit status %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
	}
	for i, want := range [][]string{
		{"NAME", "POSITION", "NEWEST", "LAG", "HELD", "BY"},
		{"audit", "1", "?", "?", "-"},
		{"orders", "0", "2", "2", "stream-1", "on", s.srv.ServerID()},
	} {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("line %d = %q, want the fields %q", i, lines[i], want)
		}
	}

	res = run("--json")
	var list []admin.ConsumerStatus
	if err := json.Unmarshal([]byte(res.stdout), &list); err != nil || res.code != 0 || len(list) != 2 || list[1].Name != "orders" {
		t.Fatalf("--json: exit status %d, %v, stdout %s", res.code, err, res.stdout)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, list[1].Query); err != nil || compact.String() != query {
		t.Fatalf("--json: query %s, want %s", list[1].Query, query)
	}

	if res := run("reset", "orders", "--position", "1"); res.code != 0 || res.stdout != "reset orders to position 1 (newest 2, lag 1)\n" {
		t.Fatalf("reset: exit status %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
	}
	if got, err := store.Get(ctx, "orders"); err != nil || got.Position != 1 || got.Held {
		t.Fatalf("after the reset: %+v, %v", got, err)
	}
	// Flags after the name too.
	if res := runBinary(t, s.env(), "consumers", "reset", "orders", "--admin", s.admin); res.code != 0 || !strings.HasPrefix(res.stdout, "reset orders to position 0 ") {
		t.Fatalf("reset to 0: exit status %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
	}
	if res := run("delete", "audit"); res.code != 0 || res.stdout != "deleted audit\n" {
		t.Fatalf("delete: exit status %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
	}
	for _, args := range [][]string{{"delete", "audit"}, {"reset", "audit"}} {
		if res := run(args...); res.code != 1 || res.stdout != "" || !strings.Contains(res.stderr, "no consumer named audit") {
			t.Errorf("%q of an unknown consumer: exit status %d, stdout %q, stderr %s", args, res.code, res.stdout, res.stderr)
		}
	}
	// The token is needed.
	if res := runBinary(t, nil, "consumers", "--admin", s.admin); res.code != 1 || !strings.Contains(res.stderr, "wants a token") {
		t.Errorf("without the token: exit status %d, stderr %s", res.code, res.stderr)
	}
}

func TestConsumersMisuse(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: a command that wrongly got as far as
	// asking would fail with status 1, not 2.
	tests := []struct {
		name string
		args []string
		want []string // substrings of stderr
	}{
		{"stray argument", []string{"consumers", "--admin", "127.0.0.1:1", "list"}, []string{`unexpected argument "list"`}},
		{"unknown flag", []string{"consumers", "--position", "1"}, []string{"position", "usage: eventsource consumers"}},
		{"reset without a name", []string{"consumers", "reset", "--admin", "127.0.0.1:1"}, []string{"give the name of the consumer to reset"}},
		{"reset of a bad name", []string{"consumers", "reset", "--admin", "127.0.0.1:1", "a/b"}, []string{`"a/b" is not a consumer name`}},
		{"reset to a negative position", []string{"consumers", "reset", "--admin", "127.0.0.1:1", "a", "--position", "-1"}, []string{"--position -1 is negative"}},
		{"reset of two", []string{"consumers", "reset", "a", "b"}, []string{`unexpected argument "b"`}},
		{"delete with a position", []string{"consumers", "delete", "a", "--position", "1"}, []string{"position", "usage: eventsource consumers delete"}},
		{"delete without a name", []string{"consumers", "delete"}, []string{"give the name of the consumer to delete"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runBinary(t, nil, tt.args...)
			if res.code != 2 || res.stdout != "" {
				t.Errorf("exit status %d, stdout %q; want 2 and nothing", res.code, res.stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, res.stderr)
				}
			}
		})
	}
}
