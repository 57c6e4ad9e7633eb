package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/messages"
)

// redisError is an error reply of Redis, as go-redis returns it.
type redisError string

func (e redisError) Error() string { return string(e) }
func (redisError) RedisError()     {}

// The client's errors as the CLI prints them: the server's reason and
// message, what to do about a missing server or Redis, and never the
// private response channel.
func TestClientError(t *testing.T) {
	t.Parallel()
	const private = "eventsource:0123456789abcdef:1"
	// wrap is how the client words its errors.
	wrap := func(cmd string, err error) error { return fmt.Errorf("%s %s: %w", cmd, private, err) }
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name    string
		cmd     string
		channel string // the request channel flag's value; "" leaves the default
		err     error
		want    string
	}{
		{"no server", "persist", "", wrap("persist", fmt.Errorf("publish request on persist: %w", client.ErrNoServer)),
			"persist: no eventsource server answered: is eventsource serve running on 127.0.0.1:6379?"},
		{"no server on a channel of its own", "fetch", "mine:fetch", wrap("fetch", fmt.Errorf("publish request on mine:fetch: %w", client.ErrNoServer)),
			"fetch: no eventsource server answered: is eventsource serve running on 127.0.0.1:6379 with --fetch-channel mine:fetch?"},
		{"bad request", "fetch", "", wrap("fetch", &client.ServerError{Reason: messages.ReasonBadRequest, Message: `unknown column "nosuch"`}),
			`fetch: the server refused the request (bad_request): unknown column "nosuch"`},
		{"conflict", "persist", "", wrap("persist", &client.ServerError{Reason: messages.ReasonConflict, Message: "the stream is at version 3"}),
			"persist: conflict, nothing stored: the stream is at version 3"},
		{"database failed under a persist", "persist", "", wrap("persist", &client.ServerError{Reason: messages.ReasonDB}),
			"persist: the database failed (db); the event may have been stored: with --event-id, running the command again is safe"},
		{"database failed under a fetch", "fetch", "", wrap("fetch", &client.ServerError{Reason: messages.ReasonDB}),
			"fetch: the database failed (db)"},
		{"no reason", "fetch", "", wrap("fetch", &client.ServerError{}),
			"fetch: the server failed the request (it gave no reason)"},
		{"timeout terminal", "fetch", "", wrap("fetch", client.ErrTimeout),
			"fetch: the server gave up waiting for this client to take a row"},
		{"no answer in time", "persist", "", wrap("persist", fmt.Errorf("wait for reply: %w", context.DeadlineExceeded)),
			"persist: no answer within --timeout 10s; the event may have been stored: with --event-id, running the command again is safe"},
		{"subscriber lost", "fetch", "", wrap("fetch", fmt.Errorf("wait for row: %w: %w", client.ErrInterrupted, io.EOF)),
			"fetch: the connection to Redis at 127.0.0.1:6379 broke during the request"},
		{"no Redis", "fetch", "", fmt.Errorf("fetch: psubscribe %s*: %w", private[:len(private)-1], refused),
			"fetch: cannot reach Redis at 127.0.0.1:6379 (connect: connection refused): is Redis running there? (--redis, or REDIS_HOST and REDIS_PORT)"},
		{"Redis wants a password", "persist", "", fmt.Errorf("persist: psubscribe %s*: %w", private[:len(private)-1], redisError("NOAUTH Authentication required.")),
			"persist: Redis at 127.0.0.1:6379 answered: NOAUTH Authentication required."},
		{"anything else", "fetch", "", wrap("fetch", errors.New("publish accepted: something odd")),
			"fetch: publish accepted: something odd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := newFlagSet(tt.cmd, "", io.Discard)
			conn := redisFlags{addr: "127.0.0.1:6379", timeout: 10 * time.Second}
			flagName := tt.cmd + "-channel"
			fs.String(flagName, tt.cmd, "request channel")
			if tt.channel != "" {
				if err := fs.Set(flagName, tt.channel); err != nil {
					t.Fatal(err)
				}
			}
			got := clientError(fs, &conn, flagName, tt.err)
			if got == nil || got.Error() != tt.want {
				t.Errorf("clientError = %v\nwant          %s", got, tt.want)
			}
			if got != nil && strings.Contains(got.Error(), private[:len("eventsource:0123")]) {
				t.Errorf("%q names the private response channel", got)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("clientError does not wrap %v", tt.err)
			}
		})
	}
	if err := clientError(newFlagSet("fetch", "", io.Discard), &redisFlags{}, "fetch-channel", nil); err != nil {
		t.Errorf("clientError(nil) = %v, want nil", err)
	}
}

// With no server on its channel, persist says what to do, naming the
// Redis it was given.
func TestPersistWithoutServer(t *testing.T) {
	t.Parallel()
	host, port := os.Getenv("REDIS_HOST"), os.Getenv("REDIS_PORT")
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "6379"
	}
	// A channel of this test's own, on the Redis the other tests use: no
	// server listens there, and no server of the user's hears it.
	channel := "es-eventsource-test:" + randomHex(6) + ":persist"
	event := []string{"persist", "--persist-channel", channel, "--pid", "p", "--domain", "d", "--name", "n", "--data", "1"}
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"Redis up, no server", nil,
			"eventsource: persist: no eventsource server answered: is eventsource serve running on " + net.JoinHostPort(host, port) + " with --persist-channel " + channel + "?\n"},
		{"no Redis", []string{"REDIS_HOST=127.0.0.1", "REDIS_PORT=1"},
			"eventsource: persist: cannot reach Redis at 127.0.0.1:1 (connect: connection refused): is Redis running there? (--redis, or REDIS_HOST and REDIS_PORT)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runBinary(t, tt.env, event...)
			if res.code != 1 || res.stdout != "" || res.stderr != tt.want {
				t.Errorf("exit status %d, stdout %q, stderr\n%q\nwant 1, nothing, and\n%q", res.code, res.stdout, res.stderr, tt.want)
			}
		})
	}
}
