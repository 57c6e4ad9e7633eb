package sqlbuild

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// identifierInSQL matches what goqu writes for an identifier.
var identifierInSQL = regexp.MustCompile("`[^`]*`")

// checkSQLIsSafe fails when client text could have reached the SQL: any
// quote outside an identifier, or an identifier that is not a plain name.
func checkSQLIsSafe(t *testing.T, query []byte, sql string) {
	t.Helper()
	for _, ident := range identifierInSQL.FindAllString(sql, -1) {
		if !validIdentifier(strings.Trim(ident, "`")) {
			t.Fatalf("query %s gave identifier %s in\n%s", query, ident, sql)
		}
	}
	if rest := identifierInSQL.ReplaceAllString(sql, ""); strings.ContainsAny(rest, `'"\;#`) || strings.Contains(rest, "--") || strings.Contains(rest, "/*") {
		t.Fatalf("query %s gave SQL with text of its own:\n%s", query, sql)
	}
}

// FuzzBuild feeds the translator queries derived from the reference
// corpus: it must never panic, and what it builds must carry every client
// value as a bound parameter.
func FuzzBuild(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "reference", "cases.json"))
	if err != nil {
		f.Fatal(err)
	}
	var cases []struct {
		Query json.RawMessage `json:"query"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		f.Add([]byte(c.Query))
	}
	f.Add([]byte(`{"$select":{"$where":{"pid":"x' OR 1=1 -- "}}}`))
	f.Add([]byte(`{"$select":{"x":{"$cmp":{"$value":"~~pid","$comparator":"=","$other":"a\"b"}}}}`))
	bld := testBuilder(f)
	f.Fuzz(func(t *testing.T, query []byte) {
		if sel, err := bld.SelectJSON(query, Scope{}); err == nil {
			sql, _, err := sel.SQL()
			if err == nil {
				checkSQLIsSafe(t, query, sql)
			}
			for _, p := range []Page{{Size: 10}, {Size: 10, After: 5, Snapshot: 9}} {
				if sql, _, err := sel.PageSQL(p); err == nil {
					checkSQLIsSafe(t, query, sql)
				}
			}
		}
		if ins, err := bld.InsertJSON(query, Scope{}); err == nil {
			sql, _, err := ins.SQL()
			if err != nil {
				t.Fatalf("%s: translated but not rendered: %v", query, err)
			}
			checkSQLIsSafe(t, query, sql)
		}
	})
}

// namingPositions are queries with a place, X, for a client string: the
// places a query names things (columns, aliases, tables, paths, directions,
// types, comparators) and the places it gives values.
var namingPositions = []string{
	`{"$select":{"$columns":["X"]}}`,
	`{"$select":{"$columns":{"X":"a"}}}`,
	`{"$select":{"X":true}}`,
	`{"$select":{"pid":"X"}}`,
	`{"$select":{"X":{"$count":"*"}}}`,
	`{"$select":{"$where":{"X":1}}}`,
	`{"$select":{"$where":{"pid":"X"}}}`,
	`{"$select":{"$where":{"pid":"~~X"}}}`,
	`{"$select":{"$where":{"pid":{"$in":["a","X"]}}}}`,
	`{"$select":{"$where":{"pid":{"$like":"X"}}}}`,
	`{"$select":{"$where":{"pid":{"$contains":"X"}}}}`,
	`{"$select":{"$where":{"pid":{"$between":["X","z"]}}}}`,
	`{"$select":{"$where":{"$cmp":{"$value":"~~pid","$comparator":"X","$other":1}}}}`,
	`{"$select":{"$where":{"data->$.X":"v"}}}`,
	`{"$select":{"data->X":"v"}}`,
	`{"$select":{"$orderBy":"X"}}`,
	`{"$select":{"$orderBy":{"pid":"X"}}}`,
	`{"$select":{"$orderBy":{"X":{"$asc":true,"$nullsFirst":true}}}}`,
	`{"$select":{"$orderBy":"data->$[0].X"}}`,
	`{"$select":{"$groupBy":"X","n":{"$count":"*"}}}`,
	`{"$select":{"$from":"X"}}`,
	`{"$select":{"$from":{"eventsource.event":"X"}}}`,
	`{"$select":{"$from":{"X":{"$select":{"pid":1}}}}}`,
	`{"$select":{"$from":{"eventsource.event":"e"},"$join":{"X":{"$inner":"j","$on":{"j.pid":"~~e.pid"}}}}}`,
	`{"$select":{"$from":{"eventsource.event":"e"},"$join":{"eventsource.event":{"$left":"X","$on":{"e.id":1}}}}}`,
	`{"$select":{"$from":{"eventsource.event":"e"},"$join":{"j":{"$innerJoin":{"$table":"X","$on":{"e.id":1}}}}}}`,
	`{"$select":{"$from":{"eventsource.event":"e"},"$join":{"eventsource.event":{"$inner":"j","$using":"X"}}}}`,
	`{"$select":{"x":{"$cast":{"$expr":"~~id","$format":"X"}}}}`,
	`{"$select":{"x":{"$cast":{"$expr":"X","$format":"char"}}}}`,
	`{"$select":{"x":{"$concat":["X","~~pid"]}}}`,
	`{"$select":{"x":{"$coalesce":{"X":"a"}}}}`,
	`{"$select":{"x":{"$add":["X",1]}}}`,
	`{"$select":{"x":{"$left":{"$str":"X","$len":2}}}}`,
	`{"$select":{"x":{"$sum":{"$expr":"X","$distinct":true}}}}`,
	`{"$select":{"$where":{"pid":{"$in":{"$select":{"X":1}}}}}}`,
	`{"$union":{"$all":[{"$select":{"pid":1}},{"$select":{"pid":1}}],"$orderBy":"X"}}`,
	`{"$with":{"X":{"$select":{"pid":1}},"$query":{"$select":{"$from":"X"}}}}`,
	`{"$with":{"c":{"$columns":["X"],"$select":{"pid":1}},"$query":{"$select":{"$from":"c"}}}}`,
	`{"$insert":{"$documents":{"pid":"X","domain":"d","name":"n","data":{}}}}`,
	`{"$insert":{"$documents":{"pid":"p","domain":"d","name":"n","data":"X"}}}`,
	`{"$insert":{"$documents":{"pid":"p","domain":"d","name":"n","data":{},"X":1}}}`,
	`{"$insert":{"$table":"X","$documents":{"pid":"p","domain":"d","name":"n","data":{}}}}`,
	`{"$insert":{"$columns":["pid","domain","name","X"],"$values":["p","d","n","{}"]}}`,
	`{"$insert":{"$columns":["pid","domain","name","data"],"$values":["p","X","n","{}"]}}`,
}

// fuzzMarker starts the client string when the fuzzer marks it: text no
// SQL keyword holds, so finding it outside an identifier means the string
// was written into the SQL.
const fuzzMarker = "zqx"

// FuzzNamingPositions puts arbitrary strings where a query names things
// and gives values: the translator must not panic, must refuse with
// ErrInvalid or build SQL that renders, and the string may reach the SQL
// only as a quoted plain identifier, never as text of its own.
func FuzzNamingPositions(f *testing.F) {
	for i := range namingPositions {
		for _, s := range []string{"", "pid", "e.pid", "a`b", "' OR 1=1 -- ", "$.a", "ASC, SLEEP(1)", "char) FROM mysql.user -- ", "mysql.user", "~~@x", "__:USER()", "?", "\x00", "pіd"} {
			f.Add(uint8(i), s, true)
			f.Add(uint8(i), s, false)
		}
	}
	bld := testBuilder(f)
	f.Fuzz(func(t *testing.T, position uint8, s string, marked bool) {
		if marked {
			s = fuzzMarker + s
		}
		text, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		query := []byte(strings.ReplaceAll(namingPositions[int(position)%len(namingPositions)], "X", string(text[1:len(text)-1])))
		var sqlText string
		if strings.HasPrefix(string(query), `{"$insert"`) {
			ins, err := bld.InsertJSON(query, Scope{})
			if err != nil {
				checkRefusal(t, query, err)
				return
			}
			if sqlText, _, err = ins.SQL(); err != nil {
				t.Fatalf("%s: translated but not rendered: %v", query, err)
			}
		} else {
			sel, err := bld.SelectJSON(query, Scope{})
			if err != nil {
				checkRefusal(t, query, err)
				return
			}
			if sqlText, _, err = sel.SQL(); err != nil {
				t.Fatalf("query %s accepted, but its SQL does not render: %v", query, err)
			}
		}
		checkSQLIsSafe(t, query, sqlText)
		if marked && strings.Contains(strings.ToLower(identifierInSQL.ReplaceAllString(sqlText, "")), fuzzMarker) {
			t.Fatalf("query %s wrote client text into the SQL:\n%s", query, sqlText)
		}
	})
}

// checkRefusal fails unless err is a refusal that names its place.
func checkRefusal(t *testing.T, query []byte, err error) {
	t.Helper()
	var qe *QueryError
	if !errors.As(err, &qe) || !errors.Is(err, ErrInvalid) || !strings.HasPrefix(qe.Path, "query") {
		t.Fatalf("query %s: %v is not a refusal naming its place", query, err)
	}
}
