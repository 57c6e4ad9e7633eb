package sqlbuild

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eventsource/eventsource/internal/scopecases"
)

// readDomain is the scope of a caller that reads only domain d of table.
func readDomain(table string, d ...string) Scope {
	return Scope{ReadTables: []string{table}, Read: map[string][]RowFilter{table: {{Column: "domain", Values: d}}}}
}

// A caller that reads only domain a sees rows of domain a alone, wherever
// its query reads the table: run on MariaDB over rows of other domains
// and of the near misses its collation would match.
func TestScopeHoldsInEveryPosition(t *testing.T) {
	cases, err := scopecases.Load()
	if err != nil {
		t.Fatal(err)
	}
	b, db, name := referenceBuilder(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	table := name + ".event"
	if _, err := db.ExecContext(ctx, "TRUNCATE TABLE `"+name+"`.`event`"); err != nil {
		t.Fatal(err)
	}
	for _, e := range cases.Events {
		if _, err := db.ExecContext(ctx, "INSERT INTO `"+name+"`.`event` (pid, domain, name, data) VALUES (?, ?, ?, ?)",
			e.Pid, e.Domain, e.Name, string(e.Data)); err != nil {
			t.Fatal(err)
		}
	}
	scope := readDomain(table, "a")
	run := func(t *testing.T, p scopecases.Position, text string, args []any) {
		t.Helper()
		rows, err := rowStrings(ctx, db, text, args)
		if err != nil {
			t.Fatalf("%s %v: %v", text, args, err)
		}
		if err := cases.Check(p, rows); err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
	}
	for _, p := range cases.Positions {
		t.Run(p.Name, func(t *testing.T) {
			sel, err := b.SelectJSON([]byte(p.Text(table)), scope)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			text, args, err := sel.SQL()
			if err != nil {
				t.Fatal(err)
			}
			run(t, p, text, args)
			if sel.Whole || sel.Table.Key == "" {
				return
			}
			// A stream reads it in pages: the page SQL holds the scope too.
			page, args, err := sel.PageSQL(Page{Size: 100})
			if err != nil {
				t.Fatal(err)
			}
			run(t, p, page, args)
		})
	}
}

func TestScopeRefuses(t *testing.T) {
	event := &Table{Schema: "es", Name: "event", Key: "id", Columns: []Column{
		{Name: "pid"}, {Name: "domain"}, {Name: "name"}, {Name: "data", JSON: true, Nullable: true}, {Name: "id"}}}
	other := &Table{Schema: "es", Name: "other", Writable: true, Columns: []Column{{Name: "id"}, {Name: "domain"}, {Name: "note"}}}
	noDomain := &Table{Schema: "es", Name: "plain", Columns: []Column{{Name: "id"}, {Name: "note"}}}
	catalog, err := NewCatalog(event, other, noDomain)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuilder(catalog, Limits{})
	writer := Scope{WriteTables: []string{"es.event", "es.other"}, Write: map[string][]RowFilter{
		"es.event": {{Column: "domain", Values: []string{"a"}}}, "es.other": {{Column: "domain", Values: []string{"a"}}}}}
	reader := readDomain("es.event", "a")
	filtersPlain := Scope{Read: map[string][]RowFilter{"es.plain": {{Column: "domain", Values: []string{"a"}}}}}
	tests := []struct {
		name, query string
		scope       Scope
		insert      bool
		wantPath    string
	}{
		{"another table in $from", `{"$select":{"$from":"es.other"}}`, reader, false, "query.$select.$from"},
		{"another table in a join", `{"$select":{"$from":{"es.event":"e"},"$join":{"es.other":{"$inner":"o","$on":{"o.id":"~~e.id"}}}}}`, reader, false, "query.$select.$join.es.other"},
		{"another table in a sub-select", `{"$select":{"$where":{"id":{"$in":{"$select":{"$columns":["id"],"$from":"es.other"}}}}}}`, reader, false, "query.$select.$where.id.$in.$select.$from"},
		{"another table in a union branch", `{"$union":[{"$select":{"$columns":["id"]}},{"$select":{"$columns":["id"],"$from":"es.other"}}]}`, reader, false, "query.$union.1.$select.$from"},
		{"another table in a CTE", `{"$with":{"o":{"$select":{"$from":"es.other"}},"$query":{"$select":{"$from":"o"}}}}`, reader, false, "query.$with.o.$select.$from"},
		{"a table without the filter's column", `{"$select":{"$from":"es.plain"}}`, filtersPlain, false, "query.$select.$from"},
		{"write another domain", `{"$insert":{"$documents":[{"pid":"p","domain":"a","name":"n","data":1},{"pid":"p","domain":"b","name":"n","data":1}]}}`, writer, true, "query.$insert.$documents.1.domain"},
		{"write a near miss", `{"$insert":{"$documents":{"pid":"p","domain":"A","name":"n","data":1}}}`, writer, true, "query.$insert.$documents.domain"},
		{"write without the column", `{"$insert":{"$into":"es.other","$documents":{"note":"x"}}}`, writer, true, "query.$insert.$documents.domain"},
		{"write it as a number", `{"$insert":{"$into":"es.other","$columns":["domain","note"],"$values":[1,"x"]}}`, writer, true, "query.$insert.$values.domain"},
		{"upsert in scope", `{"$insert":{"$into":"es.other","$documents":{"domain":"a","note":"x"},"$onDuplicateKeyUpdate":{"note":"y"}}}`, writer, true, "query.$insert.$onDuplicateKeyUpdate"},
		{"write a table outside the scope", `{"$insert":{"$into":"es.plain","$documents":{"note":"x"}}}`, writer, true, "query.$insert.$into"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.insert {
				_, err = b.InsertJSON([]byte(tt.query), tt.scope)
			} else {
				_, err = b.SelectJSON([]byte(tt.query), tt.scope)
			}
			var qe *QueryError
			if !errors.As(err, &qe) || !errors.Is(err, ErrForbidden) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v, want a QueryError matching ErrForbidden and ErrInvalid", err)
			}
			if qe.Path != tt.wantPath {
				t.Fatalf("refused at %s (%v), want %s", qe.Path, err, tt.wantPath)
			}
		})
	}
	// Within the scope the same shapes pass.
	if _, err := b.InsertJSON([]byte(`{"$insert":{"$documents":{"pid":"p","domain":"a","name":"n","data":1}}}`), writer); err != nil {
		t.Fatalf("insert in scope: %v", err)
	}
	if _, err := b.SelectJSON([]byte(`{"$select":{"$from":"es.other"}}`), writer); err != nil {
		t.Fatalf("a scope that limits writes leaves reads whole: %v", err)
	}
}

