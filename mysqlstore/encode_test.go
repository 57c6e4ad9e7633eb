package mysqlstore_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/sqlbuild"
)

// TestReadPayloadsEncodeAsRows checks the stream's reading path (rows
// encoded while they are read, text straight from the driver's buffer)
// against the values path and messages.Row's encoder, byte for byte, over
// the column types and the values that are easy to get wrong: NULL against
// the empty string, escapes, invalid UTF-8, JSON text and decoded JSON.
func TestReadPayloadsEncodeAsRows(t *testing.T) {
	t.Parallel()
	db, name := mustDatabase(t)
	mustExec(t, db, "CREATE DATABASE `"+name+"`")
	mustExec(t, db, "CREATE TABLE `"+name+"`.kinds (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, "+
		"s VARCHAR(50) NULL, t TEXT NULL, j JSON NULL, d DECIMAL(10,3) NULL, f DOUBLE NULL, i INT NULL, "+
		"ts DATETIME(3) NULL, ts6 DATETIME(6) NULL, b VARBINARY(10) NULL, e ENUM('x','y') NULL, c CHAR(3) NULL)")
	for _, row := range [][]any{
		{nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
		{"", "", `""`, "0.000", 0.0, 0, "2020-01-01 00:00:00", "2020-01-01 00:00:00", []byte{}, "x", ""},
		{`quote " and \ back`, "line\nbreak\ttab\x01", `{"a": [1, 2.5, "x\u00e9"], "b": null}`, "-12.345", 1e-7, -42,
			"2020-04-06 11:35:18.414", "2021-12-31 23:59:59.999999", []byte{0xff, 'a', 0xc3}, "y", "é"},
		{"ünïcödé ✓ 𝄞", "\u2028\u2029<>&", `[true, false, null]`, "9999999.999", 1e21, 2147483647,
			"1999-12-31 23:59:59.999", "1970-01-01 00:00:01.000001", []byte("ok"), nil, "abc"},
	} {
		mustExec(t, db, "INSERT INTO `"+name+"`.kinds (s, t, j, d, f, i, ts, ts6, b, e, c) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row...)
	}
	// Then rows that grow longer and longer: the payload buffer, sized
	// from the first rows, must grow past its estimate.
	for i := range 40 {
		mustExec(t, db, "INSERT INTO `"+name+"`.kinds (t, i) VALUES (?, ?)", strings.Repeat("grows ", i*i), i)
	}
	b := mustBuilder(t, db, name+".kinds")
	store := mysqlstore.Store{DB: db, Statements: mysqlstore.NewStatements(db, 8)}
	t.Cleanup(store.Statements.Close)
	for _, tt := range []struct {
		name   string
		query  string
		decode bool
	}{
		{"all columns", `{"$select":{}}`, false},
		{"decoded JSON", `{"$select":{}}`, true},
		{"some columns, ordered", `{"$select":{"$columns":["j","s","ts"],"$orderBy":{"i":false}}}`, true},
		{"read whole", `{"$select":{"e":true,"n":{"$count":"*"},"$groupBy":"e"}}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := b.SelectJSON([]byte(tt.query), sqlbuild.Scope{})
			if err != nil {
				t.Fatal(err)
			}
			page := sqlbuild.Page{Size: 64}
			rows, err := store.ReadPage(testContext(t), sel, page, tt.decode)
			if err != nil {
				t.Fatal(err)
			}
			payloads, err := store.ReadPayloads(testContext(t), sel, page, tt.decode)
			if err != nil {
				t.Fatal(err)
			}
			if payloads.Rows != nil || len(payloads.Payloads) != len(rows.Rows) || len(rows.Rows) == 0 {
				t.Fatalf("%d payloads (and %d rows) for %d rows", len(payloads.Payloads), len(payloads.Rows), len(rows.Rows))
			}
			if payloads.LastKey != rows.LastKey || payloads.Snapshot != rows.Snapshot {
				t.Errorf("payloads: key %d, snapshot %d; rows: key %d, snapshot %d",
					payloads.LastKey, payloads.Snapshot, rows.LastKey, rows.Snapshot)
			}
			for i, row := range rows.Rows {
				if want := row.AppendJSON(nil); !bytes.Equal(payloads.Payloads[i], want) {
					t.Errorf("row %d:\n got %s\nwant %s", i, payloads.Payloads[i], want)
				}
			}
			// Each payload is capped: appending to one leaves the next alone.
			for i := range payloads.Payloads {
				_ = append(payloads.Payloads[i], "garbage"...)
			}
			for i, row := range rows.Rows {
				if want := row.AppendJSON(nil); !bytes.Equal(payloads.Payloads[i], want) {
					t.Errorf("row %d changed by an append to another: %s", i, payloads.Payloads[i])
				}
			}
		})
	}
}

// BenchmarkReadPage reads one page of 128 events as a stream does
// (payloads) and as values encoded afterwards (what streams did before):
// compare ns/op and allocs/op between the two.
func BenchmarkReadPage(b *testing.B) {
	db, name := mustMigrated(b)
	builder := mustBuilder(b, db, name+".event")
	for i := 0; i < 128; i++ {
		mustExec(b, db, "INSERT INTO `"+name+"`.event (pid, domain, name, data) VALUES ('bench-pid', 'shop', 'created', ?)",
			`{"order": 1234, "items": ["a", "b"], "total": 42.5, "note": "a line of text"}`)
	}
	sel, err := builder.SelectJSON([]byte(`{"$select":{"$where":{"pid":"bench-pid"}}}`), sqlbuild.Scope{})
	if err != nil {
		b.Fatal(err)
	}
	store := mysqlstore.Store{DB: db, Statements: mysqlstore.NewStatements(db, 8)}
	b.Cleanup(store.Statements.Close)
	page := sqlbuild.Page{Snapshot: 1 << 62, Size: 128}
	ctx := testContext(b)
	b.Run("payloads", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := store.ReadPayloads(ctx, sel, page, false)
			if err != nil || len(got.Payloads) != 128 {
				b.Fatalf("%d payloads, %v", len(got.Payloads), err)
			}
		}
	})
	b.Run("values then encoded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := store.ReadPage(ctx, sel, page, false)
			if err != nil || len(got.Rows) != 128 {
				b.Fatalf("%d rows, %v", len(got.Rows), err)
			}
			var buf []byte
			for _, row := range got.Rows {
				buf = row.AppendJSON(buf)
			}
		}
	})
}

// TestKeysetPagesSeek checks the plan MariaDB runs for a later page of a
// stream of one pid: a range on the pid index that starts at the last key
// (both key parts used). Reading the pid's index entries from its first one
// and filtering the key instead made every page cost as much as all the
// pages before it.
func TestKeysetPagesSeek(t *testing.T) {
	t.Parallel()
	db, name := mustMigrated(t)
	mustSeedLongPid(t, db, name, "'created'")
	var lo, hi int64
	if err := db.QueryRowContext(testContext(t), "SELECT MIN(id), MAX(id) FROM `"+name+"`.event WHERE pid = 'long'").Scan(&lo, &hi); err != nil {
		t.Fatal(err)
	}
	sel, err := mustBuilder(t, db, name+".event").SelectJSON([]byte(`{"$select":{"$where":{"pid":"long"}}}`), sqlbuild.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	tbl, query, plan := explainPage(t, db, sel, sqlbuild.Page{Snapshot: hi, After: (lo + hi) / 2, Size: 256})
	if parts := fmt.Sprint(tbl["used_key_parts"]); tbl["access_type"] != "range" || tbl["key"] != "pid" || parts != "[pid id]" {
		t.Fatalf("later page: %v on %v, key parts %s; want a range on pid and id\n%s\n%s", tbl["access_type"], tbl["key"], parts, query, plan)
	}

	// An index dropped after the catalog was read: pages still read, with
	// the plan left to MySQL.
	mustExec(t, db, "ALTER TABLE `"+name+"`.event DROP INDEX pid")
	store := mysqlstore.Store{DB: db, Statements: mysqlstore.NewStatements(db, 8)}
	t.Cleanup(store.Statements.Close)
	page, err := store.ReadPayloads(testContext(t), sel, sqlbuild.Page{Snapshot: hi, After: (lo + hi) / 2, Size: 256}, false)
	if err != nil {
		t.Fatalf("page after the index was dropped: %v", err)
	}
	if len(page.Payloads) != 256 || page.LastKey <= (lo+hi)/2 || !page.SeekGone {
		t.Fatalf("page after the index was dropped: %d rows up to key %d, seek gone %v", len(page.Payloads), page.LastKey, page.SeekGone)
	}
	// The next page, told so, does not try the index again.
	page, err = store.ReadPayloads(testContext(t), sel, sqlbuild.Page{Snapshot: hi, After: page.LastKey, Size: 256, NoSeek: true}, false)
	if err != nil || len(page.Payloads) == 0 || page.SeekGone {
		t.Fatalf("next page: %d rows, seek gone %v, %v", len(page.Payloads), page.SeekGone, err)
	}
}

// TestChooseSeek checks that a stream of a query with no index of exactly
// its equalities seeks, on its later pages, on the index MySQL's statistics
// favour: pid for a long pid of a common name, name for a rare name.
func TestChooseSeek(t *testing.T) {
	t.Parallel()
	db, name := mustMigrated(t)
	mustSeedLongPid(t, db, name, "IF(seq = 777, 'rare', 'created')")
	b := mustBuilder(t, db, name+".event")
	store := mysqlstore.Store{DB: db}
	for _, tt := range []struct {
		query, seek string
		parts       string // key parts of the hinted page's range
	}{
		{`{"$select":{"$where":{"pid":"long","name":"created"}}}`, "pid", "[pid id]"},
		{`{"$select":{"$where":{"name":"rare","pid":{"$eq":"other-1"}}}}`, "name", "[name id]"},
	} {
		t.Run(tt.query, func(t *testing.T) {
			sel, err := b.SelectJSON([]byte(tt.query), sqlbuild.Scope{})
			if err != nil {
				t.Fatal(err)
			}
			page := sqlbuild.Page{Snapshot: 20000, After: 10000, Size: 256}
			seek, err := store.ChooseSeek(testContext(t), sel, page)
			if err != nil || seek != tt.seek {
				t.Fatalf("seek %q (%v), want %q", seek, err, tt.seek)
			}
			page.Seek = seek
			tbl, query, plan := explainPage(t, db, sel, page)
			if tbl["access_type"] != "range" || tbl["key"] != tt.seek || fmt.Sprint(tbl["used_key_parts"]) != tt.parts {
				t.Fatalf("hinted page: %v; want a range on %s\n%s\n%s", tbl, tt.parts, query, plan)
			}
		})
	}
	// An exact index needs no choice, nor does a query with no equality.
	for _, q := range []string{`{"$select":{"$where":{"pid":"long"}}}`, `{"$select":{"$where":{"pid":{"$ne":"x"}}}}`} {
		sel, err := b.SelectJSON([]byte(q), sqlbuild.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		if seek, err := store.ChooseSeek(testContext(t), sel, sqlbuild.Page{Snapshot: 20000, After: 1, Size: 10}); seek != "" || err != nil {
			t.Errorf("%s: seek %q (%v), want none", q, seek, err)
		}
	}
}

// mustSeedLongPid inserts 20,000 events as they arrive: every other one of
// pid "long", the rest spread over 97 other pids, named by nameSQL (an SQL
// expression of seq); then refreshes the table's statistics.
func mustSeedLongPid(t *testing.T, db *sql.DB, database, nameSQL string) {
	t.Helper()
	mustExec(t, db, "INSERT INTO `"+database+"`.event (pid, domain, name, data) "+
		"SELECT IF(seq % 2 = 0, 'long', CONCAT('other-', seq % 97)), 'shop', "+nameSQL+", '{}' FROM `"+database+"`.seq_1_to_20000")
	mustExec(t, db, "ANALYZE TABLE `"+database+"`.event")
}

// explainPage renders page p of sel and returns MySQL's plan of it: its
// first table access, the query and the whole plan.
func explainPage(t *testing.T, db *sql.DB, sel *sqlbuild.Select, p sqlbuild.Page) (table map[string]any, query, plan string) {
	t.Helper()
	query, args, err := sel.PageSQL(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(testContext(t), "EXPLAIN FORMAT=JSON "+query, args...).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	var explained any
	if err := json.Unmarshal([]byte(plan), &explained); err != nil {
		t.Fatalf("%v: %s", err, plan)
	}
	if table = findTable(explained); table == nil {
		t.Fatalf("no table access in the plan: %s", plan)
	}
	return table, query, plan
}

// findTable finds the first table access ({"access_type": ...}) in an
// EXPLAIN FORMAT=JSON document.
func findTable(v any) map[string]any {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["access_type"]; ok {
			return v
		}
		for _, child := range v {
			if t := findTable(child); t != nil {
				return t
			}
		}
	case []any:
		for _, child := range v {
			if t := findTable(child); t != nil {
				return t
			}
		}
	}
	return nil
}
