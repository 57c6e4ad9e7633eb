package server_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/server"
)

func TestConcurrentInterleavedStreams(t *testing.T) {
	const streams, rows = 500, 4
	h := newHarness(t, nil)
	for i := 0; i < streams; i += 100 {
		// One persist per 100 pids, interleaving their events in the table.
		var docs []string
		for r := range rows {
			for p := i; p < i+100; p++ {
				docs = append(docs, fmt.Sprintf(`{"pid":"p%d","domain":"d","name":"r%d","data":{}}`, p, r))
			}
		}
		c := h.wire.subscribe(h.channel("seed"))
		h.persist(c.channel, `{"$insert":{"$documents":[`+strings.Join(docs, ",")+`]}}`)
		c.expectObject()
		c.expect(`"end"`)
	}
	subs := make([]*sub, streams)
	for i := range subs {
		subs[i] = h.wire.subscribe(h.channel(fmt.Sprintf("s%d", i)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i, c := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.fetch(c.channel, fmt.Sprintf(`{"$select":{"$columns":["pid","name"],"$where":{"pid":"p%d"}}}`, i))
			for r := range rows {
				want := fmt.Sprintf(`{"pid":"p%d","name":"r%d"}`, i, r)
				got, ok := c.next(20 * time.Second)
				if !ok || got != want {
					errs <- fmt.Errorf("stream %d row %d: got %q, want %q", i, r, got, want)
					return
				}
				c.accept()
			}
			if got, _ := c.next(20 * time.Second); got != `"end"` {
				errs <- fmt.Errorf("stream %d: got %q, want \"end\"", i, got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitForNoChildren(t, h)
}

// panicOn makes the stream on one channel panic at its first "accepted".
type panicOn struct{ channel string }

func (p panicOn) middleware(next actor.ReceiverFunc) actor.ReceiverFunc {
	return func(ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
		if strings.HasSuffix(ctx.Self().Id, "stream:"+p.channel) && fmt.Sprintf("%T", env.Message) == "actors.control" {
			panic("injected fault")
		}
		next(ctx, env)
	}
}

func TestPanicInOneStreamLeavesOthersRunning(t *testing.T) {
	h := newDatabase(t)
	victim := h.channel("victim")
	h.start(nil, server.WithChildMiddleware(panicOn{channel: victim}.middleware))
	h.persistEvents("p", 3)

	others := make([]*sub, 5)
	for i := range others {
		others[i] = h.wire.subscribe(h.channel("other"))
		h.fetch(others[i].channel, `{"$select":{"$columns":["name"],"$where":{"pid":"p"}}}`)
		others[i].expect(`{"name":"n0"}`)
	}
	v := h.wire.subscribe(victim)
	h.fetch(victim, `{"$select":{"$columns":["name"],"$where":{"pid":"p"}}}`, `"reason":true`)
	v.expect(`{"name":"n0"}`)
	v.accept()
	v.expect(`{"error":"internal","message":"internal error"}`)
	v.expectSilence(100 * time.Millisecond)

	for _, c := range others {
		for _, want := range []string{"n1", "n2"} {
			c.accept()
			c.expect(`{"name":"` + want + `"}`)
		}
		c.accept()
		c.expect(`"end"`)
	}
	waitForNoChildren(t, h)
}

func TestRedisConnectionsKilledWhileIdle(t *testing.T) {
	h := newHarness(t, nil)
	h.persistEvents("before", 1)
	ctx := context.Background()
	if killed := killServerConnections(t, h, false); killed < 2 {
		t.Fatalf("killed %d connections, want the subscriber and the pool's", killed)
	}
	waitFor(t, "the server to resubscribe its request channels", 10*time.Second, func() bool {
		n, err := h.rdb.PubSubNumSub(ctx, h.cfg.FetchChannel).Result()
		return err == nil && n[h.cfg.FetchChannel] == 1
	})
	h.persistEvents("after", 2)
	c := h.wire.subscribe(h.channel("after"))
	h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"after"}}}`)
	c.expect(`{"name":"n0"}`)
	c.accept()
	c.expect(`{"name":"n1"}`)
	c.accept()
	c.expect(`"end"`)
}

func TestRedisKilledMidStreamEndsStreams(t *testing.T) {
	h := newHarness(t, nil)
	h.persistEvents("mid", 2)
	c := h.wire.subscribe(h.channel("mid"))
	h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"mid"}}}`)
	c.expect(`{"name":"n0"}`)
	if killed := killServerConnections(t, h, true); killed != 1 {
		t.Fatalf("killed %d subscriber connections, want 1", killed)
	}
	// The stream in flight ends with "error" (its acceptances may have
	// been lost) and frees its resources.
	c.expect(`"error"`)
	waitForNoChildren(t, h)
}

// killServerConnections kills the server's Redis connections (only its
// subscriber, if subscriberOnly) and returns how many it killed.
func killServerConnections(t testing.TB, h *harness, subscriberOnly bool) int {
	t.Helper()
	ctx := context.Background()
	list, err := h.rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		fields := map[string]string{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["name"] != h.serverClientName() || (subscriberOnly && (fields["sub"] == "" || fields["sub"] == "0")) {
			continue
		}
		if err := h.rdb.Do(ctx, "CLIENT", "KILL", "ID", fields["id"]).Err(); err != nil {
			t.Fatal(err)
		}
		killed++
	}
	return killed
}

func TestNoLeaksAfterEveryEnding(t *testing.T) {
	h := newHarness(t, func(cfg *server.Config) { cfg.AcceptTimeout = 150 * time.Millisecond })
	h.persistEvents("leak", 2)
	ctx := context.Background()
	endings := []struct {
		name string
		run  func(c *sub)
	}{
		{"end", func(c *sub) {
			h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"leak"}}}`)
			c.expect(`{"name":"n0"}`)
			c.accept()
			c.expect(`{"name":"n1"}`)
			c.accept()
			c.expect(`"end"`)
		}},
		{"client end", func(c *sub) {
			h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"leak"}}}`)
			c.expect(`{"name":"n0"}`)
			c.say(`"end"`)
			c.expect(`"end"`)
		}},
		{"timeout", func(c *sub) {
			h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"leak"}}}`)
			c.expect(`{"name":"n0"}`)
			c.expect(`"timeout"`)
		}},
		{"error", func(c *sub) {
			h.fetch(c.channel, `{"$select":{"$where":{"nope":1}}}`)
			c.expect(`"error"`)
		}},
	}
	run := func(perEnding int) {
		for _, e := range endings {
			var wg sync.WaitGroup
			sem := make(chan struct{}, 50)
			for range perEnding {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					c := h.wire.subscribe(h.channel("leak"))
					defer c.close()
					e.run(c)
				}()
			}
			wg.Wait()
			if t.Failed() {
				t.Fatalf("ending %q failed", e.name)
			}
		}
	}
	// Warm up first: the pools of MySQL (a goroutine per connection) and
	// Redis grow to their working size, which is not a leak.
	run(50)
	waitForNoChildren(t, h)
	baseline := runtime.NumGoroutine()
	channelsBefore, err := h.rdb.PubSubChannels(ctx, h.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	run(250) // 1,000 streams in all
	waitForNoChildren(t, h)
	waitFor(t, "response channels to be unsubscribed", 10*time.Second, func() bool {
		chans, err := h.rdb.PubSubChannels(ctx, h.prefix+"*").Result()
		return err == nil && len(chans) <= len(channelsBefore)
	})
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, baseline %d:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestShutdownEndsStreamsAndFinishesPersists(t *testing.T) {
	h := newHarness(t, nil)
	h.persistEvents("open", 2)
	c := h.wire.subscribe(h.channel("open"))
	h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"open"}}}`)
	c.expect(`{"name":"n0"}`)

	// Hold a write lock so the next persist is certainly in flight when
	// the shutdown begins.
	ctx := context.Background()
	lock, err := h.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "LOCK TABLES `"+h.dbName+"`.event WRITE"); err != nil {
		t.Fatal(err)
	}
	p := h.wire.subscribe(h.channel("late-persist"))
	h.persist(p.channel, `{"$insert":{"$documents":{"pid":"late","domain":"d","name":"n","data":{}}}}`)
	waitFor(t, "the persist to be in flight", 5*time.Second, func() bool { return children(t, h) == 2 })

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		shutdown <- h.srv.Shutdown(ctx)
	}()
	c.expect(`"error"`) // the open stream ends at once
	if _, err := lock.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	reply := p.expectObject() // the persist commits and replies
	if reply["affectedRows"] != float64(1) {
		t.Fatalf("persist reply %v", reply)
	}
	p.expect(`"end"`)
	if err := <-shutdown; err != nil {
		t.Fatal(err)
	}
	// And nothing listens on the request channels any more.
	n, err := h.rdb.PubSubNumSub(ctx, h.cfg.FetchChannel).Result()
	if err != nil || n[h.cfg.FetchChannel] != 0 {
		t.Fatalf("fetch channel still has %v subscribers (%v)", n, err)
	}
}

