// Package redisbus is the server's side of Redis: one subscriber connection
// that carries every subscription (request channels and all response
// channels), and a publisher that pipelines whatever is queued.
//
// Both speak RESP2 on connections of their own, dialed with the go-redis
// client's options: they carry every row, and reading replies in place
// costs a third of what go-redis's reply objects do (see resp.go).
//
// Both are safe for concurrent use. The subscriber delivers everything it
// hears, in order, to one sink function called from its reader goroutine.
package redisbus
