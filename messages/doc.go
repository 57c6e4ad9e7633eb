// Package messages is the vocabulary of eventsource: the JSON that travels on
// Redis between clients and the server, and the few messages that cross from
// the Redis bus into the actor system.
//
// It imports no other package of this module. Every type says who sends it,
// who receives it, and whether it goes on the wire. Values here are immutable
// once built, so they may be shared between goroutines freely.
package messages
