package server_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/internal/testserver"
	"github.com/eventsource/eventsource/server"
)

// harness runs a real server on the machine's Redis and MariaDB, with its
// own database and request channels so tests and packages run in parallel.
type harness struct {
	t      testing.TB
	srv    *server.Server
	cfg    server.Config
	rdb    *redis.Client
	db     *sql.DB
	dbName string
	prefix string
	wire   *wire
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("EVENTSOURCE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newHarness migrates a fresh database and starts a server on it.
func newHarness(t testing.TB, configure func(*server.Config), opts ...server.Option) *harness {
	t.Helper()
	h := newDatabase(t)
	h.start(configure, opts...)
	return h
}

// newDatabase makes the database and the Redis client, without a server.
func newDatabase(t testing.TB) *harness {
	t.Helper()
	h := &harness{t: t, prefix: "t" + randomHex(4) + ":"}
	h.db, h.dbName = testserver.Database(t, "es_test")
	h.rdb = redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { h.rdb.Close() })
	h.wire = newWire(t, h.rdb)
	return h
}

func (h *harness) start(configure func(*server.Config), opts ...server.Option) {
	h.t.Helper()
	cfg := testserver.Config(h.t, h.dbName, h.prefix)
	defaults := server.DefaultConfig()
	cfg.MySQL.PoolSize, cfg.ShutdownGrace = defaults.MySQL.PoolSize, defaults.ShutdownGrace
	cfg.Redis.ClientName = h.serverClientName()
	if configure != nil {
		configure(&cfg)
	}
	h.cfg = cfg
	h.srv = testserver.Start(h.t, cfg, testLogger(h.t), opts...)
}

// serverClientName names the server's Redis connections, so a test can
// kill them and nothing else on the shared Redis.
func (h *harness) serverClientName() string { return "es-test-" + strings.TrimSuffix(h.prefix, ":") }

// channel returns a fresh response channel name. The random part is wide enough that the thousands of channels a test
// opens at once never collide (three bytes did, once in CI: two streams of
// TestNoLeaksAfterEveryEnding shared a channel and heard each other).
func (h *harness) channel(name string) string { return h.prefix + name + ":" + randomHex(8) }

// publish sends raw bytes on a channel.
func (h *harness) publish(channel string, payload any) {
	h.t.Helper()
	var b []byte
	switch p := payload.(type) {
	case string:
		b = []byte(p)
	case []byte:
		b = p
	default:
		var err error
		if b, err = json.Marshal(p); err != nil {
			h.t.Fatal(err)
		}
	}
	if err := h.rdb.Publish(context.Background(), channel, b).Err(); err != nil {
		h.t.Fatal(err)
	}
}

// request publishes {"channel": C, "query": Q, extra...} on a request channel.
func (h *harness) request(requestChannel, channel string, query string, extra ...string) {
	h.t.Helper()
	msg := `{"channel":` + quote(channel) + `,"query":` + query
	for _, e := range extra {
		msg += "," + e
	}
	h.publish(requestChannel, msg+"}")
}

func (h *harness) fetch(channel, query string, extra ...string) {
	h.t.Helper()
	h.request(h.cfg.FetchChannel, channel, query, extra...)
}

func (h *harness) persist(channel, query string, extra ...string) {
	h.t.Helper()
	h.request(h.cfg.PersistChannel, channel, query, extra...)
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// persistEvents stores n events for pid through the server and waits for
// the reply, checking the OK object and "end".
func (h *harness) persistEvents(pid string, n int) {
	h.t.Helper()
	docs := make([]string, n)
	for i := range docs {
		docs[i] = fmt.Sprintf(`{"pid":%s,"domain":"d","name":"n%d","data":{"i":%d}}`, quote(pid), i, i)
	}
	ch := h.channel("persist")
	sub := h.wire.subscribe(ch)
	defer sub.close()
	h.persist(ch, `{"$insert":{"$documents":[`+strings.Join(docs, ",")+`]}}`)
	reply := sub.expectObject()
	if got := reply["affectedRows"]; got != float64(n) {
		h.t.Fatalf("affectedRows = %v, want %d", got, n)
	}
	sub.expect(`"end"`)
}

// wire is a test client of the protocol: one subscriber connection for all
// the channels of a test, routed by channel, as a real client would do.
type wire struct {
	t   testing.TB
	rdb *redis.Client
	ps  *redis.PubSub

	mu     sync.Mutex
	queues map[string]chan string
	acks   map[string]chan struct{}
}

func newWire(t testing.TB, rdb *redis.Client) *wire {
	w := &wire{t: t, rdb: rdb, ps: rdb.Subscribe(context.Background()), queues: map[string]chan string{}, acks: map[string]chan struct{}{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := w.ps.Receive(context.Background())
			if err != nil {
				if strings.Contains(err.Error(), "closed") {
					return
				}
				continue
			}
			switch m := msg.(type) {
			case *redis.Subscription:
				w.mu.Lock()
				if ack := w.acks[m.Channel]; ack != nil && m.Kind == "subscribe" {
					close(ack)
					delete(w.acks, m.Channel)
				}
				w.mu.Unlock()
			case *redis.Message:
				w.mu.Lock()
				q := w.queues[m.Channel]
				w.mu.Unlock()
				if q != nil {
					q <- m.Payload
				}
			}
		}
	}()
	t.Cleanup(func() { w.ps.Close(); <-done })
	return w
}

// sub is one subscribed response channel.
type sub struct {
	w       *wire
	channel string
	queue   chan string
}

// subscribe subscribes and waits for Redis to confirm, as a client must
// before it sends its request.
func (w *wire) subscribe(channel string) *sub {
	w.t.Helper()
	q := make(chan string, 4096)
	ack := make(chan struct{})
	w.mu.Lock()
	w.queues[channel] = q
	w.acks[channel] = ack
	w.mu.Unlock()
	if err := w.ps.Subscribe(context.Background(), channel); err != nil {
		w.t.Fatal(err)
	}
	select {
	case <-ack:
	case <-time.After(5 * time.Second):
		w.t.Fatalf("no subscribe confirmation for %s", channel)
	}
	return &sub{w: w, channel: channel, queue: q}
}

func (s *sub) close() {
	_ = s.w.ps.Unsubscribe(context.Background(), s.channel)
	s.w.mu.Lock()
	delete(s.w.queues, s.channel)
	s.w.mu.Unlock()
}

// next returns the next message that is not the client's own echo.
func (s *sub) next(timeout time.Duration) (string, bool) {
	deadline := time.After(timeout)
	for {
		select {
		case m := <-s.queue:
			if m == `"accepted"` {
				continue // our own acceptance, heard back
			}
			return m, true
		case <-deadline:
			return "", false
		}
	}
}

// expect requires the next message to be exactly want.
func (s *sub) expect(want string) {
	s.w.t.Helper()
	got, ok := s.next(5 * time.Second)
	if !ok {
		s.w.t.Fatalf("%s: no message, want %s", s.channel, want)
	}
	if got != want {
		s.w.t.Fatalf("%s: got %s, want %s", s.channel, got, want)
	}
}

// expectObject requires the next message to be a JSON object.
func (s *sub) expectObject() map[string]any {
	s.w.t.Helper()
	got, ok := s.next(5 * time.Second)
	if !ok {
		s.w.t.Fatalf("%s: no message, want an object", s.channel)
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(got), &obj); err != nil {
		s.w.t.Fatalf("%s: got %s, want an object", s.channel, got)
	}
	return obj
}

// expectSilence requires no message within d.
func (s *sub) expectSilence(d time.Duration) {
	s.w.t.Helper()
	if got, ok := s.next(d); ok {
		s.w.t.Fatalf("%s: got %s, want silence", s.channel, got)
	}
}

// say publishes a control message ("accepted", "end") on the channel.
func (s *sub) say(payload string) {
	s.w.t.Helper()
	if err := s.w.rdb.Publish(context.Background(), s.channel, payload).Err(); err != nil {
		s.w.t.Fatal(err)
	}
}

func (s *sub) accept() { s.say(`"accepted"`) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
