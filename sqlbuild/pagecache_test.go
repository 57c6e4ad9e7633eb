package sqlbuild

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/doug-martin/goqu/v9"
	"github.com/doug-martin/goqu/v9/exp"

	"github.com/eventsource/eventsource/ordjson"
)

// renderedPage renders page p of query as PageSQL did before the cache:
// the values themselves in the statement, the page rendered whole. The
// oracle the cached pages are checked against.
func renderedPage(t *testing.T, b *Builder, query *ordjson.Value, scope Scope, p Page) (string, []any) {
	t.Helper()
	s, err := b.within(scope).selectQuery(query) // no slots: values as they are
	if err != nil {
		t.Fatal(err)
	}
	ds := s.base
	key := s.Table.Key
	if key == "" || s.Whole {
		ds = ds.Order(s.orderBy...)
	} else {
		if p.Snapshot == 0 {
			bound := goqu.Dialect("mysql").From(goqu.S(s.Table.Schema).Table(s.Table.Name)).Prepared(true).
				Select(goqu.COALESCE(goqu.MAX(key), 0))
			ds = ds.SelectAppend(goqu.C(key).As(KeyAlias), bound.As(SnapshotAlias)).Where(goqu.C(key).Lte(bound))
		} else {
			ds = ds.SelectAppend(goqu.C(key).As(KeyAlias)).Where(goqu.C(key).Lte(p.Snapshot))
		}
		switch {
		case s.KeysetOrdered():
			for i, term := range s.orderKeys {
				ds = ds.SelectAppend(goqu.C(term.name).As(OrderAliasPrefix + strconv.Itoa(i)))
			}
			if p.After > 0 {
				after, err := s.afterOrder(pageValues{after: p.After, afterOrder: p.AfterOrder})
				if err != nil {
					t.Fatal(err)
				}
				ds = ds.Where(after)
			}
		case p.After > 0:
			ds = ds.Where(goqu.C(key).Gt(p.After))
		}
		if index := s.Seeks(p); index != "" {
			ds = ds.From(s.seekFrom(index))
		}
		tie := goqu.C(KeyAlias).Asc()
		if s.tiesDescend() {
			tie = goqu.C(KeyAlias).Desc()
		}
		ds = ds.Order(append(append([]exp.OrderedExpression{}, s.orderBy...), tie)...)
	}
	ds = ds.Limit(uint(p.Size))
	if p.Offset > 0 {
		ds = ds.Offset(uint(p.Offset))
	}
	sql, args, err := s.withPrefix(sqlString(ds, "page"))
	if err != nil {
		t.Fatal(err)
	}
	return sql, args
}

// otherValues returns query parsed again with every value the builder
// binds changed: a query of the same shape.
func otherValues(t *testing.T, b *Builder, raw string, scope Scope) *ordjson.Value {
	t.Helper()
	q, err := b.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := b.within(scope)
	c.slots = &slots{}
	if _, err := c.selectQuery(q); err != nil {
		t.Fatal(err)
	}
	for _, leaf := range c.slots.leaves {
		if leaf.Kind == ordjson.Number {
			leaf.Text = "7" + strings.TrimPrefix(leaf.Text, "-")
		} else {
			leaf.Text += "-other"
		}
	}
	return q
}

