package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/internal/testserver"
)

func TestFetchFollowMisuse(t *testing.T) {
	t.Parallel()
	// Nothing may connect: both services point at a port nothing listens on.
	env := []string{"MYSQL_PORT=1", "REDIS_PORT=1"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"--reset without --consumer", []string{"fetch", "--pid", "p", "--reset"}, "--reset needs --consumer"},
		{"empty --consumer", []string{"fetch", "--pid", "p", "--consumer", ""}, `--consumer ""`},
		{"--consumer with a space", []string{"fetch", "--pid", "p", "--consumer", "a b"}, `--consumer "a b"`},
		{"--consumer too long", []string{"fetch", "--pid", "p", "--consumer", strings.Repeat("c", 201)}, "1 to 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runBinary(t, env, tt.args...)
			if res.code != 2 || res.stdout != "" || !strings.Contains(res.stderr, tt.want) || !strings.Contains(res.stderr, "usage: eventsource fetch") {
				t.Errorf("exit status %d, stdout %q, stderr:\n%s\nwant 2, nothing, and %q with the usage", res.code, res.stdout, res.stderr, tt.want)
			}
		})
	}
}

// fetchServer starts a server in-process and returns the fetch channel
// flag and a client to persist with.
func fetchServer(t *testing.T) ([]string, *client.Client) {
	t.Helper()
	_, dbName := testserver.Database(t, "es_eventsource")
	prefix := "es-eventsource-test:" + randomHex(6) + ":"
	cfg := testserver.Config(t, dbName, prefix)
	testserver.Start(t, cfg, nil)
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr(), Password: cfg.Redis.Password, DB: cfg.Redis.DB})
	c := client.New(rdb, client.WithFetchChannel(cfg.FetchChannel), client.WithPersistChannel(cfg.PersistChannel), client.WithChannelPrefix(prefix+"test:"))
	t.Cleanup(func() {
		_ = c.Close()
		_ = rdb.Close()
	})
	return []string{"--fetch-channel", cfg.FetchChannel, "--redis", cfg.Redis.Addr()}, c
}

func persistNames(t *testing.T, c *client.Client, pid string, names ...string) {
	t.Helper()
	docs := make([]client.Document, len(names))
	for i, name := range names {
		docs[i] = client.Document{PID: pid, Domain: "shop", Name: name, Data: i}
	}
	if _, err := c.Persist(context.Background(), docs...); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is stdout for a command that runs while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// names are the event names of the JSON lines printed.
func names(t *testing.T, stdout string) []string {
	t.Helper()
	var got []string
	for _, line := range outputLines(t, stdout) {
		if line == "" {
			continue
		}
		var row eventRow
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("printed %q: %v", line, err)
		}
		got = append(got, row.Name)
	}
	return got
}

// A consumer given twice resumes after what the first run printed.
func TestFetchConsumer(t *testing.T) {
	t.Parallel()
	channel, c := fetchServer(t)
	pid := "order-" + randomHex(4)
	persistNames(t, c, pid, "created", "paid")
	fetch := func(extra ...string) []string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args := append(append([]string{"fetch", "--pid", pid, "--consumer", "cli-" + pid, "--timeout", "30s"}, channel...), extra...)
		if err := run(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatalf("fetch %q: %v\nstderr: %s", args, err, stderr.String())
		}
		return names(t, stdout.String())
	}
	if got := fetch(); strings.Join(got, ",") != "created,paid" {
		t.Fatalf("first run printed %q, want created,paid", got)
	}
	if got := fetch(); len(got) != 0 {
		t.Fatalf("second run printed %q, want nothing", got)
	}
	persistNames(t, c, pid, "shipped")
	if got := fetch("--window", "4"); strings.Join(got, ",") != "shipped" {
		t.Fatalf("third run printed %q, want shipped", got)
	}
	if got := fetch("--reset"); strings.Join(got, ",") != "created,paid,shipped" {
		t.Fatalf("run with --reset printed %q, want every row", got)
	}
}

// --follow prints the rows that match, then those persisted meanwhile,
// and ends without an error when its context does (as on Ctrl-C).
func TestFetchFollow(t *testing.T) {
	t.Parallel()
	channel, c := fetchServer(t)
	pid := "order-" + randomHex(4)
	persistNames(t, c, pid, "created")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var stdout syncBuffer
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"fetch", "--follow", "--pid", pid}, channel...), &stdout, &stderr)
	}()
	printed := func(want string) func() error {
		return func() error {
			if got := strings.Join(names(t, stdout.String()), ","); got != want {
				return fmt.Errorf("printed %q, want %s", got, want)
			}
			return nil
		}
	}
	waitFor(t, 10*time.Second, printed("created"))
	persistNames(t, c, "someone-else", "created")
	persistNames(t, c, pid, "paid", "shipped")
	waitFor(t, 10*time.Second, printed("created,paid,shipped"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("fetch --follow: %v\nstderr: %s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("fetch --follow did not end with its context")
	}
	if err := printed("created,paid,shipped")(); err != nil {
		t.Error(err)
	}
	if ctx.Err() == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("fetch --follow returned before its context ended")
	}
}
