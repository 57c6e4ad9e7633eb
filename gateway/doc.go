// Package gateway is the HTTP side of eventsource, for browsers: events
// posted over HTTP and streamed back as Server-Sent Events, and sessions
// that listen to many keys and run tasks on one event stream (seeds 002
// and 003; the contract is in docs/gateway.md).
//
// It uses the server's parts, so both sides behave alike: the sqlbuild
// Builder validates, the mysqlstore Batcher persists (with the same limits
// and group commit), and pages are read as the actors' streams read them.
// Every commit, whichever side asked for it, is announced on Redis
// (messages.Committed); the hub of each server's gateway reads those rows
// once and fans them out to its subscribers. A fetch task with "follow"
// goes on after its history as a followed Redis fetch does: its reader
// waits for the table's settled frontier (Deps.Frontier) to pass what it
// read, then reads the query's rows up to it, so the query's own $where
// applies and no row that commits late with a lower id is skipped.
//
// Concurrency: one "http" supervisor actor has one child per session and
// per SSE stream. A child owns its state; the HTTP handler goroutine owns
// the ResponseWriter, and is fed through a bounded channel, so no actor
// blocks on a slow client. The hub's index of listeners is guarded by a
// read-write lock and only ever makes non-blocking deliveries: a listener
// whose buffer is full is told to reconnect, never waited for. Admission
// (admission.go) counts slots with atomics, and what each subject holds in
// one map under a mutex that is held only to count.
package gateway
