package redisbus_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/redisbus"
)

const redisAddr = "127.0.0.1:6379"

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// uniquePrefix names the channels of one test, so tests and packages share
// the local Redis without hearing each other.
func uniquePrefix() string { return "es-redisbus-test:" + randomHex(6) + ":" }

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// mustRedis returns a client of the local Redis, closed when the test ends.
func mustRedis(tb testing.TB, opts *redis.Options) *redis.Client {
	tb.Helper()
	if opts == nil {
		opts = &redis.Options{}
	}
	opts.Addr = redisAddr
	rdb := redis.NewClient(opts)
	tb.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		tb.Fatalf("redis at %s: %v", redisAddr, err)
	}
	return rdb
}

func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// waitFor polls check until it returns nil, failing the test with its last
// error after timeout.
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
		time.Sleep(5 * time.Millisecond)
	}
}

// numSub is PUBSUB NUMSUB channel.
func numSub(tb testing.TB, rdb *redis.Client, channel string) int64 {
	tb.Helper()
	res, err := rdb.PubSubNumSub(testContext(tb), channel).Result()
	if err != nil {
		tb.Fatal(err)
	}
	return res[channel]
}

// observer hears every channel under a prefix, in the order Redis
// published them.
type observer struct {
	ps *redis.PubSub

	mu       sync.Mutex
	messages []*redis.Message
}

func observe(tb testing.TB, rdb *redis.Client, prefix string) *observer {
	tb.Helper()
	ctx := testContext(tb)
	o := &observer{ps: rdb.PSubscribe(ctx, prefix+"*")}
	// The first reply confirms the pattern: from then on nothing is missed.
	if _, err := o.ps.Receive(ctx); err != nil {
		tb.Fatalf("psubscribe %s*: %v", prefix, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := o.ps.ReceiveMessage(context.Background())
			if err != nil {
				return
			}
			o.mu.Lock()
			o.messages = append(o.messages, msg)
			o.mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		o.ps.Close()
		<-done
	})
	return o
}

func (o *observer) snapshot() []*redis.Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*redis.Message(nil), o.messages...)
}

func (o *observer) waitCount(tb testing.TB, n int) []*redis.Message {
	tb.Helper()
	var got []*redis.Message
	waitFor(tb, 30*time.Second, func() error {
		if got = o.snapshot(); len(got) < n {
			return fmt.Errorf("observer heard %d messages, want %d", len(got), n)
		}
		return nil
	})
	return got
}

// doneCounter counts done callbacks and keeps their errors.
type doneCounter struct {
	calls atomic.Int64
	mu    sync.Mutex
	errs  []error
}

func (d *doneCounter) done(err error) {
	if err != nil {
		d.mu.Lock()
		d.errs = append(d.errs, err)
		d.mu.Unlock()
	}
	d.calls.Add(1)
}

func (d *doneCounter) errors() []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]error(nil), d.errs...)
}

// publishWaiting publishes, waiting while the queue is full (as a stream
// holds its row).
func publishWaiting(tb testing.TB, pub *redisbus.Publisher, channel string, payload []byte, done func(error)) {
	if err := redisbus.WhenRoom(context.Background(), func() error { return pub.Publish(channel, payload, done) }); err != nil {
		tb.Errorf("publish on %s: %v", channel, err)
	}
}

func TestPublisherKeepsOrderPerChannel(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t, nil)
	prefix := uniquePrefix()
	obs := observe(t, rdb, prefix)
	tests := []struct {
		name                         string
		workers, queue               int
		goroutines, channels, perSeq int
	}{
		// A small queue makes publishers block on full queues.
		{"small queue", 4, 8, 8, 16, 40},
		{"one worker", 1, 64, 6, 5, 50},
		{"defaults", 0, 0, 16, 32, 20},
	}
	heard := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := redisbus.NewPublisher(rdb.Options(), tt.workers, tt.queue, discardLogger())
			defer pub.Close()
			casePrefix := prefix + strings.ReplaceAll(tt.name, " ", "-") + ":"
			var dc doneCounter
			var wg sync.WaitGroup
			for g := range tt.goroutines {
				wg.Go(func() {
					for seq := range tt.perSeq {
						for c := range tt.channels {
							publishWaiting(t, pub, casePrefix+strconv.Itoa(c), []byte(fmt.Sprintf("%d:%d", g, seq)), dc.done)
						}
					}
				})
			}
			wg.Wait()
			total := tt.goroutines * tt.channels * tt.perSeq
			waitFor(t, 30*time.Second, func() error {
				if n := dc.calls.Load(); n != int64(total) {
					return fmt.Errorf("done called %d times, want %d", n, total)
				}
				return nil
			})
			if errs := dc.errors(); len(errs) > 0 {
				t.Fatalf("%d publishes failed, first: %v", len(errs), errs[0])
			}

			all := obs.waitCount(t, heard+total)
			// next[channel][goroutine] is the sequence number expected next.
			next := map[string][]int{}
			for _, msg := range all[heard:] {
				if !strings.HasPrefix(msg.Channel, casePrefix) {
					t.Fatalf("message on %q during case %q", msg.Channel, tt.name)
				}
				g, seq, ok := strings.Cut(msg.Payload, ":")
				gi, err1 := strconv.Atoi(g)
				si, err2 := strconv.Atoi(seq)
				if !ok || err1 != nil || err2 != nil || gi >= tt.goroutines {
					t.Fatalf("unexpected payload %q on %s", msg.Payload, msg.Channel)
				}
				if next[msg.Channel] == nil {
					next[msg.Channel] = make([]int, tt.goroutines)
				}
				if want := next[msg.Channel][gi]; si != want {
					t.Fatalf("on %s from goroutine %d: sequence %d, want %d", msg.Channel, gi, si, want)
				}
				next[msg.Channel][gi]++
			}
			if len(next) != tt.channels {
				t.Fatalf("heard %d channels, want %d", len(next), tt.channels)
			}
			for ch, seqs := range next {
				for g, n := range seqs {
					if n != tt.perSeq {
						t.Fatalf("on %s from goroutine %d: %d messages, want %d", ch, g, n, tt.perSeq)
					}
				}
			}
			heard += total
			// Nothing more arrives than was sent.
			if extra := len(obs.snapshot()) - heard; extra != 0 {
				t.Fatalf("%d messages more than published", extra)
			}
		})
	}
}

