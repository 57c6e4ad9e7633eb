package mysqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/sqlbuild"
)

// consumerTable is the table of durable consumers Migrate makes in each
// database (migrations/002_consumer.sql).
const consumerTable = "eventsource_consumer"

// ConsumerLease is how long a consumer stays held without a renewal: a
// server that died frees its consumers within it.
const ConsumerLease = 15 * time.Second

// MaxLag is how many rows Lag counts at most unless told otherwise.
const MaxLag = 100000

// ErrNoConsumer: no consumer has that name.
var ErrNoConsumer = errors.New("no such consumer")

// ErrNoLag: the query cannot be followed (sqlbuild.Followable), so its
// rows are not in key order and no lag can be counted after a position.
var ErrNoLag = errors.New("no lag to count")

// Consumers stores durable consumers: a name, the query it follows (its
// canonical JSON text), the key of the last row it accepted, and which
// stream holds it. One namespace per database.
//
// Exactly one stream across all servers holds a consumer at a time: the
// holder is recorded in the row with a lease on the database's clock
// (NOW(6), never the servers' clocks, which may disagree), and every
// change of holder happens under the row's lock. Safe for concurrent use.
type Consumers struct {
	db       *sql.DB
	database string
	// table is the qualified name of the consumer table.
	table string
	// lease is ConsumerLease unless WithConsumerLease says otherwise.
	lease time.Duration
}

// ConsumerOption changes how Consumers works.
type ConsumerOption func(*Consumers)

// WithConsumerLease sets the lease a holder gets on each acquisition,
// renewal and record (default ConsumerLease). Short leases are for tests.
func WithConsumerLease(d time.Duration) ConsumerOption {
	return func(c *Consumers) {
		if d > 0 {
			c.lease = d
		}
	}
}

// NewConsumers returns the consumers of database, on db.
func NewConsumers(db *sql.DB, database string, opts ...ConsumerOption) *Consumers {
	c := &Consumers{db: db, database: database, table: "`" + strings.ReplaceAll(database, "`", "``") + "`.`" + consumerTable + "`", lease: ConsumerLease}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// Migrated reports whether the database holds the consumer table, which
// Migrate makes.
func (c *Consumers) Migrated(ctx context.Context) (bool, error) {
	return tableExists(ctx, c.db, c.database, consumerTable)
}

// Consumer is one durable consumer as stored.
type Consumer struct {
	Name string
	// Query is the canonical JSON text of the consumer's query.
	Query string
	// Position is the key of the last row the consumer accepted (0: none).
	Position int64
	// Holder and Server name the stream and the server that hold the
	// consumer, or last held it if its lease ran out; empty when no one
	// does.
	Holder, Server string
	// Held is set while a holder's lease runs (on the database's clock).
	Held bool
	// HeldUntil is the end of the holder's lease; zero when not held.
	HeldUntil time.Time
	// UpdatedAt is the last change of position or holder.
	UpdatedAt time.Time
}

// leaseEnd is the SQL for the end of a lease that starts now; its one
// argument is the lease in microseconds.
const leaseEnd = "NOW(6) + INTERVAL ? MICROSECOND"

// Acquire takes the consumer name for holder, a token unique to one
// stream; server is the id of the holder's server, whose RenewServer
// renews the lease. A new consumer is created at position 0 with query.
// A known one with another query fails with an error wrapping
// messages.ErrBadRequest that says to send "reset": true, unless reset is
// set: then its query is replaced and its position set to 0 (reset with
// the same query starts it again too). A consumer that another holder
// holds, and whose lease has not run out, fails with an error wrapping
// messages.ErrBusy; holder itself may acquire it again. Returns the
// position to start after.
//
// Race-free across servers: two Acquire of one consumer at once take its
// row lock in turn, and the second sees the first's lease.
func (c *Consumers) Acquire(ctx context.Context, name, query, server, holder string, reset bool) (int64, error) {
	if !messages.ValidConsumer(name) {
		return 0, fmt.Errorf("consumer %q: not 1 to %d characters of letters, digits and ._:-: %w", name, messages.MaxConsumer, messages.ErrBadRequest)
	}
	if holder == "" {
		return 0, fmt.Errorf("acquire consumer %s: empty holder", name)
	}
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var position int64
		var found bool
		// The row exists before it is locked: locking a missing row takes
		// a gap lock, and two of those deadlock when both insert.
		_, err = c.db.ExecContext(ctx, "INSERT INTO "+c.table+" (name, query, position, updated_at) VALUES (?, ?, 0, NOW(6)) ON DUPLICATE KEY UPDATE name = name", name, query)
		if err == nil {
			position, found, err = c.take(ctx, name, query, server, holder, reset)
			if err == nil && found {
				return position, nil
			}
			if err == nil { // deleted between the two statements: make it again
				err = fmt.Errorf("acquire consumer %s: deleted while it was taken", name)
				continue
			}
		}
		if !lockLost(err) {
			break
		}
	}
	if errors.Is(err, messages.ErrBadRequest) || errors.Is(err, messages.ErrBusy) {
		return 0, err
	}
	return 0, fmt.Errorf("acquire consumer %s: %w", name, err)
}

