package redisbus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/redisbus"
)

// A pattern subscription hears every channel it matches, through the
// pattern filter or, without one, as Inbound with its Pattern; it is
// restored after the connection is lost, as channels are.
func TestSubscriberPatterns(t *testing.T) {
	t.Parallel()
	admin := mustRedis(t, nil)
	prefix := uniquePrefix()
	pattern := prefix + "*"
	name := "es-redisbus-test-" + randomHex(6)
	var mu sync.Mutex
	var filtered []string
	rec := &recorder{}
	sub := redisbus.NewSubscriber(mustRedis(t, &redis.Options{ClientName: name}).Options(), rec.sink, discardLogger(),
		redisbus.WithPatternFilter(func(pat, ch, payload []byte, _ uint64) bool {
			if string(pat) != pattern {
				t.Errorf("pmessage of pattern %q, want %q", pat, pattern)
			}
			mu.Lock()
			defer mu.Unlock()
			filtered = append(filtered, string(ch)+"="+string(payload))
			return string(payload) != "to the sink"
		}))
	t.Cleanup(func() { _ = sub.Close() })
	ctx := testContext(t)
	if err := sub.PSubscribeWait(ctx, pattern); err != nil {
		t.Fatal(err)
	}
	rec.waitEvent(t, 0, "the pattern's confirmation", func(msg any) bool {
		s, ok := msg.(messages.Subscribed)
		return ok && s.Pattern && s.Channel == pattern
	})
	for i, p := range []string{"one", "two", "to the sink"} {
		if n, err := admin.Publish(ctx, prefix+strconv.Itoa(i), p).Result(); err != nil || n != 1 {
			t.Fatalf("PUBLISH reached %d (%v), want the pattern's subscriber", n, err)
		}
	}
	rec.waitEvent(t, 0, "the message the filter passed on", func(msg any) bool {
		in, ok := msg.(messages.Inbound)
		return ok && in.Pattern == pattern && in.Channel == prefix+"2" && string(in.Payload) == "to the sink"
	})
	mu.Lock()
	got := slices.Clone(filtered)
	mu.Unlock()
	if want := []string{prefix + "0=one", prefix + "1=two", prefix + "2=to the sink"}; !slices.Equal(got, want) {
		t.Fatalf("filter saw %q, want %q", got, want)
	}

	// Killed, the connection comes back subscribed to the pattern.
	from := len(rec.snapshot())
	ids := subscriberIDs(t, admin, name)
	if len(ids) != 1 {
		t.Fatalf("subscriber connections named %s: %v, want exactly one", name, ids)
	}
	if err := admin.ClientKillByFilter(ctx, "ID", ids[0]).Err(); err != nil {
		t.Fatal(err)
	}
	rec.waitEvent(t, from, "BusRestored", func(msg any) bool { _, ok := msg.(messages.BusRestored); return ok })
	if n, err := admin.Publish(ctx, prefix+"after", "to the sink").Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH after the reconnect reached %d (%v), want the pattern's subscriber", n, err)
	}
	rec.waitEvent(t, from, "the message after the reconnect", func(msg any) bool {
		in, ok := msg.(messages.Inbound)
		return ok && in.Channel == prefix+"after"
	})
	if err := sub.PUnsubscribe(ctx, pattern); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if ids := subscriberIDs(t, admin, name); len(ids) > 0 {
			return fmt.Errorf("connection %v still holds the pattern", ids)
		}
		return nil
	})
}

// A wait for a subscription ends with the dial's error when Redis is out
// of reach, rather than when its context does.
func TestSubscribeWaitFailsWhileUnreachable(t *testing.T) {
	t.Parallel()
	sub := redisbus.NewSubscriber(&redis.Options{Addr: "127.0.0.1:1"}, func(any) {}, discardLogger())
	t.Cleanup(func() { _ = sub.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, wait := range []func(context.Context, ...string) error{sub.SubscribeWait, sub.PSubscribeWait} {
		err := wait(ctx, uniquePrefix()+"*")
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" || ctx.Err() != nil {
			t.Fatalf("wait = %v, want the dial's error before the context ends", err)
		}
	}
}