func TestPublisherCloseFlushesQueued(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t, nil)
	prefix := uniquePrefix()
	obs := observe(t, rdb, prefix)
	pub := redisbus.NewPublisher(rdb.Options(), 2, 4096, discardLogger())
	const n = 2000
	var dc doneCounter
	for i := range n {
		publishWaiting(t, pub, prefix+strconv.Itoa(i%3), []byte(strconv.Itoa(i)), dc.done)
	}
	publishWaiting(t, pub, prefix+"nil-done", []byte("x"), nil)
	pub.Close()
	// Close returns after the workers sent everything and called done.
	if got := dc.calls.Load(); got != n {
		t.Fatalf("after Close, done called %d times, want %d", got, n)
	}
	if errs := dc.errors(); len(errs) > 0 {
		t.Fatalf("%d publishes failed, first: %v", len(errs), errs[0])
	}
	all := obs.waitCount(t, n+1)
	last := map[string]int{}
	for _, msg := range all {
		if msg.Channel == prefix+"nil-done" {
			continue
		}
		i, _ := strconv.Atoi(msg.Payload)
		if prev, ok := last[msg.Channel]; ok && i <= prev {
			t.Fatalf("on %s: %d after %d", msg.Channel, i, prev)
		}
		last[msg.Channel] = i
	}
}

func TestPublisherAfterClose(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t, nil)
	prefix := uniquePrefix()
	obs := observe(t, rdb, prefix)
	pub := redisbus.NewPublisher(rdb.Options(), 2, 16, discardLogger())
	pub.Close()
	pub.Close() // closing twice is harmless

	called := false
	err := pub.Publish(prefix+"late", []byte("late"), func(error) { called = true })
	// Refused at once, and never answered: the caller holds the message.
	if !errors.Is(err, redisbus.ErrClosed) || called {
		t.Fatalf("Publish after Close returned %v (done called: %v), want ErrClosed and no call", err, called)
	}

	// Nothing was sent: a marker published afterwards is the first message.
	if err := rdb.Publish(testContext(t), prefix+"marker", "marker").Err(); err != nil {
		t.Fatal(err)
	}
	if all := obs.waitCount(t, 1); all[0].Channel != prefix+"marker" {
		t.Fatalf("heard %q on %s after Close", all[0].Payload, all[0].Channel)
	}
}

func TestPublisherConcurrentClose(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t, nil)
	prefix := uniquePrefix()
	pub := redisbus.NewPublisher(rdb.Options(), 2, 4, discardLogger())
	var dc doneCounter
	var published, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				published.Add(1)
				for {
					err := pub.Publish(prefix+strconv.Itoa(g), []byte(strconv.Itoa(i)), dc.done)
					if errors.Is(err, redisbus.ErrFull) {
						time.Sleep(100 * time.Microsecond)
						continue
					}
					if err != nil {
						refused.Add(1)
						if !errors.Is(err, redisbus.ErrClosed) {
							t.Errorf("Publish: %v, want nil, ErrFull or ErrClosed", err)
						}
					}
					break
				}
			}
		})
	}
	waitFor(t, 10*time.Second, func() error {
		if dc.calls.Load() < 50 {
			return errors.New("publishers have not started")
		}
		return nil
	})
	pub.Close()
	wg.Wait()
	// Every publish has exactly one outcome: queued and answered (nil, or
	// ErrClosed when Close came first), or refused with ErrClosed.
	if got, want := dc.calls.Load()+refused.Load(), published.Load(); got != want {
		t.Fatalf("%d answers and %d refusals for %d publishes", dc.calls.Load(), refused.Load(), want)
	}
	for _, err := range dc.errors() {
		if !errors.Is(err, redisbus.ErrClosed) {
			t.Fatalf("done got %v, want nil or ErrClosed", err)
		}
	}
}

// recorder is a subscriber's sink: it keeps what it was given and never
// blocks for long.
type recorder struct {
	mu     sync.Mutex
	events []any
	closed bool // set once Close returned; a later event is a bug
	late   []any
}

