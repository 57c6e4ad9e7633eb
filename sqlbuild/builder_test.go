package sqlbuild

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func testBuilder(t testing.TB) *Builder {
	t.Helper()
	event := &Table{Schema: "eventsource", Name: "event", Key: "id", Columns: []Column{
		{Name: "timestamp", TimeDigits: 6, Keyset: true}, {Name: "pid", Keyset: true}, {Name: "domain", Keyset: true},
		{Name: "name", Keyset: true}, {Name: "data", JSON: true, Nullable: true}, {Name: "id", Keyset: true},
	}, Indexes: seedIndexes}
	legacy := &Table{Schema: "old", Name: "event", Columns: []Column{
		{Name: "timestamp"}, {Name: "pid"}, {Name: "domain"}, {Name: "name"}, {Name: "data", JSON: true},
	}}
	cat, err := NewCatalog(event, legacy)
	if err != nil {
		t.Fatal(err)
	}
	return NewBuilder(cat, Limits{MaxIn: 3, MaxLimit: 1000})
}

func TestSelect(t *testing.T) {
	tests := []struct {
		name, query, sql, args string
	}{
		{"default table and star", `{"$select":{}}`,
			"SELECT * FROM `eventsource`.`event`", "[]"},
		{"implicit and keeps key order", `{"$select":{"$where":{"pid":"p1","domain":"d"}}}`,
			"SELECT * FROM `eventsource`.`event` WHERE ((`pid` = ?) AND (`domain` = ?))", "[p1 d]"},
		{"shortcut columns and alias", `{"$select":{"name":true,"pid":"who","$from":"event"}}`,
			"SELECT `name`, `pid` AS `who` FROM `eventsource`.`event`", "[]"},
		{"columns array", `{"$select":{"$columns":["pid","name"]}}`,
			"SELECT `pid`, `name` FROM `eventsource`.`event`", "[]"},
		{"operators", `{"$select":{"$where":{"id":{"$gte":2,"$lt":9007199254740993},"name":null}}}`,
			"SELECT * FROM `eventsource`.`event` WHERE (((`id` >= ?) AND (`id` < ?)) AND (`name` IS NULL))", "[2 9007199254740993]"},
		{"or and in", `{"$select":{"$where":{"$or":[{"pid":"a"},{"name":{"$in":["x","y"]}}]}}}`,
			"SELECT * FROM `eventsource`.`event` WHERE ((`pid` = ?) OR (`name` IN (?, ?)))", "[a x y]"},
		{"order limit offset", `{"$select":{"$orderBy":{"name":-1,"pid":"ASC"},"$limit":10,"$offset":5}}`,
			"SELECT * FROM `eventsource`.`event` ORDER BY `name` DESC, `pid` ASC LIMIT ? OFFSET ?", "[10 5]"},
		{"other allowed schema", `{"$select":{"$from":"old.event","$where":{"pid":"x"}}}`,
			"SELECT * FROM `old`.`event` WHERE (`pid` = ?)", "[x]"},
		{"a value starting with @ is a value, as in json-sql-builder2", `{"$select":{"$where":{"pid":"@alice","name":{"$in":["@@version"]}}}}`,
			"SELECT * FROM `eventsource`.`event` WHERE ((`pid` = ?) AND (`name` IN (?)))", "[@alice @@version]"},
		{"null at a JSON path: missing or JSON null", `{"$select":{"$where":{"data->$.a":null}}}`,
			"SELECT * FROM `eventsource`.`event` WHERE ((JSON_EXTRACT(`data`, ?) IS NULL) OR (JSON_EXTRACT(`data`, ?) = ?))", "[$.a $.a null]"},
		{"a boolean at a JSON path is its JSON text", `{"$select":{"$where":{"data->$.a":{"$eq":false}}}}`,
			"SELECT * FROM `eventsource`.`event` WHERE (JSON_UNQUOTE(JSON_EXTRACT(`data`, ?)) = ?)", "[$.a false]"},
		{"an offset without a limit reads the rest", `{"$select":{"$offset":2}}`,
			"SELECT * FROM `eventsource`.`event` LIMIT ? OFFSET ?", "[9223372036854775807 2]"},
		{"quote in value stays bound", `{"$select":{"$where":{"pid":"x' OR 1=1 --"}}}`,
			"SELECT * FROM `eventsource`.`event` WHERE (`pid` = ?)", "[x' OR 1=1 --]"},
	}
	b := testBuilder(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := b.SelectJSON([]byte(tt.query), Scope{})
			if err != nil {
				t.Fatal(err)
			}
			sql, args, err := s.SQL()
			if err != nil {
				t.Fatal(err)
			}
			if sql != tt.sql || fmt.Sprint(args) != tt.args {
				t.Fatalf("got  %s %v\nwant %s %s", sql, args, tt.sql, tt.args)
			}
		})
	}
}

