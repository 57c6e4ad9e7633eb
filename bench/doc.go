// Package bench is the load harness of eventsource: it drives real streams
// and persists through the real Redis and MySQL, against a server it starts
// in-process on a fresh database or against a running one, and reports
// rows/s, per-row handshake latency, persists/s, the server's CPU and RSS and
// the MySQL connections in use.
//
// Every figure is printed next to a baseline measured in the same run with
// the same shape, because on a small shared machine absolute numbers drift
// from run to run while ratios hold: a pipelined Redis pub/sub ping-pong (a
// publisher side and an echoing client side, no server, no MySQL) for the
// streams, and one raw INSERT per request at the same concurrency for the
// persists.
//
// Concurrency: Run runs one scenario at a time; within a scenario every
// stream or persisting client is its own goroutine, all sharing one
// client.Client (one Redis subscriber connection), as a service would; the
// follow scenario's followers share a few subscriber connections of their
// own instead, one reader goroutine each, since the server wants each
// followed channel SUBSCRIBEd by name. A sampler goroutine records a point of the timeline every 250 ms. Nothing in
// the package is global; two Runs may proceed at once on one machine, each
// with its own database and channels.
package bench
