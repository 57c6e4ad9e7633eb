package redisbus

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/messages"
)

// Subscriber multiplexes every subscription of the server on one Redis
// connection of its own (see resp.go for why it is not go-redis's PubSub).
// It redials a lost connection and resubscribes its channels by itself,
// and tells the sink when that happened, since messages may have been lost
// in between.
type Subscriber struct {
	opt    *redis.Options // how to connect: the server's client's options
	topo   Topology       // where: a node of it
	node   int            // the index in topo.Nodes() of the node to dial next
	sink   func(any)
	filter func(channel, payload []byte, seq uint64) bool
	// patternFilter sees the messages of pattern subscriptions as filter
	// sees the others.
	patternFilter func(pattern, channel, payload []byte, seq uint64) bool
	logger        *slog.Logger
	health        time.Duration
	keep          int // how much of a message's payload is kept (0: all)
	ob            observed

	mu       sync.Mutex
	conn     net.Conn            // nil while (re)connecting
	channels map[string]struct{} // what the connection is to be subscribed to
	patterns map[string]struct{} // and the patterns
	waiters  map[subscription][]chan struct{}
	// pending are commands for conn that the writer has not taken yet;
	// spare is the buffer it gave back. A thousand streams that start at
	// once subscribe in a few writes instead of a thousand.
	pending, spare []byte
	kick           chan struct{} // wakes the writer; holds one signal

	// restoring counts the confirmations a reconnection still waits for
	// before it tells the sink (BusRestored); -1 when none is due. Only
	// the reader goroutine touches it.
	restoring int

	heard atomic.Uint64 // frames read: the health watch's sign of life
	// dialFailed is closed, and replaced, when an attempt to connect
	// fails, with dialErr its error: what ends the waits of SubscribeWait
	// while Redis is out of reach. Both under mu.
	dialFailed chan struct{}
	dialErr    error
	closing    atomic.Bool
	healthy    atomic.Bool
	ctx        context.Context // canceled by Close: stops a dial and the watch
	cancel     context.CancelFunc
	done       chan struct{} // closed when the reader has returned
	watched    chan struct{} // closed when the watch has returned
	written    chan struct{} // closed when the writer has returned
}

// Healthy reports whether the connection is up, as far as the reader knows.
func (s *Subscriber) Healthy() bool { return s.healthy.Load() }

// HealthInterval is how long the connection may stay silent before the
// subscriber pings, and then how long the ping may go unanswered before the
// connection is taken for dead and redialed.
const HealthInterval = 15 * time.Second