func (r *recorder) sink(msg any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.late = append(r.late, msg)
		return
	}
	r.events = append(r.events, msg)
}

func (r *recorder) snapshot() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]any(nil), r.events...)
}

// waitEvent polls until an event satisfying match arrives at or after
// index from and returns its index.
func (r *recorder) waitEvent(tb testing.TB, from int, what string, match func(any) bool) int {
	tb.Helper()
	found := -1
	waitFor(tb, 20*time.Second, func() error {
		events := r.snapshot()
		for i := from; i < len(events); i++ {
			if match(events[i]) {
				found = i
				return nil
			}
		}
		return fmt.Errorf("sink has not received %s (%d events)", what, len(events))
	})
	return found
}

func isInbound(channel, payload string) func(any) bool {
	return func(msg any) bool {
		in, ok := msg.(messages.Inbound)
		return ok && in.Channel == channel && string(in.Payload) == payload
	}
}

func isSubscribed(channel string) func(any) bool {
	return func(msg any) bool {
		s, ok := msg.(messages.Subscribed)
		return ok && s.Channel == channel
	}
}

// mustSubscriber starts a subscriber on its own client, named name in
// CLIENT LIST when name is not empty, and closes it when the test ends.
func mustSubscriber(tb testing.TB, name string) (*redisbus.Subscriber, *recorder) {
	tb.Helper()
	rdb := mustRedis(tb, &redis.Options{ClientName: name})
	rec := &recorder{}
	sub := redisbus.NewSubscriber(rdb.Options(), rec.sink, discardLogger())
	tb.Cleanup(func() { _ = sub.Close() }) // a second Close is harmless
	return sub, rec
}

func TestSubscribeWait(t *testing.T) {
	t.Parallel()
	pubRdb := mustRedis(t, nil)
	prefix := uniquePrefix()
	sub, rec := mustSubscriber(t, "")
	ctx := testContext(t)

	tests := []struct {
		name     string
		channels []string
	}{
		{"one channel", []string{prefix + "one"}},
		{"three channels", []string{prefix + "a", prefix + "b", prefix + "c"}},
		{"unicode channel", []string{prefix + "kanal-ø-🚀"}},
	}
	for i := range 10 {
		tests = append(tests, struct {
			name     string
			channels []string
		}{fmt.Sprintf("repeat %d", i), []string{prefix + "r" + strconv.Itoa(i)}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := len(rec.snapshot())
			if err := sub.SubscribeWait(ctx, tt.channels...); err != nil {
				t.Fatal(err)
			}
			// Subscribed on return: a publish right now is heard.
			for _, ch := range tt.channels {
				n, err := pubRdb.Publish(ctx, ch, "hello "+ch).Result()
				if err != nil {
					t.Fatal(err)
				}
				if n != 1 {
					t.Fatalf("PUBLISH %s reached %d subscribers right after SubscribeWait, want 1", ch, n)
				}
			}
			for _, ch := range tt.channels {
				sub := rec.waitEvent(t, from, "Subscribed "+ch, isSubscribed(ch))
				in := rec.waitEvent(t, from, "the message on "+ch, isInbound(ch, "hello "+ch))
				if sub > in {
					t.Errorf("on %s: Inbound (event %d) before Subscribed (event %d)", ch, in, sub)
				}
			}
		})
	}

	t.Run("messages keep their order and bytes", func(t *testing.T) {
		ch := prefix + "order"
		if err := sub.SubscribeWait(ctx, ch); err != nil {
			t.Fatal(err)
		}
		from := len(rec.snapshot())
		payloads := []string{`"accepted"`, `{"channel":"x","query":{}}`, "", "\x00\xff binary", strings.Repeat("z", 100000)}
		for _, p := range payloads {
			if err := pubRdb.Publish(ctx, ch, p).Err(); err != nil {
				t.Fatal(err)
			}
		}
		rec.waitEvent(t, from, "the last message", isInbound(ch, payloads[len(payloads)-1]))
		var got []string
		for _, ev := range rec.snapshot()[from:] {
			if in, ok := ev.(messages.Inbound); ok && in.Channel == ch {
				got = append(got, string(in.Payload))
			}
		}
		if len(got) != len(payloads) {
			t.Fatalf("heard %d messages, want %d", len(got), len(payloads))
		}
		for i := range got {
			if got[i] != payloads[i] {
				t.Fatalf("message %d = %q, want %q", i, got[i], payloads[i])
			}
		}
	})
}

// Subscriptions from many goroutines at once share writes; every one is
// confirmed, and every unsubscription takes effect.
func TestConcurrentSubscriptions(t *testing.T) {
	t.Parallel()
	admin := mustRedis(t, nil)
	prefix := uniquePrefix()
	sub, _ := mustSubscriber(t, "")
	ctx := testContext(t)
	const goroutines, each = 50, 20
	name := func(g, i int) string { return fmt.Sprintf("%sg%d-c%d", prefix, g, i) }
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if err := sub.SubscribeWait(ctx, name(g, i)); err != nil {
					errs <- err
					return
				}
			}
			// The odd ones go again at once.
			for i := 1; i < each; i += 2 {
				if err := sub.Unsubscribe(ctx, name(g, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		for g := range goroutines {
			for i := range each {
				want := int64(1 - i%2)
				if n := numSub(t, admin, name(g, i)); n != want {
					return fmt.Errorf("%s has %d subscribers, want %d", name(g, i), n, want)
				}
			}
		}
		return nil
	})
}

