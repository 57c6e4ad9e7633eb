// Package actors is the behaviour of the server: a router that owns the
// request subscriptions and one child actor per response channel.
//
//	router                 validates, admits or refuses, routes by channel
//	├── stream:<channel>   one per fetch: its cursor, credit, timer, publisher
//	└── persist:<channel>  one per persist
//
// Every actor owns its state alone; nothing here takes a lock. Actors never
// block on I/O in Receive: MySQL reads and inserts run in goroutines that
// send their result back as a message, publishes are queued to the shared
// pipelined publisher, and timeouts are scheduler messages tagged with a
// sequence number so a stale one is recognised and dropped.
package actors

import (
	"context"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/sqlbuild"
)

// Store is the database as the actors use it (mysqlstore.Store).
type Store interface {
	// ReadPage reads one page of s: its rows, the key of its last row and,
	// when the page took it, the snapshot bound.
	ReadPage(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page, decodeJSON bool) (mysqlstore.Page, error)
	// ReadPayloads reads the same page with each row as its JSON payload.
	ReadPayloads(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page, decodeJSON bool) (mysqlstore.Page, error)
	// ChooseSeek names the index, of s's SeekChoices, that pages like p
	// should seek on, or "" to leave the plan to MySQL.
	ChooseSeek(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page) (string, error)
}

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

// Publisher queues a publish (redisbus.Publisher); done, if not nil, runs
// on another goroutine once Redis answered.
type Publisher interface {
	Publish(channel string, payload []byte, done func(error))
}