// TestPageCacheRendersAsBefore checks, over queries of every kind and
// pages of every kind, that a page served from the cache, for the query
// that filled it and for another query of its shape, is the statement and
// the arguments that rendering the page whole gives.
func TestPageCacheRendersAsBefore(t *testing.T) {
	queries := []string{
		`{"$select":{}}`,
		`{"$select":{"$where":{"pid":"p1","domain":"d"}}}`,
		`{"$select":{"$where":{"id":{"$gte":2,"$lt":9007199254740993},"name":null,"pid":{"$ne":null}}}}`,
		`{"$select":{"$where":{"$or":[{"pid":"a"},{"name":{"$in":["x","y"]}}],"domain":{"$nin":["z"]}}}}`,
		`{"$select":{"$where":{"id":{"$between":[1,5.5]},"name":{"$like":"c%","$startsWith":"o"}}}}`,
		`{"$select":{"$where":{"data->$.total":{"$gt":10},"data->$.customer.tier":true}}}`,
		`{"$select":{"pid":1,"n":{"$concat":["~~pid","-",3]},"$where":{"$cmp":{"$value":"~~id","$comparator":">","$other":2}}}}`,
		`{"$select":{"$where":{"pid":{"$in":{"$select":{"pid":1,"$where":{"name":"paid"}}}}}}}`,
		`{"$select":{"$where":{"pid":"order-1"},"$orderBy":{"timestamp":-1}}}`,
		`{"$select":{"$where":{"pid":"order-1","domain":"shop"},"$orderBy":"name","$limit":10,"$offset":2}}`,
		`{"$select":{"pid":"id","$orderBy":"id"}}`,
		`{"$select":{"domain":1,"n":{"$count":"*"},"$groupBy":"domain","$having":{"$count":"*","$gt":1}}}`,
		`{"$union":[{"$select":{"pid":1,"$where":{"domain":"shop"}}},{"$select":{"pid":1,"$where":{"domain":"user"}}}]}`,
		`{"$with":{"o":{"$select":{"pid":1,"id":1,"$where":{"domain":"shop"}}},"$query":{"$select":{"$from":"o","$where":{"id":{"$gt":1}}}}}}`,
		`{"$select":{"$from":{"eventsource.event":"e"},"$join":{"eventsource.event":{"$inner":"f","$on":{"f.pid":"~~e.pid","f.id":{"$gt":2}}}},"$where":{"f.name":"paid"},"e.pid":1}}`,
		`{"$select":{"$from":{"eventsource.event":"e"},"$join":{"s":{"$leftJoin":{"$select":{"pid":1,"$where":{"domain":"cart"}},"$on":{"s.pid":"~~e.pid"}}}},"e.pid":1}}`,
	}
	scopes := map[string]Scope{
		"no scope": {},
		"scoped":   {ReadTables: []string{"eventsource.event"}, Read: map[string][]RowFilter{"eventsource.event": {{Column: "domain", Values: []string{"shop", "cart"}}}}},
	}
	pages := []Page{
		{Size: 256},
		{Snapshot: 99, After: 12, Size: 256},
		{Snapshot: 99, After: 12, Size: 256, Seek: "domain"},
		{Snapshot: 99, Size: 10, Offset: 20},
		{Snapshot: 99, After: 3, AfterOrder: []any{time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)}, Size: 5},
		{Snapshot: 99, After: 3, AfterOrder: []any{"name-x"}, Size: 5},
	}
	for _, q := range queries {
		for scopeName, scope := range scopes {
			t.Run(scopeName+" "+q, func(t *testing.T) {
				b := testBuilder(t)
				first, err := b.SelectJSON([]byte(q), scope)
				if err != nil {
					if scopeName == "scoped" {
						t.Skip(err) // out of the scope: nothing to cache
					}
					t.Fatal(err)
				}
				if first.shape == "" {
					t.Fatal("no shape: every page would be rendered")
				}
				other := otherValues(t, b, q, scope)
				second, err := b.Select(other, scope)
				if err != nil {
					t.Fatal(err)
				}
				if second.shape != first.shape {
					t.Fatalf("shapes differ:\n%s\n%s", first.shape, second.shape)
				}
				parsed, _ := b.Parse([]byte(q))
				for _, p := range pages {
					if first.KeysetOrdered() && p.After > 0 && len(p.AfterOrder) != len(first.orderKeys) {
						continue // a page the cursor never asks for
					}
					sql, args, err := first.PageSQL(p)
					if err != nil {
						t.Fatal(err)
					}
					wantSQL, wantArgs := renderedPage(t, b, parsed, scope, p)
					if sql != wantSQL || fmt.Sprintf("%#v", args) != fmt.Sprintf("%#v", wantArgs) {
						t.Fatalf("page %+v:\n got %s %#v\nwant %s %#v", p, sql, args, wantSQL, wantArgs)
					}
					entries := b.pages.lru.Len()
					sql, args, err = second.PageSQL(p)
					if err != nil {
						t.Fatal(err)
					}
					if b.pages.lru.Len() != entries {
						t.Errorf("page %+v: a query of the same shape missed the cache", p)
					}
					wantSQL, wantArgs = renderedPage(t, b, other, scope, p)
					if sql != wantSQL || fmt.Sprintf("%#v", args) != fmt.Sprintf("%#v", wantArgs) {
						t.Fatalf("page %+v of the other query:\n got %s %#v\nwant %s %#v", p, sql, args, wantSQL, wantArgs)
					}
				}
			})
		}
	}
}

