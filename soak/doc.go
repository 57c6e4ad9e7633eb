// Package soak drives a steady mix of load against a real eventsource
// server process for a set time, injects faults now and then, and checks
// the protocol's invariants and the server's resources as it goes: the
// harness behind `eventsource soak` and `make soak`.
//
// The server is a child process (the eventsource program run as migrate,
// then serve) with request channels, a database, an admin listener and an
// HTTP gateway of its own, so a soak never touches what `make run` uses.
// The load is fetch streams through the client package over seeded rows,
// persists with a unique pid each, SSE readers of the soak's domain, and
// streams that never accept (they must end with "timeout"). Every response
// channel is also heard by a tap, one pattern subscription of the soak's
// own, which counts what the server published there: that is how a second
// terminal, or a message after the terminal, is seen although the client
// stops listening at the first.
//
// Faults come one at a time, round robin: CLIENT KILL of the server's
// subscriber connection or of its other Redis connections (found through
// the child's sockets in /proc, never by name alone, since another server
// may run beside it), KILL of one of its MariaDB connections, and a burst
// of malformed requests. A stream may end with "error" after a fault; what
// must hold whatever happens is in check.go.
//
// Concurrency: Run owns everything it starts and waits for it before it
// returns. Workers report into a ledger (counters and violations) that is
// safe for concurrent use; the tap's records are guarded by its mutex.
package soak
