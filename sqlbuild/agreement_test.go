package sqlbuild

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// minAgreeing is how many corpus selects the translator must already
// translate and agree on; raise it as the translator grows.
const minAgreeing = 222

// TestTranslatorAgreesWithReference runs every corpus select that our
// translator accepts, ours and the reference's, on the same seeded table,
// and requires the same rows (in order where the query orders them). Cases
// noted invalid or differs are where we mean to differ; cases the
// translator refuses are counted as not yet supported.
func TestTranslatorAgreesWithReference(t *testing.T) {
	cases, golden := loadReferenceCorpus(t)
	b, db, name := referenceBuilder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var agreed, unsupported []string
	for i, c := range cases {
		g := golden[i]
		if c.Kind != "select" || g.Error != "" || strings.HasPrefix(c.Note, "invalid:") || strings.HasPrefix(c.Note, "differs:") {
			continue
		}
		query := forDatabase(c.Query, name)
		sel, err := b.SelectJSON([]byte(query), Scope{})
		if err != nil {
			unsupported = append(unsupported, c.Name+": "+err.Error())
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			ours, args, err := sel.SQL()
			if err != nil {
				t.Fatal(err)
			}
			refArgs, err := referenceValues(g.Values)
			if err != nil {
				t.Fatal(err)
			}
			want, err := rowStrings(ctx, db, referenceTable.ReplaceAllString(g.SQL, "`"+name+"`.`event`"), refArgs)
			if err != nil {
				t.Fatalf("reference %s: %v", g.SQL, err)
			}
			got, err := rowStrings(ctx, db, ours, args)
			if err != nil {
				t.Fatalf("ours %s: %v", ours, err)
			}
			if !strings.Contains(strings.ToUpper(g.SQL), "ORDER BY") {
				sort.Strings(want)
				sort.Strings(got)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("rows differ\nours      %s %v\nreference %s %v\n got  %v\n want %v", ours, args, g.SQL, refArgs, got, want)
			}
		})
		agreed = append(agreed, c.Name)
	}
	t.Logf("%d corpus selects translated and compared, %d not yet supported", len(agreed), len(unsupported))
	for _, u := range unsupported {
		t.Logf("not yet: %s", u)
	}
	if len(agreed) < minAgreeing {
		t.Fatalf("only %d corpus selects translated, want at least %d", len(agreed), minAgreeing)
	}
}

// forDatabase is a corpus query on the event table of database name
// instead of eventsource.event, also where a column is qualified by it
// ("eventsource.event.name").
func forDatabase(query []byte, name string) string {
	q := strings.ReplaceAll(string(query), `"eventsource.event"`, `"`+name+`.event"`)
	return strings.ReplaceAll(q, `"eventsource.event.`, `"`+name+`.event.`)
}

// rowStrings runs a select and renders each row as text.
func rowStrings(ctx context.Context, db *sql.DB, query string, args []any) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			cells[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(cells, "|"))
	}
	return out, rows.Err()
}

// Where the reference's SQL is invalid or means something else than the
// query plainly says, ours must give the rows of what the query says,
// written here by hand.
func TestTranslatorMeansWhatTheQuerySays(t *testing.T) {
	b, db, name := referenceBuilder(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	table := "`" + name + "`.`event`"
	tests := []struct {
		name, where, want string
	}{
		{"empty $in matches nothing", `{"pid": {"$in": []}}`, "FALSE"},
		{"empty $nin matches everything", `{"pid": {"$nin": []}}`, "TRUE"},
		{"empty $or matches nothing", `{"$or": []}`, "FALSE"},
		{"empty $and matches everything", `{"$and": []}`, "TRUE"},
		{"empty object matches everything", `{}`, "TRUE"},
		{"null is IS NULL", `{"pid": null}`, "pid IS NULL"},
		{"operators on one column are AND-ed", `{"id": {"$gte": 3, "$lt": 7}}`, "id >= 3 AND id < 7"},
		{"$startsWith is literal", `{"pid": {"$startsWith": "order_"}}`, "pid LIKE 'order\\_%'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := b.SelectJSON([]byte(`{"$select": {"$from": "`+name+`.event", "$where": `+tt.where+`, "$orderBy": "id"}}`), Scope{})
			if err != nil {
				t.Fatal(err)
			}
			ours, args, err := sel.SQL()
			if err != nil {
				t.Fatal(err)
			}
			got, err := rowStrings(ctx, db, ours, args)
			if err != nil {
				t.Fatalf("ours %s: %v", ours, err)
			}
			want, err := rowStrings(ctx, db, "SELECT * FROM "+table+" WHERE "+tt.want+" ORDER BY id", nil)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("%s\n got %d rows %v\nwant %d rows %v", ours, len(got), got, len(want), want)
			}
		})
	}
}

