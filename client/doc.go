// Package client is the Go client of the eventsource wire protocol on Redis
// pub/sub: Fetch streams the rows of a $select query with per-row
// acknowledgement, Persist inserts events and returns the server's OK reply.
//
// Every call picks a fresh response channel under the client's own prefix
// (a configured prefix plus a random token). The client PSUBSCRIBEs to that
// prefix once, and waits for Redis to confirm before its first request, so a
// server's first message cannot be lost and a call costs no SUBSCRIBE or
// UNSUBSCRIBE round trip. All response channels of a Client share one
// redis.PubSub connection; one reader goroutine routes what it hears to the
// call that owns the channel, and drops what arrives for a call that ended.
//
// Safe writes: a Document with an EventID may be sent again after a lost
// reply or a timeout; the server stores each event id once and answers a
// full retry with the first reply's InsertID and OK.Duplicate set.
// PersistExpecting commits only if the stream is at the expected version,
// and fails with ErrConflict otherwise.
//
// Concurrency: a Client is safe for concurrent use, and many Fetch and
// Persist calls may run at once on one Client. The sequence returned by
// Fetch must be ranged over by one goroutine at a time; each range runs the
// query anew. Close ends calls still running with ErrClosed.
//
// Buffers: each call buffers at most its window of rows plus a terminal,
// which is all a well-behaved server may have in flight. A server (or a
// stranger publishing on the channel) that sends more fails the call with
// ErrProtocol rather than stalling the reader that every call shares.
package client
