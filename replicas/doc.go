// Package replicas lets any number of servers on one Redis (or one Redis
// Cluster) act as one server.
//
// Every server hears every request (Redis pub/sub copies each message to
// each subscriber), so who answers is decided in Redis, before anything is
// published on the response channel:
//
//   - Claims. A server answers on a channel only once it holds the
//     channel's claim: a key set by a script when it is free, holding a
//     token of the server and the request, with a lease the server renews
//     while the stream lives. The loser drops the request without a word.
//     The terminal is published by a script that checks the token and turns
//     the claim into a tombstone in the same step, so a server whose intake
//     lags cannot serve a finished request again, and nothing follows the
//     terminal. The same script announces the end on the finished channel:
//     a request on that channel heard after the announcement is a new one,
//     and may take the tombstone over (a client that reuses its channel
//     name at once is served).
//   - Liveness. Each server keeps a registration key alive (a heartbeat)
//     and records every channel it claims, before the claim. When a
//     registration expires (kill -9, a frozen process, a lost network), a
//     surviving server publishes "error" on each of the dead server's
//     channels whose claim still holds the dead server's token (a script:
//     exactly once, whichever survivors try) and frees its records.
//   - A paused server (a long GC, SIGSTOP) notices on its next renewal that
//     its claims are gone and ends those streams without a word; until then
//     Claim.Valid keeps it from publishing rows on a lease it cannot vouch
//     for.
//
// Keys of one group (the servers that share request channels) carry the
// group as their hash tag, and a claim carries its channel, so that on a
// Redis Cluster the keys a script touches share a slot. Servers never
// compare clocks: Redis computes every expiry, and leases are timed with
// the monotonic clock.
package replicas