func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	pubRdb := mustRedis(t, nil)
	prefix := uniquePrefix()
	sub, rec := mustSubscriber(t, "")
	ctx := testContext(t)
	gone, kept := prefix+"gone", prefix+"kept"
	if err := sub.SubscribeWait(ctx, gone, kept); err != nil {
		t.Fatal(err)
	}
	if err := pubRdb.Publish(ctx, gone, "before").Err(); err != nil {
		t.Fatal(err)
	}
	rec.waitEvent(t, 0, "the message before Unsubscribe", isInbound(gone, "before"))

	if err := sub.Unsubscribe(ctx, gone); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if n := numSub(t, pubRdb, gone); n != 0 {
			return fmt.Errorf("%s still has %d subscribers", gone, n)
		}
		return nil
	})
	from := len(rec.snapshot())
	if n, err := pubRdb.Publish(ctx, gone, "after").Result(); err != nil || n != 0 {
		t.Fatalf("PUBLISH after Unsubscribe reached %d subscribers (%v), want 0", n, err)
	}
	// Redis delivers in order: once the marker is heard, "after" would have
	// been heard before it.
	if err := pubRdb.Publish(ctx, kept, "marker").Err(); err != nil {
		t.Fatal(err)
	}
	rec.waitEvent(t, from, "the marker", isInbound(kept, "marker"))
	for _, ev := range rec.snapshot()[from:] {
		if in, ok := ev.(messages.Inbound); ok && in.Channel == gone {
			t.Fatalf("heard %q on %s after Unsubscribe", in.Payload, gone)
		}
	}
	if numSub(t, pubRdb, kept) != 1 {
		t.Fatalf("%s lost its subscription", kept)
	}
}

// subscriberIDs lists the ids of the connections named name in CLIENT
// LIST that hold subscriptions (the client's pool may hold others).
func subscriberIDs(tb testing.TB, rdb *redis.Client, name string) []string {
	tb.Helper()
	return connectionIDs(tb, rdb, name, true)
}

