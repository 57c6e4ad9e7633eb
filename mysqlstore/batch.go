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
// Submit is safe for concurrent use; done callbacks run on the batcher's
// goroutine and must not block.
type Batcher struct {
	db     *sql.DB
	logger *slog.Logger
	// consecutiveIDs: AUTO_INCREMENT hands a multi-row INSERT consecutive
	// ids (innodb_autoinc_lock_mode 0 or 1), so each request's first id
	// follows from its offset in a combined INSERT.
	consecutiveIDs bool
	maxBatch       int
	timeout        time.Duration
	observe        func(requests int)
	// statements, if not nil, runs the INSERTs as cached prepared
	// statements: one exchange each instead of three.
	statements *Statements
	// committed, if not nil, hears the rows of every commit.
	committed func([]Committed)

	jobs chan batchJob
	done chan struct{}

	mu     sync.RWMutex
	closed bool

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
// First to Last, as its OK reply reports them.
type Committed struct {
	Table       *sqlbuild.Table
	First, Last int64
}

// WithCommitted calls fn after every commit, before the replies go out, with
// the rows each successful request of the batch added (requests on tables
// without a key are left out). fn runs on the batcher's goroutine: it must
// not block, or it holds up every persist behind it.
func WithCommitted(fn func([]Committed)) BatcherOption {
	return func(b *Batcher) { b.committed = fn }
}

// NewBatcher starts the batcher's goroutine. It asks the server whether
// AUTO_INCREMENT ids of a multi-row INSERT are consecutive; if they are not,
// requests share the transaction but not the statement. observe, if not
// nil, hears the size of every batch (for metrics).
func NewBatcher(ctx context.Context, db *sql.DB, logger *slog.Logger, observe func(requests int), opts ...BatcherOption) (*Batcher, error) {
	var mode sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT @@innodb_autoinc_lock_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("read innodb_autoinc_lock_mode: %w", err)
	}
	b := &Batcher{
		db: db, logger: logger, consecutiveIDs: mode.Valid && mode.Int64 <= 1,
		maxBatch: 256, timeout: 30 * time.Second, observe: observe,
		jobs: make(chan batchJob, 4096), done: make(chan struct{}),
	}
	for _, opt := range opts {
		opt(b)
	}
	go b.run()
	return b, nil
}

// BatcherOption changes how a Batcher runs its statements.
type BatcherOption func(*Batcher)

// WithStatements runs the batcher's INSERTs through st.
func WithStatements(st *Statements) BatcherOption {
	return func(b *Batcher) { b.statements = st }
}

// Submit queues one persist; done is called once it committed or failed.
// It blocks while the queue is full, which holds back the persist actors.
func (b *Batcher) Submit(ins *sqlbuild.Insert, done func(messages.OK, error)) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		done(messages.OK{}, ErrBatcherClosed)
		return
	}
	b.jobs <- batchJob{ins: ins, done: done}
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
	close(b.jobs)
	<-b.done
}

func (b *Batcher) run() {
	defer close(b.done)
	batch := make([]batchJob, 0, b.maxBatch)
	for first := range b.jobs {
		batch = append(batch[:0], first)
	gather:
		for len(batch) < b.maxBatch {
			select {
			case job, ok := <-b.jobs:
				if !ok {
					break gather
				}
				batch = append(batch, job)
			default:
				break gather
			}
		}
		// Count before committing: the replies go out from commit, and
		// whoever hears one may read the stats.
		b.batches.Add(1)
		b.requests.Add(int64(len(batch)))
		if b.observe != nil {
			b.observe(len(batch))
		}
		b.commit(batch)
	}
}

// commit runs one batch in one transaction and reports every job.
func (b *Batcher) commit(batch []batchJob) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	results := make([]messages.OK, len(batch))
	errs := make([]error, len(batch))
	report := func() {
		for i, job := range batch {
			job.done(results[i], errs[i])
		}
	}
	failAll := func(err error) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		report()
	}
	if b.oneStatement(batch) {
		// One statement needs no transaction around it: autocommit spares
		// the BEGIN and COMMIT round trips, and the statement is atomic on
		// its own. (If the combined INSERT fails, its requests are retried
		// one by one, each autocommitted: each still stands alone.)
		if err := b.execRun(ctx, nil, batch, results, errs); err != nil {
			failAll(err)
			return
		}
		b.announce(batch, results, errs)
		report()
		return
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		failAll(fmt.Errorf("begin persist batch: %w", err))
		return
	}
	for start := 0; start < len(batch); {
		end := start + 1
		for end < len(batch) && b.consecutiveIDs && batch[start].ins.Combinable(batch[end].ins) {
			end++
		}
		if err := b.execRun(ctx, tx, batch[start:end], results[start:end], errs[start:end]); err != nil {
			_ = tx.Rollback()
			failAll(err)
			return
		}
		start = end
	}
	if err := tx.Commit(); err != nil {
		failAll(fmt.Errorf("commit persist batch of %d: %w", len(batch), err))
		return
	}
	b.announce(batch, results, errs)
	report()
}

// announce tells the committed observer which rows the batch added.
func (b *Batcher) announce(batch []batchJob, results []messages.OK, errs []error) {
	if b.committed == nil {
		return
	}
	out := make([]Committed, 0, len(batch))
	for i, job := range batch {
		if errs[i] != nil || results[i].InsertID <= 0 || results[i].AffectedRows <= 0 || job.ins.Table.Key == "" {
			continue
		}
		out = append(out, Committed{Table: job.ins.Table, First: results[i].InsertID, Last: results[i].InsertID + results[i].AffectedRows - 1})
	}
	if len(out) > 0 {
		b.committed(out)
	}
}

// oneStatement reports whether the batch goes to MySQL as one INSERT: a lone
// request, or requests that combine into one.
func (b *Batcher) oneStatement(batch []batchJob) bool {
	if len(batch) == 1 {
		return true
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
func (b *Batcher) execRun(ctx context.Context, tx *sql.Tx, run []batchJob, results []messages.OK, errs []error) error {
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
					results[i] = messages.NewOK(int64(job.ins.Rows), id)
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
			// the ones after it still run: this one fails alone.
			errs[i] = err
			continue
		}
		results[i] = messages.NewOK(affected, id)
	}
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
