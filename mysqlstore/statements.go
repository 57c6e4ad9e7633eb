package mysqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Statements keeps server-side prepared statements by SQL text. Without it
// every query with arguments costs the driver three exchanges (prepare,
// execute, close); streams of one query shape share the SQL text of their
// pages, so with it a page costs one. Values stay bound parameters.
//
// The cache is bounded (MySQL caps prepared statements per server, and
// database/sql prepares a statement once per pooled connection); a
// statement evicted while a query runs on it is closed when that query
// returns. Safe for concurrent use.
type Statements struct {
	db *sql.DB

	mu      sync.Mutex
	cache   *lru.Cache[string, *cachedStmt]
	evicted []*cachedStmt // evicted while held; closed by the last release
}

type cachedStmt struct {
	stmt    *sql.Stmt
	users   int
	evicted bool
}

// NewStatements caches up to size statements of db (at least 1).
func NewStatements(db *sql.DB, size int) *Statements {
	s := &Statements{db: db}
	cache, err := lru.NewWithEvict(max(size, 1), func(_ string, c *cachedStmt) {
		c.evicted = true
		s.evicted = append(s.evicted, c)
	})
	if err != nil {
		panic(fmt.Sprintf("mysqlstore: statement cache: %v", err)) // only for size <= 0, excluded above
	}
	s.cache = cache
	return s
}

// QueryContext runs query with args on a cached prepared statement. A query
// without arguments goes as text, as database/sql would send it.
func (s *Statements) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if len(args) == 0 {
		return s.db.QueryContext(ctx, query)
	}
	c, err := s.acquire(ctx, query)
	if err != nil {
		return nil, err
	}
	// Rows keep the statement's connection-level handle alive on their
	// own: releasing now is safe even if the statement is closed next.
	defer s.release(c)
	return c.stmt.QueryContext(ctx, args...)
}

// ExecContext runs query with args, autocommitted, on a cached prepared
// statement.
func (s *Statements) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if len(args) == 0 {
		return s.db.ExecContext(ctx, query)
	}
	c, err := s.acquire(ctx, query)
	if err != nil {
		return nil, err
	}
	defer s.release(c)
	return c.stmt.ExecContext(ctx, args...)
}

// ExecTx runs query with args inside tx on a cached prepared statement.
func (s *Statements) ExecTx(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if len(args) == 0 {
		return tx.ExecContext(ctx, query)
	}
	c, err := s.acquire(ctx, query)
	if err != nil {
		return nil, err
	}
	defer s.release(c)
	txStmt := tx.StmtContext(ctx, c.stmt)
	defer txStmt.Close()
	return txStmt.ExecContext(ctx, args...)
}

// Len is how many statements the cache holds.
func (s *Statements) Len() int { return s.cache.Len() }

// Close closes every cached statement.
func (s *Statements) Close() {
	s.mu.Lock()
	s.cache.Purge()
	s.closeUnused()
	s.mu.Unlock()
}

func (s *Statements) acquire(ctx context.Context, query string) (*cachedStmt, error) {
	s.mu.Lock()
	if c, ok := s.cache.Get(query); ok {
		c.users++
		s.mu.Unlock()
		return c, nil
	}
	s.mu.Unlock()
	// Prepared outside the lock: a prepare is a round trip. Two goroutines
	// may race to prepare the same text; the loser closes its own.
	stmt, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare statement: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache.Get(query); ok {
		c.users++
		_ = stmt.Close()
		return c, nil
	}
	c := &cachedStmt{stmt: stmt, users: 1}
	s.cache.Add(query, c)
	s.closeUnused()
	return c, nil
}

func (s *Statements) release(c *cachedStmt) {
	s.mu.Lock()
	c.users--
	if c.evicted {
		s.closeUnused()
	}
	s.mu.Unlock()
}

// closeUnused closes the evicted statements nobody holds. s.mu is held.
func (s *Statements) closeUnused() {
	kept := s.evicted[:0]
	for _, c := range s.evicted {
		if c.users > 0 {
			kept = append(kept, c)
			continue
		}
		_ = c.stmt.Close()
	}
	clear(s.evicted[len(kept):])
	s.evicted = kept
}