// TestPageCacheKeys checks what shares a cache entry and what must not.
func TestPageCacheKeys(t *testing.T) {
	domains := func(values ...string) Scope {
		return Scope{Read: map[string][]RowFilter{"eventsource.event": {{Column: "domain", Values: values}}}}
	}
	tests := []struct {
		name       string
		a, b       string
		scopeA     Scope
		scopeB     Scope
		sameSQL    bool // the two render the same text
		sameShape  bool // and share the cache entry
		scopeInSQL string
	}{
		{"other values", `{"$select":{"$where":{"pid":"a","id":{"$gt":1}}}}`, `{"$select":{"$where":{"pid":"b","id":{"$gt":2}}}}`,
			Scope{}, Scope{}, true, true, ""},
		{"null is no value", `{"$select":{"$where":{"pid":"a"}}}`, `{"$select":{"$where":{"pid":null}}}`,
			Scope{}, Scope{}, false, false, ""},
		{"true is no value", `{"$select":{"$where":{"data->$.a":true}}}`, `{"$select":{"$where":{"data->$.a":false}}}`,
			Scope{}, Scope{}, true, false, ""},
		{"a column is no value", `{"$select":{"$where":{"pid":"name"}}}`, `{"$select":{"$where":{"pid":"~~name"}}}`,
			Scope{}, Scope{}, false, false, ""},
		{"a list's length", `{"$select":{"$where":{"pid":{"$in":["a"]}}}}`, `{"$select":{"$where":{"pid":{"$in":["a","b"]}}}}`,
			Scope{}, Scope{}, false, false, ""},
		{"a scope and none", `{"$select":{"$where":{"pid":"a"}}}`, `{"$select":{"$where":{"pid":"a"}}}`,
			domains("shop"), Scope{}, false, false, "CAST(`event`.`domain` AS BINARY) IN (?)"},
		{"other scope values", `{"$select":{"$where":{"pid":"a"}}}`, `{"$select":{"$where":{"pid":"a"}}}`,
			domains("shop"), domains("cart"), true, false, "CAST(`event`.`domain` AS BINARY) IN (?)"},
		{"more scope values", `{"$select":{"$where":{"pid":"a"}}}`, `{"$select":{"$where":{"pid":"a"}}}`,
			domains("shop"), domains("shop", "cart"), false, false, "CAST(`event`.`domain` AS BINARY) IN (?"},
		{"scope in a sub-select", `{"$select":{"$where":{"pid":{"$in":{"$select":{"pid":1,"$where":{"name":"paid"}}}}}}}`,
			`{"$select":{"$where":{"pid":{"$in":{"$select":{"pid":1,"$where":{"name":"paid"}}}}}}}`,
			domains("shop"), Scope{}, false, false, "CAST(`event`.`domain` AS BINARY) IN (?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBuilder(t)
			p := Page{Snapshot: 50, After: 10, Size: 256}
			a, err := b.SelectJSON([]byte(tt.a), tt.scopeA)
			if err != nil {
				t.Fatal(err)
			}
			sqlA, argsA, err := a.PageSQL(p)
			if err != nil {
				t.Fatal(err)
			}
			sb, err := b.SelectJSON([]byte(tt.b), tt.scopeB)
			if err != nil {
				t.Fatal(err)
			}
			sqlB, argsB, err := sb.PageSQL(p)
			if err != nil {
				t.Fatal(err)
			}
			if (sqlA == sqlB) != tt.sameSQL {
				t.Errorf("same SQL %v, want %v:\n%s\n%s", sqlA == sqlB, tt.sameSQL, sqlA, sqlB)
			}
			if shared := b.pages.lru.Len() == 1; shared != tt.sameShape {
				t.Errorf("one cache entry %v, want %v", shared, tt.sameShape)
			}
			if tt.scopeInSQL != "" {
				if !strings.Contains(sqlA, tt.scopeInSQL) {
					t.Errorf("scoped SQL lacks %s: %s", tt.scopeInSQL, sqlA)
				}
				values := tt.scopeA.Read["eventsource.event"][0].Values
				for _, v := range values {
					if !slices.Contains(argsA, any(v)) {
						t.Errorf("scoped args %v lack %q", argsA, v)
					}
				}
				// The other caller's arguments hold none of the values only
				// this scope allows.
				var others []string
				if f := tt.scopeB.Read["eventsource.event"]; len(f) > 0 {
					others = f[0].Values
				}
				for _, v := range values {
					if !slices.Contains(others, v) && slices.Contains(argsB, any(v)) {
						t.Errorf("args %v of the other caller hold %q", argsB, v)
					}
				}
			}
		})
	}
}

