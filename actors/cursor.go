package actors

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/sqlbuild"
)

// cursor reads a select page by page and holds no connection between pages.
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
// A cursor is used by one goroutine at a time: the stream actor starts at
// most one read and touches the cursor again only after the read's result
// message arrived.
type cursor struct {
	sel        *sqlbuild.Select
	store      Store
	decodeJSON bool
	// encode reads rows as their JSON payloads (Page.Payloads) instead of
	// values (Page.Rows).
	encode bool
	// pageSize is the next page's size: it starts small, so that the many
	// streams whose clients read a few rows or stall hold little memory,
	// and doubles with each page up to maxPage for the long readers.
	pageSize    uint64
	maxPage     uint64
	maxBuffered uint64

	snapshot int64 // 0 until the first page took it
	after    int64 // key of the last row read (keyset)
	// afterOrder are the last row's order values (keyset-ordered selects).
	afterOrder []any
	returned   uint64 // rows read so far
	done       bool
	// seek is the index later keyset pages seek on, when the select left
	// the choice to the store (planned tells it was asked).
	seek    string
	planned bool
	// noSeek: an index the pages sought on is gone; the plan is MySQL's.
	noSeek bool
	// logger, if not nil, hears what the cursor got around (a failed
	// question about the seek index), about channel.
	logger  *slog.Logger
	channel string
}

// next reads the next page, as rows or payloads (see encode); done reports
// that nothing follows it.
func (c *cursor) next(ctx context.Context) (mysqlstore.Page, bool, error) {
	if c.done || c.sel.Empty {
		return mysqlstore.Page{}, true, nil
	}
	if c.sel.Table.Key == "" || c.sel.Whole {
		return c.readWhole(ctx)
	}
	size := c.pageSize
	c.pageSize = min(2*c.pageSize, c.maxPage)
	if c.sel.Limit > 0 && c.sel.Limit-c.returned < size {
		size = c.sel.Limit - c.returned
	}
	page := sqlbuild.Page{Snapshot: c.snapshot, Size: size}
	if c.sel.Ordered && !c.sel.KeysetOrdered() {
		page.Offset = c.sel.Offset + c.returned
	} else {
		page.After, page.AfterOrder = c.after, c.afterOrder
		if c.returned == 0 {
			page.Offset = c.sel.Offset
		}
		// A stream long enough for a second page asks once which index
		// to seek on; a short one never pays for the question. A failed
		// question only leaves the plan to MySQL, as before it.
		if c.returned > 0 && !c.planned {
			c.planned = true
			var err error
			if c.seek, err = c.store.ChooseSeek(ctx, c.sel, page); err != nil && c.logger != nil && ctx.Err() == nil {
				c.logger.Warn("choose a seek index: later pages follow MySQL's plan",
					slog.String("channel", c.channel), slog.String("table", c.sel.Table.QualifiedName()), slog.Any("err", err))
			}
		}
		page.Seek, page.NoSeek = c.seek, c.noSeek
	}
	// The first page takes the snapshot bound (page.Snapshot is zero then)
	// and the later ones keep to it.
	got, err := c.read(ctx, page)
	if err != nil {
		return mysqlstore.Page{}, false, err
	}
	if c.snapshot == 0 {
		c.snapshot = got.Snapshot
	}
	c.noSeek = c.noSeek || got.SeekGone
	n := uint64(len(got.Rows) + len(got.Payloads))
	c.after, c.afterOrder = got.LastKey, got.LastOrder
	c.returned += n
	c.done = n < size || (c.sel.Limit > 0 && c.returned >= c.sel.Limit)
	return got, c.done, nil
}

func (c *cursor) read(ctx context.Context, page sqlbuild.Page) (mysqlstore.Page, error) {
	if c.encode {
		return c.store.ReadPayloads(ctx, c.sel, page, c.decodeJSON)
	}
	return c.store.ReadPage(ctx, c.sel, page, c.decodeJSON)
}

func (c *cursor) readWhole(ctx context.Context) (mysqlstore.Page, bool, error) {
	size := c.maxBuffered + 1
	if c.sel.Limit > 0 && c.sel.Limit < size {
		size = c.sel.Limit
	}
	got, err := c.read(ctx, sqlbuild.Page{Offset: c.sel.Offset, Size: size})
	if err != nil {
		return mysqlstore.Page{}, false, err
	}
	if uint64(len(got.Rows)+len(got.Payloads)) > c.maxBuffered {
		return mysqlstore.Page{}, false, fmt.Errorf("result of %s exceeds %d rows and cannot be paged (no key column, or DISTINCT/GROUP BY/aggregates): %w",
			c.sel.Table.QualifiedName(), c.maxBuffered, errTooLarge)
	}
	c.done = true
	return got, true, nil
}
