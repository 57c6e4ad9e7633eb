package mysqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/sqlbuild"
)

// Batcher commits concurrent persists together (group commit): whatever
// requests are queued when the previous batch finished go into one
// transaction, so a burst of persists costs one commit instead of one each.
// Combinable requests share one multi-row INSERT; every request still gets
// its own insertId and affectedRows, and only after the commit. A request
// whose documents fail (say, a value too long) fails alone.
//
// Submit is safe for concurrent use and never blocks (the router calls
// it); done callbacks run on the batcher's goroutine and must not block.
type Batcher struct {
	db     *sql.DB
	logger *slog.Logger
	// consecutiveIDs: AUTO_INCREMENT hands a multi-row INSERT consecutive
	// ids (innodb_autoinc_lock_mode 0 or 1, auto_increment_increment 1), so
	// each request's first id follows from its offset in a combined INSERT
	// and its rows are insertId to insertId+affectedRows-1. Otherwise
	// (MySQL 8's default lock mode 2, a Galera cluster's increment),
	// requests share the transaction but not the statement, and a request of
	// several documents is inserted row by row, so that its ids are known.
	consecutiveIDs bool
	maxBatch       int
	timeout        time.Duration
	observe        func(requests int)
	// statements, if not nil, runs the INSERTs as cached prepared
	// statements: one exchange each instead of three.
	statements *Statements
	// committed, if not nil, hears the rows of every commit.
	committed func([]Committed)

	// queue holds what was submitted since the last batch was taken; wake
	// (one slot) tells the idle goroutine that it is not empty. An idle
	// batcher commits a request at once: no timer, no polling.
	mu     sync.Mutex
	queue  []batchJob
	closed bool
	wake   chan struct{}
	done   chan struct{}

	batches, requests atomic.Int64
}

// BatchStats counts what the batcher committed, for metrics and tests.
type BatchStats struct {
	Batches  int64 // transactions run
	Requests int64 // persist requests in them
}

// Stats returns the counts so far.
func (b *Batcher) Stats() BatchStats {
	return BatchStats{Batches: b.batches.Load(), Requests: b.requests.Load()}
}

type batchJob struct {
	ins  *sqlbuild.Insert
	done func(messages.OK, error)
}

// ErrBatcherClosed is reported for persists submitted after Close.
var ErrBatcherClosed = errors.New("persist batcher closed")

// Committed names the rows one request of a batch added to its table: ids
// First to Last, as its OK reply reports them. Uncertain, with no ids,
// says instead that a request failed in a way that may have committed it
// (its connection died): its rows, if any, are not known.
type Committed struct {
	Table       *sqlbuild.Table
	First, Last int64
	Uncertain   bool
}

// WithCommitted calls fn after every commit, before the replies go out, with
// the rows each successful request of the batch added, as ranges of ids
// (requests on tables without a key are left out, and so are upserts that
// updated rows: which ids they added is not known). fn runs on the batcher's goroutine: it must
// not block, or it holds up every persist behind it.
func WithCommitted(fn func([]Committed)) BatcherOption {
	return func(b *Batcher) { b.committed = fn }
}

// NewBatcher starts the batcher's goroutine. It asks the server whether
// AUTO_INCREMENT ids of a multi-row INSERT are consecutive; if they are not,
// requests share the transaction but not the statement. observe, if not
// nil, hears the size of every batch (for metrics).
func NewBatcher(ctx context.Context, db *sql.DB, logger *slog.Logger, observe func(requests int), opts ...BatcherOption) (*Batcher, error) {
	var mode, increment sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment").Scan(&mode, &increment); err != nil {
		return nil, fmt.Errorf("read innodb_autoinc_lock_mode and auto_increment_increment: %w", err)
	}
	consecutive := mode.Valid && mode.Int64 <= 1 && increment.Valid && increment.Int64 == 1
	if !consecutive {
		logger.Info("AUTO_INCREMENT ids of one INSERT may not be consecutive: batched persists share a transaction, not a statement, and the documents of one request are inserted one by one",
			slog.Int64("innodb_autoinc_lock_mode", mode.Int64), slog.Int64("auto_increment_increment", increment.Int64))
	}
	b := &Batcher{
		db: db, logger: logger, consecutiveIDs: consecutive,
		maxBatch: 256, timeout: 30 * time.Second, observe: observe,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	for _, opt := range opts {
		opt(b)
	}
	go b.run()
	return b, nil
}