// NewSubscriber starts the reader goroutine, which connects as opt says
// (its address, dialer, credentials and client name). sink receives, in
// order, messages.Inbound, messages.Subscribed, messages.BusInterrupted and
// messages.BusRestored;
// it must not block for long, since it holds up everything behind it.
func NewSubscriber(opt *redis.Options, sink func(any), logger *slog.Logger, opts ...SubscriberOption) *Subscriber {
	s := &Subscriber{
		opt:      withDefaults(opt),
		sink:     sink,
		logger:   logger,
		health:   HealthInterval,
		ob:       observed{role: "subscriber"},
		channels: map[string]struct{}{},
		patterns: map[string]struct{}{},
		waiters:  map[subscription][]chan struct{}{},
		done:     make(chan struct{}),
		watched:  make(chan struct{}),
		written:  make(chan struct{}),
		kick:     make(chan struct{}, 1),

		dialFailed: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	if s.topo == nil {
		s.topo = SingleNode(s.opt.Addr)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.healthy.Store(true)
	go s.run()
	go s.watch()
	go s.write()
	return s
}

// SubscriberOption changes how a Subscriber hands messages over.
type SubscriberOption func(*Subscriber)

// WithFilter has filter see each message before the sink, in place: both
// slices are valid only during the call; seq is the message's
// messages.Inbound.Seq. When it reports the message
// handled, the sink does not get it. Most of what the server hears (the
// echoes of its own rows, "accepted") is handled this way without an
// allocation.
func WithFilter(filter func(channel, payload []byte, seq uint64) bool) SubscriberOption {
	return func(s *Subscriber) { s.filter = filter }
}

// WithPatternFilter is WithFilter for the messages heard through pattern
// subscriptions (PSubscribe): pattern is the pattern the channel matched.
// Without it they reach the sink as messages.Inbound with their Pattern.
func WithPatternFilter(filter func(pattern, channel, payload []byte, seq uint64) bool) SubscriberOption {
	return func(s *Subscriber) { s.patternFilter = filter }
}

// WithMaxPayload bounds the memory a message takes: one longer than max
// bytes reaches the filter and the sink cut to its first max+1 bytes, so
// they can tell it is too long (and read whatever its start says), and the
// rest is skipped as it arrives.
func WithMaxPayload(max int) SubscriberOption {
	return func(s *Subscriber) {
		if max > 0 {
			s.keep = max + 1
		}
	}
}

// ObservedBy has o hear the subscriber's connection open and close.
func ObservedBy(o Observer) SubscriberOption {
	return func(s *Subscriber) { s.ob.o = o }
}

// SubscribeOn has the subscriber connect to a node of t (classic pub/sub
// reaches every node of a cluster), and move to the next one when the
// connection is lost.
func SubscribeOn(t Topology) SubscriberOption {
	return func(s *Subscriber) { s.topo = t }
}

// WithHealthInterval replaces HealthInterval.
func WithHealthInterval(d time.Duration) SubscriberOption {
	return func(s *Subscriber) { s.health = d }
}

// Subscribe queues SUBSCRIBE; the confirmation reaches the sink as
// messages.Subscribed. While the subscriber is (re)connecting, the
// channels are subscribed as soon as it is connected, and a write that
// fails drops the connection, whose successor subscribes them: only Close
// makes Subscribe fail.
func (s *Subscriber) Subscribe(_ context.Context, channels ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.queue("SUBSCRIBE", channels); err != nil {
		return fmt.Errorf("subscribe %q: %w", channels, err)
	}
	for _, ch := range channels {
		s.channels[ch] = struct{}{}
	}
	return nil
}

// PSubscribe is Subscribe for patterns (PSUBSCRIBE): the confirmation
// reaches the sink as messages.Subscribed with Pattern set.
func (s *Subscriber) PSubscribe(_ context.Context, patterns ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.queue("PSUBSCRIBE", patterns); err != nil {
		return fmt.Errorf("psubscribe %q: %w", patterns, err)
	}
	for _, p := range patterns {
		s.patterns[p] = struct{}{}
	}
	return nil
}

// subscription names a channel, or a pattern, whose confirmation is awaited.
type subscription struct {
	name    string
	pattern bool
}

// SubscribeWait subscribes and returns once Redis confirmed every channel,
// or fails with the error of an attempt to connect that fails meanwhile
// (Redis out of reach): the subscription stays, and is made once the
// subscriber connects.
func (s *Subscriber) SubscribeWait(ctx context.Context, channels ...string) error {
	return s.wait(ctx, false, channels, s.Subscribe)
}

// PSubscribeWait subscribes to patterns and returns once Redis confirmed
// every one.
func (s *Subscriber) PSubscribeWait(ctx context.Context, patterns ...string) error {
	return s.wait(ctx, true, patterns, s.PSubscribe)
}

func (s *Subscriber) wait(ctx context.Context, pattern bool, names []string, subscribe func(context.Context, ...string) error) error {
	waits := make([]chan struct{}, len(names))
	s.mu.Lock()
	dialFailed := s.dialFailed
	for i, name := range names {
		waits[i] = make(chan struct{})
		key := subscription{name, pattern}
		s.waiters[key] = append(s.waiters[key], waits[i])
	}
	s.mu.Unlock()
	if err := subscribe(ctx, names...); err != nil {
		return err
	}
	for i, w := range waits {
		select {
		case <-w:
		case <-dialFailed:
			s.mu.Lock()
			err := s.dialErr
			s.mu.Unlock()
			return fmt.Errorf("wait for subscription to %q: %w", names[i], err)
		case <-ctx.Done():
			return fmt.Errorf("wait for subscription to %q: %w", names[i], ctx.Err())
		}
	}
	return nil
}

// Unsubscribe queues UNSUBSCRIBE; the channels are not resubscribed after
// a reconnect either.
func (s *Subscriber) Unsubscribe(_ context.Context, channels ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range channels {
		delete(s.channels, ch)
	}
	if err := s.queue("UNSUBSCRIBE", channels); err != nil {
		return fmt.Errorf("unsubscribe %q: %w", channels, err)
	}
	return nil
}

// PUnsubscribe is Unsubscribe for patterns.
func (s *Subscriber) PUnsubscribe(_ context.Context, patterns ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range patterns {
		delete(s.patterns, p)
	}
	if err := s.queue("PUNSUBSCRIBE", patterns); err != nil {
		return fmt.Errorf("punsubscribe %q: %w", patterns, err)
	}
	return nil
}

// queue adds command, with channels as its arguments, to what the writer
// sends next; s.mu is held. Without a connection there is nothing to
// queue: the next connection subscribes everything in s.channels.
func (s *Subscriber) queue(command string, channels []string) error {
	switch {
	case s.closing.Load():
		return redis.ErrClosed
	case s.conn == nil:
		return nil
	}
	s.pending = appendCommand(s.pending, command, channels...)
	select {
	case s.kick <- struct{}{}:
	default: // the writer is woken already
	}
	return nil
}

// write is the writer goroutine: it sends whatever commands queued up
// while it wrote the last ones, in one write. A failed write drops the
// connection, so the reader redials and resubscribes.
func (s *Subscriber) write() {
	defer close(s.written)
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		}
		s.mu.Lock()
		out, conn := s.pending, s.conn
		s.pending = s.spare[:0]
		s.mu.Unlock()
		if conn != nil && len(out) > 0 {
			_ = conn.SetWriteDeadline(deadline(s.opt.WriteTimeout))
			if _, err := conn.Write(out); err != nil {
				s.logger.Debug("redis subscriber write failed", slog.Any("err", err))
				_ = conn.Close()
			}
		}
		if cap(out) > maxKeptFrame {
			out = nil
		}
		s.mu.Lock()
		s.spare = out[:0]
		s.mu.Unlock()
	}
}