func TestSelectRefuses(t *testing.T) {
	tests := []struct{ name, query, msg string }{
		{"unknown operator", `{"$select":{"$where":{"pid":{"$foo":1}}}}`, `query.$select.$where.pid.$foo: unknown operator "$foo"`},
		{"unknown column", `{"$select":{"$where":{"secret":1}}}`, `query.$select.$where.secret: unknown column "secret" in eventsource.event`},
		{"table not allowed", `{"$select":{"$from":"mysql.user"}}`, `query.$select.$from: table "mysql.user" is not allowed`},
		{"injection in identifier", `{"$select":{"$columns":["pid; DROP TABLE x"]}}`, `query.$select.$columns.0: "pid; DROP TABLE x" is not a column name`},
		{"not a select", `{"$insert":{}}`, `query: must hold exactly one $select statement, got ["$insert"]`},
		{"in too long", `{"$select":{"$where":{"pid":{"$in":[1,2,3,4]}}}}`, `query.$select.$where.pid.$in: has 4 values, more than the limit of 3`},
		{"limit too big", `{"$select":{"$limit":1001}}`, `query.$select.$limit: 1001 exceeds the limit of 1000`},
		{"into outfile", `{"$select":{"$into":"/tmp/x"}}`, `query.$select.$into: unknown or unsupported clause "$into"`},
		{"bad json", `{"$select":`, `query: unexpected end of JSON`},
		{"object value in where", `{"$select":{"$where":{"pid":{"$eq":{"a":1}}}}}`, `query.$select.$where.pid.$eq: must be a value, a ~~column or a helper object such as {"$concat": [...]}`},
		{"unknown helper in a column", `{"$select":{"x":{"$sleep":1}}}`, `query.$select.x.$sleep: unknown or unsupported helper "$sleep"`},
		{"unknown comparator", `{"$select":{"$where":{"$cmp":{"$value":"~~pid","$comparator":"; DROP","$other":1}}}}`, `query.$select.$where.$cmp.$comparator: must be one of =, !=, <>, <, <=, >, >=`},
		{"arithmetic on an unknown column", `{"$select":{"x":{"$add":["nope",1]}}}`, `query.$select.x.$add.0: unknown column "nope" in eventsource.event`},
		{"rollup without groupBy", `{"$select":{"$withRollup":true}}`, `query.$select.$withRollup: needs $groupBy`},
		{"a union of one", `{"$union":[{"$select":{}}]}`, `query.$union: must be an array of at least two queries`},
		{"a table outside the allow-list inside a union", `{"$except":[{"$select":{"pid":1,"$from":"mysql.user"}},{"$select":{"pid":1}}]}`, `query.$except.0.$select.$from: table "mysql.user" is not allowed`},
		{"an insert inside a union", `{"$union":[{"$select":{}},{"$insert":{"$documents":{}}}]}`, `query.$union.1: must be {"$select": ...} or a set operation, got "$insert"`},
		{"both $all and $distinct", `{"$union":{"$all":[],"$distinct":[]}}`, `query.$union: must hold either $all or $distinct`},
		{"a system table in a sub-select", `{"$select":{"$where":{"pid":{"$in":{"$select":{"pid":1,"$from":"information_schema.tables"}}}}}}`, `query.$select.$where.pid.$in.$select.$from: table "information_schema.tables" is not allowed`},
		{"a system table in a scalar sub-select", `{"$select":{"x":{"$select":{"n":{"$count":"*"},"$from":"performance_schema.threads"}}}}`, `query.$select.x.$select.$from: table "performance_schema.threads" is not allowed`},
		{"a system table joined", `{"$select":{"$from":{"eventsource.event":"e"},"$join":{"mysql.user":{"$inner":"u","$on":{"u.pid":"~~e.pid"}}}}}`, `query.$select.$join.mysql.user: table "mysql.user" is not allowed`},
		{"an unknown alias", `{"$select":{"$where":{"x.pid":"a"}}}`, `query.$select.$where.x.pid: unknown table alias "x" in "x.pid"`},
		{"an alias that is not an identifier", `{"$select":{"$from":{"eventsource.event":"e; DROP"}}}`, `query.$select.$from.eventsource.event: alias "e; DROP" is not a plain identifier`},
		{"a JSON path with SQL in it", `{"$select":{"$where":{"data->$.a') OR 1=1 -- ":1}}}`, `query.$select.$where.data->$.a') OR 1=1 -- : JSON path "$.a') OR 1=1 -- ": want $ followed by .name or [index] steps`},
		{"a JSON path on a text column", `{"$select":{"pid->$.a":1}}`, `query.$select.pid->$.a: "pid" is not a JSON column: only JSON columns have paths`},
		{"a JSON path with a wildcard", `{"$select":{"$orderBy":"data->$.*"}}`, `query.$select.$orderBy: JSON path "$.*": want $ followed by .name or [index] steps`},
		{"raw SQL as a value", `{"$select":{"$where":{"pid":"__:1 OR 1=1"}}}`, `query.$select.$where.pid: raw SQL ("__:...") is refused: every value is a bound parameter`},
		{"a session variable", `{"$select":{"$where":{"pid":"~~@@version"}}}`, `query.$select.$where.pid: session variables ("~~@...") are refused`},
		{"a session variable in a function", `{"$select":{"x":{"$concat":["~~pid","~~@v"]}}}`, `query.$select.x.$concat.1: session variables ("~~@...") are refused`},
		{"raw SQL in a function", `{"$select":{"x":{"$coalesce":["~~pid","__:USER()"]}}}`, `query.$select.x.$coalesce.1: raw SQL ("__:...") is refused: every value is a bound parameter`},
		{"raw SQL in a list", `{"$select":{"$where":{"pid":{"$in":["a","__:(SELECT 1)"]}}}}`, `query.$select.$where.pid.$in.1: raw SQL ("__:...") is refused: every value is a bound parameter`},
		{"a cast MariaDB lacks", `{"$select":{"x":{"$cast":{"$expr":"~~data","$format":"json"}}}}`, `query.$select.x.$cast.$format: must be one of char, varchar, text, signed, integer, unsigned, decimal, double, date, datetime, time`},
		{"a cast type with SQL in it", `{"$select":{"x":{"$cast":{"$expr":"~~id","$format":"CHAR) FROM mysql.user -- "}}}}`, `query.$select.x.$cast.$format: must be one of char, varchar, text, signed, integer, unsigned, decimal, double, date, datetime, time`},
		{"a raw string in $and", `{"$select":{"$where":{"$and":["1=1"]}}}`, `query.$select.$where.$and.0: must be an object`},
		{"raw SQL as a column", `{"$select":{"$columns":["__:USER()"]}}`, `query.$select.$columns.0: "__:USER()" is not a column name`},
		{"a system function", `{"$select":{"x":{"$sleep":5}}}`, `query.$select.x.$sleep: unknown or unsupported helper "$sleep"`},
		{"INTO OUTFILE", `{"$select":{"$into":"/tmp/x"}}`, `query.$select.$into: unknown or unsupported clause "$into"`},
		{"a system table as a derived table", `{"$select":{"$from":{"t":{"$select":{"$from":"mysql.user"}}}}}`, `query.$select.$from.t.$select.$from: table "mysql.user" is not allowed`},
		{"a system table in a joined sub-select", `{"$select":{"$from":{"eventsource.event":"e"},"$join":{"s":{"$leftJoin":{"$select":{"$from":"information_schema.columns"},"$on":{"s.pid":"~~e.pid"}}}}}}`, `query.$select.$join.s.$leftJoin.$select.$from: table "information_schema.columns" is not allowed`},
		{"an alias used twice", `{"$select":{"$from":{"eventsource.event":"e"},"$join":{"e":{"$innerJoin":{"$table":"eventsource.event","$on":{"e.id":1}}}}}}`, `query.$select.$join.e.$innerJoin: alias "e" is used twice`},
		{"a system table in a common table expression", `{"$with":{"x":{"$select":{"$from":"mysql.user"}},"$query":{"$select":{"$from":"x"}}}}`, `query.$with.x.$select.$from: table "mysql.user" is not allowed`},
		{"a common table expression outside its statement", `{"$select":{"$from":"paid"}}`, `query.$select.$from: table "paid" is not allowed`},
		{"a common table expression named like SQL", `{"$with":{"x) AS (SELECT 1":{"$select":{}},"$query":{"$select":{}}}}`, `query.$with.x) AS (SELECT 1: name "x) AS (SELECT 1" is not a plain identifier`},
		{"a with without a query", `{"$with":{"x":{"$select":{}}}}`, `query.$with: $query is required`},
		{"a hidden column's name as an alias", `{"$select":{"pid":"__eventsource_key"}}`, `query.$select.pid: alias "__eventsource_key": names starting with __eventsource_ are reserved`},
		{"a hidden column's name as a helper alias", `{"$select":{"__eventsource_snapshot":{"$max":"id"}}}`, `query.$select.__eventsource_snapshot: alias "__eventsource_snapshot": names starting with __eventsource_ are reserved`},
		{"a full join", `{"$select":{"$from":{"eventsource.event":"a"},"$join":{"b":{"$fullJoin":{"$table":"eventsource.event","$on":{"b.id":"~~a.id"}}}}}}`, `query.$select.$join.b.$fullJoin: MariaDB has no FULL JOIN`},
	}
	b := testBuilder(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.SelectJSON([]byte(tt.query), Scope{})
			if err == nil {
				t.Fatal("accepted; want a refusal")
			}
			if !errors.Is(err, ErrInvalid) || err.Error() != tt.msg {
				t.Fatalf("got %q (ErrInvalid %v), want %q", err, errors.Is(err, ErrInvalid), tt.msg)
			}
		})
	}
}

