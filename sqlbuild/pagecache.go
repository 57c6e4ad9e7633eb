package sqlbuild

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/eventsource/eventsource/ordjson"
)

// Page SQL is rendered once per query shape: a select's statement depends
// on the query's structure, the caller's scope and the kind of page, never
// on the strings and numbers it compares with, which are bound parameters.
// The builder puts a sentinel in the statement where such a value goes
// (see Builder.queryValue), PageSQL renders a page with sentinels for the
// page's own values too, and the rendered text is kept with, for each
// argument, where its value comes from. A later page, or another request
// of the same shape, binds its values to that text without rendering.

// pageCacheSize bounds the shapes × kinds of page a builder keeps.
const pageCacheSize = 1024

// maxShapeKey is the longest shape key cached: a longer query (up to the
// builder's MaxNodes) renders each page, and costs the cache no memory.
const maxShapeKey = 8 << 10

// pageCache is a bounded LRU of page templates, safe for concurrent use.
type pageCache struct {
	lru *lru.Cache[pageKey, *pageTemplate]
	// nonce starts every sentinel: a query cannot forge one, so no value
	// of its own is ever taken for one.
	nonce string
}

func newPageCache(size int) *pageCache {
	c, err := lru.New[pageKey, *pageTemplate](size)
	if err != nil {
		panic(fmt.Sprintf("sqlbuild: page cache: %v", err)) // only for size <= 0
	}
	var n [12]byte
	_, _ = rand.Read(n[:]) // never fails (crypto/rand panics instead)
	return &pageCache{lru: c, nonce: "\x00sqlbuild:" + hex.EncodeToString(n[:]) + ":"}
}

// pageKey is everything the text of a page depends on.
type pageKey struct {
	shape string // the query's shape and the caller's scope (Select.shape)
	whole bool
	// The kind of page (see PageSQL).
	takesSnapshot, after, limit, offset bool
	seek                                string
}

// Sentinel kinds: a query's slot (by the order the builder met it), the
// page's snapshot bound, the key it resumes after, and its order values.
const (
	slotQuery      = 'q'
	slotSnapshot   = 's'
	slotAfter      = 'a'
	slotAfterOrder = 'o'
)

func sentinel(nonce string, kind byte, i int) string {
	return nonce + string(kind) + strconv.Itoa(i)
}

// slots records the values a select binds, in the order the builder meets
// them, and the query's leaves they come from.
type slots struct {
	leaves []*ordjson.Value
	values []any
}

// add records the value of leaf and returns its sentinel.
func (s *slots) add(nonce string, leaf *ordjson.Value, value any) string {
	s.leaves = append(s.leaves, leaf)
	s.values = append(s.values, value)
	return sentinel(nonce, slotQuery, len(s.values)-1)
}

// bindSlots gives a select built by b from query its shape key and its
// values in the order of the query's leaves: the order every query of the
// shape has, wherever the builder meets them.
func (s *Select) bindSlots(b *Builder, query *ordjson.Value) {
	s.pages = b.pages
	rec := b.slots
	w := shapeWriter{slotted: make(map[*ordjson.Value]int, len(rec.leaves))}
	for _, leaf := range rec.leaves {
		w.slotted[leaf] = -1
	}
	w.value(query)
	w.scope(b.scope)
	s.slotDoc = make([]int, len(rec.leaves))
	s.args = make([]any, len(w.order))
	for i, leaf := range rec.leaves {
		d := w.slotted[leaf]
		if d < 0 || w.uncacheable {
			// A leaf the builder made up, or one node in two places: the
			// select binds its values in its own order, and renders each
			// page.
			s.slotDoc, s.args = nil, rec.values
			for i := range rec.values {
				s.slotDoc = append(s.slotDoc, i)
			}
			return
		}
		s.slotDoc[i] = d
		s.args[d] = rec.values[i]
	}
	if len(w.buf) <= maxShapeKey {
		s.shape = string(w.buf)
	}
}