// Close closes the connection and waits for the reader and the watch to
// stop. A second Close does nothing.
func (s *Subscriber) Close() error {
	if s.closing.Swap(true) {
		<-s.done
		<-s.watched
		<-s.written
		return nil
	}
	s.cancel()
	var err error
	s.mu.Lock()
	if s.conn != nil {
		err = s.conn.Close()
	}
	s.mu.Unlock()
	<-s.done
	<-s.watched
	<-s.written
	if err != nil {
		return fmt.Errorf("close subscriber: %w", err)
	}
	return nil
}

// run connects, reads until the connection fails, and redials with
// backoff, until Close.
func (s *Subscriber) run() {
	defer close(s.done)
	retry := backoff.NewExponentialBackOff()
	retry.InitialInterval = 50 * time.Millisecond
	retry.MaxInterval = 2 * time.Second
	retry.MaxElapsedTime = 0 // never give up while the server runs
	lost := false            // a connection was lost: the next one restores
	s.restoring = -1
	for {
		rr, subscribing, err := s.connect()
		if err != nil {
			s.mu.Lock()
			s.dialErr = err
			close(s.dialFailed)
			s.dialFailed = make(chan struct{})
			s.mu.Unlock()
		} else {
			if !s.healthy.Swap(true) {
				retry.Reset()
				if lost {
					s.logger.Info("redis subscriber connection restored", slog.Int("channels", subscribing))
					s.restoring = subscribing
					if s.restoring == 0 {
						s.sink(messages.BusRestored{})
						s.restoring = -1
					}
				}
			}
			err = s.read(rr)
			s.mu.Lock()
			_ = s.conn.Close()
			s.conn = nil
			s.mu.Unlock()
			s.ob.closed()
		}
		if s.closing.Load() {
			return
		}
		// The next attempt goes to another node, if there is one.
		s.node++
		s.topo.Changed()
		if s.healthy.Swap(false) {
			s.logger.Warn("redis subscriber connection lost; reconnecting", slog.Any("err", err))
			lost, s.restoring = true, -1
			s.sink(messages.BusInterrupted{Err: err})
		} else {
			s.logger.Debug("redis subscriber still reconnecting", slog.Any("err", err))
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(retry.NextBackOff()):
		}
	}
}