func TestPageSQL(t *testing.T) {
	b := testBuilder(t)
	tests := []struct {
		name, query string
		page        Page
		sql         string
	}{
		{"keyset seeks on the pid index", `{"$select":{"$where":{"pid":"p"}}}`, Page{Snapshot: 100, After: 7, Size: 50},
			"SELECT *, `id` AS `__eventsource_key` FROM `eventsource`.`event` FORCE INDEX (`pid`) WHERE ((`pid` = ?) AND (`id` <= ?) AND (`id` > ?)) ORDER BY `__eventsource_key` ASC LIMIT ?"},
		{"keyset on an aliased table", `{"$select":{"$from":{"event":"e"},"$where":{"e.domain":{"$ne":"d"},"domain":"d","name":{"$eq":"n"}}}}`, Page{Snapshot: 100, After: 7, Size: 50},
			"SELECT *, `id` AS `__eventsource_key` FROM `eventsource`.`event` AS `e` FORCE INDEX (`domain_name`) WHERE (((`e`.`domain` != ?) AND (`domain` = ?) AND (`name` = ?)) AND (`id` <= ?) AND (`id` > ?)) ORDER BY `__eventsource_key` ASC LIMIT ?"},
		{"keyset without a matching index", `{"$select":{"$where":{"pid":"p","domain":"d"}}}`, Page{Snapshot: 100, After: 7, Size: 50},
			"SELECT *, `id` AS `__eventsource_key` FROM `eventsource`.`event` WHERE (((`pid` = ?) AND (`domain` = ?)) AND (`id` <= ?) AND (`id` > ?)) ORDER BY `__eventsource_key` ASC LIMIT ?"},
		{"keyset told to seek on one of its choices", `{"$select":{"$where":{"pid":"p","domain":"d"}}}`, Page{Snapshot: 100, After: 7, Size: 50, Seek: "pid"},
			"SELECT *, `id` AS `__eventsource_key` FROM `eventsource`.`event` FORCE INDEX (`pid`) WHERE (((`pid` = ?) AND (`domain` = ?)) AND (`id` <= ?) AND (`id` > ?)) ORDER BY `__eventsource_key` ASC LIMIT ?"},
		{"keyset told to seek on no choice of its", `{"$select":{"$where":{"pid":"p","domain":"d"}}}`, Page{Snapshot: 100, After: 7, Size: 50, Seek: "name"},
			"SELECT *, `id` AS `__eventsource_key` FROM `eventsource`.`event` WHERE (((`pid` = ?) AND (`domain` = ?)) AND (`id` <= ?) AND (`id` > ?)) ORDER BY `__eventsource_key` ASC LIMIT ?"},
		{"an exact index wins over the page's choice", `{"$select":{"$where":{"pid":"p"}}}`, Page{Snapshot: 100, After: 7, Size: 50, Seek: "domain"},
			"SELECT *, `id` AS `__eventsource_key` FROM `eventsource`.`event` FORCE INDEX (`pid`) WHERE ((`pid` = ?) AND (`id` <= ?) AND (`id` > ?)) ORDER BY `__eventsource_key` ASC LIMIT ?"},
		{"no seek asked", `{"$select":{"$where":{"pid":"p"}}}`, Page{Snapshot: 100, After: 7, Size: 50, NoSeek: true},
			"SELECT *, `id` AS `__eventsource_key` FROM `eventsource`.`event` WHERE ((`pid` = ?) AND (`id` <= ?) AND (`id` > ?)) ORDER BY `__eventsource_key` ASC LIMIT ?"},
		{"ordered by a column: the first page carries the order values", `{"$select":{"$orderBy":"name","$offset":3}}`, Page{Snapshot: 100, Offset: 3, Size: 50},
			"SELECT *, `id` AS `__eventsource_key`, `name` AS `__eventsource_order_0` FROM `eventsource`.`event` WHERE (`id` <= ?) ORDER BY `name` ASC, `__eventsource_key` ASC LIMIT ? OFFSET ?"},
		{"ordered by columns: later pages resume after the last row", `{"$select":{"$orderBy":{"domain":1,"timestamp":-1}}}`, Page{Snapshot: 100, After: 7, AfterOrder: []any{"shop", "2024-03-01"}, Size: 50},
			"SELECT *, `id` AS `__eventsource_key`, `domain` AS `__eventsource_order_0`, `timestamp` AS `__eventsource_order_1` FROM `eventsource`.`event` WHERE ((`id` <= ?) AND ((`domain` >= ?) AND ((`domain` > ?) OR ((`domain` = ?) AND (`timestamp` < ?)) OR ((`domain` = ?) AND (`timestamp` = ?) AND (`id` < ?))))) ORDER BY `domain` ASC, `timestamp` DESC, `__eventsource_key` DESC LIMIT ?"},
		{"ordered by the key, descending", `{"$select":{"$where":{"pid":"p"},"$orderBy":{"id":-1}}}`, Page{Snapshot: 100, After: 7, AfterOrder: []any{int64(7)}, Size: 50},
			"SELECT *, `id` AS `__eventsource_key`, `id` AS `__eventsource_order_0` FROM `eventsource`.`event` WHERE ((`pid` = ?) AND (`id` <= ?) AND ((`id` <= ?) AND ((`id` < ?) OR ((`id` = ?) AND (`id` < ?))))) ORDER BY `id` DESC, `__eventsource_key` DESC LIMIT ?"},
		{"ordered by a select alias: offset", `{"$select":{"id":"name","$orderBy":"name"}}`, Page{Snapshot: 100, Offset: 20, Size: 50},
			"SELECT `id` AS `name`, `id` AS `__eventsource_key` FROM `eventsource`.`event` WHERE (`id` <= ?) ORDER BY `name` ASC, `__eventsource_key` ASC LIMIT ? OFFSET ?"},
		{"ordered by a JSON path: offset", `{"$select":{"$orderBy":"data->$.total"}}`, Page{Snapshot: 100, Offset: 20, Size: 50},
			"SELECT *, `id` AS `__eventsource_key` FROM `eventsource`.`event` WHERE (`id` <= ?) ORDER BY JSON_UNQUOTE(JSON_EXTRACT(`data`, ?)) ASC, `__eventsource_key` ASC LIMIT ? OFFSET ?"},
		{"ordered with NULLs placed: offset", `{"$select":{"$orderBy":{"name":{"$desc":true,"$nullsLast":true}}}}`, Page{Snapshot: 100, Offset: 20, Size: 50},
			"SELECT *, `id` AS `__eventsource_key` FROM `eventsource`.`event` WHERE (`id` <= ?) ORDER BY (`name` IS NULL) ASC, `name` DESC, `__eventsource_key` DESC LIMIT ? OFFSET ?"},
		{"table without key", `{"$select":{"$from":"old.event"}}`, Page{Size: 1001},
			"SELECT * FROM `old`.`event` LIMIT ?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := b.SelectJSON([]byte(tt.query), Scope{})
			if err != nil {
				t.Fatal(err)
			}
			sql, args, err := s.PageSQL(tt.page)
			if err != nil {
				t.Fatal(err)
			}
			if sql != tt.sql {
				t.Fatalf("got  %s\nwant %s", sql, tt.sql)
			}
			if n := strings.Count(sql, "?"); n != len(args) {
				t.Fatalf("%d placeholders, %d args", n, len(args))
			}
		})
	}
}