// JSON paths into the data column, $cast, $date and NULLS FIRST/LAST give
// what MariaDB's own SQL for them gives.
func TestJSONPaths(t *testing.T) {
	b, db, name := referenceBuilder(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	table := "`" + name + "`.`event`"
	tests := []struct {
		name, query, want string
	}{
		{"a member as a column",
			`{"$select": {"id": 1, "data->$.customer.tier": "tier", "$where": {"name": "created"}, "$orderBy": "id"}}`,
			"SELECT id, JSON_UNQUOTE(JSON_EXTRACT(data, '$.customer.tier')) FROM " + table + " WHERE name = 'created' ORDER BY id"},
		{"a number compared",
			`{"$select": {"$columns": ["id"], "$where": {"data->$.total": {"$gt": 20}}, "$orderBy": "id"}}`,
			"SELECT id FROM " + table + " WHERE JSON_EXTRACT(data, '$.total') > 20 ORDER BY id"},
		{"$cast to text and $date",
			`{"$select": {"c": {"$cast": {"$expr": "~~id", "$format": "varchar"}}, "d": {"$date": "~~timestamp"}, "$where": {"timestamp": {"$gte": {"$date": "2024-03-05"}}}, "$orderBy": "id"}}`,
			"SELECT CAST(id AS CHAR), DATE(timestamp) FROM " + table + " WHERE timestamp >= DATE('2024-03-05') ORDER BY id"},
		{"nulls first, emulated",
			`{"$select": {"$columns": ["id"], "$orderBy": {"data->$.customer.tier": {"$asc": true, "$nullsFirst": true}, "id": 1}}}`,
			"SELECT id FROM " + table + " ORDER BY JSON_EXTRACT(data, '$.customer.tier') IS NULL DESC, JSON_UNQUOTE(JSON_EXTRACT(data, '$.customer.tier')), id"},
		{"nulls last, emulated",
			`{"$select": {"$columns": ["id"], "$orderBy": {"data->$.customer.tier": {"$desc": true, "$nullsLast": true}, "id": 1}}}`,
			"SELECT id FROM " + table + " ORDER BY JSON_EXTRACT(data, '$.customer.tier') IS NULL, JSON_UNQUOTE(JSON_EXTRACT(data, '$.customer.tier')) DESC, id"},
		{"a boolean compared",
			`{"$select": {"$columns": ["id"], "$where": {"data->$.refund": true}, "$orderBy": "id"}}`,
			"SELECT id FROM " + table + " WHERE data LIKE '%\"refund\":true%' ORDER BY id"},
		{"a boolean compared with $ne",
			`{"$select": {"$columns": ["id"], "$where": {"data->$.refund": {"$ne": true}, "name": "cancelled"}, "$orderBy": "id"}}`,
			"SELECT id FROM " + table + " WHERE data LIKE '%\"refund\":false%' AND name = 'cancelled' ORDER BY id"},
		{"a member present",
			`{"$select": {"$columns": ["id"], "$where": {"data->$.refund": {"$isNull": false}}, "$orderBy": "id"}}`,
			"SELECT id FROM " + table + " WHERE data LIKE '%\"refund\":%' ORDER BY id"},
		{"a string compared, ordered by a member",
			`{"$select": {"$columns": ["id"], "$where": {"data->$.currency": "EUR"}, "$orderBy": {"data->$.total": -1, "id": 1}}}`,
			"SELECT id FROM " + table + " WHERE JSON_UNQUOTE(JSON_EXTRACT(data, '$.currency')) = 'EUR' ORDER BY JSON_EXTRACT(data, '$.total') DESC, id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := strings.Replace(tt.query, `{"$select": {`, `{"$select": {"$from": "`+name+`.event", `, 1)
			sel, err := b.SelectJSON([]byte(q), Scope{})
			if err != nil {
				t.Fatal(err)
			}
			ours, args, err := sel.SQL()
			if err != nil {
				t.Fatal(err)
			}
			got, err := rowStrings(ctx, db, ours, args)
			if err != nil {
				t.Fatalf("ours %s: %v", ours, err)
			}
			want, err := rowStrings(ctx, db, tt.want, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				t.Fatalf("the expected query %s finds no rows: the test would prove nothing", tt.want)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("%s\n got %v\nwant %v", ours, got, want)
			}
		})
	}
}

