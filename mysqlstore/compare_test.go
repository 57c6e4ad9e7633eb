package mysqlstore_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/eventsource/eventsource/mysqlstore"
)

// originalSchema is the event table of the original Node project: five
// columns, no id, prefix indexes.
const originalSchema = "CREATE TABLE `%s`.`event` (" +
	"`timestamp` DATETIME(6) NOT NULL DEFAULT NOW(6), `pid` VARCHAR(255) NOT NULL, `domain` VARCHAR(255) NOT NULL, " +
	"`name` VARCHAR(255) NOT NULL, `data` JSON NOT NULL, " +
	"KEY `timestamp` (`timestamp`), KEY `pid` (`pid`(100)), KEY `domain` (`domain`(100)), KEY `name` (`name`(100)), " +
	"KEY `domain_name` (`domain`(100), `name`(100))) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

// summary is a difference as the tests check it: object, verdict, and
// the line it prints.
func summary(diffs []mysqlstore.Difference) map[string]mysqlstore.Difference {
	out := map[string]mysqlstore.Difference{}
	for _, d := range diffs {
		out[d.Table+" "+d.Object] = d
	}
	return out
}

// A migrated database is what Migrate creates: no differences. This keeps
// Compare's picture of the schema in step with the migrations.
func TestCompareMigrated(t *testing.T) {
	t.Parallel()
	db, name := mustMigrated(t)
	diffs, err := mysqlstore.Compare(testContext(t), db, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 0 {
		t.Fatalf("a migrated database differs:\n%s", lines(diffs))
	}
}

func TestCompareNoTable(t *testing.T) {
	t.Parallel()
	db, name := mustDatabase(t)
	diffs, err := mysqlstore.Compare(testContext(t), db, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 1 || !diffs[0].Missing() || diffs[0].Table != "event" || !diffs[0].Changes {
		t.Fatalf("differences of no database:\n%s", lines(diffs))
	}
}

func lines(diffs []mysqlstore.Difference) string {
	var b strings.Builder
	for _, d := range diffs {
		fmt.Fprintln(&b, d)
	}
	return b.String()
}

// The original schema: Compare says what Migrate changes (data made
// nullable, the consumer table created) and what it leaves and why (no id,
// prefix indexes); after Migrate only what it leaves remains.
func TestCompareOriginalSchema(t *testing.T) {
	t.Parallel()
	db, name := mustDatabase(t)
	ctx := testContext(t)
	mustExec(t, db, "CREATE DATABASE `"+name+"`")
	mustExec(t, db, fmt.Sprintf(originalSchema, name))
	diffs, err := mysqlstore.Compare(ctx, db, name)
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]string{ // object: part of its effect
		"event column pid":        "varchar(255)",
		"event column domain":     "varchar(255)",
		"event column name":       "varchar(255)",
		"event column id":         "no id column: original schema, safe writes and keyset paging off",
		"event index pid":         "index pid is a prefix index: streams on pid read whole pages without seeking on it",
		"event index domain":      "prefix index",
		"event index name":        "prefix index",
		"event index domain_name": "streams on domain, name read whole pages",
	}
	changed := []string{"event column data", "eventsource_consumer table"}
	got := summary(diffs)
	for object, effect := range left {
		d, ok := got[object]
		if !ok || d.Changes || !strings.Contains(d.String(), effect) {
			t.Errorf("%s: got %q, want a difference left as it is, saying %q", object, d, effect)
		}
	}
	for _, object := range changed {
		if d, ok := got[object]; !ok || !d.Changes {
			t.Errorf("%s: got %q, want a difference Migrate changes", object, d)
		}
	}
	if len(got) != len(left)+len(changed) {
		t.Errorf("%d differences, want %d", len(got), len(left)+len(changed))
	}
	if d := got["event index pid"]; d.Live != "(pid(100))" || d.Want != "(pid)" {
		t.Errorf("index pid: live %q, want %q", d.Live, d.Want)
	}
	if d := got["event column data"]; d.Live != "json NOT NULL" || d.Want != "json NULL" {
		t.Errorf("column data: live %q, want %q", d.Live, d.Want)
	}
	if t.Failed() {
		t.Fatalf("differences:\n%s", lines(diffs))
	}

	if _, err := mysqlstore.Migrate(ctx, db, name); err != nil {
		t.Fatal(err)
	}
	after, err := mysqlstore.Compare(ctx, db, name)
	if err != nil {
		t.Fatal(err)
	}
	var want []mysqlstore.Difference
	for _, d := range diffs {
		if !d.Changes {
			want = append(want, d)
		}
	}
	if !slices.Equal(after, want) {
		t.Fatalf("after Migrate:\n%swant what it leaves:\n%s", lines(after), lines(want))
	}
}

// Each change to a migrated database is one difference, with its verdict.
func TestCompareChanged(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		alter   []string // {{db}} is the database
		object  string
		live    string
		changes bool
		effect  string // part of the effect
	}{
		{"missing index", []string{"ALTER TABLE `{{db}}`.event DROP INDEX domain_name"},
			"event index domain_name", "missing", false, "queries binding domain, name read through another index or the whole table"},
		{"index of the same columns under another name", []string{"ALTER TABLE `{{db}}`.event DROP INDEX pid, ADD INDEX pid_idx (pid)"},
			"event index pid", "missing (index pid_idx (pid) has its columns)", false, "harmless: the server seeks on pid_idx instead"},
		{"index of other columns", []string{"ALTER TABLE `{{db}}`.event DROP INDEX name, ADD INDEX name (name, pid)"},
			"event index name", "(name, pid)", false, "streams on name don't seek on it"},
		{"another column type", []string{"ALTER TABLE `{{db}}`.event MODIFY pid VARCHAR(100) NOT NULL"},
			"event column pid", "varchar(100) NOT NULL", false, "pid holds only 100 characters: persists of longer values fail"},
		{"nullable", []string{"ALTER TABLE `{{db}}`.event MODIFY name VARCHAR(200) NULL"},
			"event column name", "varchar(200) NULL", false, "streams ordered by it page by offset"},
		{"data not null", []string{"ALTER TABLE `{{db}}`.event MODIFY data JSON NOT NULL"},
			"event column data", "json NOT NULL", true, ""},
		{"data not JSON", []string{"ALTER TABLE `{{db}}`.event MODIFY data MEDIUMTEXT NULL"},
			"event column data", "mediumtext NULL", false, "data is not a JSON column"},
		{"column order", []string{"ALTER TABLE `{{db}}`.event MODIFY pid VARCHAR(200) NOT NULL AFTER domain"},
			"event column order", "timestamp, domain, pid, name, data, id, eventId, version", false, "SELECT * rows list the columns in this order"},
		{"extra column", []string{"ALTER TABLE `{{db}}`.event ADD COLUMN extra INT NOT NULL"},
			"event column extra", "int NOT NULL", false, "persist fails: it is NOT NULL without a default"},
		{"key not auto-increment", []string{"ALTER TABLE `{{db}}`.event MODIFY id BIGINT NOT NULL"},
			"event key", "PRIMARY KEY (id)", false, "keyset paging off"},
		{"no trigger", []string{"DROP TRIGGER `{{db}}`.event_version"},
			"event trigger event_version", "missing", true, ""},
		{"no stream table", []string{"DROP TABLE `{{db}}`.event_stream"},
			"event_stream table", "missing", true, ""},
		{"no consumer table", []string{"DROP TABLE `{{db}}`.eventsource_consumer"},
			"eventsource_consumer table", "missing", true, ""},
		{"consumer table of another shape", []string{"ALTER TABLE `{{db}}`.eventsource_consumer DROP INDEX server"},
			"eventsource_consumer index server", "missing", false, "durable consumers read and write it as it is"},
		{"no safe writes", []string{"DROP TRIGGER `{{db}}`.event_version", "DROP TABLE `{{db}}`.event_stream",
			"ALTER TABLE `{{db}}`.event DROP COLUMN eventId, DROP COLUMN version"},
			"event column eventId", "missing", true, ""},
		{"eventId not unique", []string{"ALTER TABLE `{{db}}`.event DROP INDEX eventId"},
			"event index eventId", "missing", false, "a retried persist with an event id may store it twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, name := mustMigrated(t)
			ctx := testContext(t)
			for _, stmt := range tt.alter {
				mustExec(t, db, strings.ReplaceAll(stmt, "{{db}}", name))
			}
			diffs, err := mysqlstore.Compare(ctx, db, name)
			if err != nil {
				t.Fatal(err)
			}
			d, ok := summary(diffs)[tt.object]
			if !ok || d.Live != tt.live || d.Changes != tt.changes || !strings.Contains(d.Effect, tt.effect) {
				t.Fatalf("%s: got %+v, want live %q, changes %v, effect with %q\nall:\n%s", tt.object, d, tt.live, tt.changes, tt.effect, lines(diffs))
			}
			if !tt.changes {
				return
			}
			// What Compare says Migrate changes, Migrate changes.
			if _, err := mysqlstore.Migrate(ctx, db, name); err != nil {
				t.Fatal(err)
			}
			after, err := mysqlstore.Compare(ctx, db, name)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != 0 {
				t.Fatalf("after Migrate:\n%s", lines(after))
			}
		})
	}
}