// The index a keyset page seeks on: one whose columns are exactly the
// columns the query binds to single values at its top level; failing that,
// the indexes on some of them, for the store to choose from.
func TestSeekIndex(t *testing.T) {
	b := testBuilder(t)
	tests := []struct {
		query, seek string
		choices     []string
	}{
		{`{"$select":{"$where":{"pid":"p"}}}`, "pid", nil},
		{`{"$select":{"$where":{"pid":{"$eq":"p"}}}}`, "pid", nil},
		{`{"$select":{"$where":{"pid":"p","timestamp":{"$gt":"2020-01-01"}}}}`, "pid", nil},
		{`{"$select":{"$where":{"$and":[{"domain":"d"},{"name":"n"}]}}}`, "domain_name", nil},
		{`{"$select":{"$where":{"name":"n","$and":{"domain":"d"}}}}`, "domain_name", nil},
		{`{"$select":{"$where":{"domain":"d"}}}`, "domain", nil},
		{`{"$select":{"pid":1,"$where":{"pid":"p"},"$limit":10}}`, "pid", nil},
		{`{"$select":{"$where":{"domain":{"$in":["d"]},"name":{"$in":["n"]}}}}`, "domain_name", nil},
		// No exact index: the ones on some of the equalities.
		{`{"$select":{"$where":{"pid":"p","domain":"d"}}}`, "", []string{"domain", "pid"}},
		{`{"$select":{"$where":{"pid":"p","domain":"d","name":"n"}}}`, "", []string{"domain", "domain_name", "name", "pid"}},
		{`{"$select":{"$where":{"pid":"p","data":"{}"}}}`, "pid", nil}, // JSON columns bind nothing
		// Nothing to seek on.
		{`{"$select":{}}`, "", nil},
		{`{"$select":{"$where":{"pid":{"$in":["p","q"]}}}}`, "", nil},
		{`{"$select":{"$where":{"$or":[{"pid":"p"},{"pid":"q"}]}}}`, "", nil},
		{`{"$select":{"$where":{"pid":"~~domain"}}}`, "", nil},
		{`{"$select":{"$where":{"pid":null}}}`, "", nil},
		{`{"$select":{"$where":{"pid":"p"},"$orderBy":"timestamp"}}`, "", nil},
		{`{"$select":{"$where":{"pid":"p","domain":"d"},"$orderBy":"timestamp"}}`, "", nil},
		{`{"$select":{"$where":{"pid":"p"},"$groupBy":"name","name":1}}`, "", nil},
		{`{"$select":{"$from":"old.event","$where":{"pid":"p"}}}`, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			s, err := b.SelectJSON([]byte(tt.query), Scope{})
			if err != nil {
				t.Fatal(err)
			}
			if s.seek != tt.seek || !slices.Equal(s.SeekChoices(), tt.choices) {
				t.Fatalf("seek %q, choices %q; want %q, %q", s.seek, s.SeekChoices(), tt.seek, tt.choices)
			}
		})
	}
}