// BatcherOption changes how a Batcher runs its statements.
type BatcherOption func(*Batcher)

// WithMaxBatch commits at most n persist requests per batch (default 256);
// 1 runs one INSERT per request, as without batching.
func WithMaxBatch(n int) BatcherOption {
	return func(b *Batcher) {
		if n > 0 {
			b.maxBatch = n
		}
	}
}

// WithStatements runs the batcher's INSERTs through st.
func WithStatements(st *Statements) BatcherOption {
	return func(b *Batcher) { b.statements = st }
}

// Submit queues one persist; done is called once it committed or failed.
// It never blocks: the queue is bounded by what the server admits (its
// streams and persists together), not here.
func (b *Batcher) Submit(ins *sqlbuild.Insert, done func(messages.OK, error)) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		done(messages.OK{}, ErrBatcherClosed)
		return
	}
	b.queue = append(b.queue, batchJob{ins: ins, done: done})
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default: // already woken
	}
}

// Close commits what is queued and stops the goroutine.
func (b *Batcher) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	<-b.done
}

// run commits batches one after another: each takes whatever queued while
// the previous one committed (up to maxBatch), and an idle batcher sleeps
// until Submit wakes it.
func (b *Batcher) run() {
	defer close(b.done)
	batch := make([]batchJob, 0, b.maxBatch)
	for {
		b.mu.Lock()
		n := min(len(b.queue), b.maxBatch)
		if n == 0 {
			closed := b.closed
			b.mu.Unlock()
			if closed {
				return
			}
			<-b.wake
			continue
		}
		batch = append(batch[:0], b.queue[:n]...)
		left := copy(b.queue, b.queue[n:])
		clear(b.queue[left:])
		b.queue = b.queue[:left]
		b.mu.Unlock()
		// Count before committing: the replies go out from commit, and
		// whoever hears one may read the stats.
		b.batches.Add(1)
		b.requests.Add(int64(len(batch)))
		if b.observe != nil {
			b.observe(len(batch))
		}
		b.commit(batch)
		clear(batch) // what was committed is not kept alive until the next batch
	}
}

// outcome is what one request of a batch got.
type outcome struct {
	ok  messages.OK
	err error
	// ids, when not nil, are the request's rows as ranges of ids (rows
	// inserted one by one); nil: insertId to insertId+affectedRows-1.
	ids [][2]int64
}

// commit runs one batch in one transaction and reports every job. A batch
// that lost its transaction to a deadlock or a lock wait (appends to one
// stream take turns; batches on several servers may meet in another
// order) was undone whole, and runs again.
func (b *Batcher) commit(batch []batchJob) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	out := make([]outcome, len(batch))
	var err error
	for attempt := 1; ; attempt++ {
		clear(out)
		if err = b.attempt(ctx, batch, out); err == nil || attempt == lockRetries || !lockLost(err) || ctx.Err() != nil {
			break
		}
		b.logger.Debug("persist batch runs again", slog.Int("requests", len(batch)), slog.Int("attempt", attempt), slog.Any("err", err))
	}
	if err != nil {
		for i := range out {
			if out[i].err == nil {
				out[i] = outcome{err: err}
			}
		}
	} else {
		b.announce(batch, out)
	}
	b.announceUncertain(batch, out)
	for i, job := range batch {
		job.done(out[i].ok, out[i].err)
	}
}

// lockRetries is how many times a batch runs when deadlocks undo it.
const lockRetries = 4

// lockLost reports a transaction InnoDB undid whole to break a deadlock
// or a lock wait: running it again is safe.
func lockLost(err error) bool {
	var refused *mysql.MySQLError
	return errors.As(err, &refused) && (refused.Number == 1213 || refused.Number == 1205)
}

