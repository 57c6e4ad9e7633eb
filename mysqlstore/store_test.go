package mysqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventsource/eventsource/cursor"
	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/sqlbuild"
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// mustDatabase opens a pool on the local MariaDB and gives the test a fresh
// database es_mysqlstore_<hex>, dropped when the test ends. It does not
// migrate.
func mustDatabase(tb testing.TB) (*sql.DB, string) {
	tb.Helper()
	name := "es_mysqlstore_" + randomHex(6)
	db, err := mysqlstore.Open(mysqlstore.Config{Host: "127.0.0.1", Port: 3306, User: "root", Charset: "utf8mb4", PoolSize: 4})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
		db.Close()
	})
	if err := db.PingContext(testContext(tb)); err != nil {
		tb.Fatalf("MariaDB on 127.0.0.1:3306: %v", err)
	}
	return db, name
}

// mustMigrated is mustDatabase with the schema applied.
func mustMigrated(tb testing.TB) (*sql.DB, string) {
	tb.Helper()
	db, name := mustDatabase(tb)
	if _, err := mysqlstore.Migrate(testContext(tb), db, name); err != nil {
		tb.Fatal(err)
	}
	return db, name
}

func mustExec(tb testing.TB, db *sql.DB, query string, args ...any) {
	tb.Helper()
	if _, err := db.ExecContext(testContext(tb), query, args...); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}

func mustBuilder(tb testing.TB, db *sql.DB, tables ...string) *sqlbuild.Builder {
	tb.Helper()
	catalog, err := mysqlstore.LoadCatalog(testContext(tb), db, tables)
	if err != nil {
		tb.Fatal(err)
	}
	return sqlbuild.NewBuilder(catalog, sqlbuild.Limits{})
}

func mustInsert(tb testing.TB, db *sql.DB, b *sqlbuild.Builder, query string) messages.OK {
	tb.Helper()
	ins, err := b.InsertJSON([]byte(query), sqlbuild.Scope{})
	if err != nil {
		tb.Fatalf("build %s: %v", query, err)
	}
	ok, err := mysqlstore.Exec(testContext(tb), db, ins)
	if err != nil {
		tb.Fatalf("exec %s: %v", query, err)
	}
	return ok
}

// mustPage builds query with b and reads one page of it.
func mustPage(tb testing.TB, db *sql.DB, b *sqlbuild.Builder, query string, p sqlbuild.Page, decode bool) cursor.Page {
	tb.Helper()
	sel, err := b.SelectJSON([]byte(query), sqlbuild.Scope{})
	if err != nil {
		tb.Fatalf("build %s: %v", query, err)
	}
	text, args, err := sel.PageSQL(p)
	if err != nil {
		tb.Fatalf("page SQL of %s: %v", query, err)
	}
	page, err := mysqlstore.ReadPage(testContext(tb), db, text, args, mysqlstore.RowOptions{DecodeJSON: decode, Table: sel.Table})
	if err != nil {
		tb.Fatalf("read page of %s (%s): %v", query, text, err)
	}
	return page
}