// connectionIDs lists the ids of the connections named name in CLIENT
// LIST, only those holding subscriptions if subscribed.
func connectionIDs(tb testing.TB, rdb *redis.Client, name string, subscribed bool) []string {
	tb.Helper()
	list, err := rdb.ClientList(testContext(tb)).Result()
	if err != nil {
		tb.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(list, "\n") {
		fields := map[string]string{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["name"] == name && fields["id"] != "" && (!subscribed || holds(fields["sub"]) || holds(fields["psub"])) {
			ids = append(ids, fields["id"])
		}
	}
	return ids
}

// holds reads a CLIENT LIST count of subscriptions.
func holds(count string) bool { return count != "" && count != "0" }

func TestSubscriberReconnects(t *testing.T) {
	t.Parallel()
	admin := mustRedis(t, nil)
	prefix := uniquePrefix()
	name := "es-redisbus-test-" + randomHex(6)
	sub, rec := mustSubscriber(t, name)
	ctx := testContext(t)
	ch := prefix + "survivor"
	if err := sub.SubscribeWait(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if err := admin.Publish(ctx, ch, "before").Err(); err != nil {
		t.Fatal(err)
	}
	rec.waitEvent(t, 0, "the message before the kill", isInbound(ch, "before"))

	ids := subscriberIDs(t, admin, name)
	if len(ids) != 1 {
		t.Fatalf("subscriber connections named %s: %v, want exactly one", name, ids)
	}
	from := len(rec.snapshot())
	if err := admin.ClientKillByFilter(ctx, "ID", ids[0]).Err(); err != nil {
		t.Fatalf("CLIENT KILL ID %s: %v", ids[0], err)
	}
	interrupted := rec.waitEvent(t, from, "BusInterrupted", func(msg any) bool {
		bi, ok := msg.(messages.BusInterrupted)
		return ok && bi.Err != nil
	})

	// The subscriber redials and resubscribes on its own.
	publishUntilHeard(t, admin, rec, ch, interrupted)
	// The new connection carries the name, and is another one.
	ids2 := subscriberIDs(t, admin, name)
	if len(ids2) != 1 || ids2[0] == ids[0] {
		t.Fatalf("subscriber connections named %s after the reconnect: %v (killed %s)", name, ids2, ids[0])
	}
	// Exactly one interruption was reported for one kill, and one
	// restoration, after the resubscription was confirmed.
	interruptions, restorations, confirmed := 0, 0, false
	for i, ev := range rec.snapshot() {
		switch ev := ev.(type) {
		case messages.BusInterrupted:
			interruptions++
		case messages.Subscribed:
			confirmed = confirmed || (i > interrupted && ev.Channel == ch)
		case messages.BusRestored:
			restorations++
			if !confirmed {
				t.Fatal("BusRestored before the resubscription was confirmed")
			}
		}
	}
	if interruptions != 1 || restorations != 1 {
		t.Fatalf("%d BusInterrupted and %d BusRestored events, want 1 of each", interruptions, restorations)
	}
	// New subscriptions work on the new connection.
	ch2 := prefix + "new"
	if err := sub.SubscribeWait(ctx, ch2); err != nil {
		t.Fatal(err)
	}
	if n, err := admin.Publish(ctx, ch2, "fresh").Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH on a channel subscribed after the reconnect reached %d (%v), want 1", n, err)
	}
	rec.waitEvent(t, interrupted, "the message on the new channel", isInbound(ch2, "fresh"))
}

// publishUntilHeard publishes on channel until the recorder hears one of
// those messages at or after event from: a subscriber that lost its
// connection is back and subscribed.
func publishUntilHeard(tb testing.TB, admin *redis.Client, rec *recorder, channel string, from int) {
	tb.Helper()
	var attempt int
	waitFor(tb, 20*time.Second, func() error {
		attempt++
		if err := admin.Publish(testContext(tb), channel, "after-"+strconv.Itoa(attempt)).Err(); err != nil {
			return err
		}
		for _, ev := range rec.snapshot()[from:] {
			if in, ok := ev.(messages.Inbound); ok && in.Channel == channel && strings.HasPrefix(string(in.Payload), "after-") {
				return nil
			}
		}
		return errors.New("no message delivered since the connection was lost")
	})
}

// readers counts the goroutines of Subscribers: the reader, the health
// watch and the writer.
func readers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for _, loop := range []string{"run", "watch", "write"} {
		n += strings.Count(string(buf), "redisbus.(*Subscriber)."+loop+"(")
	}
	return n
}

// TestSubscriberClose is not parallel: it counts reader goroutines, and
// the parallel tests of this package have not started while it runs.
func TestSubscriberClose(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, sub *redisbus.Subscriber, ch string)
	}{
		{"idle", func(*testing.T, *redisbus.Subscriber, string) {}},
		{"subscribed", func(t *testing.T, sub *redisbus.Subscriber, ch string) {
			if err := sub.SubscribeWait(testContext(t), ch); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			admin := mustRedis(t, nil)
			ch := uniquePrefix() + "close"
			before := readers()
			sub, rec := mustSubscriber(t, "")
			waitFor(t, 5*time.Second, func() error {
				if n := readers(); n != before+3 {
					return fmt.Errorf("%d subscriber goroutines, want %d", n, before+3)
				}
				return nil
			})
			tt.setup(t, sub, ch)

			closed := make(chan error, 1)
			go func() { closed <- sub.Close() }()
			select {
			case err := <-closed:
				if err != nil {
					t.Logf("Close: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Close did not return")
			}
			rec.mu.Lock()
			rec.closed = true
			rec.mu.Unlock()
			// Close waits for the reader to finish its work; the goroutine
			// itself may take a moment more to exit after its last deferred
			// call (seen once in CI).
			waitFor(t, 5*time.Second, func() error {
				if n := readers(); n != before {
					return fmt.Errorf("%d subscriber goroutines after Close, want %d", n, before)
				}
				return nil
			})
			waitFor(t, 5*time.Second, func() error {
				if n := numSub(t, admin, ch); n != 0 {
					return fmt.Errorf("%s has %d subscribers after Close", ch, n)
				}
				return nil
			})
			if err := admin.Publish(testContext(t), ch, "late").Err(); err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			late := rec.late
			rec.mu.Unlock()
			if len(late) > 0 {
				t.Fatalf("sink called after Close with %v", late)
			}
		})
	}
}

