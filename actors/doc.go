// Package actors is the behaviour of the server: a router that owns the
// request subscriptions and one child actor per response channel.
//
//	router                 validates, admits or refuses, routes by channel
//	├── stream:<channel>   one per fetch: its cursor, credit, timer, publisher
//	└── persist:<channel>  one per persist
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
// done runs on another goroutine once the insert committed or failed.
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