func TestInsert(t *testing.T) {
	b := testBuilder(t)
	ins, err := b.InsertJSON([]byte(`{"$insert":{"$documents":[
		{"pid":"p","domain":"d","name":"n","data":{"foo":"bar","baz":1}},
		{"pid":"p","domain":"d","name":"n","data":"{\"text\":true}","timestamp":"2020-01-01 00:00:00"}]}}`), Scope{})
	if err != nil {
		t.Fatal(err)
	}
	sql, args, err := ins.SQL()
	if err != nil {
		t.Fatal(err)
	}
	want := "INSERT INTO `eventsource`.`event` (`pid`, `domain`, `name`, `data`, `timestamp`) VALUES (?, ?, ?, ?, DEFAULT), (?, ?, ?, ?, ?)"
	if sql != want {
		t.Fatalf("got  %s\nwant %s", sql, want)
	}
	if got := fmt.Sprint(args); got != `[p d n {"foo":"bar","baz":1} p d n {"text":true} 2020-01-01 00:00:00]` {
		t.Fatalf("args %s", got)
	}
}

func TestInsertRefuses(t *testing.T) {
	tests := []struct{ name, query, msg string }{
		{"missing pid", `{"$insert":{"$documents":{"domain":"d","name":"n","data":{}}}}`, `query.$insert.$documents.pid: must be a non-empty string`},
		{"empty name in array", `{"$insert":{"$documents":[{"pid":"p","domain":"d","name":"","data":1}]}}`, `query.$insert.$documents.0.name: must be a non-empty string`},
		{"bad json text", `{"$insert":{"$documents":{"pid":"p","domain":"d","name":"n","data":"{nope"}}}`, `query.$insert.$documents.data: a string for a JSON column must be JSON text`},
		{"unknown column", `{"$insert":{"$documents":{"pid":"p","domain":"d","name":"n","data":1,"x":1}}}`, `query.$insert.$documents.x: unknown column "x" in eventsource.event`},
		{"generated key", `{"$insert":{"$documents":{"id":5,"pid":"p","domain":"d","name":"n","data":1}}}`, `query.$insert.$documents.id: is generated by the database and cannot be written`},
		{"upsert into an append-only table", `{"$insert":{"$documents":{"pid":"p","domain":"d","name":"n","data":1},"$onDuplicateKeyUpdate":{"name":"m"}}}`, `query.$insert.$onDuplicateKeyUpdate: refused: eventsource.event is append-only (see --writable-tables)`},
		{"an update on persist", `{"$insert":{"$update":{}}}`, `query.$insert.$update: refused: only inserts run on persist`},
		{"no documents", `{"$insert":{"$table":"event"}}`, `query.$insert: $documents (or $columns with $values or $records) is required`},
		{"table not allowed", `{"$insert":{"$into":"mysql.user","$documents":{}}}`, `query.$insert.$into: table "mysql.user" is not allowed`},
	}
	b := testBuilder(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.InsertJSON([]byte(tt.query), Scope{})
			if err == nil || err.Error() != tt.msg {
				t.Fatalf("got %v, want %q", err, tt.msg)
			}
		})
	}
}