// TestPageCacheBounded checks that the cache keeps at most pageCacheSize
// pages, and no shape longer than maxShapeKey.
func TestPageCacheBounded(t *testing.T) {
	b := testBuilder(t)
	for i := range pageCacheSize + 100 {
		// $offset is no bound value: each offset is a shape of its own.
		s, err := b.SelectJSON([]byte(`{"$select":{"$orderBy":"name","$offset":`+strconv.Itoa(i)+`}}`), Scope{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.PageSQL(Page{Size: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.pages.lru.Len(); n != pageCacheSize {
		t.Fatalf("%d pages cached, want %d", n, pageCacheSize)
	}
	b = testBuilder(t)
	long := strings.Repeat("x", maxShapeKey)
	s, err := b.SelectJSON([]byte(`{"$select":{"$where":{"pid":{"$startsWith":"`+long+`"}}}}`), Scope{})
	if err != nil {
		t.Fatal(err)
	}
	sql, args, err := s.PageSQL(Page{Size: 10})
	if err != nil || !strings.Contains(sql, "LIKE BINARY ?") || !slices.Contains(args, any(long+"%")) {
		t.Fatalf("long shape: %s %v %v", sql, args, err)
	}
	if n := b.pages.lru.Len(); n != 0 {
		t.Fatalf("a shape of %d bytes was cached", len(s.shape))
	}
}

// TestPageCacheReadsEachQuerysRows reads, on MariaDB, pages of queries of
// one shape and of two scopes: each reads its own rows, from one cached
// statement per scope.
func TestPageCacheReadsEachQuerysRows(t *testing.T) {
	b, db, name := referenceBuilder(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	table := name + ".event"
	cart := Scope{Read: map[string][]RowFilter{table: {{Column: "domain", Values: []string{"cart"}}}}}
	tests := []struct {
		pid   string
		scope Scope
		none  bool // no row: outside the scope, or no such pid
	}{
		{"order-1", Scope{}, false},
		{"cart-1", Scope{}, false},
		{"user-1", Scope{}, false},
		{"cart-1", cart, false},
		{"order-1", cart, true}, // the cached unscoped SQL must not serve it
		{"nobody", Scope{}, true},
	}
	for _, tt := range tests {
		sel, err := b.SelectJSON([]byte(`{"$select":{"$from":"`+table+`","pid":1,"$where":{"pid":"`+tt.pid+`"}}}`), tt.scope)
		if err != nil {
			t.Fatal(err)
		}
		rows, _, err := readInPages(ctx, db, sel, 2)
		if err != nil {
			t.Fatal(err)
		}
		// Checked against the rows of the query read whole, rendered anew.
		if want := wholeRows(ctx, t, b, db, sel, ""); !slices.Equal(rows, want) || (len(rows) == 0) != tt.none {
			t.Errorf("%s in %v: rows %q, want %q", tt.pid, tt.scope, rows, want)
		}
		for _, r := range rows {
			if !strings.Contains(r, tt.pid) {
				t.Errorf("%s in %v: row %s", tt.pid, tt.scope, r)
			}
		}
	}
	// Pages of two kinds (first, later) for each of two scopes.
	if n := b.pages.lru.Len(); n != 4 {
		t.Errorf("%d cached pages, want 4", n)
	}
}