// insertedRows runs an insert in a transaction that is rolled back and
// returns the rows it added, as text.
func insertedRows(ctx context.Context, db *sql.DB, table, query string, args []any) ([]string, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var before int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM "+table).Scan(&before); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, "SELECT timestamp, pid, domain, name, data FROM "+table+" WHERE id > ? ORDER BY id", before)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ts, pid, domain, name string
		var stored sql.NullString
		if err := rows.Scan(&ts, &pid, &domain, &name, &stored); err != nil {
			return nil, err
		}
		data := "NULL"
		if stored.Valid {
			data = stored.String
		}
		if strings.HasPrefix(ts, "2024") { // a timestamp the query gave; the default is now
			pid = ts + "|" + pid
		}
		out = append(out, strings.Join([]string{pid, domain, name, data}, "|"))
	}
	return out, rows.Err()
}

// Every corpus insert the translator takes stores the rows the reference's
// statement stores.
func TestInsertsAgreeWithReference(t *testing.T) {
	cases, golden := loadReferenceCorpus(t)
	b, db, name := referenceBuilder(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	table := "`" + name + "`.`event`"
	agreed := 0
	for i, c := range cases {
		g := golden[i]
		if c.Kind != "insert" || g.Error != "" || c.Note != "" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			ins, err := b.InsertJSON([]byte(forDatabase(c.Query, name)), Scope{})
			if err != nil {
				t.Fatalf("not translated: %v", err)
			}
			ours, args, err := ins.SQL()
			if err != nil {
				t.Fatalf("not rendered: %v", err)
			}
			got, err := insertedRows(ctx, db, table, ours, args)
			if err != nil {
				t.Fatalf("ours %s: %v", ours, err)
			}
			refArgs, err := referenceValues(g.Values)
			if err != nil {
				t.Fatal(err)
			}
			want, err := insertedRows(ctx, db, table, referenceTable.ReplaceAllString(g.SQL, table), refArgs)
			if err != nil {
				t.Fatalf("reference %s: %v", g.SQL, err)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("rows differ\nours      %s %v\nreference %s\n got  %v\n want %v", ours, args, g.SQL, got, want)
			}
			agreed++
		})
	}
	if agreed == 0 {
		t.Fatal("no insert compared")
	}
	t.Logf("%d corpus inserts store the reference's rows", agreed)
}

// referenceBuilder is a builder over the seeded reference database, whose
// event table is the only allowed one.
func referenceBuilder(t *testing.T) (*Builder, *sql.DB, string) {
	t.Helper()
	db, name := referenceDatabase(t)
	event := &Table{Schema: name, Name: "event", Key: "id", Columns: []Column{
		{Name: "timestamp", TimeDigits: 6, Keyset: true}, {Name: "pid", Keyset: true}, {Name: "domain", Keyset: true},
		{Name: "name", Keyset: true}, {Name: "data", JSON: true, Nullable: true}, {Name: "id", Keyset: true},
	}, Indexes: seedIndexes}
	catalog, err := NewCatalog(event)
	if err != nil {
		t.Fatal(err)
	}
	return NewBuilder(catalog, Limits{}), db, name
}

// seedIndexes are the secondary indexes of seed.sql's event table (and of
// the server's schema).
var seedIndexes = []Index{
	{Name: "domain", Columns: []string{"domain"}}, {Name: "domain_name", Columns: []string{"domain", "name"}},
	{Name: "name", Columns: []string{"name"}}, {Name: "pid", Columns: []string{"pid"}},
	{Name: "timestamp", Columns: []string{"timestamp"}},
}
