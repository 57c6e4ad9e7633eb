package redisbus_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/eventsource/eventsource/redisbus"
)

// BenchmarkPublishRoundTrip weighs direct writes: publishers that each
// wait for the reply before their next message (a stream at window 1, a
// persist's reply) write on an idle lane themselves instead of waking its
// worker. With many at once, the lanes are rarely idle and batch as
// before.
func BenchmarkPublishRoundTrip(b *testing.B) {
	rdb := mustRedis(b, nil)
	prefix := uniquePrefix()
	for _, concurrency := range []int{1, 64} {
		for _, mode := range []struct {
			name string
			opts []redisbus.PublisherOption
		}{{"direct", nil}, {"queued", []redisbus.PublisherOption{redisbus.QueuedOnly()}}} {
			b.Run(mode.name+"-"+strconv.Itoa(concurrency), func(b *testing.B) {
				pub := redisbus.NewPublisher(rdb.Options(), 4, 0, discardLogger(), mode.opts...)
				defer pub.Close()
				payload := []byte(`{"id":1,"domain":"bench","pid":"p","version":1}`)
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				per := b.N/concurrency + 1
				for g := range concurrency {
					wg.Go(func() {
						ch := prefix + strconv.Itoa(g)
						done := make(chan error, 1)
						answer := func(err error) { done <- err }
						for range per {
							if err := pub.Publish(ch, payload, answer); err != nil {
								b.Error(err)
								return
							}
							if err := <-done; err != nil {
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
}
