// Package client is the Go client of eventsource: it stores events through
// an eventsource server and reads them back, speaking the server's
// protocol over Redis pub/sub. It needs only the Redis the server listens
// on; MySQL stays behind the server.
//
// # Install
//
//	go get github.com/eventsource/eventsource/client
//
// and import it, with the go-redis client whose options it connects with:
//
//	import (
//		"github.com/redis/go-redis/v9"
//
//		"github.com/eventsource/eventsource/client"
//	)
//
// # Overview
//
// Build one Client per process on a go-redis client, and Close it when done:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	defer rdb.Close()
//	c := client.New(rdb)
//	defer c.Close()
//
// The client dials connections of its own with rdb's options (address,
// credentials, TLS, client name, timeouts), and speaks the protocol on them
// with the server's own Redis code: one connection hears the replies of
// every call, and a few publish, each sending what the calls queued while
// it wrote as one pipeline, without waiting for earlier replies (a call's
// messages always take the same connection, so they keep their order).
//
// Persist stores events, each a Document of a stream (Domain and PID), a
// Name and its Data, and returns a Result:
//
//	res, err := c.Persist(ctx, client.Document{PID: "order-1", Domain: "shop", Name: "placed", Data: order})
//
// Fetch runs a $select query and yields the matching rows in order, as a
// sequence to range over; Row.Decode and Row.JSON read a row:
//
//	for row, err := range c.Fetch(ctx, `{"$select":{"$where":{"pid":"order-1"}}}`) {
//		if err != nil {
//			return err // the last element of the sequence
//		}
//		var data map[string]any
//		if err := row.JSON("data", &data); err != nil {
//			return err
//		}
//	}
//
// The server sends a row only when the loop asks for the next one (WithWindow
// lets it send a few ahead). Breaking out of the loop, or ending ctx, stops
// the server's stream. Follow is a Fetch that goes on with the rows that
// commit afterwards, until ctx ends; WithConsumer makes a fetch or a follow
// that of a durable consumer, which resumes after the last row it accepted.
//
// Errors match the package's sentinel errors with errors.Is: ErrNoServer (no
// server listens on the request channel), ErrConflict (an expected version
// or an event id met other content), ErrBusy (a consumer is being served),
// ErrTimeout, ErrServer (as a *ServerError with the server's Reason and
// Message), ErrClosed, ErrInterrupted, ErrProtocol, ErrInvalidQuery and
// ErrNoDocuments.
//
// A server listens on the request channels "fetch" and "persist" unless it
// was started with others (eventsource serve --fetch-channel,
// --persist-channel); WithFetchChannel and WithPersistChannel name them.
// The examples run against a test server on channels of its own, which
// they pass that way.
//
// # JSON columns
//
// A JSON column, such as the event table's data, arrives as JSON text in a
// string ("{\"total\":42}"), as the original server sent it, unless the
// fetch asks WithDecode for JSON values ({"total":42}). Row.JSON decodes the
// column either way, so code that reads data need not know which; Decode
// and Raw give the row as it was sent.
//
// # Safe writes
//
// A Document with an EventID may be sent again after a lost reply or a
// timeout; the server stores each event id once and answers a full retry
// with the first reply's InsertID and Result.Duplicate set.
// PersistExpecting commits only if the stream is at the expected version
// (an Expectation), and fails with ErrConflict otherwise.
//
// # How calls travel
//
// Every call picks a fresh response channel under the client's own prefix
// (a configured prefix plus a random token). The client PSUBSCRIBEs to that
// prefix once, and waits for Redis to confirm before its first request, so a
// server's first message cannot be lost and a call costs no SUBSCRIBE or
// UNSUBSCRIBE round trip (a Follow SUBSCRIBEs its channel as well, without
// waiting, so that the server can tell that its client is still there).
// All response channels of a Client share one redis.PubSub connection; one
// reader goroutine routes what it hears to the call that owns the channel,
// and drops what arrives for a call that ended.
//
// Concurrency: a Client is safe for concurrent use, and many Fetch and
// Persist calls may run at once on one Client. The sequence returned by
// Fetch or Follow must be ranged over by one goroutine at a time; each
// range runs the query anew. Close ends calls still running with ErrClosed.
//
// Buffers: each call buffers at most its window of rows plus a terminal,
// which is all a well-behaved server may have in flight. A server (or a
// stranger publishing on the channel) that sends more fails the call with
// ErrProtocol rather than stalling the reader that every call shares.
package client
