package sqlbuild

import (
	"errors"
	"strings"
	"testing"
)

// Attempts to smuggle SQL through the places a query names things, other
// statement kinds and malformed shapes: each is refused with an error that
// names where, and nothing is built.
func TestRefusesInjectionsAndShapes(t *testing.T) {
	b := testBuilder(t)
	injections := []string{
		"pid'", `pid"`, "pid`", "pid` FROM mysql.user -- ", "pid/*x*/", "pid#", "pid;", "pid -- x",
		"pіd",       // Cyrillic і, a look-alike of pid
		"pid\u200b", // a zero-width space
		"ｐid",       // a fullwidth p
		"pid\x00", "", " pid",
	}
	var cases []struct{ name, query, where string }
	for _, inj := range injections {
		q := strings.ReplaceAll(strings.ReplaceAll(inj, `\`, `\\`), `"`, `\"`)
		q = strings.ReplaceAll(q, "\x00", `\u0000`)
		cases = append(cases,
			struct{ name, query, where string }{"column " + inj, `{"$select":{"$columns":["` + q + `"]}}`, "query.$select.$columns.0"},
			struct{ name, query, where string }{"where key " + inj, `{"$select":{"$where":{"` + q + `":1}}}`, "query.$select.$where."},
			struct{ name, query, where string }{"order " + inj, `{"$select":{"$orderBy":"` + q + `"}}`, "query.$select.$orderBy"},
			struct{ name, query, where string }{"group " + inj, `{"$select":{"$groupBy":"` + q + `"}}`, "query.$select.$groupBy"},
			struct{ name, query, where string }{"reference " + inj, `{"$select":{"$where":{"pid":"~~` + q + `"}}}`, "query.$select.$where.pid"},
			struct{ name, query, where string }{"alias " + inj, `{"$select":{"pid":"` + q + `"}}`, "query.$select.pid"},
			struct{ name, query, where string }{"table " + inj, `{"$select":{"$from":"eventsource.` + q + `"}}`, "query.$select.$from"},
			struct{ name, query, where string }{"document key " + inj, `{"$insert":{"$documents":{"pid":"p","domain":"d","name":"n","data":1,"` + q + `":1}}}`, "query.$insert.$documents."},
		)
	}
	for _, sys := range []string{"mysql.user", "information_schema.tables", "performance_schema.threads", "sys.sys_config"} {
		cases = append(cases,
			struct{ name, query, where string }{"from " + sys, `{"$select":{"$from":"` + sys + `"}}`, "query.$select.$from"},
			struct{ name, query, where string }{"aliased " + sys, `{"$select":{"$from":{"` + sys + `":"x"}}}`, "query.$select.$from." + sys},
			struct{ name, query, where string }{"joined " + sys, `{"$select":{"$from":{"eventsource.event":"e"},"$join":{"x":{"$leftJoin":{"$table":"` + sys + `","$on":{"x.pid":"~~e.pid"}}}}}}`, "query.$select.$join.x.$leftJoin"},
			struct{ name, query, where string }{"sub-select " + sys, `{"$select":{"$where":{"pid":{"$eq":{"$select":{"pid":1,"$from":"` + sys + `"}}}}}}`, "query.$select.$where.pid.$eq.$select.$from"},
			struct{ name, query, where string }{"derived " + sys, `{"$select":{"$from":{"d":{"$select":{"$from":"` + sys + `"}}}}}`, "query.$select.$from.d.$select.$from"},
			struct{ name, query, where string }{"cte " + sys, `{"$with":{"c":{"$select":{"$from":"` + sys + `"}},"$query":{"$select":{"$from":"c"}}}}`, "query.$with.c.$select.$from"},
			struct{ name, query, where string }{"union " + sys, `{"$union":[{"$select":{}},{"$select":{"$from":"` + sys + `"}}]}`, "query.$union.1.$select.$from"},
			struct{ name, query, where string }{"reference " + sys, `{"$select":{"$where":{"pid":"~~` + sys + `.x"}}}`, "query.$select.$where.pid"},
			struct{ name, query, where string }{"insert into " + sys, `{"$insert":{"$table":"` + sys + `","$documents":{"pid":"p"}}}`, "query.$insert.$table"},
		)
	}
	shapes := []struct{ name, query, where string }{
		{"an update", `{"$update":{"$table":"eventsource.event","$set":{"pid":"x"}}}`, "query"},
		{"a delete", `{"$delete":{"$from":"eventsource.event"}}`, "query"},
		{"a create table", `{"$createTable":{"$table":"x"}}`, "query"},
		{"two statements", `{"$select":{},"$insert":{}}`, "query"},
		{"a string", `"SELECT 1"`, "query"},
		{"an array", `[{"$select":{}}]`, "query"},
		{"a negative limit", `{"$select":{"$limit":-1}}`, "query.$select.$limit"},
		{"a fractional limit", `{"$select":{"$limit":1.5}}`, "query.$select.$limit"},
		{"a null limit", `{"$select":{"$limit":null}}`, "query.$select.$limit"},
		{"a huge offset", `{"$select":{"$offset":1e30}}`, "query.$select.$offset"},
		{"a string limit", `{"$select":{"$limit":"10"}}`, "query.$select.$limit"},
		{"deep nesting", `{"$select":{"$where":` + strings.Repeat(`{"$and":[`, 40) + `{"pid":1}` + strings.Repeat(`]}`, 40) + `}}`, "query"},
		{"a where that is a list", `{"$select":{"$where":[{"pid":1}]}}`, "query.$select.$where"},
		{"a columns number", `{"$select":{"$columns":5}}`, "query.$select.$columns"},
		{"documents of numbers", `{"$insert":{"$documents":[1,2]}}`, "query.$insert.$documents.0"},
	}
	cases = append(cases, shapes...)
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if strings.Contains(tt.query, `"$insert"`) && !strings.HasPrefix(tt.query, `{"$select"`) && !strings.HasPrefix(tt.query, `{"$union"`) {
				_, err = b.InsertJSON([]byte(tt.query), Scope{})
			} else {
				_, err = b.SelectJSON([]byte(tt.query), Scope{})
			}
			if err == nil {
				t.Fatalf("built %s", tt.query)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%v: not an ErrInvalid", err)
			}
			if !strings.HasPrefix(err.Error(), tt.where) {
				t.Fatalf("error %q does not start at %q", err, tt.where)
			}
		})
	}
}