// A filter sees every message first; what it handles never reaches the
// sink, and the rest does, in order.
func TestSubscriberFilter(t *testing.T) {
	t.Parallel()
	pubRdb := mustRedis(t, nil)
	channel := uniquePrefix() + "filtered"
	var filtered []string // the reader goroutine's until the sink heard "last"
	rec := &recorder{}
	sub := redisbus.NewSubscriber(mustRedis(t, nil).Options(), rec.sink, discardLogger(), redisbus.WithFilter(func(ch, payload []byte, _ uint64) bool {
		if string(ch) != channel {
			return false
		}
		filtered = append(filtered, string(payload))
		return bytes.HasPrefix(payload, []byte("{"))
	}))
	t.Cleanup(func() { _ = sub.Close() })
	ctx := testContext(t)
	if err := sub.SubscribeWait(ctx, channel); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{`{"row":1}`, `"accepted"`, `{"row":2}`, `last`} {
		if err := pubRdb.Publish(ctx, channel, p).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rec.waitEvent(t, 0, "the last message", isInbound(channel, "last"))
	var heard []string
	for _, msg := range rec.snapshot() {
		if in, ok := msg.(messages.Inbound); ok && in.Channel == channel {
			heard = append(heard, string(in.Payload))
		}
	}
	if want := []string{`"accepted"`, `last`}; !slices.Equal(heard, want) {
		t.Fatalf("sink heard %q, want %q", heard, want)
	}
	if want := []string{`{"row":1}`, `"accepted"`, `{"row":2}`, `last`}; !slices.Equal(filtered, want) {
		t.Fatalf("filter saw %q, want %q", filtered, want)
	}
}

// A message over the limit reaches the sink cut to one byte more than the
// limit; the others whole.
func TestSubscriberMaxPayload(t *testing.T) {
	t.Parallel()
	pubRdb := mustRedis(t, nil)
	channel := uniquePrefix() + "limited"
	rec := &recorder{}
	sub := redisbus.NewSubscriber(mustRedis(t, nil).Options(), rec.sink, discardLogger(), redisbus.WithMaxPayload(10))
	t.Cleanup(func() { _ = sub.Close() })
	ctx := testContext(t)
	if err := sub.SubscribeWait(ctx, channel); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"0123456789", strings.Repeat("x", 1<<20), "last"} {
		if err := pubRdb.Publish(ctx, channel, p).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rec.waitEvent(t, 0, "the last message", isInbound(channel, "last"))
	var heard []string
	for _, msg := range rec.snapshot() {
		if in, ok := msg.(messages.Inbound); ok {
			heard = append(heard, string(in.Payload))
		}
	}
	if want := []string{"0123456789", "xxxxxxxxxxx", "last"}; !slices.Equal(heard, want) {
		t.Fatalf("sink heard %.40q, want %q", heard, want)
	}
}

// Shard keeps a channel on one queue and spreads channels over all of them;
// it is FNV-1a, as hash/fnv computes it.
func TestShard(t *testing.T) {
	for _, n := range []int{0, 1, 2, 4, 16} {
		seen := map[int]bool{}
		for i := range 1000 {
			ch := "response:" + strconv.Itoa(i)
			got := redisbus.Shard(ch, n)
			h := fnv.New32a()
			_, _ = h.Write([]byte(ch))
			want := 0
			if n > 1 {
				want = int(h.Sum32() % uint32(n))
			}
			if got != want {
				t.Fatalf("Shard(%q, %d) = %d, want %d", ch, n, got, want)
			}
			seen[got] = true
		}
		if want := max(n, 1); len(seen) != want {
			t.Errorf("Shard over %d queues used %d of them", n, len(seen))
		}
	}
}

// freezer is a TCP proxy to Redis whose connections can be frozen: they
// stay open and carry nothing, as when a host vanishes without a reset.
type freezer struct {
	ln net.Listener

	mu    sync.Mutex
	pairs []*proxied
}

// proxied is one client connection and its connection to Redis.
type proxied struct {
	client, server net.Conn
	frozen         atomic.Bool
}

func newFreezer(tb testing.TB) *freezer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	f := &freezer{ln: ln}
	tb.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, p := range f.pairs {
			p.client.Close()
			p.server.Close()
		}
	})
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", redisAddr)
			if err != nil {
				client.Close()
				continue
			}
			p := &proxied{client: client, server: server}
			f.mu.Lock()
			f.pairs = append(f.pairs, p)
			f.mu.Unlock()
			go p.pipe(client, server)
			go p.pipe(server, client)
		}
	}()
	return f
}

// pipe copies until either side closes, dropping what it reads once
// frozen.
func (p *proxied) pipe(from, to net.Conn) {
	defer p.client.Close()
	defer p.server.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if err != nil {
			return
		}
		if p.frozen.Load() {
			continue
		}
		if _, err := to.Write(buf[:n]); err != nil {
			return
		}
	}
}

// freeze freezes the connections open now; later ones carry traffic.
func (f *freezer) freeze() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.pairs {
		p.frozen.Store(true)
	}
	return len(f.pairs)
}

// A connection that goes silent without closing is pinged, found dead and
// replaced: the subscriber reports the interruption and hears messages on
// its new connection.
func TestSubscriberReplacesASilentConnection(t *testing.T) {
	t.Parallel()
	admin := mustRedis(t, nil)
	proxy := newFreezer(t)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.ln.Addr().String()})
	t.Cleanup(func() { rdb.Close() })
	rec := &recorder{}
	sub := redisbus.NewSubscriber(rdb.Options(), rec.sink, discardLogger(), redisbus.WithHealthInterval(50*time.Millisecond))
	t.Cleanup(func() { _ = sub.Close() })
	ctx := testContext(t)
	ch := uniquePrefix() + "silent"
	if err := sub.SubscribeWait(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if err := admin.Publish(ctx, ch, "before").Err(); err != nil {
		t.Fatal(err)
	}
	rec.waitEvent(t, 0, "the message before the freeze", isInbound(ch, "before"))

	if n := proxy.freeze(); n != 1 {
		t.Fatalf("froze %d connections, want the subscriber's one", n)
	}
	from := len(rec.snapshot())
	rec.waitEvent(t, from, "BusInterrupted", func(msg any) bool {
		_, ok := msg.(messages.BusInterrupted)
		return ok
	})
	publishUntilHeard(t, admin, rec, ch, from)
	if !sub.Healthy() {
		t.Fatal("not healthy after delivering again")
	}
}

