package cursor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/sqlbuild"
)

// Page is one batch of rows and where the next batch starts.
type Page struct {
	// Rows are the rows as values; nil when RowOptions.Encode asked for
	// Payloads instead.
	Rows []messages.Row
	// Payloads are the rows' JSON, as messages.Row.AppendJSON writes it,
	// when RowOptions.Encode asked for them.
	Payloads [][]byte
	// LastKey is the key of the last row, for keyset paging (0 when the
	// query carries no key column).
	LastKey int64
	// Keys are the rows' keys, in order, when Options.Keys asked for them
	// (a durable consumer records the last one accepted).
	Keys []int64
	// LastOrder are the last row's order values, for the next page of a
	// keyset-ordered select (sqlbuild.Page.AfterOrder); nil when the query
	// carries none.
	LastOrder []any
	// Snapshot is the snapshot bound the page took (0 when it took none, or
	// read no row).
	Snapshot int64
	// SeekGone reports that the index the page was to seek on no longer
	// exists: it was read without it, and so should the next pages be.
	SeekGone bool
}

// Store reads pages of selects (mysqlstore.Store).
type Store interface {
	// ReadPage reads one page of s: its rows, the key of its last row and,
	// when the page took it, the snapshot bound.
	ReadPage(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page, decodeJSON bool) (Page, error)
	// ReadPayloads reads the same page with each row as its JSON payload.
	ReadPayloads(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page, decodeJSON bool) (Page, error)
	// ChooseSeek names the index, of s's SeekChoices, that pages like p
	// should seek on, or "" to leave the plan to MySQL.
	ChooseSeek(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page) (string, error)
}

// ErrTooLarge marks a result that cannot be paged and does not fit in
// Options.MaxBuffered rows.
var ErrTooLarge = errors.New("result too large")

// ErrDeadline marks a read that ran past Options.ReadTimeout.
var ErrDeadline = errors.New("read ran past its deadline")

// Options say how a Cursor reads.
type Options struct {
	// DecodeJSON reads JSON columns as JSON values instead of JSON text.
	DecodeJSON bool
	// Encode reads rows as their JSON payloads (Page.Payloads) instead of
	// values (Page.Rows).
	Encode bool
	// FirstPage is the size of the first page (see FirstPage); the pages
	// double from it up to PageSize.
	FirstPage, PageSize int
	// MaxBuffered bounds a result read whole (no key, or not rows of one
	// table).
	MaxBuffered int
	// ReadTimeout, if positive, bounds each read: a page, or a result read
	// whole (ErrDeadline).
	ReadTimeout time.Duration
	// Logger, if not nil, hears what the cursor got around (a failed
	// question about the seek index), about Channel.
	Logger  *slog.Logger
	Channel string
	// Keys asks for each row's key (Page.Keys).
	Keys bool
	// After starts the cursor after this key (a durable consumer's
	// position); 0 starts at the beginning.
	After int64
	// Snapshot, if positive, is the highest key read, instead of the
	// highest committed when the first page is read (a followed stream
	// reads up to the settled frontier, and Follow moves it).
	Snapshot int64
}

// New returns a cursor over sel.
func New(sel *sqlbuild.Select, store Store, opt Options) *Cursor {
	return &Cursor{sel: sel, store: store, decodeJSON: opt.DecodeJSON, encode: opt.Encode,
		pageSize: uint64(opt.FirstPage), maxPage: uint64(opt.PageSize), maxBuffered: uint64(opt.MaxBuffered),
		readTimeout: opt.ReadTimeout, logger: opt.Logger, channel: opt.Channel,
		after: opt.After, snapshot: opt.Snapshot, keys: opt.Keys, fixedSnapshot: opt.Snapshot > 0}
}

// Follow moves the snapshot bound of a keyset cursor up to snapshot (a
// followed stream's new frontier): the rows after the last one read, up
// to it, are read next, and Next reports done again once they are.
func (c *Cursor) Follow(snapshot int64) {
	if snapshot > c.snapshot {
		c.snapshot, c.fixedSnapshot, c.done = snapshot, true, false
	}
}