// The scope compares exactly and keeps an index usable: col IN (...) AND
// CAST(col AS BINARY) IN (...), on the table's own name or alias.
func TestScopeCondition(t *testing.T) {
	catalog, err := NewCatalog(&Table{Schema: "es", Name: "event", Key: "id", Columns: []Column{{Name: "pid"}, {Name: "domain"}, {Name: "id"}}})
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuilder(catalog, Limits{})
	tests := []struct{ name, query, want string }{
		{"paged", `{"$select":{"$where":{"pid":"p"}}}`,
			"SELECT * FROM `es`.`event` WHERE ((`pid` = ?) AND ((`event`.`domain` IN (?, ?)) AND (CAST(`event`.`domain` AS BINARY) IN (?, ?))))"},
		{"aliased", `{"$select":{"$from":{"es.event":"e"}}}`,
			"SELECT * FROM `es`.`event` AS `e` WHERE ((`e`.`domain` IN (?, ?)) AND (CAST(`e`.`domain` AS BINARY) IN (?, ?)))"},
		{"joined", `{"$select":{"$from":{"es.event":"e"},"$join":{"es.event":{"$left":"o","$on":{"o.pid":"~~e.pid"}}}}}`,
			"SELECT * FROM (SELECT * FROM `es`.`event` WHERE ((`event`.`domain` IN (?, ?)) AND (CAST(`event`.`domain` AS BINARY) IN (?, ?)))) AS `e` " +
				"LEFT JOIN (SELECT * FROM `es`.`event` WHERE ((`event`.`domain` IN (?, ?)) AND (CAST(`event`.`domain` AS BINARY) IN (?, ?)))) AS `o` ON (`o`.`pid` = `e`.`pid`)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := b.SelectJSON([]byte(tt.query), readDomain("es.event", "a", "b"))
			if err != nil {
				t.Fatal(err)
			}
			got, args, err := sel.SQL()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			for i, a := range args[len(args)-4:] {
				if a != []string{"a", "b", "a", "b"}[i] {
					t.Fatalf("args %v", args)
				}
			}
		})
	}
}