// A publisher connection that Redis closed while it sat idle is redialed,
// and nothing is published twice: a publish written before the publisher
// heard of the close fails as unknown (Redis might have run it), one after
// it goes out on a new connection.
func TestPublisherRedialsAfterAnIdleKill(t *testing.T) {
	t.Parallel()
	admin := mustRedis(t, nil)
	name := "es-redisbus-pub-" + randomHex(6)
	rdb := mustRedis(t, &redis.Options{ClientName: name})
	prefix := uniquePrefix()
	obs := observe(t, admin, prefix)
	pub := redisbus.NewPublisher(rdb.Options(), 1, 16, discardLogger())
	defer pub.Close()
	publish := func(payload string) error {
		errs := make(chan error, 1)
		pub.Publish(prefix+"c", []byte(payload), func(err error) { errs <- err })
		select {
		case err := <-errs:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("no reply within 10 s")
		}
	}
	if err := publish("first"); err != nil {
		t.Fatal(err)
	}
	// The publisher's connection is the one named name that mustRedis's
	// PING did not open: kill them all.
	ids := connectionIDs(t, admin, name, false)
	if len(ids) != 2 {
		t.Fatalf("connections named %s: %v, want the client's and the publisher's", name, ids)
	}
	for _, id := range ids {
		if err := admin.ClientKillByFilter(testContext(t), "ID", id).Err(); err != nil {
			t.Fatalf("CLIENT KILL ID %s: %v", id, err)
		}
	}
	want := []string{"first"}
	switch err := publish("second"); {
	case err == nil:
		want = append(want, "second")
		if err := publish("third"); err != nil {
			t.Fatalf("the publish once the kill was heard: %v", err)
		}
		want = append(want, "third")
	case errors.Is(err, redisbus.ErrUnknown):
		// Nothing of the channel may follow a message that may be lost.
		if err := publish("third"); !errors.Is(err, redisbus.ErrAfterFailure) {
			t.Fatalf("a publish after one of its channel failed: %v, want ErrAfterFailure", err)
		}
	default:
		t.Fatalf("the publish after the kill: %v, want success or ErrUnknown", err)
	}
	// Another channel goes through the redialed connection.
	errs := make(chan error, 1)
	_ = pub.Publish(prefix+"d", []byte("other"), func(err error) { errs <- err })
	if err := <-errs; err != nil {
		t.Fatalf("a publish on another channel after the redial: %v", err)
	}
	want = append(want, "other")
	obs.waitCount(t, len(want))
	time.Sleep(100 * time.Millisecond) // a duplicate would arrive by now
	got := obs.snapshot()
	var payloads []string
	for _, m := range got {
		payloads = append(payloads, m.Payload)
	}
	if !slices.Equal(payloads, want) {
		t.Fatalf("heard %q, want %q: each once", payloads, want)
	}
}

// The subscriber's and the publisher's own connections log in as the
// client's options say, and a refused login is reported, not hidden.
func TestConnectionsAuthenticate(t *testing.T) {
	t.Parallel()
	admin := mustRedis(t, nil)
	ctx := testContext(t)
	user, pass := "es-redisbus-"+randomHex(6), randomHex(16)
	if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", ">"+pass, "&*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", user) })

	t.Run("as a user with its password", func(t *testing.T) {
		name := "es-redisbus-auth-" + randomHex(6)
		rdb := mustRedis(t, &redis.Options{Username: user, Password: pass, ClientName: name})
		prefix := uniquePrefix()
		obs := observe(t, admin, prefix)
		rec := &recorder{}
		sub := redisbus.NewSubscriber(rdb.Options(), rec.sink, discardLogger())
		t.Cleanup(func() { _ = sub.Close() })
		if err := sub.SubscribeWait(ctx, prefix+"in"); err != nil {
			t.Fatal(err)
		}
		if err := admin.Publish(ctx, prefix+"in", "hello").Err(); err != nil {
			t.Fatal(err)
		}
		rec.waitEvent(t, 0, "the message", isInbound(prefix+"in", "hello"))

		pub := redisbus.NewPublisher(rdb.Options(), 1, 4, discardLogger())
		defer pub.Close()
		errs := make(chan error, 1)
		pub.Publish(prefix+"out", []byte("published"), func(err error) { errs <- err })
		if err := <-errs; err != nil {
			t.Fatalf("publish as %s: %v", user, err)
		}
		if got := obs.waitCount(t, 2); got[1].Payload != "published" {
			t.Fatalf("heard %v", got)
		}
		// The client's pool, the subscriber and the publisher: all logged
		// in as the user.
		list, err := admin.ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, line := range strings.Split(list, "\n") {
			if strings.Contains(line, " name="+name+" ") {
				_, u, _ := strings.Cut(line, " user=")
				users = append(users, strings.Fields(u)[0])
			}
		}
		if len(users) != 3 || slices.ContainsFunc(users, func(u string) bool { return u != user }) {
			t.Fatalf("connections named %s logged in as %v, want three as %s", name, users, user)
		}
	})
	t.Run("with a wrong password", func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: redisAddr, Username: user, Password: "wrong"})
		t.Cleanup(func() { rdb.Close() })
		rec := &recorder{}
		sub := redisbus.NewSubscriber(rdb.Options(), rec.sink, discardLogger())
		t.Cleanup(func() { _ = sub.Close() })
		i := rec.waitEvent(t, 0, "BusInterrupted", func(msg any) bool {
			_, ok := msg.(messages.BusInterrupted)
			return ok
		})
		if err := rec.snapshot()[i].(messages.BusInterrupted).Err; err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Fatalf("interrupted by %v, want Redis's WRONGPASS", err)
		}
		if sub.Healthy() {
			t.Fatal("healthy without a connection")
		}

		pub := redisbus.NewPublisher(rdb.Options(), 1, 4, discardLogger())
		defer pub.Close()
		errs := make(chan error, 1)
		pub.Publish(uniquePrefix()+"refused", []byte("x"), func(err error) { errs <- err })
		if err := <-errs; err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Fatalf("publish with a wrong password: %v, want Redis's WRONGPASS", err)
		}
	})
}

