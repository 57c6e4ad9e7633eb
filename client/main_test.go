package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/internal/testserver"
	"github.com/eventsource/eventsource/server"
)

// The server of the examples, which TestMain starts on a database and
// channels of its own: an example takes no *testing.T to start one, so it
// finds the settings here, and passes them as options where a program
// would leave them out and talk to a server on the default channels.
var (
	// fetchChannel is the server's fetch channel (a server's default:
	// "fetch").
	fetchChannel string
	// persistChannel is the server's persist channel (default "persist").
	persistChannel string
	// unservedChannel is a channel no server listens on.
	unservedChannel string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

// runMain starts the examples' server, runs the tests and examples, and
// stops the server and drops its database.
func runMain(m *testing.M) (code int) {
	tb := &mainTB{}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(mainFatal); !ok {
				panic(r)
			}
			code = 1
		}
		tb.runCleanups()
		if tb.failed && code == 0 {
			code = 1
		}
	}()
	_, dbName := testserver.Database(tb, "es_client_examples")
	p := "es-test:" + randomHex(6) + ":"
	cfg := testserver.Config(tb, dbName, p)
	testserver.Start(tb, cfg, nil)
	fetchChannel, persistChannel, unservedChannel = cfg.FetchChannel, cfg.PersistChannel, p+"unserved"
	return m.Run()
}

// mainTB is TestMain's testing.TB, for the testserver helpers, which know
// no other: it runs their cleanups when asked, reports their errors on
// stderr, and turns Fatal into a panic that runMain recovers. The helpers
// call only the methods defined here; any other would hit the nil TB.
type mainTB struct {
	testing.TB
	cleanups []func()
	failed   bool
}

// mainFatal is the panic of mainTB's Fatal.
type mainFatal struct{}

func (*mainTB) Helper() {}

func (tb *mainTB) Cleanup(f func()) { tb.cleanups = append(tb.cleanups, f) }

func (tb *mainTB) Errorf(format string, args ...any) {
	tb.failed = true
	fmt.Fprintf(os.Stderr, "TestMain: "+format+"\n", args...)
}

func (tb *mainTB) Fatal(args ...any) {
	tb.Errorf("%s", fmt.Sprint(args...))
	panic(mainFatal{})
}

func (tb *mainTB) Fatalf(format string, args ...any) {
	tb.Errorf(format, args...)
	panic(mainFatal{})
}

// runCleanups runs the cleanups last registered first, as testing does.
func (tb *mainTB) runCleanups() {
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
}

// defaultChannels are the channels a server uses unless told otherwise. A
// server the user runs (make run) listens on them and stores what it
// hears in the default database, so no test may publish there.
var defaultChannels = func() map[string]bool {
	cfg := server.DefaultConfig()
	return map[string]bool{
		cfg.FetchChannel: true, cfg.PersistChannel: true, cfg.FetchNextChannel: true,
		cfg.CommitChannel: true, cfg.FinishedChannel: true,
	}
}()

// errDefaultChannel is what defaultsGuard fails a command with.
var errDefaultChannel = errors.New("a test must not publish on a default channel")

// defaultsGuard is a go-redis hook that fails every PUBLISH on a default
// channel before it is sent: a test that forgets an option fails instead
// of reaching the user's server.
type defaultsGuard struct{}

func (defaultsGuard) DialHook(next redis.DialHook) redis.DialHook { return next }

func (defaultsGuard) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := refuseDefault(cmd); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (defaultsGuard) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if err := refuseDefault(cmd); err != nil {
				for _, c := range cmds {
					c.SetErr(err)
				}
				return err
			}
		}
		return next(ctx, cmds)
	}
}

func refuseDefault(cmd redis.Cmder) error {
	args := cmd.Args()
	if len(args) < 2 {
		return nil
	}
	name, _ := args[0].(string)
	channel, _ := args[1].(string)
	if (strings.EqualFold(name, "publish") || strings.EqualFold(name, "spublish")) && defaultChannels[channel] {
		return fmt.Errorf("%w: %s", errDefaultChannel, channel)
	}
	return nil
}

// guarded returns a Redis client for opt whose connections, and those the
// client package dials with its options, fail a write that publishes on a
// default channel (defaultsGuard does so for go-redis's commands before
// they are written), or that a check refuses: the write is not sent and
// the connection closes, as if it broke.
func guarded(opt *redis.Options, checks ...func(cmd []string) error) *redis.Client {
	checks = append(checks, func(cmd []string) error {
		if len(cmd) >= 2 && (strings.EqualFold(cmd[0], "publish") || strings.EqualFold(cmd[0], "spublish")) && defaultChannels[cmd[1]] {
			return fmt.Errorf("%w: %s", errDefaultChannel, cmd[1])
		}
		return nil
	})
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &checkedConn{Conn: conn, checks: checks}, nil
	}
	rdb := redis.NewClient(opt)
	rdb.AddHook(defaultsGuard{})
	return rdb
}

// checkedConn shows each command written on it to its checks first.
type checkedConn struct {
	net.Conn
	checks []func(cmd []string) error
}

func (c *checkedConn) Write(b []byte) (int, error) {
	for _, cmd := range commands(b) {
		for _, check := range c.checks {
			if err := check(cmd); err != nil {
				_ = c.Conn.Close()
				return 0, err
			}
		}
	}
	return c.Conn.Write(b)
}

// commands splits what a write carries into commands and their arguments
// (RESP arrays of bulk strings, as clients send them).
func commands(b []byte) [][]string {
	var cmds [][]string
	for len(b) > 0 && b[0] == '*' {
		line, rest, ok := bytes.Cut(b[1:], []byte("\r\n"))
		n, err := strconv.Atoi(string(line))
		if !ok || err != nil {
			return cmds
		}
		b = rest
		args := make([]string, 0, n)
		for range n {
			if len(b) == 0 || b[0] != '$' {
				return cmds
			}
			line, rest, ok := bytes.Cut(b[1:], []byte("\r\n"))
			size, err := strconv.Atoi(string(line))
			if !ok || err != nil || len(rest) < size+2 {
				return cmds
			}
			args = append(args, string(rest[:size]))
			b = rest[size+2:]
		}
		cmds = append(cmds, args)
	}
	return cmds
}

// The guard stops a publish on each default channel, and lets others by.
func TestDefaultChannelsGuarded(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	ctx := context.Background()
	for channel := range defaultChannels {
		if err := rdb.Publish(ctx, channel, `"test"`).Err(); !errors.Is(err, errDefaultChannel) {
			t.Errorf("publish on %s: err = %v, want the guard's", channel, err)
		}
		pipe := rdb.Pipeline()
		pipe.Publish(ctx, uniquePrefix(t)+"x", `"test"`)
		pipe.Publish(ctx, channel, `"test"`)
		if _, err := pipe.Exec(ctx); !errors.Is(err, errDefaultChannel) {
			t.Errorf("pipelined publish on %s: err = %v, want the guard's", channel, err)
		}
	}
	if err := rdb.Publish(ctx, uniquePrefix(t)+"persist", `"test"`).Err(); err != nil {
		t.Errorf("publish on a channel of the test's own: %v", err)
	}
	// The client's own connections are guarded too: a client on the
	// default channels cannot reach a server.
	c := client.New(rdb, client.WithTimeout(2*time.Second))
	defer c.Close()
	if _, err := c.PersistQuery(ctx, `{"$insert":{}}`); err == nil {
		t.Error("a persist on the default channel went through")
	}
}
