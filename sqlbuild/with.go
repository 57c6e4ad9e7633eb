package sqlbuild

import (
	"fmt"
	"strings"

	"github.com/eventsource/eventsource/ordjson"
)

// with translates {"$with": {"name": {"$select": ...}, ..., "$query":
// {"$select": ...}}}, also written {"$with": {"$recursive": true, "$cte":
// {"name": {"$columns": {"col": true}, "$select" | "$union": ...}},
// "$query": ...}}. Each common table expression is checked like any query
// and becomes a table name that the later ones and the main query, and only
// they, may read. The result is read whole.
func (b *Builder) with(v *ordjson.Value, at path) (*Select, error) {
	if v.Kind != ordjson.Object {
		return nil, at.errorf("must be an object of common table expressions and $query")
	}
	recursive := false
	var defs []ordjson.Member
	var query *ordjson.Value
	for _, m := range v.Members {
		mAt := at.with(m.Key)
		switch {
		case m.Key == "$recursive":
			var err error
			if recursive, err = flag(m.Value, mAt); err != nil {
				return nil, err
			}
		case m.Key == "$cte":
			if m.Value.Kind != ordjson.Object {
				return nil, mAt.errorf("must be an object of common table expressions")
			}
			defs = append(defs, m.Value.Members...)
		case m.Key == "$query":
			query = m.Value
		case isOperator(m.Key):
			return nil, mAt.errorf(fmt.Sprintf("unknown option %q", m.Key))
		default:
			defs = append(defs, m)
		}
	}
	if len(defs) == 0 {
		return nil, at.errorf("needs at least one common table expression")
	}
	if query == nil {
		return nil, at.errorf("$query is required")
	}
	scope := &Table{ctes: map[string]*Table{}}
	var clauses []string
	var args []any
	for _, d := range defs {
		dAt := at.with(d.Key)
		if !validIdentifier(d.Key) {
			return nil, dAt.errorf(fmt.Sprintf("name %q is not a plain identifier", d.Key))
		}
		if scope.ctes[d.Key] != nil || b.catalog.Lookup(d.Key) != nil {
			return nil, dAt.errorf(fmt.Sprintf("name %q is taken", d.Key))
		}
		if d.Value.Kind != ordjson.Object {
			return nil, dAt.errorf(`must be {"$select": ...} or a set operation`)
		}
		var names []string
		var body *ordjson.Value
		for _, m := range d.Value.Members {
			switch {
			case m.Key == "$columns":
				var err error
				if names, err = cteColumns(m.Value, dAt.with(m.Key)); err != nil {
					return nil, err
				}
			case m.Key == "$select" || setOperators[m.Key] != "":
				if body != nil {
					return nil, dAt.errorf("holds more than one query")
				}
				body = &ordjson.Value{Kind: ordjson.Object, Members: []ordjson.Member{m}}
			default:
				return nil, dAt.with(m.Key).errorf(fmt.Sprintf("unknown option %q", m.Key))
			}
		}
		if body == nil {
			return nil, dAt.errorf(`must hold {"$select": ...} or a set operation`)
		}
		cte := &Table{Name: d.Key}
		for _, n := range names {
			cte.Columns = append(cte.Columns, Column{Name: n})
		}
		if recursive {
			// A recursive expression reads itself: its columns are those
			// it declares.
			scope.ctes[d.Key] = cte
		}
		sql, partArgs, sel, err := b.cteSQL(scope, body, dAt)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			cte.Columns = sel.scope.Columns
		}
		scope.ctes[d.Key] = cte
		head := "`" + d.Key + "`"
		if len(names) > 0 {
			head += "(`" + strings.Join(names, "`, `") + "`)"
		}
		clauses = append(clauses, head+" AS ("+sql+")")
		args = append(args, partArgs...)
	}
	if query.Kind != ordjson.Object || len(query.Members) != 1 {
		return nil, at.with("$query").errorf(`must be {"$select": ...} or a set operation`)
	}
	s, err := b.cteQuery(scope, query, at.with("$query"))
	if err != nil {
		return nil, err
	}
	keyword := "WITH "
	if recursive {
		keyword = "WITH RECURSIVE "
	}
	s.prefix, s.prefixArgs = keyword+strings.Join(clauses, ", ")+" ", args
	s.Whole = true
	return s, nil
}

// cteSQL renders the query of a common table expression. A set operation
// is written bare, (a) UNION (b), as a recursive expression must be (its
// anchor and its recursive part directly under the UNION), unless it has
// an order or a limit of its own.
func (b *Builder) cteSQL(scope *Table, v *ordjson.Value, at path) (string, []any, *Select, error) {
	m := v.Members[0]
	if op := setOperators[m.Key]; op != "" && (m.Value.Kind == ordjson.Array ||
		m.Value.Get("$orderBy") == nil && m.Value.Get("$limit") == nil && m.Value.Get("$offset") == nil) {
		sql, args, first, _, err := b.setSQL(m.Key, m.Value, at.with(m.Key), scope)
		if err != nil {
			return "", nil, nil, err
		}
		return sql, args, first, nil
	}
	sel, err := b.cteQuery(scope, v, at)
	if err != nil {
		return "", nil, nil, err
	}
	sql, args, err := sel.sql()
	return sql, args, sel, err
}

// cteQuery translates {"$select": ...} or a set operation that may read the
// common table expressions of scope.
func (b *Builder) cteQuery(scope *Table, v *ordjson.Value, at path) (*Select, error) {
	m := v.Members[0]
	mAt := at.with(m.Key)
	if m.Key == "$select" {
		if m.Value.Kind != ordjson.Object {
			return nil, mAt.errorf("must be an object")
		}
		return b.selectBody(m.Value, mAt, scope)
	}
	if setOperators[m.Key] != "" {
		return b.setOperation(m.Key, m.Value, mAt, scope)
	}
	return nil, at.errorf(fmt.Sprintf(`must be {"$select": ...} or a set operation, got %q`, m.Key))
}

// cteColumns reads a common table expression's $columns: ["a", "b"] or
// {"a": true, "b": true}.
func cteColumns(v *ordjson.Value, at path) ([]string, error) {
	var names []string
	switch v.Kind {
	case ordjson.Array:
		for i, c := range v.Items {
			if c.Kind != ordjson.String || !validIdentifier(c.Text) {
				return nil, at.with(fmt.Sprint(i)).errorf("must be a column name")
			}
			names = append(names, c.Text)
		}
	case ordjson.Object:
		for _, m := range v.Members {
			on, err := flag(m.Value, at.with(m.Key))
			if err != nil {
				return nil, err
			}
			if !validIdentifier(m.Key) {
				return nil, at.with(m.Key).errorf(fmt.Sprintf("%q is not a column name", m.Key))
			}
			if on {
				names = append(names, m.Key)
			}
		}
	default:
		return nil, at.errorf("must be an array or an object of column names")
	}
	if len(names) == 0 {
		return nil, at.errorf("must name at least one column")
	}
	return names, nil
}
