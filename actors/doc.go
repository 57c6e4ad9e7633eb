// Package actors is the behaviour of the server: a router that owns the
// request subscriptions and one child per response channel.
//
//	router                 validates, admits or refuses, routes by channel
//	├── stream:<channel>   an actor per fetch: its cursor, credit, timer, publisher
//	└── persist:<channel>  a record per persist, whose INSERT is with the
//	                       batcher and whose reply goes out from its commit
//
// Every actor owns its state alone; nothing here takes a lock. Nothing
// blocks in Receive: MySQL reads and inserts run on other goroutines that
// send their result back as a message, publishes are queued to the shared
// pipelined publisher (a full queue refuses, and the stream holds its row
// and tries again), and timeouts are scheduler messages tagged with a
// sequence number so a stale one is recognised and dropped. Streams run on
// a pool of goroutines of their own (Pool): a completion sent to a stream
// never runs it on the sender's goroutine.
package actors

import (
	"context"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/sqlbuild"
)

// Persister commits persists, batching concurrent ones (mysqlstore.Batcher).
// Submit must not block (the router calls it); done runs on another
// goroutine once the insert committed or failed.
type Persister interface {
	Submit(ins *sqlbuild.Insert, done func(messages.OK, error))
}

// Subscriptions adds and removes response channels on the shared subscriber
// connection (redisbus.Subscriber). Confirmations come back to the router as
// messages.Subscribed.
type Subscriptions interface {
	Subscribe(ctx context.Context, channels ...string) error
	Unsubscribe(ctx context.Context, channels ...string) error
}

// Publisher queues a publish (redisbus.Publisher) without blocking: it
// returns an error when it cannot queue it now (its queue is full, or it
// is closed), and then done is not called; otherwise done, if not nil,
// runs on another goroutine once Redis answered.
type Publisher interface {
	Publish(channel string, payload []byte, done func(error)) error
}

// Frontier tells how far each table's commits are settled
// (frontier.Frontier): a followed stream reads up to it.
type Frontier interface {
	// Safe returns the table's frontier.
	Safe(ctx context.Context, table string) (int64, error)
	// Watch calls notify once, off the caller, when the frontier passes
	// after; cancel forgets it.
	Watch(table string, after int64, notify func(safe int64)) (cancel func())
}

// Consumers keeps the positions of durable consumers and who holds each
// (mysqlstore.Consumers). Errors wrap messages.ErrBusy (held by another
// stream), messages.ErrBadRequest (another query) or
// messages.ErrConsumerLost (no longer held).
type Consumers interface {
	// Acquire takes the consumer for holder and returns the position to
	// start after.
	Acquire(ctx context.Context, name, query, server, holder string, reset bool) (int64, error)
	// Record stores the position of the last row accepted.
	Record(ctx context.Context, name, holder string, position int64) error
	// Release records the position and frees the consumer.
	Release(ctx context.Context, name, holder string, position int64) error
}

// Listeners counts the subscribers of response channels (PUBSUB NUMSUB),
// so that a followed stream whose client went away is ended.
type Listeners interface {
	Listeners(ctx context.Context, channels []string) (map[string]int64, error)
}