// panicOnPayload makes the router panic when it hears payload.
func panicOnPayload(payload string) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
			if in, ok := env.Message.(messages.Inbound); ok && string(in.Payload) == payload {
				panic("injected router fault")
			}
			next(ctx, env)
		}
	}
}

func TestRouterRestartsWithSubscriptionsIntact(t *testing.T) {
	h := newDatabase(t)
	h.start(nil, server.WithRouterMiddleware(panicOnPayload(`"crash the router"`)))
	h.persistEvents("r", 2)
	open := h.wire.subscribe(h.channel("open"))
	h.fetch(open.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"r"}}}`)
	open.expect(`{"name":"n0"}`)

	h.publish(h.cfg.FetchChannel, `"crash the router"`)
	// The stream of the failed instance is ended, not left hanging...
	open.expect(`"error"`)
	// ...and the restarted router serves on the same subscriptions.
	c := h.wire.subscribe(h.channel("after"))
	h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"r"}}}`)
	c.expect(`{"name":"n0"}`)
	c.accept()
	c.expect(`{"name":"n1"}`)
	c.accept()
	c.expect(`"end"`)
	waitFor(t, "the old stream's channel to be unsubscribed", 5*time.Second, func() bool {
		n, err := h.rdb.PubSubNumSub(context.Background(), open.channel).Result()
		return err == nil && n[open.channel] == 1 // only the test's own subscription
	})
}