// take is Acquire's transaction on a row that exists; found is false when
// it no longer does.
func (c *Consumers) take(ctx context.Context, name, query, server, holder string, reset bool) (position int64, found bool, err error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer func() { _ = tx.Rollback() }()
	var stored string
	var current sql.NullString
	var live bool
	err = tx.QueryRowContext(ctx, "SELECT query, position, holder, COALESCE(held_until > NOW(6), FALSE) FROM "+c.table+" WHERE name = ? FOR UPDATE", name).
		Scan(&stored, &position, &current, &live)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	case stored != query && !reset:
		return 0, true, fmt.Errorf("consumer %s follows another query: send \"reset\": true to start it again on this one: %w", name, messages.ErrBadRequest)
	case current.Valid && current.String != holder && live:
		return 0, true, fmt.Errorf("consumer %s: another stream holds it: %w", name, messages.ErrBusy)
	}
	if reset {
		position = 0
	}
	if _, err := tx.ExecContext(ctx, "UPDATE "+c.table+" SET query = ?, position = ?, server = ?, holder = ?, held_until = "+leaseEnd+", updated_at = NOW(6) WHERE name = ?",
		query, position, server, holder, c.lease.Microseconds(), name); err != nil {
		return 0, false, err
	}
	if err := tx.Commit(); err != nil {
		return 0, false, err
	}
	return position, true, nil
}

// RenewServer extends the lease of every consumer that server holds, in
// one statement. A server calls it well within ConsumerLease.
func (c *Consumers) RenewServer(ctx context.Context, server string) error {
	if _, err := c.db.ExecContext(ctx, "UPDATE "+c.table+" SET held_until = "+leaseEnd+" WHERE server = ? AND holder IS NOT NULL",
		c.lease.Microseconds(), server); err != nil {
		return fmt.Errorf("renew the consumers of server %s: %w", server, err)
	}
	return nil
}

// Record stores position for the consumer while holder holds it: only
// ever forward (a smaller position leaves it), and it renews the lease.
// It fails with an error wrapping messages.ErrConsumerLost when holder no
// longer holds the consumer: another stream took it after the lease ran
// out, or an operator reset or deleted it.
func (c *Consumers) Record(ctx context.Context, name, holder string, position int64) error {
	res, err := c.db.ExecContext(ctx, "UPDATE "+c.table+" SET position = GREATEST(position, ?), held_until = "+leaseEnd+", updated_at = NOW(6) WHERE name = ? AND holder = ?",
		position, c.lease.Microseconds(), name, holder)
	if err != nil {
		return fmt.Errorf("record consumer %s at %d: %w", name, position, err)
	}
	if n, err := res.RowsAffected(); err == nil && n > 0 {
		return nil
	}
	// Nothing changed: the holder is another, or the row is as it was
	// (the same position within the same microsecond).
	var current sql.NullString
	err = c.db.QueryRowContext(ctx, "SELECT holder FROM "+c.table+" WHERE name = ?", name).Scan(&current)
	switch {
	case err == nil && current.Valid && current.String == holder:
		return nil
	case err == nil, errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("record consumer %s: %w", name, messages.ErrConsumerLost)
	default:
		return fmt.Errorf("record consumer %s at %d: %w", name, position, err)
	}
}

