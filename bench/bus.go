package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/redisbus"
)

// The bench's own protocol clients (the ping-pong's two sides, the wire
// driver, the follower pool) speak Redis through the server's package
// redisbus, as the client package does: every ratio compares the same
// wire code on both sides.

// benchPublishers are the pipelined connections of a bench side, as many
// as the server's default.
const benchPublishers = 4

// busPublisher publishes for a bench side. Unlike the server, a bench
// side waits for room in a full queue rather than drop: it must send
// everything it means to.
type busPublisher struct {
	pub    *redisbus.Publisher
	failed func(error) // hears each publish Redis refused
}

func newBusPublisher(opts *redis.Options, onErr func(error)) *busPublisher {
	b := &busPublisher{pub: redisbus.NewPublisher(opts, benchPublishers, 0, slog.New(slog.DiscardHandler))}
	b.failed = func(err error) {
		if err != nil {
			onErr(fmt.Errorf("bench publish: %w", err))
		}
	}
	return b
}

// publish queues payload on channel, waiting while the queue is full.
func (b *busPublisher) publish(channel string, payload []byte) {
	if err := redisbus.WhenRoom(context.Background(), func() error { return b.pub.Publish(channel, payload, b.failed) }); err != nil {
		b.failed(err)
	}
}

// close sends what is queued and closes the connections.
func (b *busPublisher) close() { b.pub.Close() }

// newBusSubscriber is a subscriber whose messages filter handles in place,
// on its reader goroutine; other events (confirmations, a lost connection)
// go to events, which may be nil.
func newBusSubscriber(opts *redis.Options, filter func(channel, payload []byte) bool, events func(any)) *redisbus.Subscriber {
	if events == nil {
		events = func(any) {}
	}
	return redisbus.NewSubscriber(opts, events, slog.New(slog.DiscardHandler),
		redisbus.WithFilter(func(channel, payload []byte, _ uint64) bool { return filter(channel, payload) }))
}

// subscribeAll subscribes sub to chans and waits for every confirmation.
func subscribeAll(ctx context.Context, sub *redisbus.Subscriber, chans []string) error {
	if len(chans) == 0 {
		return errors.New("no channels")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	const chunk = 1000
	for i := 0; i < len(chans); i += chunk {
		if err := sub.SubscribeWait(ctx, chans[i:min(i+chunk, len(chans))]...); err != nil {
			return fmt.Errorf("subscribe %d channels: %w", len(chans), err)
		}
	}
	return nil
}