// attempt runs one batch and fills out; an error says the whole batch
// failed, nothing of it committed (or, for a connection lost, perhaps
// committed).
func (b *Batcher) attempt(ctx context.Context, batch []batchJob, out []outcome) error {
	if b.oneStatement(batch) {
		// One statement needs no transaction around it: autocommit spares
		// the BEGIN and COMMIT round trips, and the statement is atomic on
		// its own. (If the combined INSERT fails, its requests are retried
		// one by one, each autocommitted: each still stands alone.)
		return b.execRun(ctx, nil, batch, out)
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin persist batch: %w", err)
	}
	for start := 0; start < len(batch); {
		end := start + 1
		if b.rowByRow(batch[start].ins) {
			err = b.execRows(ctx, tx, batch[start].ins, &out[start])
		} else {
			for end < len(batch) && b.consecutiveIDs && batch[start].ins.Combinable(batch[end].ins) {
				end++
			}
			err = b.execRun(ctx, tx, batch[start:end], out[start:end])
		}
		if err != nil {
			_ = tx.Rollback()
			return err
		}
		start = end
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit persist batch of %d: %w", len(batch), err)
	}
	return nil
}

// announce tells the committed observer which rows the batch added.
func (b *Batcher) announce(batch []batchJob, out []outcome) {
	if b.committed == nil {
		return
	}
	committed := make([]Committed, 0, len(batch))
	for i, job := range batch {
		for _, r := range b.addedIDs(job.ins, out[i]) {
			committed = append(committed, Committed{Table: job.ins.Table, First: r[0], Last: r[1]})
		}
	}
	if len(committed) > 0 {
		b.committed(committed)
	}
}

// announceUncertain tells the committed observer of the tables whose
// requests failed in a way that may have committed them.
func (b *Batcher) announceUncertain(batch []batchJob, out []outcome) {
	if b.committed == nil {
		return
	}
	var uncertain []Committed
	seen := map[*sqlbuild.Table]bool{}
	for i, job := range batch {
		if out[i].err != nil && mayHaveCommitted(out[i].err) && !seen[job.ins.Table] {
			seen[job.ins.Table] = true
			uncertain = append(uncertain, Committed{Table: job.ins.Table, Uncertain: true})
		}
	}
	if len(uncertain) > 0 {
		b.committed(uncertain)
	}
}

// mayHaveCommitted reports whether a failed statement may have run all
// the same: a lost connection or a deadline leaves the outcome unknown,
// and so does a connection killed or a server shut down under it (it may
// have committed before it heard); any other error MySQL reported undid
// the statement.
func mayHaveCommitted(err error) bool {
	var refused *mysql.MySQLError
	if !errors.As(err, &refused) {
		return true
	}
	switch refused.Number {
	case 1053, // ER_SERVER_SHUTDOWN
		1317, // ER_QUERY_INTERRUPTED
		1927: // ER_CONNECTION_KILLED (MariaDB)
		return true
	}
	return false
}

// addedIDs are the ids of the rows a request added, where they are known:
// rows inserted one by one, or a statement whose ids are consecutive.
func (b *Batcher) addedIDs(ins *sqlbuild.Insert, o outcome) [][2]int64 {
	switch {
	case o.err != nil || ins.Table.Key == "":
		return nil
	case o.ids != nil:
		return o.ids
	case o.ok.InsertID <= 0 || o.ok.AffectedRows <= 0:
		return nil
	case ins.Upsert() && o.ok.AffectedRows != int64(ins.Rows):
		// Some rows were updated, not added (each counts twice): which
		// ids were added is not known. Nothing new is announced.
		return nil
	case ins.Rows > 1 && !b.consecutiveIDs:
		return nil // an upsert of several rows whose ids may not be consecutive
	}
	return [][2]int64{{o.ok.InsertID, o.ok.InsertID + o.ok.AffectedRows - 1}}
}

// rowByRow reports whether a request's documents go one statement each, so
// that their ids are known: several documents, into a table with a key,
// where the ids of one statement may not be consecutive. (An upsert goes
// whole: its ids are not one per row anyway.)
func (b *Batcher) rowByRow(ins *sqlbuild.Insert) bool {
	return !b.consecutiveIDs && ins.Rows > 1 && ins.Table.Key != "" && !ins.Upsert()
}

// oneStatement reports whether the batch goes to MySQL as one INSERT: a lone
// request, or requests that combine into one.
func (b *Batcher) oneStatement(batch []batchJob) bool {
	if len(batch) == 1 {
		return !b.rowByRow(batch[0].ins)
	}
	if !b.consecutiveIDs {
		return false
	}
	for _, job := range batch[1:] {
		if !batch[0].ins.Combinable(job.ins) {
			return false
		}
	}
	return true
}

