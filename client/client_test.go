package client_test

// End-to-end tests: the real server on real Redis and MariaDB, each test
// with its own database and channel prefix.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/internal/testserver"
	"github.com/eventsource/eventsource/server"
)

const redisAddr = "127.0.0.1:6379"

// mustRedis returns a Redis client that Cleanup closes, and that refuses
// to publish on the default channels (defaultsGuard).
func mustRedis(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := guarded(&redis.Options{Addr: redisAddr})
	tb.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		tb.Fatalf("redis at %s: %v", redisAddr, err)
	}
	return rdb
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// uniquePrefix keeps tests that run at once off each other's channels.
func uniquePrefix(tb testing.TB) string {
	tb.Helper()
	return "es-test:" + randomHex(6) + ":"
}

// mustClient returns a client that Cleanup closes. Its request channels
// and response prefix are the test's own unless opts name others: on the
// default channels a server the user runs would answer.
func mustClient(tb testing.TB, rdb *redis.Client, opts ...client.Option) *client.Client {
	tb.Helper()
	p := uniquePrefix(tb)
	own := []client.Option{client.WithFetchChannel(p + "fetch"), client.WithPersistChannel(p + "persist"), client.WithChannelPrefix(p)}
	c := client.New(rdb, append(own, opts...)...)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// waitFor polls check until it returns nil or the deadline passes.
func waitFor(tb testing.TB, timeout time.Duration, check func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitUnsubscribed waits until nobody, client or server, is subscribed to
// channel: both sides let go once a call is over.
func waitUnsubscribed(tb testing.TB, rdb *redis.Client, channel string) {
	tb.Helper()
	waitFor(tb, 5*time.Second, func() error {
		n, err := rdb.PubSubNumSub(context.Background(), channel).Result()
		if err != nil {
			return err
		}
		if n[channel] != 0 {
			return fmt.Errorf("%d subscribers left on %s", n[channel], channel)
		}
		return nil
	})
}

// waitGoroutines waits until at most want goroutines run and none of them
// is in package client.
func waitGoroutines(tb testing.TB, want int) {
	tb.Helper()
	waitFor(tb, 5*time.Second, func() error {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if n := runtime.NumGoroutine(); n > want || strings.Contains(stacks, "eventsource/client.") {
			return fmt.Errorf("%d goroutines, want at most %d and none in package client:\n%s", n, want, stacks)
		}
		return nil
	})
}

// lockedBuffer collects the server's log, shown only when a test fails.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testServer is a running server with its own database and channels.
type testServer struct {
	prefix string
	opts   []client.Option
}

// startServer migrates a fresh database es_client_<hex>, starts the server
// on channels under a fresh prefix, and tears both down in Cleanup.
func startServer(tb testing.TB, tune func(*server.Config)) testServer {
	tb.Helper()
	_, dbName := testserver.Database(tb, "es_client")
	p := uniquePrefix(tb)
	cfg := testserver.Config(tb, dbName, p)
	// Long enough that no test passes by waiting for the server to give up.
	cfg.AcceptTimeout = time.Minute
	if tune != nil {
		tune(&cfg)
	}
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Registered before the server, so it runs after the shutdown.
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("server log:\n%s", logs.String())
		}
	})
	testserver.Start(tb, cfg, logger)
	return testServer{
		prefix: p,
		opts: []client.Option{
			client.WithFetchChannel(p + "fetch"), client.WithPersistChannel(p + "persist"),
			client.WithChannelPrefix(p + "resp:"),
		},
	}
}

// client returns a client of the server, closed in Cleanup.
func (s testServer) client(tb testing.TB, rdb *redis.Client, opts ...client.Option) *client.Client {
	tb.Helper()
	return mustClient(tb, rdb, append(append([]client.Option{}, s.opts...), opts...)...)
}

// event is a row of the event table, decoded.
type event struct {
	Timestamp string          `json:"timestamp"`
	PID       string          `json:"pid"`
	Domain    string          `json:"domain"`
	Name      string          `json:"name"`
	Data      json.RawMessage `json:"data"`
	ID        json.Number     `json:"id"`
}

func fetchEvents(tb testing.TB, c *client.Client, query string, opts ...client.FetchOption) []event {
	tb.Helper()
	var events []event
	for row, err := range c.Fetch(context.Background(), query, opts...) {
		if err != nil {
			tb.Fatalf("fetch %s: %v", query, err)
		}
		var e event
		if err := row.Decode(&e); err != nil {
			tb.Fatal(err)
		}
		events = append(events, e)
	}
	return events
}

