package mysqlstore_test

import (
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/sqlbuild"
	"github.com/go-sql-driver/mysql"
)

// TestBatcherGivesEachRequestItsOwnResult persists many requests at once
// and checks every reply against the rows in the table: the ids a reply
// names are exactly its request's rows.
func TestBatcherGivesEachRequestItsOwnResult(t *testing.T) {
	db, name := mustMigrated(t)
	b := mustBuilder(t, db, name+".event")
	batcher, err := mysqlstore.NewBatcher(testContext(t), db, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer batcher.Close()

	const requests = 64
	type outcome struct {
		ok  messages.OK
		err error
	}
	outcomes := make([]outcome, requests)
	var wg sync.WaitGroup
	for i := range requests {
		docs := make([]string, i%3+1) // 1, 2 or 3 documents
		for j := range docs {
			docs[j] = fmt.Sprintf(`{"pid":"r%d","domain":"d","name":"n%d","data":{}}`, i, j)
		}
		pid := fmt.Sprintf("r%d", i)
		if i == 10 {
			// Too long for VARCHAR(200) in strict mode: fails in MariaDB,
			// after sqlbuild accepted it.
			pid = strings.Repeat("x", 300)
			docs = []string{fmt.Sprintf(`{"pid":%q,"domain":"d","name":"n0","data":{}}`, pid)}
		}
		ins, err := b.InsertJSON([]byte(`{"$insert":{"$documents":[`+strings.Join(docs, ",")+`]}}`), sqlbuild.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		batcher.Submit(ins, func(ok messages.OK, err error) {
			outcomes[i] = outcome{ok, err}
			wg.Done()
		})
	}
	wg.Wait()
	if st := batcher.Stats(); st.Requests != requests || st.Batches >= requests {
		t.Fatalf("stats %+v: want %d requests in fewer batches", st, requests)
	}

	for i, o := range outcomes {
		want := int64(i%3 + 1)
		if i == 10 {
			if o.err == nil {
				t.Fatalf("request 10 (pid too long) succeeded: %+v", o.ok)
			}
			continue
		}
		if o.err != nil {
			t.Fatalf("request %d failed: %v", i, o.err)
		}
		if o.ok.AffectedRows != want {
			t.Fatalf("request %d: affectedRows %d, want %d", i, o.ok.AffectedRows, want)
		}
		// The ids of this request's rows are insertId, insertId+1, ...
		ids := selectIDs(t, db, name, fmt.Sprintf("r%d", i))
		if int64(len(ids)) != want || ids[0] != o.ok.InsertID || ids[len(ids)-1] != o.ok.InsertID+want-1 {
			t.Fatalf("request %d: reply insertId %d for %d rows, table has ids %v", i, o.ok.InsertID, want, ids)
		}
	}
}

func TestBatcherAfterClose(t *testing.T) {
	db, name := mustMigrated(t)
	b := mustBuilder(t, db, name+".event")
	batcher, err := mysqlstore.NewBatcher(testContext(t), db, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	batcher.Close()
	ins, err := b.InsertJSON([]byte(`{"$insert":{"$documents":{"pid":"p","domain":"d","name":"n","data":{}}}}`), sqlbuild.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	batcher.Submit(ins, func(_ messages.OK, err error) { got <- err })
	if err := <-got; err != mysqlstore.ErrBatcherClosed {
		t.Fatalf("err = %v, want ErrBatcherClosed", err)
	}
}

// TestBatcherWhenIDsAreNotConsecutive runs the batcher where the ids of one
// multi-row INSERT are not consecutive: here auto_increment_increment=2, as
// on a Galera cluster (MySQL 8's innodb_autoinc_lock_mode=2 takes the same
// path). Every reply's insertId is its first row's, a failing document takes
// back only its own request's rows, and the ids announced as committed are
// exactly the rows added.
func TestBatcherWhenIDsAreNotConsecutive(t *testing.T) {
	_, name := mustMigrated(t)
	mc := mysql.NewConfig()
	mc.Net, mc.Addr, mc.User, mc.ParseTime = "tcp", "127.0.0.1:3306", "root", true
	mc.Params = map[string]string{"auto_increment_increment": "2"}
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { db.Close() })
	b := mustBuilder(t, db, name+".event")

	var mu sync.Mutex
	var announced []int64
	statements := mysqlstore.NewStatements(db, 16)
	t.Cleanup(statements.Close)
	batcher, err := mysqlstore.NewBatcher(testContext(t), db, slog.New(slog.NewTextHandler(io.Discard, nil)), nil,
		mysqlstore.WithStatements(statements),
		mysqlstore.WithCommitted(func(committed []mysqlstore.Committed) {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range committed {
				for id := c.First; id <= c.Last; id++ {
					announced = append(announced, id)
				}
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer batcher.Close()

	tooLong := strings.Repeat("x", 300) // longer than VARCHAR(200): MariaDB refuses it
	type outcome struct {
		ok  messages.OK
		err error
	}
	const requests = 48
	outcomes := make([]outcome, requests+1)
	var wg sync.WaitGroup
	documents := func(i int) int {
		if i == requests {
			return 3
		}
		return i%3 + 1
	}
	submit := func(i int) {
		docs := make([]string, documents(i))
		for j := range docs {
			pid := fmt.Sprintf("r%d", i)
			if (i == 10 && j == 1) || (i == 20 && j == 0) {
				pid = tooLong
			}
			docs[j] = fmt.Sprintf(`{"pid":%q,"domain":"d","name":"n%d","data":{}}`, pid, j)
		}
		ins, err := b.InsertJSON([]byte(`{"$insert":{"$documents":[`+strings.Join(docs, ",")+`]}}`), sqlbuild.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		batcher.Submit(ins, func(ok messages.OK, err error) {
			outcomes[i] = outcome{ok, err}
			wg.Done()
		})
	}
	for i := range requests {
		submit(i)
	}
	wg.Wait()
	submit(requests) // a lone request of 3 documents: a batch of its own
	wg.Wait()

	var added []int64
	for i, o := range outcomes {
		ids := selectIDs(t, db, name, fmt.Sprintf("r%d", i))
		if i == 10 || i == 20 {
			if o.err == nil || len(ids) != 0 {
				t.Errorf("request %d (a document too long): err %v, rows %v; want an error and no rows", i, o.err, ids)
			}
			continue
		}
		want := documents(i)
		if o.err != nil || len(ids) != want {
			t.Fatalf("request %d: err %v, rows %v; want %d rows", i, o.err, ids, want)
		}
		if o.ok.InsertID != ids[0] || o.ok.AffectedRows != int64(want) {
			t.Errorf("request %d: reply %+v, table has ids %v", i, o.ok, ids)
		}
		for k := 1; k < len(ids); k++ {
			if ids[k]-ids[k-1] != 2 {
				t.Errorf("request %d: ids %v do not step by 2: the test does not run where ids are not consecutive", i, ids)
			}
		}
		added = append(added, ids...)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(announced)
	slices.Sort(added)
	if !slices.Equal(announced, added) {
		t.Errorf("announced ids %v\nrows added      %v", announced, added)
	}
}

// selectIDs returns the ids of pid's rows in the test database's event
// table, in order.
func selectIDs(t *testing.T, db *sql.DB, database, pid string) []int64 {
	t.Helper()
	return queryIDs(t, db, "SELECT id FROM `"+database+"`.event WHERE pid = ? ORDER BY id", pid)
}

// queryIDs returns the first column of query's rows, ids.
func queryIDs(t *testing.T, db *sql.DB, query string, args ...any) []int64 {
	t.Helper()
	return queryColumn[int64](t, db, query, args...)
}

// queryColumn runs a query of one column and returns its values.
func queryColumn[T any](tb testing.TB, db *sql.DB, query string, args ...any) []T {
	tb.Helper()
	rows, err := db.QueryContext(testContext(tb), query, args...)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var values []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			tb.Fatal(err)
		}
		values = append(values, v)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return values
}

// WithMaxBatch bounds the requests of one batch; 1 commits each alone.
func TestBatcherMaxBatch(t *testing.T) {
	db, name := mustMigrated(t)
	b := mustBuilder(t, db, name+".event")
	for _, max := range []int{1, 3} {
		t.Run(fmt.Sprintf("at most %d", max), func(t *testing.T) {
			var mu sync.Mutex
			var sizes []int
			batcher, err := mysqlstore.NewBatcher(testContext(t), db, slog.New(slog.NewTextHandler(io.Discard, nil)),
				func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }, mysqlstore.WithMaxBatch(max))
			if err != nil {
				t.Fatal(err)
			}
			defer batcher.Close()
			const requests = 20
			var wg sync.WaitGroup
			for i := range requests {
				ins, err := b.InsertJSON(fmt.Appendf(nil, `{"$insert":{"$documents":{"pid":"max%d","domain":"d","name":"n%d","data":{}}}}`, max, i), sqlbuild.Scope{})
				if err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				// Queued at once: the batcher finds the rest waiting while
				// it commits the first.
				batcher.Submit(ins, func(_ messages.OK, err error) {
					if err != nil {
						t.Error(err)
					}
					wg.Done()
				})
			}
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			total := 0
			for _, n := range sizes {
				total += n
				if n > max {
					t.Fatalf("a batch of %d requests, want at most %d (batches %v)", n, max, sizes)
				}
			}
			if total != requests {
				t.Fatalf("batches %v hold %d requests, want %d", sizes, total, requests)
			}
		})
	}
}
