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
// key without $orderBy, offset with it; the snapshot taken by the first
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
			sel, err := b.Select([]byte(q))
			if err != nil {
				t.Fatal(err)
			}
			if sel.Whole {
				t.Fatal("read whole: the test would not page")
			}
			wantQuery := sel
			if tt.want != "" {
				if wantQuery, err = b.Select([]byte(tt.want)); err != nil {
					t.Fatal(err)
				}
			}
			whole, args, err := wantQuery.SQL()
			if err != nil {
				t.Fatal(err)
			}
			want, err := rowStrings(ctx, db, whole, args)
			if err != nil {
				t.Fatalf("%s: %v", whole, err)
			}
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

// readInPages reads sel as actors/cursor.go does and returns the visible
// cells of each row, as rowStrings renders them.
func readInPages(ctx context.Context, db *sql.DB, sel *Select, size uint64) (rows []string, pages int, err error) {
	var snapshot, after int64
	var returned uint64
	for pages = 1; pages < 1000; pages++ {
		n := size
		if sel.Limit > 0 && sel.Limit-returned < n {
			n = sel.Limit - returned
		}
		p := Page{Snapshot: snapshot, Size: n}
		if sel.Ordered {
			p.Offset = sel.Offset + returned
		} else {
			p.After = after
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
		got, err := rowStrings(ctx, db, query, args)
		if err != nil {
			return nil, pages, fmt.Errorf("%s: %w", query, err)
		}
		hidden := 1
		if snapshot == 0 {
			hidden = 2 // the first page carries the snapshot bound too
		}
		for _, r := range got {
			cells := strings.Split(r, "|")
			if hidden == 2 {
				if _, err := fmt.Sscan(cells[len(cells)-1], &snapshot); err != nil {
					return nil, pages, fmt.Errorf("snapshot %q: %w", cells[len(cells)-1], err)
				}
			}
			if _, err := fmt.Sscan(cells[len(cells)-hidden], &after); err != nil {
				return nil, pages, fmt.Errorf("key %q: %w", cells[len(cells)-hidden], err)
			}
			rows = append(rows, strings.Join(cells[:len(cells)-hidden], "|"))
		}
		returned += uint64(len(got))
		if uint64(len(got)) < n || (sel.Limit > 0 && returned >= sel.Limit) {
			return rows, pages, nil
		}
	}
	return nil, pages, fmt.Errorf("no end after %d pages", pages)
}
