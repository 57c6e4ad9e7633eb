package actors

import (
	"context"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/sqlbuild"
)

// Pager reads a select page by page exactly as a stream does (snapshot
// bound, keyset or offset paging, small first pages), for readers outside
// the router: the HTTP gateway's fetch tasks. One goroutine at a time.
type Pager struct {
	c *cursor
}

// NewPager returns a pager over sel whose pages grow from 128 rows to
// pageSize; a result that cannot be paged is read whole, up to maxBuffered
// rows.
func NewPager(sel *sqlbuild.Select, store Store, decodeJSON bool, pageSize, maxBuffered int) *Pager {
	return &Pager{c: &cursor{sel: sel, store: store, decodeJSON: decodeJSON,
		pageSize: firstPage(1, pageSize), maxPage: uint64(pageSize), maxBuffered: uint64(maxBuffered)}}
}

// Next reads the next page; done reports that nothing follows it.
func (p *Pager) Next(ctx context.Context) (rows []messages.Row, done bool, err error) {
	page, done, err := p.c.next(ctx)
	return page.Rows, done, err
}