// execRun runs a run of combinable jobs as one INSERT, or job by job when
// that fails, so that only the failing job's request fails. Inside tx it
// returns an error only when the whole transaction is lost; without one
// (autocommit) only when the combined INSERT was lost whole, before any
// request committed.
func (b *Batcher) execRun(ctx context.Context, tx *sql.Tx, run []batchJob, out []outcome) error {
	if len(run) > 1 {
		inserts := make([]*sqlbuild.Insert, len(run))
		for i, job := range run {
			inserts[i] = job.ins
		}
		combined, err := sqlbuild.Combine(inserts...)
		if err == nil {
			first, _, err := b.exec(ctx, tx, combined)
			if err == nil {
				offset := int64(0)
				for i, job := range run {
					id := int64(0)
					if first > 0 {
						id = first + offset
					}
					out[i] = outcome{ok: messages.NewOK(int64(job.ins.Rows), id)}
					offset += int64(job.ins.Rows)
				}
				return nil
			}
			if transactionLost(err) {
				return err
			}
			// A statement error leaves the transaction usable: find the
			// request at fault by running them one by one.
		}
	}
	for i, job := range run {
		id, affected, err := b.exec(ctx, tx, job.ins)
		if err != nil {
			if tx != nil && transactionLost(err) {
				return err
			}
			// Autocommitted, the requests before this one are committed and
			// the ones after it still run: this one fails alone (or is
			// found to be a retry of what is stored).
			settled, lost := b.settle(ctx, tx, job.ins, err)
			if lost != nil {
				return lost
			}
			out[i] = settled
			continue
		}
		out[i] = outcome{ok: messages.NewOK(affected, id)}
	}
	return nil
}

// execRows inserts one request's documents one by one inside tx, so that
// each row's id is known, under a savepoint: a failing document takes back
// only this request's rows. It returns an error only when the whole
// transaction is lost.
func (b *Batcher) execRows(ctx context.Context, tx *sql.Tx, ins *sqlbuild.Insert, out *outcome) error {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT persist_request"); err != nil {
		return fmt.Errorf("savepoint before a persist of %d rows: %w", ins.Rows, err)
	}
	var first, affected int64
	var ids [][2]int64
	for _, row := range ins.EachRow() {
		id, n, err := b.exec(ctx, tx, row)
		if err != nil {
			if transactionLost(err) {
				return err
			}
			if _, rbErr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT persist_request"); rbErr != nil {
				return fmt.Errorf("take back a failed persist of %d rows: %w", ins.Rows, rbErr)
			}
			settled, lost := b.settle(ctx, tx, ins, err)
			if lost != nil {
				return lost
			}
			*out = settled
			return nil
		}
		if first == 0 {
			first = id
		}
		affected += n
		if k := len(ids); k > 0 && ids[k-1][1]+1 == id {
			ids[k-1][1] = id
		} else {
			ids = append(ids, [2]int64{id, id})
		}
	}
	*out = outcome{ok: messages.NewOK(affected, first), ids: ids}
	return nil
}

func (b *Batcher) exec(ctx context.Context, tx *sql.Tx, ins *sqlbuild.Insert) (firstID, affected int64, err error) {
	query, args, err := ins.SQL()
	if err != nil {
		return 0, 0, fmt.Errorf("insert into %s: %w", ins.Table.QualifiedName(), err)
	}
	var res sql.Result
	switch {
	case b.statements != nil && tx != nil:
		res, err = b.statements.ExecTx(ctx, tx, query, args...)
	case b.statements != nil:
		res, err = b.statements.ExecContext(ctx, query, args...)
	case tx != nil:
		res, err = tx.ExecContext(ctx, query, args...)
	default:
		res, err = b.db.ExecContext(ctx, query, args...)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("insert into %s: %w", ins.Table.QualifiedName(), err)
	}
	if firstID, err = res.LastInsertId(); err != nil {
		return 0, 0, fmt.Errorf("insert into %s: insert id: %w", ins.Table.QualifiedName(), err)
	}
	if affected, err = res.RowsAffected(); err != nil {
		return 0, 0, fmt.Errorf("insert into %s: rows affected: %w", ins.Table.QualifiedName(), err)
	}
	return firstID, affected, nil
}

// transactionLost reports errors after which InnoDB has rolled back the
// whole transaction (deadlock, lock wait timeout) or the connection is gone.
func transactionLost(err error) bool {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number == 1213 || myErr.Number == 1205
	}
	return !errors.As(err, &myErr)
}