// shapeWriter writes a shape key: the query as JSON with each slotted leaf
// written as ?s or ?n (a token JSON has not), then the scope.
type shapeWriter struct {
	buf     []byte
	slotted map[*ordjson.Value]int // leaf → its place in order (-1 until met)
	order   []*ordjson.Value
	// uncacheable is set by a node met twice: its second place might not
	// be a value.
	uncacheable bool
}

func (w *shapeWriter) value(v *ordjson.Value) {
	if d, ok := w.slotted[v]; ok {
		w.uncacheable = w.uncacheable || d >= 0
		w.slotted[v] = len(w.order)
		w.order = append(w.order, v)
		if v.Kind == ordjson.Number {
			w.buf = append(w.buf, "?n"...)
		} else {
			w.buf = append(w.buf, "?s"...)
		}
		return
	}
	switch v.Kind {
	case ordjson.Null:
		w.buf = append(w.buf, "null"...)
	case ordjson.Bool:
		w.buf = strconv.AppendBool(w.buf, v.Bool)
	case ordjson.Number:
		w.buf = append(w.buf, v.Text...)
	case ordjson.String:
		w.buf = ordjson.AppendString(w.buf, v.Text)
	case ordjson.Array:
		w.buf = append(w.buf, '[')
		for i, item := range v.Items {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.value(item)
		}
		w.buf = append(w.buf, ']')
	case ordjson.Object:
		w.buf = append(w.buf, '{')
		for i, m := range v.Members {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.buf = ordjson.AppendString(w.buf, m.Key)
			w.buf = append(w.buf, ':')
			w.value(m.Value)
		}
		w.buf = append(w.buf, '}')
	}
}

// scope writes every part of sc: its row filters are in the statement
// (their values as constant arguments of the template), and callers of
// different scopes never share a template.
func (w *shapeWriter) scope(sc Scope) {
	w.buf = append(w.buf, "|read "...)
	w.tables(sc.ReadTables)
	w.filters(sc.Read)
	w.buf = append(w.buf, "|write "...)
	w.tables(sc.WriteTables)
	w.filters(sc.Write)
}

func (w *shapeWriter) tables(names []string) {
	if names == nil {
		w.buf = append(w.buf, "all"...) // nil allows every table; [] none
		return
	}
	w.strings(names)
}

func (w *shapeWriter) strings(list []string) {
	w.buf = append(w.buf, '[')
	for _, s := range list {
		w.buf = ordjson.AppendString(w.buf, s)
		w.buf = append(w.buf, ',')
	}
	w.buf = append(w.buf, ']')
}

