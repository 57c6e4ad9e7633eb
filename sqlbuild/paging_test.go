package sqlbuild

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Reading a select page by page, as a stream's cursor does (keyset on the
// key without $orderBy; with it, keyset on the order's columns and the key,
// or offset when the order names an alias; the snapshot taken by the first
// page), gives every row of the whole statement exactly once, whatever the
// client named its columns.
func TestPagesReadEveryRowOnce(t *testing.T) {
	b, db, name := referenceBuilder(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	from := `"$from":"` + name + `.event"`
	aliased := `"$from":{"` + name + `.event":"e"}`
	tests := []struct{ query, want string }{
		{`{"$select":{` + from + `}}`, ""},
		{`{"$select":{` + from + `,"pid":"id","name":1}}`, ""},
		{`{"$select":{` + from + `,"pid":"id","$orderBy":{"domain":-1}}}`, ""},
		{`{"$select":{` + from + `,"pid":1,"name":1,"$orderBy":"name"}}`, ""},
		{`{"$select":{` + from + `,"id":"pid","pid":"id","$orderBy":"pid"}}`, ""},
		{`{"$select":{` + aliased + `,"e.pid":"id","e.id":"n","$where":{"e.domain":{"$ne":"x"}}}}`, ""},
		// Pages that seek on an index (FORCE INDEX), aliased or not.
		{`{"$select":{` + from + `,"$where":{"domain":"shop"}}}`, ""},
		{`{"$select":{` + aliased + `,"e.name":1,"$where":{"domain":"shop","name":{"$eq":"created"}}}}`, ""},
		// Pages told to seek on one index of several (Page.Seek).
		{`{"$select":{` + from + `,"$where":{"pid":"order-1","domain":"shop"}}}`, ""},
		{`{"$select":{` + aliased + `,"e.pid":1,"$where":{"domain":"shop","pid":"order-1","name":{"$ne":"x"}}}}`, ""},
		// Without $orderBy a stream gives the rows in key order, so a
		// $limit or an $offset takes the first rows by key.
		{`{"$select":{` + from + `,"$where":{"name":{"$ne":"created"}},"$offset":2}}`,
			`{"$select":{` + from + `,"$where":{"name":{"$ne":"created"}},"$offset":2,"$orderBy":"id"}}`},
		{`{"$select":{` + from + `,"pid":1,"$limit":5,"$offset":1}}`,
			`{"$select":{` + from + `,"pid":1,"$limit":5,"$offset":1,"$orderBy":"id"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q := tt.query
			sel, err := b.SelectJSON([]byte(q), Scope{})
			if err != nil {
				t.Fatal(err)
			}
			if sel.Whole {
				t.Fatal("read whole: the test would not page")
			}
			want := wholeRows(ctx, t, b, db, sel, tt.want)
			if len(want) < 3 {
				t.Fatalf("%d rows: too few to page", len(want))
			}
			got, pages, err := readInPages(ctx, db, sel, 2)
			if err != nil {
				t.Fatal(err)
			}
			if pages < 2 {
				t.Fatalf("read in %d page(s)", pages)
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("pages of %d rows give\n %v\nthe statement gives\n %v", 2, got, want)
			}
		})
	}
}

// wholeRows runs in one statement the query want, if given (sel's query
// with the order its pages give written out), else sel, and returns its
// rows as rowStrings renders them.
func wholeRows(ctx context.Context, t *testing.T, b *Builder, db *sql.DB, sel *Select, want string) []string {
	t.Helper()
	if want != "" {
		var err error
		if sel, err = b.SelectJSON([]byte(want), Scope{}); err != nil {
			t.Fatal(err)
		}
	}
	whole, args, err := sel.SQL()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := rowStrings(ctx, db, whole, args)
	if err != nil {
		t.Fatalf("%s: %v", whole, err)
	}
	return rows
}

// readInPages reads sel as actors/cursor.go does and returns the visible
// cells of each row, in the order read, as rowStrings renders them.
func readInPages(ctx context.Context, db *sql.DB, sel *Select, size uint64) (rows []string, pages int, err error) {
	var snapshot, after int64
	var afterOrder []any
	var returned uint64
	for pages = 1; pages < 1000; pages++ {
		n := size
		if sel.Limit > 0 && sel.Limit-returned < n {
			n = sel.Limit - returned
		}
		p := Page{Snapshot: snapshot, Size: n}
		if sel.Ordered && !sel.KeysetOrdered() {
			p.Offset = sel.Offset + returned
		} else {
			p.After, p.AfterOrder = after, afterOrder
			if returned == 0 {
				p.Offset = sel.Offset
			}
			if choices := sel.SeekChoices(); returned > 0 && len(choices) > 0 {
				p.Seek = choices[len(choices)-1]
			}
		}
		query, args, err := sel.PageSQL(p)
		if err != nil {
			return nil, pages, err
		}
		got, err := pageRows(ctx, db, query, args)
		if err != nil {
			return nil, pages, fmt.Errorf("%s: %w", query, err)
		}
		for _, r := range got {
			rows = append(rows, r.cells)
			after, afterOrder = r.key, r.order
			if snapshot == 0 {
				snapshot = r.snapshot
			}
		}
		returned += uint64(len(got))
		if uint64(len(got)) < n || (sel.Limit > 0 && returned >= sel.Limit) {
			return rows, pages, nil
		}
	}
	return nil, pages, fmt.Errorf("no end after %d pages", pages)
}

// pageRow is a row of a page: its visible cells as rowStrings renders
// them, and the hidden columns' values.
type pageRow struct {
	cells         string
	key, snapshot int64
	order         []any
}

func pageRows(ctx context.Context, db *sql.DB, query string, args []any) ([]pageRow, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []pageRow
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		var r pageRow
		var cells []string
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			switch name := cols[i]; {
			case name == KeyAlias:
				r.key = v.(int64)
			case name == SnapshotAlias:
				r.snapshot = v.(int64)
			case strings.HasPrefix(name, OrderAliasPrefix):
				r.order = append(r.order, v)
			default:
				cells = append(cells, fmt.Sprint(v))
			}
		}
		r.cells = strings.Join(cells, "|")
		out = append(out, r)
	}
	return out, rows.Err()
}

// Pages of a select ordered by columns resume after their last row's
// values (KeysetOrdered) and give the statement's rows in its order, ties
// in key order (descending after a descending last term), with no row
// skipped or repeated however the pages cut the ties.
func TestOrderedPagesResumeAfterTheirLastRow(t *testing.T) {
	b, db, name := referenceBuilder(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	from := `"$from":"` + name + `.event"`
	aliased := `"$from":{"` + name + `.event":"e"}`
	tests := []struct{ query, want string }{
		{`{"$select":{` + from + `,"$orderBy":"domain"}}`,
			`{"$select":{` + from + `,"$orderBy":{"domain":1,"id":1}}}`},
		{`{"$select":{` + from + `,"$orderBy":{"domain":-1,"timestamp":1}}}`,
			`{"$select":{` + from + `,"$orderBy":{"domain":-1,"timestamp":1,"id":1}}}`},
		{`{"$select":{` + from + `,"pid":1,"name":1,"$where":{"domain":{"$ne":"user"}},"$orderBy":{"name":"ASC","pid":"DESC"}}}`,
			`{"$select":{` + from + `,"pid":1,"name":1,"$where":{"domain":{"$ne":"user"}},"$orderBy":{"name":"ASC","pid":"DESC","id":-1}}}`},
		{`{"$select":{` + from + `,"$orderBy":{"domain":-1}}}`,
			`{"$select":{` + from + `,"$orderBy":{"domain":-1,"id":-1}}}`},
		{`{"$select":{` + from + `,"$orderBy":{"id":-1}}}`, ""},
		{`{"$select":{` + from + `,"$orderBy":"timestamp","$offset":3,"$limit":11}}`,
			`{"$select":{` + from + `,"$orderBy":{"timestamp":1,"id":1},"$offset":3,"$limit":11}}`},
		{`{"$select":{` + aliased + `,"e.pid":"who","$orderBy":["name","domain"]}}`,
			`{"$select":{` + aliased + `,"e.pid":"who","$orderBy":{"name":1,"domain":1,"id":1}}}`},
	}
	for _, tt := range tests {
		for _, size := range []uint64{2, 3} {
			t.Run(fmt.Sprintf("%s/%d", tt.query, size), func(t *testing.T) {
				sel, err := b.SelectJSON([]byte(tt.query), Scope{})
				if err != nil {
					t.Fatal(err)
				}
				if !sel.KeysetOrdered() {
					t.Fatal("not keyset ordered: the test would count rows")
				}
				want := wholeRows(ctx, t, b, db, sel, tt.want)
				got, pages, err := readInPages(ctx, db, sel, size)
				if err != nil {
					t.Fatal(err)
				}
				if pages < 3 {
					t.Fatalf("read in %d page(s)", pages)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("pages of %d rows give\n %v\nthe statement gives\n %v", size, got, want)
				}
			})
		}
	}
}
