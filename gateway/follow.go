package gateway

import (
	"context"
	"fmt"

	"github.com/eventsource/eventsource/cursor"
)

// Frontier says how far each table's commits are settled: every id at or
// below the frontier is committed or rolled back, so a follow task that
// reads up to it never skips a row that commits late with a lower id
// (frontier.Frontier).
type Frontier interface {
	// Safe is the table's frontier now.
	Safe(ctx context.Context, table string) (int64, error)
	// Watch calls notify once, without blocking, when the frontier passes
	// after; cancel forgets the watch.
	Watch(table string, after int64, notify func(safe int64)) (cancel func())
}

// followPages is the reader of a follow task: one page each time it is
// asked, first the rows settled when the task started, then, once those
// are out (a page with done set), the rows that settle afterwards. When
// nothing is left to read it waits for the frontier to move, holding no
// connection; it sends no empty page but the one that says the history is
// out. It returns when ctx ends (the task is cancelled or its session
// ends), or after an error, which it sends.
func followPages(ctx context.Context, fr Frontier, table string, pager *cursor.Cursor, id string, next <-chan struct{}, send func(any)) {
	safe, err := fr.Safe(ctx, table)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		send(fetchPage{task: id, err: fmt.Errorf("read the frontier of %s: %w", table, err)})
		return
	}
	// The history ends at the frontier. An empty table has none: the
	// cursor must not take its own snapshot, which may pass an id still
	// committing, so nothing is read until the frontier moves.
	pager.Follow(safe)
	caughtUp := false
	for {
		select {
		case <-next:
		case <-ctx.Done():
			return
		}
		for {
			var page cursor.Page
			done := true
			if pager.Snapshot() > 0 {
				if page, done, err = pager.Next(ctx); ctx.Err() != nil {
					return
				}
				if err != nil {
					send(fetchPage{task: id, err: err})
					return
				}
			}
			if len(page.Rows) > 0 || (done && !caughtUp) {
				send(fetchPage{task: id, rows: page.Rows, done: done})
				caughtUp = caughtUp || done
				break
			}
			if !done {
				continue
			}
			// Read up to the frontier: wait for it to move on.
			moved := make(chan int64, 1) // notify is called once at most
			cancel := fr.Watch(table, max(pager.Snapshot(), pager.After()), func(safe int64) { moved <- safe })
			select {
			case safe := <-moved:
				pager.Follow(safe)
			case <-ctx.Done():
				cancel()
				return
			}
		}
	}
}