func TestPersistThenFetch(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	s := startServer(t, nil)
	c := s.client(t, rdb)
	ctx := context.Background()

	ok, err := c.Persist(ctx, client.Document{PID: "p1", Domain: "user", Name: "created", Data: map[string]any{"n": 0}})
	if err != nil {
		t.Fatal(err)
	}
	if ok.AffectedRows != 1 || ok.InsertID == 0 || ok.Duplicate {
		t.Errorf("persist one: ok = %+v, want 1 row and an insert id", ok)
	}
	// The whole reply, as the original server's clients got it.
	if want := fmt.Sprintf(`{"fieldCount":0,"affectedRows":1,"insertId":%d,`, ok.InsertID); !strings.HasPrefix(string(ok.Raw()), want) {
		t.Errorf("persist one: raw reply %s, want it to start %s", ok.Raw(), want)
	}
	docs := make([]client.Document, 5)
	for i := range docs {
		docs[i] = client.Document{PID: "p1", Domain: "user", Name: fmt.Sprintf("renamed%d", i), Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i+1))}
	}
	ok, err = c.Persist(ctx, docs...)
	if err != nil {
		t.Fatal(err)
	}
	if ok.AffectedRows != int64(len(docs)) {
		t.Errorf("persist many: ok = %+v, want %d rows", ok, len(docs))
	}
	if _, err := c.Persist(ctx, client.Document{PID: "p2", Domain: "user", Name: "created", Data: 1}); err != nil {
		t.Fatal(err)
	}

	t.Run("text data", func(t *testing.T) {
		events := fetchEvents(t, c, `{"$select":{"$where":{"pid":"p1"}}}`)
		if len(events) != 1+len(docs) {
			t.Fatalf("got %d events, want %d", len(events), 1+len(docs))
		}
		for i, e := range events {
			wantName := "created"
			if i > 0 {
				wantName = fmt.Sprintf("renamed%d", i-1)
			}
			if e.PID != "p1" || e.Domain != "user" || e.Name != wantName {
				t.Errorf("event %d = %s/%s/%s, want p1/user/%s", i, e.PID, e.Domain, e.Name, wantName)
			}
			// The original sent the JSON column as JSON text in a string.
			var text string
			if err := json.Unmarshal(e.Data, &text); err != nil {
				t.Fatalf("event %d data %s is not a string: %v", i, e.Data, err)
			}
			var data struct{ N int }
			if err := json.Unmarshal([]byte(text), &data); err != nil || data.N != i {
				t.Errorf("event %d data = %s, want n=%d", i, text, i)
			}
			if _, err := time.Parse(time.RFC3339Nano, e.Timestamp); err != nil || !strings.HasSuffix(e.Timestamp, "Z") {
				t.Errorf("event %d timestamp %q is not ISO-8601 UTC", i, e.Timestamp)
			}
		}
	})
	t.Run("decoded data", func(t *testing.T) {
		events := fetchEvents(t, c, `{"$select":{"$where":{"pid":"p1"}}}`, client.WithDecode(), client.WithWindow(3))
		if len(events) != 1+len(docs) {
			t.Fatalf("got %d events, want %d", len(events), 1+len(docs))
		}
		for i, e := range events {
			var data struct{ N int }
			if err := json.Unmarshal(e.Data, &data); err != nil || data.N != i {
				t.Errorf("event %d data = %s, want the object n=%d", i, e.Data, i)
			}
		}
	})
	t.Run("JSON column", func(t *testing.T) {
		for _, opts := range [][]client.FetchOption{nil, {client.WithDecode()}} {
			i := 0
			for row, err := range c.Fetch(ctx, `{"$select":{"$where":{"pid":"p1"}}}`, opts...) {
				if err != nil {
					t.Fatal(err)
				}
				var data map[string]int
				if err := row.JSON("data", &data); err != nil || data["n"] != i {
					t.Errorf("decode %t: event %d data = %v, %v; want n=%d", len(opts) > 0, i, data, err, i)
				}
				i++
			}
			if i != 1+len(docs) {
				t.Errorf("decode %t: %d events, want %d", len(opts) > 0, i, 1+len(docs))
			}
		}
	})
	t.Run("column order", func(t *testing.T) {
		for row, err := range c.Fetch(ctx, `{"$select":{"$where":{"pid":"p2"}}}`) {
			if err != nil {
				t.Fatal(err)
			}
			fields, err := row.Fields()
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range fields {
				names = append(names, f.Name)
			}
			if got, want := strings.Join(names, ","), "timestamp,pid,domain,name,data,id"; got != want {
				t.Errorf("columns = %s, want %s", got, want)
			}
		}
	})
}