// Release records position (only forward) and frees the consumer, if
// holder holds it; otherwise it changes nothing and fails with an error
// wrapping messages.ErrConsumerLost.
func (c *Consumers) Release(ctx context.Context, name, holder string, position int64) error {
	res, err := c.db.ExecContext(ctx, "UPDATE "+c.table+" SET position = GREATEST(position, ?), server = NULL, holder = NULL, held_until = NULL, updated_at = NOW(6) WHERE name = ? AND holder = ?",
		position, name, holder)
	if err != nil {
		return fmt.Errorf("release consumer %s at %d: %w", name, position, err)
	}
	// The holder goes to NULL: a matched row always changes.
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("release consumer %s: %w", name, messages.ErrConsumerLost)
	}
	return nil
}

const consumerColumns = "name, query, position, server, holder, held_until, updated_at, COALESCE(holder IS NOT NULL AND held_until > NOW(6), FALSE)"

// List returns every consumer, by name.
func (c *Consumers) List(ctx context.Context) ([]Consumer, error) {
	rows, err := c.db.QueryContext(ctx, "SELECT "+consumerColumns+" FROM "+c.table+" ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	defer rows.Close()
	var list []Consumer
	for rows.Next() {
		cons, err := scanConsumer(rows)
		if err != nil {
			return nil, fmt.Errorf("list consumers: %w", err)
		}
		list = append(list, cons)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	return list, nil
}

// Get returns one consumer, or an error wrapping ErrNoConsumer.
func (c *Consumers) Get(ctx context.Context, name string) (Consumer, error) {
	cons, err := scanConsumer(c.db.QueryRowContext(ctx, "SELECT "+consumerColumns+" FROM "+c.table+" WHERE name = ?", name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Consumer{}, fmt.Errorf("consumer %s: %w", name, ErrNoConsumer)
	case err != nil:
		return Consumer{}, fmt.Errorf("read consumer %s: %w", name, err)
	}
	return cons, nil
}

func scanConsumer(row interface{ Scan(...any) error }) (Consumer, error) {
	var cons Consumer
	var name []byte
	var server, holder sql.NullString
	var heldUntil sql.NullTime
	if err := row.Scan(&name, &cons.Query, &cons.Position, &server, &holder, &heldUntil, &cons.UpdatedAt, &cons.Held); err != nil {
		return Consumer{}, err
	}
	cons.Name, cons.Server, cons.Holder = string(name), server.String, holder.String
	if heldUntil.Valid && holder.Valid {
		cons.HeldUntil = heldUntil.Time
	}
	return cons, nil
}

// Reset sets the consumer's position, in either direction, and frees it:
// a stream that held it gets messages.ErrConsumerLost on its next Record
// (so it cannot move the position on from where it was), and the next
// Acquire starts after position. Fails with an error wrapping
// ErrNoConsumer when there is none by that name.
func (c *Consumers) Reset(ctx context.Context, name string, position int64) error {
	if position < 0 {
		return fmt.Errorf("reset consumer %s: position %d is negative: %w", name, position, messages.ErrBadRequest)
	}
	res, err := c.db.ExecContext(ctx, "UPDATE "+c.table+" SET position = ?, server = NULL, holder = NULL, held_until = NULL, updated_at = NOW(6) WHERE name = ?", position, name)
	if err != nil {
		return fmt.Errorf("reset consumer %s to %d: %w", name, position, err)
	}
	if n, err := res.RowsAffected(); err == nil && n > 0 {
		return nil
	}
	// Nothing changed: no such row, or it was already so.
	_, err = c.Get(ctx, name)
	return err
}

// Delete removes the consumer; a stream that held it gets
// messages.ErrConsumerLost on its next Record. Fails with an error
// wrapping ErrNoConsumer when there is none by that name.
func (c *Consumers) Delete(ctx context.Context, name string) error {
	res, err := c.db.ExecContext(ctx, "DELETE FROM "+c.table+" WHERE name = ?", name)
	if err != nil {
		return fmt.Errorf("delete consumer %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("consumer %s: %w", name, ErrNoConsumer)
	}
	return nil
}

// newestReach bounds the search for the newest matching row below a known
// one: it reads at most newestReach times limit keys down from the top.
const newestReach = 10

// Lag counts the rows of a consumer's query (its text, built with b)
// after position, up to limit of them (capped is set when there are more;
// lag is then limit), and finds newest, the key of the newest row of the
// query (0 when there is none). Where the count does not reach it (the
// consumer is more than limit rows behind, or at its end), newest is
// searched for from the top down, over newestReach times limit keys at
// most: past that, it is the newest row counted, or 0. A query that
// cannot be followed (sqlbuild.Followable) fails with an error wrapping
// ErrNoLag. The count reads the rows, so it costs as much as reading limit
// rows of the query: for operators, not for every request.
func (c *Consumers) Lag(ctx context.Context, b *sqlbuild.Builder, query string, position int64, limit int) (newest, lag int64, capped bool, err error) {
	parsed, err := b.Parse([]byte(query))
	if err != nil {
		return 0, 0, false, err
	}
	sel, err := b.Select(parsed, sqlbuild.Scope{})
	if err != nil {
		return 0, 0, false, err
	}
	if err := sqlbuild.Followable(parsed, sel); err != nil {
		return 0, 0, false, fmt.Errorf("%w: %w", ErrNoLag, err)
	}
	if limit <= 0 {
		limit = MaxLag
	}
	position = max(position, 0)
	// The first page of a stream that resumes after position, one row
	// longer than limit; with its snapshot bound, the table's newest key.
	count, last, top, err := c.countPage(ctx, sel, sqlbuild.Page{After: position, Size: uint64(limit) + 1}, true)
	if err != nil {
		return 0, 0, false, err
	}
	switch {
	case count > int64(limit):
		newest, err = c.newestBelow(ctx, sel, top, last, int64(limit))
		return max(newest, last), int64(limit), true, err
	case count > 0:
		return last, count, false, nil
	default:
		newest, err = c.newestBelow(ctx, sel, position, 0, int64(limit))
		return newest, 0, false, err
	}
}

// countPage counts the rows of page p of sel and returns the newest key
// among them and, with snapshot, the page's snapshot bound.
func (c *Consumers) countPage(ctx context.Context, sel *sqlbuild.Select, p sqlbuild.Page, snapshot bool) (count, last, top int64, err error) {
	if sel.KeysetOrdered() && p.After > 0 {
		// Followable: ordered by the key alone.
		p.AfterOrder = []any{p.After}
	}
	text, args, err := sel.PageSQL(p)
	if err != nil {
		return 0, 0, 0, err
	}
	columns := "COUNT(*), COALESCE(MAX(`" + sqlbuild.KeyAlias + "`), 0), "
	if snapshot {
		columns += "COALESCE(MAX(`" + sqlbuild.SnapshotAlias + "`), 0)"
	} else {
		columns += "0"
	}
	if err := c.db.QueryRowContext(ctx, "SELECT "+columns+" FROM ("+text+") AS lag", args...).Scan(&count, &last, &top); err != nil {
		return 0, 0, 0, fmt.Errorf("count the rows of a consumer's query: %w", err)
	}
	return count, last, top, nil
}

// newestBelow finds the newest key of sel at or below top and above
// floor, reading key ranges from the top down, each ten times the one
// before (most consumers' newest row is near the top), limit keys wide
// at most and newestReach times limit in all; 0 when it finds none.
func (c *Consumers) newestBelow(ctx context.Context, sel *sqlbuild.Select, top, floor, limit int64) (int64, error) {
	span := min(int64(1000), limit)
	for hi := top; hi > floor && top-hi < newestReach*limit; hi -= span {
		if hi < top {
			span = min(span*10, limit)
		}
		lo := max(hi-span, floor, 0)
		_, last, _, err := c.countPage(ctx, sel, sqlbuild.Page{Snapshot: hi, After: lo, Size: uint64(hi - lo)}, false)
		if err != nil || last > 0 {
			return last, err
		}
	}
	return 0, nil
}