func TestCombineInserts(t *testing.T) {
	b := testBuilder(t)
	one := func(q string) *Insert {
		t.Helper()
		ins, err := b.InsertJSON([]byte(q), Scope{})
		if err != nil {
			t.Fatal(err)
		}
		return ins
	}
	a := one(`{"$insert":{"$documents":{"pid":"a","domain":"d","name":"n","data":1}}}`)
	bb := one(`{"$insert":{"$documents":[{"pid":"b","domain":"d","name":"n","data":2},{"pid":"c","domain":"d","name":"n","data":3}]}}`)
	other := one(`{"$insert":{"$documents":{"pid":"x","domain":"d","name":"n","data":1,"timestamp":"2020-01-01"}}}`)
	if !a.Combinable(bb) || a.Combinable(other) {
		t.Fatal("Combinable is wrong")
	}
	c, err := Combine(a, bb)
	if err != nil {
		t.Fatal(err)
	}
	sql, args, err := c.SQL()
	if err != nil {
		t.Fatal(err)
	}
	if sql != "INSERT INTO `eventsource`.`event` (`pid`, `domain`, `name`, `data`) VALUES (?, ?, ?, ?), (?, ?, ?, ?), (?, ?, ?, ?)" || c.Rows != 3 {
		t.Fatalf("combined %s (%d rows)", sql, c.Rows)
	}
	if fmt.Sprint(args) != "[a d n 1 b d n 2 c d n 3]" {
		t.Fatalf("args %v", args)
	}
	if _, err := Combine(a, other); err == nil {
		t.Fatal("combined inserts of different columns")
	}
}