func columnNames(tb testing.TB, db *sql.DB, schema, table string) []string {
	tb.Helper()
	return queryColumn[string](tb, db, `SELECT COLUMN_NAME FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, schema, table)
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	db, name := mustDatabase(t)
	ctx := testContext(t)
	for i := range 2 {
		if _, err := mysqlstore.Migrate(ctx, db, name); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
	want := []string{"timestamp", "pid", "domain", "name", "data", "id", "eventId", "version"}
	if got := columnNames(t, db, name, "event"); !slices.Equal(got, want) {
		t.Fatalf("columns of %s.event = %q, want %q", name, got, want)
	}
	// The columns of safe writes are invisible: SELECT * is what it was.
	rows, err := db.QueryContext(ctx, "SELECT * FROM `"+name+"`.event")
	if err != nil {
		t.Fatal(err)
	}
	star, err := rows.Columns()
	rows.Close()
	if want := want[:6]; err != nil || !slices.Equal(star, want) {
		t.Fatalf("SELECT * columns = %q, %v; want %q", star, err, want)
	}
	// A third run leaves rows alone.
	mustExec(t, db, "INSERT INTO `"+name+"`.event (pid, domain, name, data) VALUES ('p', 'd', 'n', '{}')")
	if _, err := mysqlstore.Migrate(ctx, db, name); err != nil {
		t.Fatalf("Migrate over a table with rows: %v", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM `"+name+"`.event").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows after migrating again = %d, %v; want 1", n, err)
	}
}

func TestMigrateLeavesALegacyTable(t *testing.T) {
	t.Parallel()
	db, name := mustDatabase(t)
	mustExec(t, db, "CREATE DATABASE `"+name+"`")
	mustExec(t, db, "CREATE TABLE `"+name+"`.event (timestamp DATETIME(6) NOT NULL DEFAULT NOW(6), pid VARCHAR(200) NOT NULL, domain VARCHAR(200) NOT NULL, name VARCHAR(200) NOT NULL, data JSON NOT NULL)")
	if _, err := mysqlstore.Migrate(testContext(t), db, name); err != nil {
		t.Fatal(err)
	}
	want := []string{"timestamp", "pid", "domain", "name", "data"}
	if got := columnNames(t, db, name, "event"); !slices.Equal(got, want) {
		t.Fatalf("columns of the original table after Migrate = %q, want %q", got, want)
	}
}

// A table of an earlier release, whose data was NOT NULL, is altered to
// hold NULL, and Migrate says so once; its rows stay.
func TestMigrateAllowsNullData(t *testing.T) {
	t.Parallel()
	db, name := mustDatabase(t)
	ctx := testContext(t)
	mustExec(t, db, "CREATE DATABASE `"+name+"`")
	mustExec(t, db, "CREATE TABLE `"+name+"`.event (`timestamp` DATETIME(6) NOT NULL DEFAULT NOW(6), pid VARCHAR(200) NOT NULL, domain VARCHAR(200) NOT NULL, name VARCHAR(200) NOT NULL, data JSON NOT NULL, id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY)")
	mustExec(t, db, "INSERT INTO `"+name+"`.event (pid, domain, name, data) VALUES ('p', 'd', 'n', '{\"a\":1}')")
	changes, err := mysqlstore.Migrate(ctx, db, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) == 0 || !strings.Contains(changes[0], "data may now hold NULL") {
		t.Fatalf("changes %q, want the one that lets data hold NULL", changes)
	}
	mustExec(t, db, "INSERT INTO `"+name+"`.event (pid, domain, name, data) VALUES ('p', 'd', 'n', NULL)")
	if changes, err := mysqlstore.Migrate(ctx, db, name); err != nil || len(changes) != 0 {
		t.Fatalf("second Migrate: %q, %v; want nothing to change", changes, err)
	}
	var rows int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM `"+name+"`.event WHERE JSON_VALUE(data, '$.a') = 1 OR data IS NULL").Scan(&rows); err != nil || rows != 2 {
		t.Fatalf("rows after migrating = %d, %v; want the old row and the NULL one", rows, err)
	}
	// The JSON check stays.
	if _, err := db.ExecContext(ctx, "INSERT INTO `"+name+"`.event (pid, domain, name, data) VALUES ('p', 'd', 'n', 'not json')"); err == nil {
		t.Fatal("data took text that is not JSON after the change")
	}
}

func TestMigrateRefusesBadNames(t *testing.T) {
	t.Parallel()
	db, _ := mustDatabase(t)
	for _, name := range []string{"", "a-b", "a`b", "a b", "a.b", "x;DROP DATABASE y", strings.Repeat("a", 65)} {
		if _, err := mysqlstore.Migrate(testContext(t), db, name); err == nil {
			t.Errorf("Migrate(%q) succeeded, want an error", name)
			// Whatever it made is ours to remove.
			_, _ = db.Exec("DROP DATABASE IF EXISTS `" + strings.ReplaceAll(name, "`", "``") + "`")
		}
	}
}

