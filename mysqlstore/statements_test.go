package mysqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/eventsource/eventsource/mysqlstore"
)

// sessionPrepares reads how many statements this connection has prepared;
// the pool must hold one connection for it to be the one the cache uses.
func sessionPrepares(t *testing.T, db *sql.DB) int {
	t.Helper()
	var name, value string
	if err := db.QueryRowContext(testContext(t), "SHOW SESSION STATUS LIKE 'Com_stmt_prepare'").Scan(&name, &value); err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(value)
	if err != nil {
		t.Fatalf("Com_stmt_prepare %q: %v", value, err)
	}
	return n
}

// queryN runs "SELECT ? + k" on st and checks the answer.
func queryN(ctx context.Context, st *mysqlstore.Statements, k, arg int) error {
	rows, err := st.QueryContext(ctx, fmt.Sprintf("SELECT ? + %d", k), arg)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		return fmt.Errorf("SELECT ? + %d: no row (%v)", k, rows.Err())
	}
	var got int
	if err := rows.Scan(&got); err != nil {
		return err
	}
	if got != arg+k {
		return fmt.Errorf("SELECT %d + %d = %d", arg, k, got)
	}
	return rows.Close()
}

func TestStatementsPrepareOncePerText(t *testing.T) {
	db, err := mysqlstore.Open(mysqlstore.Config{Host: "127.0.0.1", Port: 3306, User: "root", Charset: "utf8mb4", PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tests := []struct {
		name         string
		cache        int
		texts        int
		rounds       int
		wantPrepares int
	}{
		{"one text is prepared once", 4, 1, 20, 1},
		{"texts that fit are prepared once each", 4, 3, 10, 3},
		{"a cache too small re-prepares evicted texts", 2, 3, 5, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := mysqlstore.NewStatements(db, tt.cache)
			defer st.Close()
			before := sessionPrepares(t, db)
			for r := range tt.rounds {
				for k := range tt.texts {
					if err := queryN(testContext(t), st, k, r); err != nil {
						t.Fatal(err)
					}
				}
			}
			if got := sessionPrepares(t, db) - before; got != tt.wantPrepares {
				t.Errorf("prepared %d statements, want %d", got, tt.wantPrepares)
			}
			if st.Len() > tt.cache {
				t.Errorf("cache holds %d statements, bound %d", st.Len(), tt.cache)
			}
		})
	}
}

// Evictions while other goroutines run queries on the evicted statements
// must not fail those queries (run with -race).
func TestStatementsConcurrentEviction(t *testing.T) {
	db, err := mysqlstore.Open(mysqlstore.Config{Host: "127.0.0.1", Port: 3306, User: "root", Charset: "utf8mb4", PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := mysqlstore.NewStatements(db, 2)
	defer st.Close()
	ctx := testContext(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				if err := queryN(ctx, st, (g+i)%5, i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestStatementsExec(t *testing.T) {
	db, name := mustMigrated(t)
	st := mysqlstore.NewStatements(db, 4)
	defer st.Close()
	query := "INSERT INTO `" + name + "`.event (pid, domain, name, data) VALUES (?, 'd', 'n', '{}')"
	for i := range 3 {
		res, err := st.ExecContext(testContext(t), query, "p"+strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("affected %d rows, want 1", n)
		}
	}
	tx, err := db.BeginTx(testContext(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ExecTx(testContext(t), tx, query, "in-tx"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	var count int
	if err := db.QueryRowContext(testContext(t), "SELECT COUNT(*) FROM `"+name+"`.event").Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != 3 {
		t.Errorf("%d rows, want 3 (the rolled back one must be gone)", count)
	}
}
