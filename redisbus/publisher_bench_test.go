package redisbus_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/eventsource/eventsource/redisbus"
)

// BenchmarkPublishRoundTrip weighs the worker's yield: with publishers
// that each wait for the reply before their next message (streams at
// window 1, persists' replies), a worker that lets ready goroutines queue
// before it writes ("yield") sends fewer, fuller pipelines than one that
// writes what it found at once ("eager"); alone, a publisher pays nothing
// for it.
func BenchmarkPublishRoundTrip(b *testing.B) {
	rdb := mustRedis(b, nil)
	prefix := uniquePrefix()
	for _, concurrency := range []int{1, 64} {
		for _, mode := range []struct {
			name string
			opts []redisbus.PublisherOption
		}{
			{"yield", nil},
			{"eager", []redisbus.PublisherOption{redisbus.Eager()}},
		} {
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