func TestInsertEachRow(t *testing.T) {
	b := testBuilder(t)
	ins, err := b.InsertJSON([]byte(`{"$insert":{"$documents":[
		{"pid":"a","domain":"d","name":"n","data":1},
		{"pid":"b","domain":"d","name":"n","data":2,"timestamp":"2020-01-01 00:00:00"}]}}`), Scope{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ sql, args string }{
		{"INSERT INTO `eventsource`.`event` (`pid`, `domain`, `name`, `data`, `timestamp`) VALUES (?, ?, ?, ?, DEFAULT)", "[a d n 1]"},
		{"INSERT INTO `eventsource`.`event` (`pid`, `domain`, `name`, `data`, `timestamp`) VALUES (?, ?, ?, ?, ?)", "[b d n 2 2020-01-01 00:00:00]"},
	}
	rows := ins.EachRow()
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, row := range rows {
		sql, args, err := row.SQL()
		if err != nil {
			t.Fatal(err)
		}
		if sql != want[i].sql || fmt.Sprint(args) != want[i].args || row.Rows != 1 || !row.Combinable(ins) {
			t.Errorf("row %d: %s %v (%d rows)\nwant %s %s", i, sql, args, row.Rows, want[i].sql, want[i].args)
		}
	}
}

func TestFirstPageTakesTheSnapshot(t *testing.T) {
	b := testBuilder(t)
	s, err := b.SelectJSON([]byte(`{"$select":{"$where":{"pid":"p"}}}`), Scope{})
	if err != nil {
		t.Fatal(err)
	}
	sql, args, err := s.PageSQL(Page{Size: 16})
	if err != nil {
		t.Fatal(err)
	}
	want := "SELECT *, `id` AS `__eventsource_key`, (SELECT COALESCE(MAX(`id`), ?) FROM `eventsource`.`event`) AS `__eventsource_snapshot` FROM `eventsource`.`event` FORCE INDEX (`pid`) WHERE ((`pid` = ?) AND (`id` <= (SELECT COALESCE(MAX(`id`), ?) FROM `eventsource`.`event`))) ORDER BY `__eventsource_key` ASC LIMIT ?"
	if sql != want || len(args) != 4 {
		t.Fatalf("got  %s %v\nwant %s", sql, args, want)
	}
}

// Results that are not rows of one table, or that a later page would read
// against newer rows, are read in one statement.
func TestWhichSelectsAreReadWhole(t *testing.T) {
	b := testBuilder(t)
	tests := []struct {
		query string
		whole bool
	}{
		{`{"$select":{"$where":{"pid":"a"}}}`, false},
		{`{"$select":{"$from":{"eventsource.event":"e"},"$where":{"e.pid":"a"}}}`, false},
		{`{"$select":{"x":{"$concat":["~~pid","/"]}}}`, false},
		{`{"$select":{"$from":{"eventsource.event":"a"},"$join":{"b":{"$innerJoin":{"$table":"eventsource.event","$on":{"b.pid":"~~a.pid"}}}}}}`, true},
		{`{"$select":{"$where":{"pid":{"$in":{"$select":{"pid":1,"$where":{"name":"paid"}}}}}}}`, true},
		{`{"$select":{"n":{"$select":{"c":{"$count":"*"}}}}}`, true},
		{`{"$union":[{"$select":{"pid":1}},{"$select":{"pid":1}}]}`, true},
		{`{"$select":{"n":{"$count":"*"}}}`, true},
	}
	for _, tt := range tests {
		sel, err := b.SelectJSON([]byte(tt.query), Scope{})
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		if sel.Whole != tt.whole {
			t.Errorf("%s: read whole %v, want %v", tt.query, sel.Whole, tt.whole)
		}
	}
}

// A table configured writable takes $onDuplicateKeyUpdate; such an insert
// is never combined with others.
func TestUpsertIntoAWritableTable(t *testing.T) {
	counters := &Table{Schema: "app", Name: "counter", Key: "id", Writable: true, Columns: []Column{
		{Name: "id"}, {Name: "name"}, {Name: "hits"},
	}}
	cat, err := NewCatalog(counters)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuilder(cat, Limits{})
	ins, err := b.InsertJSON([]byte(`{"$insert":{"$documents":{"name":"home","hits":1},"$onDuplicateKeyUpdate":{"hits":{"$values":"hits"},"name":"x"}}}`), Scope{})
	if err != nil {
		t.Fatal(err)
	}
	sql, args, err := ins.SQL()
	if err != nil {
		t.Fatal(err)
	}
	if want := "INSERT INTO `app`.`counter` (`name`, `hits`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `hits` = VALUES(`hits`), `name` = ?"; sql != want {
		t.Errorf("sql\n got %s\nwant %s", sql, want)
	}
	if len(args) != 3 {
		t.Errorf("args %v", args)
	}
	plain, err := b.InsertJSON([]byte(`{"$insert":{"$documents":{"name":"home","hits":1}}}`), Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if ins.Combinable(plain) || plain.Combinable(ins) {
		t.Error("an upsert combines with a plain insert")
	}
	if _, err := b.InsertJSON([]byte(`{"$insert":{"$documents":{"name":"a"},"$onDuplicateKeyUpdate":{"secret":1}}}`), Scope{}); err == nil || !strings.Contains(err.Error(), `unknown column "secret"`) {
		t.Errorf("unknown column in the update: %v", err)
	}
}