// TestEventTableIsTheMigratedOne keeps EventTable, which eventsource sql
// translates with offline, equal to what LoadCatalog reads from a migrated
// database: columns, key and indexes.
func TestEventTableIsTheMigratedOne(t *testing.T) {
	t.Parallel()
	db, name := mustMigrated(t)
	catalog, err := mysqlstore.LoadCatalog(testContext(t), db, []string{name + ".event"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := *catalog.Default(), *mysqlstore.EventTable(name); !reflect.DeepEqual(got, want) {
		t.Fatalf("migrated event table\n%+v\nEventTable\n%+v", got, want)
	}
}

func TestLoadCatalog(t *testing.T) {
	t.Parallel()
	db, name := mustMigrated(t)
	mustExec(t, db, "CREATE TABLE `"+name+"`.legacy (timestamp DATETIME(6) NOT NULL DEFAULT NOW(6), pid VARCHAR(200) NOT NULL, domain VARCHAR(200) NOT NULL, name VARCHAR(200) NOT NULL, data JSON NOT NULL)")
	// Neither a composite key nor a non-AUTO_INCREMENT one can be paged on.
	mustExec(t, db, "CREATE TABLE `"+name+"`.composite (a BIGINT NOT NULL, b BIGINT NOT NULL, PRIMARY KEY (a, b))")
	mustExec(t, db, "CREATE TABLE `"+name+"`.natural (code VARCHAR(20) NOT NULL PRIMARY KEY, n INT, "+
		"note TEXT, KEY by_n_code (n, code), KEY by_prefix (code(4)), FULLTEXT KEY words (note))")
	tests := []struct {
		table   string
		columns []string
		json    []string
		key     string
		indexes string
	}{
		{"event", []string{"timestamp", "pid", "domain", "name", "data", "id", "eventId", "version"}, []string{"data"}, "id",
			"domain(domain) domain_name(domain,name) eventId(eventId) name(name) pid(pid) timestamp(timestamp)"},
		{"legacy", []string{"timestamp", "pid", "domain", "name", "data"}, []string{"data"}, "", ""},
		{"composite", []string{"a", "b"}, nil, "", ""},
		// Prefix and full-text indexes cannot be sought on by whole values.
		{"natural", []string{"code", "n", "note"}, nil, "", "by_n_code(n,code)"},
	}
	for _, tt := range tests {
		t.Run(tt.table, func(t *testing.T) {
			t.Parallel()
			catalog, err := mysqlstore.LoadCatalog(testContext(t), db, []string{name + "." + tt.table})
			if err != nil {
				t.Fatal(err)
			}
			tbl := catalog.Default()
			if tbl.Schema != name || tbl.Name != tt.table {
				t.Fatalf("default table %s, want %s.%s", tbl.QualifiedName(), name, tt.table)
			}
			var cols, jsonCols []string
			for _, c := range tbl.Columns {
				cols = append(cols, c.Name)
				if c.JSON {
					jsonCols = append(jsonCols, c.Name)
				}
			}
			if !slices.Equal(cols, tt.columns) {
				t.Errorf("columns %q, want %q", cols, tt.columns)
			}
			if !slices.Equal(jsonCols, tt.json) {
				t.Errorf("JSON columns %q, want %q", jsonCols, tt.json)
			}
			if tbl.Key != tt.key {
				t.Errorf("Key %q, want %q", tbl.Key, tt.key)
			}
			var indexes []string
			for _, idx := range tbl.Indexes {
				indexes = append(indexes, idx.Name+"("+strings.Join(idx.Columns, ",")+")")
			}
			if got := strings.Join(indexes, " "); got != tt.indexes {
				t.Errorf("indexes %q, want %q", got, tt.indexes)
			}
			for _, c := range tbl.Columns {
				if invisible := c.Name == "eventId" || c.Name == "version"; c.Invisible != invisible {
					t.Errorf("column %s: Invisible = %v", c.Name, c.Invisible)
				}
			}
			if c := tbl.Column("timestamp"); c != nil && c.TimeDigits != 6 {
				t.Errorf("timestamp TimeDigits %d, want 6", c.TimeDigits)
			}
		})
	}

	t.Run("several tables, the first is the default", func(t *testing.T) {
		t.Parallel()
		catalog, err := mysqlstore.LoadCatalog(testContext(t), db, []string{name + ".legacy", name + ".event"})
		if err != nil {
			t.Fatal(err)
		}
		if got := catalog.Default().Name; got != "legacy" {
			t.Fatalf("default table %q, want legacy", got)
		}
		if catalog.Lookup("event") == nil || catalog.Lookup(name+".event") == nil {
			t.Fatal("event is not in the catalog")
		}
	})

	errTests := []struct {
		name   string
		tables []string
		want   []string // substrings of the error
	}{
		{"missing table", []string{name + ".nosuch"}, []string{name + ".nosuch", "no such table", "migrate"}},
		{"missing database", []string{"es_mysqlstore_nosuch_" + randomHex(4) + ".event"}, []string{"no such table"}},
		{"missing among present", []string{name + ".event", name + ".gone"}, []string{name + ".gone", "no such table"}},
		{"not schema.table", []string{"event"}, []string{`"event"`, "schema.table"}},
		{"no tables", nil, []string{"no tables"}},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := mysqlstore.LoadCatalog(testContext(t), db, tt.tables)
			if err == nil {
				t.Fatalf("LoadCatalog(%q) succeeded", tt.tables)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestExec(t *testing.T) {
	t.Parallel()
	db, name := mustMigrated(t)
	b := mustBuilder(t, db, name+".event")
	ctx := testContext(t)

	first := mustInsert(t, db, b, `{"$insert":{"$documents":{"pid":"one","domain":"d","name":"n","data":{"a":1}}}}`)
	if want := messages.NewOK(1, 1); !reflect.DeepEqual(first, want) {
		t.Fatalf("OK of the first insert = %+v, want %+v", first, want)
	}

	ok := mustInsert(t, db, b, `{"$insert":{"$documents":[
		{"pid":"many","domain":"d","name":"n0","data":{"i":0}},
		{"pid":"many","domain":"d","name":"n1","data":[1,2]},
		{"pid":"many","domain":"d","name":"n2","data":"{\"text\":true}"}]}}`)
	var minID, maxID int64
	if err := db.QueryRowContext(ctx, "SELECT MIN(id), MAX(id) FROM `"+name+"`.event WHERE pid = 'many'").Scan(&minID, &maxID); err != nil {
		t.Fatal(err)
	}
	if want := messages.NewOK(3, minID); !reflect.DeepEqual(ok, want) {
		t.Fatalf("OK of a 3-row insert = %+v, want %+v (insertId of the first row)", ok, want)
	}
	if maxID != minID+2 {
		t.Fatalf("ids %d..%d, want 3 consecutive", minID, maxID)
	}
	if got := string(ok.Encode()); !strings.Contains(got, `"message":"&Records: 3  Duplicates: 0  Warnings: 0"`) {
		t.Fatalf("Encode = %s", got)
	}

	// A table without AUTO_INCREMENT reports insertId 0.
	mustExec(t, db, "CREATE TABLE `"+name+"`.legacy (timestamp DATETIME(6) NOT NULL DEFAULT NOW(6), pid VARCHAR(200) NOT NULL, domain VARCHAR(200) NOT NULL, name VARCHAR(200) NOT NULL, data JSON NOT NULL)")
	lb := mustBuilder(t, db, name+".legacy")
	ok = mustInsert(t, db, lb, `{"$insert":{"$documents":[{"pid":"p","domain":"d","name":"n","data":1},{"pid":"p","domain":"d","name":"n","data":2}]}}`)
	if want := messages.NewOK(2, 0); !reflect.DeepEqual(ok, want) {
		t.Fatalf("OK of an insert into the original schema = %+v, want %+v", ok, want)
	}

	// A failing statement names the table.
	ins, err := b.InsertJSON([]byte(`{"$insert":{"$documents":{"pid":"p","domain":"d","name":"n","data":{}}}}`), sqlbuild.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "DROP TABLE `"+name+"`.event")
	if _, err := mysqlstore.Exec(ctx, db, ins); err == nil || !strings.Contains(err.Error(), name+".event") {
		t.Fatalf("Exec into a dropped table: %v, want an error naming %s.event", err, name)
	}
}

func TestReadPage(t *testing.T) {
	t.Parallel()
	db, name := mustMigrated(t)
	b := mustBuilder(t, db, name+".event")
	mustInsert(t, db, b, `{"$insert":{"$documents":[
		{"timestamp":"2020-04-06 11:35:18.414123","pid":"p","domain":"shop","name":"created","data":{"total":42,"items":["a","b"]}},
		{"timestamp":"2020-04-06 11:35:19.000001","pid":"p","domain":"shop","name":"paid","data":"{\"method\": \"card\"}"},
		{"timestamp":"2021-12-31 23:59:59.999999","pid":"p","domain":"shop","name":"shipped","data":null},
		{"pid":"other","domain":"shop","name":"created","data":{}}]}}`)
	var ids []int64
	rows, err := db.QueryContext(testContext(t), "SELECT id FROM `"+name+"`.event WHERE pid = 'p' ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) != 3 {
		t.Fatalf("ids %v, want 3", ids)
	}
	snapshot := ids[2] + 1 // the "other" row

	wantColumns := []string{"timestamp", "pid", "domain", "name", "data", "id"}
	wantTimes := []time.Time{
		time.Date(2020, 4, 6, 11, 35, 18, 414123000, time.UTC),
		time.Date(2020, 4, 6, 11, 35, 19, 1000, time.UTC),
		time.Date(2021, 12, 31, 23, 59, 59, 999999000, time.UTC),
	}

	t.Run("all columns", func(t *testing.T) {
		t.Parallel()
		page := mustPage(t, db, b, `{"$select":{"$where":{"pid":"p"}}}`, sqlbuild.Page{Snapshot: snapshot, Size: 10}, false)
		if len(page.Rows) != 3 {
			t.Fatalf("%d rows, want 3", len(page.Rows))
		}
		if page.LastKey != ids[2] {
			t.Fatalf("LastKey %d, want %d", page.LastKey, ids[2])
		}
		for i, row := range page.Rows {
			if !slices.Equal(row.Columns, wantColumns) {
				t.Fatalf("row %d columns %q, want %q (no %s)", i, row.Columns, wantColumns, sqlbuild.KeyAlias)
			}
			if len(row.Values) != len(wantColumns) {
				t.Fatalf("row %d has %d values", i, len(row.Values))
			}
			ts, ok := row.Values[0].(time.Time)
			if !ok {
				t.Fatalf("row %d timestamp is %T, want time.Time", i, row.Values[0])
			}
			if ts.Location() != time.UTC || !ts.Equal(wantTimes[i]) {
				t.Errorf("row %d timestamp %v (%v), want %v in UTC", i, ts, ts.Location(), wantTimes[i])
			}
			if row.TimeDigits[0] != 6 {
				t.Errorf("row %d TimeDigits %v, want 6 for timestamp", i, row.TimeDigits)
			}
			if id, ok := row.Values[5].(int64); !ok || id != ids[i] {
				t.Errorf("row %d id %#v, want int64 %d", i, row.Values[5], ids[i])
			}
			for j, want := range []string{"p", "shop"} {
				if row.Values[1+j] != want {
					t.Errorf("row %d %s = %#v, want %q", i, wantColumns[1+j], row.Values[1+j], want)
				}
			}
		}
		// JSON columns arrive as the stored JSON text; a null document
		// value was stored as SQL NULL, as the original stored it.
		for i, want := range []string{`{"total":42,"items":["a","b"]}`, `{"method": "card"}`} {
			got, ok := page.Rows[i].Values[4].(string)
			if !ok || !jsonEqual(got, want) {
				t.Errorf("row %d data %#v, want the JSON text %s", i, page.Rows[i].Values[4], want)
			}
		}
		if v := page.Rows[2].Values[4]; v != nil {
			t.Errorf("row 2 data %#v, want SQL NULL", v)
		}
		// And the encoder writes them in the original's bytes.
		got := string(page.Rows[0].AppendJSON(nil))
		wantPrefix := `{"timestamp":"2020-04-06T11:35:18.414123Z","pid":"p","domain":"shop","name":"created","data":"{`
		if !strings.HasPrefix(got, wantPrefix) || !strings.HasSuffix(got, fmt.Sprintf(`","id":%d}`, ids[0])) {
			t.Errorf("encoded row %s, want %s...\",\"id\":%d}", got, wantPrefix, ids[0])
		}
	})

	t.Run("decoded JSON", func(t *testing.T) {
		t.Parallel()
		page := mustPage(t, db, b, `{"$select":{"$where":{"pid":"p"}}}`, sqlbuild.Page{Snapshot: snapshot, Size: 10}, true)
		if len(page.Rows) != 3 {
			t.Fatalf("%d rows, want 3", len(page.Rows))
		}
		for i, want := range []string{`{"total":42,"items":["a","b"]}`, `{"method":"card"}`} {
			raw, ok := page.Rows[i].Values[4].(json.RawMessage)
			if !ok || !jsonEqual(string(raw), want) {
				t.Errorf("row %d data %#v, want json.RawMessage %s", i, page.Rows[i].Values[4], want)
			}
		}
		if v := page.Rows[2].Values[4]; v != nil {
			t.Errorf("row 2 data %#v, want SQL NULL", v)
		}
		// Only JSON columns are decoded.
		if _, ok := page.Rows[0].Values[1].(string); !ok {
			t.Errorf("pid is %T, want string", page.Rows[0].Values[1])
		}
		got := string(page.Rows[0].AppendJSON(nil))
		if !strings.Contains(got, `"name":"created","data":{"total":`) {
			t.Errorf("encoded row %s, want data as a JSON object", got)
		}
	})

	t.Run("chosen columns in the query's order", func(t *testing.T) {
		t.Parallel()
		page := mustPage(t, db, b, `{"$select":{"$columns":["name","data","pid"],"$where":{"pid":"p"}}}`, sqlbuild.Page{Snapshot: snapshot, Size: 10}, false)
		if len(page.Rows) != 3 || page.LastKey != ids[2] {
			t.Fatalf("%d rows, LastKey %d; want 3 and %d", len(page.Rows), page.LastKey, ids[2])
		}
		want := []string{"name", "data", "pid"}
		for i, row := range page.Rows {
			if !slices.Equal(row.Columns, want) || len(row.Values) != 3 {
				t.Fatalf("row %d columns %q with %d values, want %q", i, row.Columns, len(row.Values), want)
			}
		}
		if got := page.Rows[1].Values[0]; got != "paid" {
			t.Fatalf("row 1 name %#v, want paid", got)
		}
		if got := string(page.Rows[1].AppendJSON(nil)); got != `{"name":"paid","data":"{\"method\": \"card\"}","pid":"p"}` {
			t.Fatalf("encoded row %s", got)
		}
	})

	t.Run("keyset pages", func(t *testing.T) {
		t.Parallel()
		query := `{"$select":{"$where":{"domain":"shop"}}}`
		var got []string
		var after int64
		for range 10 {
			page := mustPage(t, db, b, query, sqlbuild.Page{Snapshot: snapshot, After: after, Size: 2}, false)
			if len(page.Rows) == 0 {
				break
			}
			for _, row := range page.Rows {
				got = append(got, row.Values[3].(string))
			}
			after = page.LastKey
		}
		if want := []string{"created", "paid", "shipped", "created"}; !slices.Equal(got, want) {
			t.Fatalf("names over pages of 2 = %q, want %q", got, want)
		}
		// The snapshot bound leaves out later rows.
		page := mustPage(t, db, b, query, sqlbuild.Page{Snapshot: ids[1], Size: 10}, false)
		if len(page.Rows) != 2 || page.LastKey != ids[1] {
			t.Fatalf("under snapshot %d: %d rows, LastKey %d", ids[1], len(page.Rows), page.LastKey)
		}
	})

	t.Run("empty page", func(t *testing.T) {
		t.Parallel()
		page := mustPage(t, db, b, `{"$select":{"$where":{"pid":"nobody"}}}`, sqlbuild.Page{Snapshot: snapshot, Size: 10}, false)
		if len(page.Rows) != 0 || page.LastKey != 0 {
			t.Fatalf("page %+v, want no rows and LastKey 0", page)
		}
	})

	t.Run("the first page takes the snapshot", func(t *testing.T) {
		t.Parallel()
		page := mustPage(t, db, b, `{"$select":{}}`, sqlbuild.Page{Size: 1}, false)
		if page.Snapshot != snapshot || len(page.Rows) != 1 || len(page.Rows[0].Columns) != 6 {
			t.Fatalf("page %+v, want snapshot %d and one row of the six visible columns", page, snapshot)
		}
	})
}

func TestReadPageLegacyTable(t *testing.T) {
	t.Parallel()
	db, name := mustDatabase(t)
	mustExec(t, db, "CREATE DATABASE `"+name+"`")
	mustExec(t, db, "CREATE TABLE `"+name+"`.legacy (timestamp DATETIME(6) NOT NULL DEFAULT NOW(6), pid VARCHAR(200) NOT NULL, domain VARCHAR(200) NOT NULL, name VARCHAR(200) NOT NULL, data JSON NOT NULL)")
	b := mustBuilder(t, db, name+".legacy")
	mustInsert(t, db, b, `{"$insert":{"$documents":[
		{"timestamp":"2020-01-01 00:00:00.5","pid":"p","domain":"d","name":"a","data":{"x":1}},
		{"timestamp":"2020-01-01 00:00:01","pid":"p","domain":"d","name":"b","data":[true]}]}}`)
	page := mustPage(t, db, b, `{"$select":{"$orderBy":{"timestamp":-1}}}`, sqlbuild.Page{Size: 10}, true)
	if len(page.Rows) != 2 || page.LastKey != 0 {
		t.Fatalf("%d rows, LastKey %d; want 2 and 0", len(page.Rows), page.LastKey)
	}
	want := []string{"timestamp", "pid", "domain", "name", "data"}
	for i, row := range page.Rows {
		if !slices.Equal(row.Columns, want) {
			t.Fatalf("row %d columns %q, want %q", i, row.Columns, want)
		}
	}
	if got, want := string(page.Rows[0].AppendJSON(nil)), `{"timestamp":"2020-01-01T00:00:01.000000Z","pid":"p","domain":"d","name":"b","data":[true]}`; got != want {
		t.Fatalf("row 0 = %s, want %s", got, want)
	}
	if got, want := string(page.Rows[1].AppendJSON(nil)), `{"timestamp":"2020-01-01T00:00:00.500000Z","pid":"p","domain":"d","name":"a","data":{"x":1}}`; got != want {
		t.Fatalf("row 1 = %s, want %s", got, want)
	}
}

// TestDefaultTimestampIsUTC checks that NOW(6) stores UTC: the connections
// set time_zone +00:00 whatever the server's own zone is.
func TestDefaultTimestampIsUTC(t *testing.T) {
	t.Parallel()
	db, name := mustMigrated(t)
	ctx := testContext(t)
	var zone string
	if err := db.QueryRowContext(ctx, "SELECT @@session.time_zone").Scan(&zone); err != nil {
		t.Fatal(err)
	}
	if zone != "+00:00" {
		t.Fatalf("session time_zone %q, want +00:00", zone)
	}
	b := mustBuilder(t, db, name+".event")
	before := time.Now().UTC()
	mustInsert(t, db, b, `{"$insert":{"$documents":{"pid":"now","domain":"d","name":"n","data":{}}}}`)
	after := time.Now().UTC()
	page := mustPage(t, db, b, `{"$select":{"$columns":["timestamp"],"$where":{"pid":"now"}}}`, sqlbuild.Page{Snapshot: 1 << 62, Size: 1}, false)
	if len(page.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(page.Rows))
	}
	ts, ok := page.Rows[0].Values[0].(time.Time)
	if !ok {
		t.Fatalf("timestamp is %T, want time.Time", page.Rows[0].Values[0])
	}
	if ts.Location() != time.UTC {
		t.Errorf("timestamp location %v, want UTC", ts.Location())
	}
	const slack = 5 * time.Second
	if ts.Before(before.Add(-slack)) || ts.After(after.Add(slack)) {
		t.Fatalf("DEFAULT NOW(6) stored %v, want within %v of %v..%v", ts, slack, before, after)
	}
	if ts.Nanosecond()%1000 != 0 {
		t.Errorf("timestamp %v has sub-microsecond digits", ts)
	}
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// TestKeysetOrderedPages reads a select ordered by a DATETIME(6) and a
// string, as a stream does: each page resumes after the order values the
// last one returned (a time with its microseconds, a name compared in the
// column's collation, which ties "a" and "A"), and together the pages give
// every row once, in order, ties in key order.
func TestKeysetOrderedPages(t *testing.T) {
	db, name := mustMigrated(t)
	// Three timestamps, many rows each; names differ only in case, which
	// the utf8mb4 collation ties.
	for i := range 24 {
		ts := fmt.Sprintf("2026-01-0%d 10:00:00.%06d", 1+i%3, 123456*(i%3))
		mustExec(t, db, "INSERT INTO `"+name+"`.event (timestamp, pid, domain, name, data) VALUES (?, 'p', 'd', ?, '{}')",
			ts, []string{"a", "A", "b"}[i%3])
	}
	b := mustBuilder(t, db, name+".event")
	sel, err := b.SelectJSON([]byte(`{"$select":{"$columns":["timestamp","name","id"],"$orderBy":{"timestamp":-1,"name":1}}}`), sqlbuild.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if !sel.KeysetOrdered() {
		t.Fatal("not keyset ordered")
	}
	// The statement's own order, ties by key.
	want := queryIDs(t, db, "SELECT id FROM `"+name+"`.event ORDER BY timestamp DESC, name ASC, id ASC")

	store := mysqlstore.Store{DB: db, Statements: mysqlstore.NewStatements(db, 8)}
	t.Cleanup(store.Statements.Close)
	var got []int64
	page := sqlbuild.Page{Size: 5}
	for range 100 {
		p, err := store.ReadPayloads(testContext(t), sel, page, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, payload := range p.Payloads {
			var row struct{ ID int64 }
			if err := json.Unmarshal(payload, &row); err != nil {
				t.Fatal(err)
			}
			got = append(got, row.ID)
		}
		if len(p.Payloads) < int(page.Size) {
			break
		}
		if _, ok := p.LastOrder[0].(time.Time); !ok || len(p.LastOrder) != 2 {
			t.Fatalf("last order values %#v: want a time and the name", p.LastOrder)
		}
		if page.Snapshot == 0 {
			page.Snapshot = p.Snapshot
		}
		page.After, page.AfterOrder = p.LastKey, p.LastOrder
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages give ids\n %v\nthe statement gives\n %v", got, want)
	}
}