// Snapshot is the highest key the cursor reads up to (0 before its first
// page, when it took none).
func (c *Cursor) Snapshot() int64 { return c.snapshot }

// After is the key of the last row read.
func (c *Cursor) After() int64 { return c.after }

// Whole reports whether the next read takes the whole result at once (the
// select cannot be paged): a long read, of which few may run together.
func (c *Cursor) Whole() bool { return c.sel.Table.Key == "" || c.sel.Whole }

// NextSize is the size of the next page it reads.
func (c *Cursor) NextSize() int { return int(c.pageSize) }

// FirstPage is the size of a stream's first read: enough for two windows,
// at least 128 rows, at most the configured page size. A page query costs
// about as much as reading 50 rows (BenchmarkReadPage: 8 rows 127 µs, 128
// rows 400 µs), so a first page of 64 spent 40% of its time on the query;
// 128 rows of a typical event are about 25 KB held by a stream whose client
// stalls.
func FirstPage(window, pageSize int) int {
	return min(max(128, 2*window), pageSize)
}

type Cursor struct {
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
	readTimeout time.Duration

	snapshot int64 // 0 until the first page took it
	after    int64 // key of the last row read (keyset)
	// afterOrder are the last row's order values (keyset-ordered selects).
	afterOrder []any
	returned   uint64 // rows read so far
	done       bool
	// fixedSnapshot: the snapshot was given (Options.Snapshot, Follow),
	// not taken by the first page.
	fixedSnapshot bool
	keys          bool
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

// Next reads the next page, as rows or payloads (Options.Encode); done
// reports that nothing follows it.
func (c *Cursor) Next(ctx context.Context) (Page, bool, error) {
	if c.done || c.sel.Empty || (c.fixedSnapshot && c.after >= c.snapshot) {
		return Page{}, true, nil
	}
	if c.readTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.readTimeout, fmt.Errorf("%w (%s)", ErrDeadline, c.readTimeout))
		defer cancel()
	}
	page, done, err := c.next(ctx)
	if err != nil && errors.Is(context.Cause(ctx), ErrDeadline) {
		err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	return page, done, err
}

func (c *Cursor) next(ctx context.Context) (Page, bool, error) {
	if c.Whole() {
		return c.readWhole(ctx)
	}
	size := c.pageSize
	c.pageSize = min(2*c.pageSize, c.maxPage)
	if c.sel.Limit > 0 && c.sel.Limit-c.returned < size {
		size = c.sel.Limit - c.returned
	}
	page := sqlbuild.Page{Snapshot: c.snapshot, Size: size, Keys: c.keys}
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
		return Page{}, false, err
	}
	if c.snapshot == 0 {
		c.snapshot = got.Snapshot
	}
	c.noSeek = c.noSeek || got.SeekGone
	n := uint64(len(got.Rows) + len(got.Payloads))
	if n > 0 {
		// An empty page leaves the place where the last rows ended.
		c.after, c.afterOrder = got.LastKey, got.LastOrder
	}
	c.returned += n
	c.done = n < size || (c.sel.Limit > 0 && c.returned >= c.sel.Limit)
	return got, c.done, nil
}

func (c *Cursor) read(ctx context.Context, page sqlbuild.Page) (Page, error) {
	if c.encode {
		return c.store.ReadPayloads(ctx, c.sel, page, c.decodeJSON)
	}
	return c.store.ReadPage(ctx, c.sel, page, c.decodeJSON)
}

func (c *Cursor) readWhole(ctx context.Context) (Page, bool, error) {
	size := c.maxBuffered + 1
	if c.sel.Limit > 0 && c.sel.Limit < size {
		size = c.sel.Limit
	}
	got, err := c.read(ctx, sqlbuild.Page{Offset: c.sel.Offset, Size: size})
	if err != nil {
		return Page{}, false, err
	}
	if uint64(len(got.Rows)+len(got.Payloads)) > c.maxBuffered {
		return Page{}, false, fmt.Errorf("result of %s exceeds %d rows and cannot be paged (no key column, or DISTINCT/GROUP BY/aggregates): %w",
			c.sel.Table.QualifiedName(), c.maxBuffered, ErrTooLarge)
	}
	c.done = true
	return got, true, nil
}