// A full queue refuses at once, never blocking the caller; what it queued
// goes out once the connection is there.
func TestPublisherRefusesWhenFull(t *testing.T) {
	t.Parallel()
	admin := mustRedis(t, nil)
	prefix := uniquePrefix()
	obs := observe(t, admin, prefix)
	release := make(chan struct{})
	opt := *admin.Options()
	opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		<-release // the worker holds its first message while it dials
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	pub := redisbus.NewPublisher(&opt, 1, 1, discardLogger())
	defer pub.Close()
	var dc doneCounter
	queued := 0
	var full error
	for i := range 10 {
		err := pub.Publish(prefix+"c", []byte(strconv.Itoa(i)), dc.done)
		if err != nil {
			full = err
			break
		}
		queued++
	}
	if !errors.Is(full, redisbus.ErrFull) {
		t.Fatalf("publishing past the queue: %v, want ErrFull", full)
	}
	if queued < 1 || queued > 2 {
		t.Fatalf("%d queued, want the worker's one and the queue's one", queued)
	}
	close(release)
	got := obs.waitCount(t, queued)
	for i, m := range got {
		if m.Payload != strconv.Itoa(i) {
			t.Fatalf("heard %q at %d, want %d", m.Payload, i, i)
		}
	}
}

// The publisher's connection killed again and again under load: each
// channel hears its messages once, in order, without a hole: after one of
// its messages failed, nothing of it goes out until its script does.
func TestPublisherNothingAfterAFailure(t *testing.T) {
	t.Parallel()
	admin := mustRedis(t, nil)
	name := "es-redisbus-pub-" + randomHex(6)
	prefix := uniquePrefix()
	obs := observe(t, admin, prefix)
	pub := redisbus.NewPublisher(mustRedis(t, &redis.Options{ClientName: name}).Options(), 1, 4096, discardLogger())
	defer pub.Close()
	lift := redisbus.NewScript("return redis.call('PUBLISH', KEYS[1], ARGV[1])")

	const channels, perChannel = 8, 400
	var mu sync.Mutex
	acked := map[string][]int{} // payloads Redis confirmed, per channel
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() { // the killer
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			// By name: the publisher's connection (and the helper client's).
			list, _ := admin.ClientList(context.Background()).Result()
			for line := range strings.Lines(list) {
				if !strings.Contains(line, " name="+name+" ") {
					continue
				}
				id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
				_ = admin.ClientKillByFilter(context.Background(), "ID", id).Err()
			}
		}
	}()
	for c := range channels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := prefix + strconv.Itoa(c)
			for i := range perChannel {
				for {
					err := pub.Publish(ch, []byte(strconv.Itoa(i)), func(err error) {
						if err == nil {
							mu.Lock()
							acked[ch] = append(acked[ch], i)
							mu.Unlock()
						}
					})
					if !errors.Is(err, redisbus.ErrFull) {
						break
					}
					time.Sleep(time.Millisecond)
				}
				time.Sleep(50 * time.Microsecond)
			}
			// The channel's end: a script, which goes whatever failed.
			done := make(chan error, 1)
			for pub.Eval(ch, lift, []string{ch}, [][]byte{[]byte("end")}, func(_ int64, err error) { done <- err }) != nil {
				time.Sleep(time.Millisecond)
			}
			if err := <-done; err != nil && !errors.Is(err, redisbus.ErrUnknown) {
				t.Errorf("%s: the end: %v", ch, err)
			}
		}()
	}
	wg.Wait()
	close(stop)
	time.Sleep(300 * time.Millisecond) // let what was published arrive
	heard := map[string][]string{}
	for _, m := range obs.snapshot() {
		heard[m.Channel] = append(heard[m.Channel], m.Payload)
	}
	holes := 0
	for c := range channels {
		ch := prefix + strconv.Itoa(c)
		got := heard[ch]
		rows := got
		if n := len(rows); n > 0 && rows[n-1] == "end" {
			rows = rows[:n-1]
		}
		for i, p := range rows {
			if p != strconv.Itoa(i) {
				t.Fatalf("%s heard %q at %d: a duplicate, a reorder or a row after a hole (heard %v)", ch, p, i, got)
			}
		}
		mu.Lock()
		for _, i := range acked[ch] {
			if i >= len(rows) {
				t.Fatalf("%s: Redis confirmed %d but it was not heard (heard %d rows)", ch, i, len(rows))
			}
		}
		mu.Unlock()
		if len(rows) < perChannel {
			holes++
		}
	}
	if holes == 0 {
		t.Log("no channel lost a message: the kills missed every write")
	}
}