func (w *shapeWriter) filters(m map[string][]RowFilter) {
	tables := make([]string, 0, len(m))
	for t := range m {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	w.buf = append(w.buf, '{')
	for _, t := range tables {
		w.buf = ordjson.AppendString(w.buf, t)
		w.buf = append(w.buf, ':')
		for _, f := range m[t] {
			w.buf = ordjson.AppendString(w.buf, f.Column)
			w.strings(f.Values)
		}
		w.buf = append(w.buf, ';')
	}
	w.buf = append(w.buf, '}')
}

// Where a template's argument takes its value from.
const (
	fromConstant = iota
	fromQuery
	fromSnapshot
	fromAfter
	fromAfterOrder
	fromLimit
	fromOffset
)

type argSource struct {
	from  int
	i     int // the query's slot (in leaf order), or the order value
	value any // fromConstant
}

// pageTemplate is a rendered statement and where its arguments come from.
// Shared between requests: never changed once made.
type pageTemplate struct {
	sql  string
	args []argSource
}

// bind returns the arguments of the template for a select's values and
// page p.
func (t *pageTemplate) bind(values []any, p Page) []any {
	args := make([]any, len(t.args))
	for i, a := range t.args {
		switch a.from {
		case fromConstant:
			args[i] = a.value
		case fromQuery:
			args[i] = values[a.i]
		case fromSnapshot:
			args[i] = p.Snapshot
		case fromAfter:
			args[i] = p.After
		case fromAfterOrder:
			args[i] = p.AfterOrder[a.i]
		case fromLimit:
			args[i] = int64(p.Size)
		case fromOffset:
			args[i] = int64(p.Offset)
		}
	}
	return args
}

// template makes a template of a statement rendered with sentinels: limit
// and offset say whether it ends with LIMIT ? and OFFSET ? (rendered with
// 1, which goqu places last).
func (s *Select) template(sql string, args []any, limit, offset bool) (*pageTemplate, error) {
	if s.pages == nil {
		// Not built by Builder.Select: no sentinels either.
		return &pageTemplate{sql: sql, args: constants(args)}, nil
	}
	nonce := s.pages.nonce
	if strings.Contains(sql, nonce) {
		return nil, fmt.Errorf("build %s: a bound value was written into the SQL", s.Table.QualifiedName())
	}
	t := &pageTemplate{sql: sql, args: make([]argSource, len(args))}
	n := len(args)
	for i, arg := range args {
		switch {
		case offset && i == n-1:
			t.args[i] = argSource{from: fromOffset}
			continue
		case limit && i == n-1-btoi(offset):
			t.args[i] = argSource{from: fromLimit}
			continue
		}
		str, ok := arg.(string)
		rest, isSentinel := strings.CutPrefix(str, nonce)
		if !ok || !isSentinel {
			t.args[i] = argSource{from: fromConstant, value: arg}
			continue
		}
		j, err := strconv.Atoi(rest[1:])
		if err != nil {
			return nil, fmt.Errorf("build %s: bad sentinel %q: %w", s.Table.QualifiedName(), rest, err)
		}
		switch rest[0] {
		case slotQuery:
			if j >= len(s.slotDoc) {
				return nil, fmt.Errorf("build %s: slot %d of %d", s.Table.QualifiedName(), j, len(s.slotDoc))
			}
			t.args[i] = argSource{from: fromQuery, i: s.slotDoc[j]}
		case slotSnapshot:
			t.args[i] = argSource{from: fromSnapshot}
		case slotAfter:
			t.args[i] = argSource{from: fromAfter}
		case slotAfterOrder:
			t.args[i] = argSource{from: fromAfterOrder, i: j}
		default:
			return nil, fmt.Errorf("build %s: bad sentinel %q", s.Table.QualifiedName(), rest)
		}
	}
	if limit && args[n-1-btoi(offset)] != int64(1) || offset && args[n-1] != int64(1) {
		return nil, fmt.Errorf("build %s: LIMIT and OFFSET are not the last arguments", s.Table.QualifiedName())
	}
	return t, nil
}

func constants(args []any) []argSource {
	out := make([]argSource, len(args))
	for i, a := range args {
		out[i] = argSource{from: fromConstant, value: a}
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pageKey returns the cache key of page p, or false when p is rendered on
// its own: the select has no shape, or p's order values are of a kind the
// SQL depends on (NULL, booleans) or goqu converts.
func (s *Select) pageKey(p Page) (pageKey, bool) {
	if s.shape == "" || s.pages == nil {
		return pageKey{}, false
	}
	if s.KeysetOrdered() && p.After > 0 {
		if len(p.AfterOrder) != len(s.orderKeys) {
			return pageKey{}, false // PageSQL reports it
		}
		for _, v := range p.AfterOrder {
			switch v.(type) {
			case int64, float64, string, []byte, time.Time:
			default:
				return pageKey{}, false
			}
		}
	}
	return pageKey{
		shape: s.shape, whole: s.Whole,
		takesSnapshot: p.Snapshot == 0, after: p.After > 0, limit: p.Size > 0, offset: p.Offset > 0,
		seek: s.Seeks(p),
	}, true
}
