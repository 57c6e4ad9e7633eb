package redisbus_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/redisbus"
)

// The two hot paths written by hand instead of taken from go-redis, each
// against what go-redis offers for the same work, on the local Redis.

// benchRow is a message the size of a stream's row.
var benchRow = []byte(`{"id":1000001,"domain":"bench","pid":"bench-pid-000001","name":"persisted","data":"{\"n\":1,\"payload\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}","timestamp":"2026-12-07 10:00:00.000000"}`)

// BenchmarkSubscriberReceive reads b.N messages published on one channel:
// the Subscriber hands each to a filter in place, go-redis's PubSub builds
// a message object and its strings for each.
func BenchmarkSubscriberReceive(b *testing.B) {
	rdb := mustRedis(b, nil)
	for _, impl := range []string{"redisbus", "go-redis"} {
		b.Run(impl, func(b *testing.B) {
			channel := uniquePrefix() + "receive"
			var heard atomic.Int64
			all := make(chan struct{})
			count := func() {
				if heard.Add(1) == int64(b.N) {
					close(all)
				}
			}
			ctx := testContext(b)
			switch impl {
			case "redisbus":
				sub := redisbus.NewSubscriber(rdb.Options(), func(any) {}, discardLogger(),
					redisbus.WithFilter(func(_, _ []byte, _ uint64) bool { count(); return true }))
				defer sub.Close()
				if err := sub.SubscribeWait(ctx, channel); err != nil {
					b.Fatal(err)
				}
			default:
				ps := rdb.Subscribe(ctx, channel)
				defer ps.Close()
				if _, err := ps.Receive(ctx); err != nil {
					b.Fatal(err)
				}
				go func() {
					for {
						msg, err := ps.Receive(context.Background())
						if err != nil {
							return
						}
						if _, ok := msg.(*redis.Message); ok {
							count()
						}
					}
				}()
			}
			pub := redisbus.NewPublisher(rdb.Options(), 1, 0, discardLogger())
			defer pub.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := redisbus.WhenRoom(ctx, func() error { return pub.Publish(channel, benchRow, nil) }); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-all:
			case <-ctx.Done():
				b.Fatalf("heard %d of %d messages", heard.Load(), b.N)
			}
		})
	}
}

// BenchmarkPublishConcurrent has 64 goroutines publish b.N messages in
// all, each waiting for its reply before its next (streams at window 1,
// persists' replies): the Publisher pipelines them on a few connections
// without waiting for earlier replies; go-redis sends each on a pooled
// connection and waits.
func BenchmarkPublishConcurrent(b *testing.B) {
	rdb := mustRedis(b, nil)
	const publishers = 64
	for _, impl := range []string{"redisbus", "go-redis"} {
		b.Run(impl, func(b *testing.B) {
			prefix := uniquePrefix()
			pub := redisbus.NewPublisher(rdb.Options(), 4, 0, discardLogger())
			defer pub.Close()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N/publishers + 1
			for g := range publishers {
				wg.Go(func() {
					channel := prefix + strconv.Itoa(g)
					done := make(chan error, 1)
					answer := func(err error) { done <- err }
					for range per {
						var err error
						if impl == "redisbus" {
							if err = pub.Publish(channel, messages.AcceptedJSON, answer); err == nil {
								err = <-done
							}
						} else {
							err = rdb.Publish(ctx, channel, messages.AcceptedJSON).Err()
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