// observe subscribes to every response channel under prefix, so a test can
// see what really travelled.
func observe(tb testing.TB, rdb *redis.Client, prefix string) *redis.PubSub {
	tb.Helper()
	ps := rdb.PSubscribe(context.Background(), prefix+"*")
	tb.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.ReceiveTimeout(context.Background(), 5*time.Second); err != nil {
		tb.Fatal(err)
	}
	return ps
}

// drain returns the payloads heard on channel up to a marker the test
// publishes itself, so it needs no guess of how long to listen.
func drain(tb testing.TB, rdb *redis.Client, ps *redis.PubSub, channel string) []string {
	tb.Helper()
	const marker = `"test-marker"`
	if err := rdb.Publish(context.Background(), channel, marker).Err(); err != nil {
		tb.Fatal(err)
	}
	var got []string
	for {
		msg, err := ps.ReceiveTimeout(context.Background(), 5*time.Second)
		if err != nil {
			tb.Fatalf("observe %s: %v (heard %q)", channel, err, got)
		}
		m, ok := msg.(*redis.Message)
		if !ok || m.Channel != channel {
			continue
		}
		if m.Payload == marker {
			return got
		}
		got = append(got, m.Payload)
	}
}

// channelOf waits for the first message the observer hears and returns its
// channel: the response channel of the one call under way.
func channelOf(tb testing.TB, ps *redis.PubSub) string {
	tb.Helper()
	for {
		msg, err := ps.ReceiveTimeout(context.Background(), 5*time.Second)
		if err != nil {
			tb.Fatal(err)
		}
		if m, ok := msg.(*redis.Message); ok {
			return m.Channel
		}
	}
}

func persistN(tb testing.TB, c *client.Client, pid string, n int) {
	tb.Helper()
	docs := make([]client.Document, n)
	for i := range docs {
		docs[i] = client.Document{PID: pid, Domain: "d", Name: fmt.Sprint(i), Data: i}
	}
	if _, err := c.Persist(context.Background(), docs...); err != nil {
		tb.Fatal(err)
	}
}

// Breaking out of the loop or cancelling ends the server's stream at once:
// it sends nothing more, and both sides unsubscribe, long before the
// server's acceptance timeout could have ended it.
func TestFetchStopsServer(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	s := startServer(t, nil)
	c := s.client(t, rdb)
	persistN(t, c, "p", 10)
	tests := []struct {
		name   string
		window int
		stop   func(cancel context.CancelFunc) bool // false breaks
		check  func(error) error
	}{
		{name: "break", stop: func(context.CancelFunc) bool { return false }, check: wantNil},
		{name: "break with window", window: 4, stop: func(context.CancelFunc) bool { return false }, check: wantNil},
		{name: "cancel", stop: func(cancel context.CancelFunc) bool { cancel(); return true }, check: wantIs(context.Canceled)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := observe(t, rdb, s.prefix+"resp:")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var err error
			rows := 0
			for _, err = range c.Fetch(ctx, `{"$select":{"$where":{"pid":"p"}}}`, client.WithWindow(tt.window)) {
				if err != nil {
					break
				}
				rows++
				if rows == 2 && !tt.stop(cancel) {
					break
				}
			}
			if cerr := tt.check(err); cerr != nil {
				t.Error(cerr)
			}
			if rows != 2 {
				t.Errorf("got %d rows, want 2", rows)
			}
			channel := channelOf(t, obs)
			waitUnsubscribed(t, rdb, channel)
			heard := append([]string{"(first row)"}, drain(t, rdb, obs, channel)...)
			// The client's "end" and no terminal from the server; at most a
			// window of rows beyond those accepted. A row may follow the
			// "end" on the wire when the server sent it for an "accepted"
			// that came before.
			var sent, accepted, ends int
			for _, p := range heard {
				switch {
				case strings.HasPrefix(p, "{") || p == "(first row)":
					sent++
				case p == `"accepted"`:
					accepted++
				case p == `"end"`:
					ends++
				default:
					t.Errorf("heard %s; want only rows, \"accepted\" and the client's \"end\"", p)
				}
			}
			if ends != 1 {
				t.Errorf("heard %d \"end\", want the client's one: %q", ends, heard)
			}
			if window := max(tt.window, 1); sent > accepted+window {
				t.Errorf("heard %d rows for %d accepted, more than the window %d: %q", sent, accepted, window, heard)
			}
		})
	}
}

