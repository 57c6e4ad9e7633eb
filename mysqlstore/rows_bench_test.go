package mysqlstore_test

import (
	"database/sql"
	"runtime"
	"testing"

	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/sqlbuild"
)

// benchRows is the page size of BenchmarkRowsPerRow: a stream's default.
const benchRows = 256

// BenchmarkRowsPerRow reads a 256-row page as a stream does (payloads) and
// reports the cost per row (ns/row, B/row, allocs/row) next to "driver",
// the same page's rows only scanned into sql.RawBytes: the floor that
// go-sql-driver/mysql and database/sql cost whatever the encoder does (the
// driver boxes each non-NULL column into a driver.Value).
//
//	go test -run '^$' -bench BenchmarkRowsPerRow -benchtime 200x -count 6 ./mysqlstore/
func BenchmarkRowsPerRow(b *testing.B) {
	db, name := mustMigrated(b)
	mustExec(b, db, "CREATE TABLE `"+name+"`.kinds (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, "+
		"s VARCHAR(50) NULL, j JSON NULL, d DECIMAL(10,3) NULL, f DOUBLE NULL, i INT NULL, "+
		"ts DATETIME(6) NULL, b VARBINARY(10) NULL, n BIGINT NULL)")
	for i := 0; i < benchRows; i++ {
		mustExec(b, db, "INSERT INTO `"+name+"`.event (pid, domain, name, data) VALUES ('bench-pid', 'shop', 'created', ?)",
			`{"order": 1234, "items": ["a", "b"], "total": 42.5, "note": "a line of text"}`)
		mustExec(b, db, "INSERT INTO `"+name+"`.kinds (s, j, d, f, i, ts, b, n) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			"a \"quoted\" ünïcödé text", `{"a": [1, 2.5]}`, "1234.5", 0.25, 100000+i,
			"2021-12-31 23:59:59.999999", []byte("bin"), nil)
	}
	builder := mustBuilder(b, db, name+".event", name+".kinds")
	store := mysqlstore.Store{DB: db, Statements: mysqlstore.NewStatements(db, 8)}
	b.Cleanup(store.Statements.Close)
	ctx := testContext(b)
	page := sqlbuild.Page{Snapshot: 1 << 62, Size: benchRows}
	for _, table := range []string{"event", "kinds"} {
		sel, err := builder.SelectJSON([]byte(`{"$select":{"$from":"`+name+`.`+table+`"}}`), sqlbuild.Scope{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(table+"/payloads", func(b *testing.B) {
			perRow(b, func() int {
				got, err := store.ReadPayloads(ctx, sel, page, true)
				if err != nil {
					b.Fatal(err)
				}
				return len(got.Payloads)
			})
		})
		b.Run(table+"/driver", func(b *testing.B) {
			query, args, err := sel.PageSQL(page)
			if err != nil {
				b.Fatal(err)
			}
			var raw []sql.RawBytes
			var ptrs []any
			perRow(b, func() int {
				rows, err := store.Statements.QueryContext(ctx, query, args...)
				if err != nil {
					b.Fatal(err)
				}
				defer rows.Close()
				if raw == nil {
					cols, _ := rows.Columns()
					raw, ptrs = make([]sql.RawBytes, len(cols)), make([]any, len(cols))
					for i := range raw {
						ptrs[i] = &raw[i]
					}
				}
				n := 0
				for rows.Next() {
					if err := rows.Scan(ptrs...); err != nil {
						b.Fatal(err)
					}
					n++
				}
				if err := rows.Err(); err != nil {
					b.Fatal(err)
				}
				return n
			})
		})
	}
}

// perRow runs read, which returns how many rows it read, b.N times and
// reports its cost per row.
func perRow(b *testing.B, read func() int) {
	b.ReportAllocs()
	var before, after runtime.MemStats
	rows := 0
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		if n := read(); n != benchRows {
			b.Fatalf("%d rows, want %d", n, benchRows)
		}
		rows += benchRows
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(rows), "B/row")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(rows), "allocs/row")
}
