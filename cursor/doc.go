// Package cursor reads a select page by page and holds no connection
// between pages: the stream actors' reads, and the HTTP gateway's fetch
// tasks.
//
// Exactness: on a table with a key (the AUTO_INCREMENT id), the first read
// takes the highest key as the snapshot bound, so rows persisted later stay
// out; without an order of its own the result is paged by keyset on the
// key; with one on columns that compare exactly (sqlbuild's
// KeysetOrdered), by keyset on those columns and the key, which breaks
// ties; with any other order (an expression, a JSON path, a nullable
// column), by offset with the key breaking ties, whose pages cost more the
// further they start. All are exact because the event table is
// append-only. One hazard remains: a row
// whose AUTO_INCREMENT id was allocated before the snapshot but committed
// after it (another writer's slow transaction) can still appear; the
// server's own persists cannot cause it, since its batcher commits batches
// one after another. A table without a key (the
// original schema) cannot be paged exactly, so its result is read whole, up
// to maxBuffered rows; a larger one ends the stream with an error.
//
// A Cursor is used by one goroutine at a time: a stream actor starts at
// most one read and touches the cursor again only after the read's result
// message arrived.
package cursor