// connect dials a node and subscribes every channel the subscriber holds;
// it returns how many.
func (s *Subscriber) connect() (*respReader, int, error) {
	nodes := s.topo.Nodes()
	opt := *s.opt
	opt.Addr = nodes[s.node%len(nodes)]
	conn, rr, err := dial(s.ctx, &opt, s.ob)
	if err != nil {
		return nil, 0, err
	}
	rr.maxPayload = s.keep
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		_ = conn.Close()
		s.ob.closed()
		return nil, 0, redis.ErrClosed
	}
	// Commands queued for the last connection are moot: this one subscribes
	// the whole set, before anything queued from now on.
	s.pending = s.pending[:0]
	var subscribe []byte
	if len(s.channels) > 0 {
		subscribe = appendCommand(subscribe, "SUBSCRIBE", slices.Collect(maps.Keys(s.channels))...)
	}
	if len(s.patterns) > 0 {
		subscribe = appendCommand(subscribe, "PSUBSCRIBE", slices.Collect(maps.Keys(s.patterns))...)
	}
	if len(subscribe) > 0 {
		_ = conn.SetWriteDeadline(deadline(s.opt.WriteTimeout))
		if _, err := conn.Write(subscribe); err != nil {
			_ = conn.Close()
			s.ob.closed()
			return nil, 0, fmt.Errorf("write SUBSCRIBE: %w", err)
		}
	}
	s.conn = conn
	return rr, len(s.channels) + len(s.patterns), nil
}

// read hands what the connection hears to the filter and the sink until
// the connection fails.
func (s *Subscriber) read(rr *respReader) error {
	for {
		f, err := rr.read()
		if err != nil {
			return err
		}
		seq := s.heard.Add(1)
		switch {
		case f.err != nil:
			s.logger.Warn("redis refused a subscriber command", slog.Any("err", f.err))
		case string(f.kind) == "message":
			if s.filter != nil && s.filter(f.channel, f.payload, seq) {
				continue
			}
			s.sink(messages.Inbound{Channel: string(f.channel), Payload: bytes.Clone(f.payload), Seq: seq})
		case string(f.kind) == "pmessage":
			if s.patternFilter != nil && s.patternFilter(f.pattern, f.channel, f.payload, seq) {
				continue
			}
			s.sink(messages.Inbound{Channel: string(f.channel), Payload: bytes.Clone(f.payload), Seq: seq, Pattern: string(f.pattern)})
		case string(f.kind) == "subscribe", string(f.kind) == "psubscribe":
			name, pattern := string(f.channel), string(f.kind) == "psubscribe"
			s.confirm(subscription{name, pattern})
			s.sink(messages.Subscribed{Channel: name, Pattern: pattern})
			// The resubscription's confirmations come first, in order.
			if s.restoring > 0 {
				if s.restoring--; s.restoring == 0 {
					s.sink(messages.BusRestored{})
					s.restoring = -1
				}
			}
		}
	}
}

// watch pings a connection that stayed silent for a health interval, and
// drops it when the ping goes unanswered for another: a connection that
// died without a reset (a vanished host, a dropped route) is otherwise
// never noticed, since the reader only reads.
func (s *Subscriber) watch() {
	defer close(s.watched)
	tick := time.NewTicker(s.health)
	defer tick.Stop()
	var seen uint64
	pinged := false
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		if n := s.heard.Load(); n != seen {
			seen, pinged = n, false
			continue
		}
		s.mu.Lock()
		switch {
		case s.conn == nil:
		case pinged:
			s.logger.Warn("redis subscriber connection did not answer a ping; redialing", slog.Duration("silent_for", 2*s.health))
			_ = s.conn.Close() // the reader fails and redials
			pinged = false
		default:
			pinged = s.queue("PING", nil) == nil
		}
		s.mu.Unlock()
	}
}

func (s *Subscriber) confirm(key subscription) {
	s.mu.Lock()
	waits := s.waiters[key]
	delete(s.waiters, key)
	s.mu.Unlock()
	for _, w := range waits {
		close(w)
	}
}