func TestFetchServerTimeout(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	s := startServer(t, func(cfg *server.Config) { cfg.AcceptTimeout = 100 * time.Millisecond })
	c := s.client(t, rdb)
	persistN(t, c, "p", 3)
	obs := observe(t, rdb, s.prefix+"resp:")
	var err error
	rows := 0
	for _, err = range c.Fetch(context.Background(), `{"$select":{"$where":{"pid":"p"}}}`) {
		if err != nil {
			break
		}
		rows++
		// Hold the row until the server has given up on it.
		for {
			msg, rerr := obs.ReceiveTimeout(context.Background(), 5*time.Second)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if m, ok := msg.(*redis.Message); ok && m.Payload == `"timeout"` {
				break
			}
		}
	}
	if !errors.Is(err, client.ErrTimeout) {
		t.Errorf("err = %v, want ErrTimeout", err)
	}
	if rows != 1 {
		t.Errorf("got %d rows, want 1", rows)
	}
}

func TestFetchInvalidQuery(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	s := startServer(t, nil)
	plain := s.client(t, rdb)
	reasons := s.client(t, rdb, client.WithReason())
	tests := []struct {
		name   string
		c      *client.Client
		query  string
		reason client.Reason
	}{
		{name: "unknown operator", c: plain, query: `{"$select":{"$where":{"pid":{"$foo":1}}}}`},
		{name: "unknown operator with reason", c: reasons, query: `{"$select":{"$where":{"pid":{"$foo":1}}}}`, reason: client.ReasonBadRequest},
		{name: "not a select", c: reasons, query: `{"$delete":{"$from":"event"}}`, reason: client.ReasonBadRequest},
		{name: "table not allowed", c: reasons, query: `{"$select":{"$from":"mysql.user"}}`, reason: client.ReasonBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rows, err := collect(tt.c.Fetch(context.Background(), tt.query))
			if len(rows) != 0 {
				t.Errorf("rows = %q, want none", rows)
			}
			var serr *client.ServerError
			if !errors.Is(err, client.ErrServer) || !errors.As(err, &serr) {
				t.Fatalf("err = %v, want a *ServerError", err)
			}
			if serr.Reason != tt.reason {
				t.Errorf("reason = %q, want %q", serr.Reason, tt.reason)
			}
			if tt.reason != "" && serr.Message == "" {
				t.Error("no message with the reason")
			}
		})
	}
	t.Run("persist without pid", func(t *testing.T) {
		t.Parallel()
		_, err := reasons.Persist(context.Background(), client.Document{Domain: "d", Name: "n", Data: 1})
		var serr *client.ServerError
		if !errors.As(err, &serr) || serr.Reason != client.ReasonBadRequest {
			t.Errorf("err = %v, want a bad_request *ServerError", err)
		}
	})
}

func TestConcurrentFetches(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	s := startServer(t, nil)
	c := s.client(t, rdb)
	const pids, perPID, fetches = 8, 6, 64
	for p := range pids {
		persistN(t, c, fmt.Sprintf("p%d", p), perPID)
	}
	var wg sync.WaitGroup
	for i := range fetches {
		wg.Go(func() {
			pid := fmt.Sprintf("p%d", i%pids)
			var opts []client.FetchOption
			if i%2 == 1 {
				opts = append(opts, client.WithWindow(1+i%5))
			}
			n := 0
			for row, err := range c.Fetch(context.Background(), fmt.Sprintf(`{"$select":{"$where":{"pid":%q}}}`, pid), opts...) {
				if err != nil {
					t.Errorf("fetch %d: %v", i, err)
					return
				}
				var e event
				if err := row.Decode(&e); err != nil {
					t.Errorf("fetch %d: %v", i, err)
					return
				}
				if e.PID != pid || e.Name != fmt.Sprint(n) {
					t.Errorf("fetch %d row %d = %s/%s, want %s/%d", i, n, e.PID, e.Name, pid, n)
				}
				n++
			}
			if n != perPID {
				t.Errorf("fetch %d: %d rows, want %d", i, n, perPID)
			}
		})
	}
	wg.Wait()
}

func TestNoGoroutineLeak(t *testing.T) {
	rdb := mustRedis(t)
	// One MySQL connection: the server's pool, whose size varies with
	// load, then holds a fixed number of goroutines.
	s := startServer(t, func(cfg *server.Config) { cfg.MySQL.PoolSize = 1 })
	work := func(c *client.Client) {
		persistN(t, c, "p", 3)
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				for _, err := range c.Fetch(context.Background(), `{"$select":{"$where":{"pid":"p"}}}`) {
					if err != nil {
						t.Error(err)
					}
					if i%2 == 0 {
						break // leave some early
					}
				}
			})
		}
		wg.Wait()
	}
	// The same work once before counting starts what lives as long as the
	// process or the server (pools, the server's workers).
	warm := client.New(rdb, s.opts...)
	work(warm)
	if err := warm.Close(); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()

	c := client.New(rdb, s.opts...)
	work(c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, before)
}
