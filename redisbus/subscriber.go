package redisbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/messages"
)

// Subscriber multiplexes every subscription of the server on one Redis
// connection. go-redis reconnects it and resubscribes its channels by
// itself; the subscriber tells the sink when that happened, since messages
// may have been lost in between.
type Subscriber struct {
	ps     *redis.PubSub
	sink   func(any)
	filter func(channel, payload string) bool
	logger *slog.Logger

	mu      sync.Mutex
	waiters map[string][]chan struct{}

	closing atomic.Bool
	healthy atomic.Bool
	done    chan struct{}
}

// Healthy reports whether the connection is up, as far as the reader knows.
func (s *Subscriber) Healthy() bool { return s.healthy.Load() }

// HealthInterval is how long the reader waits for a message before it
// pings, so a silently dead connection is found.
const HealthInterval = 15 * time.Second

// NewSubscriber starts the reader goroutine. sink receives, in order,
// messages.Inbound, messages.Subscribed and messages.BusInterrupted; it must
// not block for long, since it holds up everything behind it.
func NewSubscriber(rdb *redis.Client, sink func(any), logger *slog.Logger, opts ...SubscriberOption) *Subscriber {
	s := &Subscriber{
		ps:      rdb.Subscribe(context.Background()),
		sink:    sink,
		logger:  logger,
		waiters: map[string][]chan struct{}{},
		done:    make(chan struct{}),
	}
	for _, opt := range opts {
		opt(s)
	}
	go s.run()
	return s
}

// SubscriberOption changes how a Subscriber hands messages over.
type SubscriberOption func(*Subscriber)

// WithFilter has filter see each message before the sink, as the strings
// the Redis client read: when it reports the message handled, the sink does
// not get it. Most of what the server hears (the echoes of its own rows,
// "accepted") is handled this way without a copy.
func WithFilter(filter func(channel, payload string) bool) SubscriberOption {
	return func(s *Subscriber) { s.filter = filter }
}

// Subscribe sends SUBSCRIBE; the confirmation reaches the sink as
// messages.Subscribed.
func (s *Subscriber) Subscribe(ctx context.Context, channels ...string) error {
	if err := s.ps.Subscribe(ctx, channels...); err != nil {
		return fmt.Errorf("subscribe %q: %w", channels, err)
	}
	return nil
}

// SubscribeWait subscribes and returns once Redis confirmed every channel.
func (s *Subscriber) SubscribeWait(ctx context.Context, channels ...string) error {
	waits := make([]chan struct{}, len(channels))
	s.mu.Lock()
	for i, ch := range channels {
		waits[i] = make(chan struct{})
		s.waiters[ch] = append(s.waiters[ch], waits[i])
	}
	s.mu.Unlock()
	if err := s.Subscribe(ctx, channels...); err != nil {
		return err
	}
	for i, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return fmt.Errorf("wait for subscription to %q: %w", channels[i], ctx.Err())
		}
	}
	return nil
}

// Unsubscribe sends UNSUBSCRIBE; go-redis also stops resubscribing them.
func (s *Subscriber) Unsubscribe(ctx context.Context, channels ...string) error {
	if err := s.ps.Unsubscribe(ctx, channels...); err != nil {
		return fmt.Errorf("unsubscribe %q: %w", channels, err)
	}
	return nil
}

// Close closes the connection and waits for the reader to stop.
func (s *Subscriber) Close() error {
	s.closing.Store(true)
	err := s.ps.Close()
	<-s.done
	if err != nil {
		return fmt.Errorf("close subscriber: %w", err)
	}
	return nil
}

func (s *Subscriber) run() {
	defer close(s.done)
	ctx := context.Background()
	retry := backoff.NewExponentialBackOff()
	retry.InitialInterval = 50 * time.Millisecond
	retry.MaxInterval = 2 * time.Second
	retry.MaxElapsedTime = 0 // never give up while the server runs
	s.healthy.Store(true)
	for {
		msg, err := s.ps.ReceiveTimeout(ctx, HealthInterval)
		if err != nil {
			if s.closing.Load() || errors.Is(err, redis.ErrClosed) {
				return
			}
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				// Quiet for a while: a ping proves the connection alive, or
				// fails and makes go-redis reconnect.
				_ = s.ps.Ping(ctx)
				continue
			}
			if s.healthy.Swap(false) {
				s.logger.Warn("redis subscriber connection lost; reconnecting", slog.Any("err", err))
				s.sink(messages.BusInterrupted{Err: err})
			}
			time.Sleep(retry.NextBackOff())
			continue
		}
		if !s.healthy.Load() && !s.healthy.Swap(true) {
			s.logger.Info("redis subscriber connection restored")
			// Reset only here: it reads the clock, once per message
			// otherwise.
			retry.Reset()
		}
		switch m := msg.(type) {
		case *redis.Message:
			if s.filter != nil && s.filter(m.Channel, m.Payload) {
				continue
			}
			s.sink(messages.Inbound{Channel: m.Channel, Payload: []byte(m.Payload)})
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				s.confirm(m.Channel)
				s.sink(messages.Subscribed{Channel: m.Channel})
			}
		}
	}
}

func (s *Subscriber) confirm(channel string) {
	s.mu.Lock()
	waits := s.waiters[channel]
	delete(s.waiters, channel)
	s.mu.Unlock()
	for _, w := range waits {
		close(w)
	}
}
