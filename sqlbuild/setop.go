package sqlbuild

import (
	"fmt"
	"strings"

	"github.com/doug-martin/goqu/v9"

	"github.com/eventsource/eventsource/ordjson"
)

// setOperators are json-sql-builder2's set operations and their SQL.
var setOperators = map[string]string{"$union": "UNION", "$intersect": "INTERSECT", "$except": "EXCEPT"}

// setAlias names the derived table a set operation is read from.
const setAlias = "__eventsource_set"

// setOperation translates {"$union": [q, q, ...]} or {"$union": {"$all" |
// "$distinct": [...], "$orderBy": ..., "$limit": n, "$offset": n}} (and
// $intersect, $except), where each q is a $select or another set
// operation. Every select in it is checked like a top-level one. The result
// is not rows of one table, so a stream reads it whole, as it does a GROUP
// BY.
func (b *Builder) setOperation(key string, v *ordjson.Value, at path, outer *Table) (*Select, error) {
	sql, args, first, rest, err := b.setSQL(key, v, at, outer)
	if err != nil {
		return nil, err
	}
	s := &Select{Table: first.Table, Whole: true, scope: first.scope}
	if rest != nil {
		for _, m := range rest.Members {
			mAt := at.with(m.Key)
			switch m.Key {
			case "$all", "$distinct":
			case "$orderBy":
				if s.orderBy, _, err = orderBy(first.scope, m.Value, mAt); err != nil {
					return nil, err
				}
				s.Ordered = true
			case "$limit":
				if s.Limit, s.Empty, err = b.limit(m.Value, mAt); err != nil {
					return nil, err
				}
			case "$offset":
				if s.Offset, err = count(m.Value, mAt, 1<<62); err != nil {
					return nil, err
				}
			default:
				return nil, mAt.errorf(fmt.Sprintf("unknown option %q", m.Key))
			}
		}
	}
	s.base = b.dialect.From(goqu.L("("+sql+")", args...).As(setAlias)).Prepared(true)
	return s, nil
}

// setSQL renders a set operation: the parenthesised selects joined by the
// operator. It returns the first select (whose column names the result
// has) and, for the object form, the object with its options.
func (b *Builder) setSQL(key string, v *ordjson.Value, at path, outer *Table) (sql string, args []any, first *Select, options *ordjson.Value, err error) {
	op := setOperators[key]
	items := v
	switch v.Kind {
	case ordjson.Array:
	case ordjson.Object:
		options = v
		all, distinct := v.Get("$all"), v.Get("$distinct")
		switch {
		case all != nil && distinct == nil:
			op, items, at = op+" ALL", all, at.with("$all")
		case distinct != nil && all == nil:
			items, at = distinct, at.with("$distinct")
		default:
			return "", nil, nil, nil, at.errorf("must hold either $all or $distinct")
		}
	default:
		return "", nil, nil, nil, at.errorf("must be an array of queries, or an object with $all or $distinct")
	}
	if items.Kind != ordjson.Array || len(items.Items) < 2 {
		return "", nil, nil, nil, at.errorf("must be an array of at least two queries")
	}
	parts := make([]string, len(items.Items))
	for i, item := range items.Items {
		itemAt := at.with(fmt.Sprint(i))
		if item.Kind != ordjson.Object || len(item.Members) != 1 {
			return "", nil, nil, nil, itemAt.errorf("must be {\"$select\": ...} or a set operation")
		}
		m := item.Members[0]
		var part string
		var partArgs []any
		var sel *Select
		switch {
		case m.Key == "$select":
			body := m.Value
			if body.Kind != ordjson.Object {
				return "", nil, nil, nil, itemAt.with(m.Key).errorf("must be an object")
			}
			if sel, err = b.selectBody(body, itemAt.with(m.Key), outer); err != nil {
				return "", nil, nil, nil, err
			}
			if part, partArgs, err = sel.sql(); err != nil {
				return "", nil, nil, nil, err
			}
		case setOperators[m.Key] != "":
			inner, err := b.setOperation(m.Key, m.Value, itemAt.with(m.Key), outer)
			if err != nil {
				return "", nil, nil, nil, err
			}
			sel = inner
			if part, partArgs, err = inner.sql(); err != nil {
				return "", nil, nil, nil, err
			}
		default:
			return "", nil, nil, nil, itemAt.errorf(fmt.Sprintf("must be {\"$select\": ...} or a set operation, got %q", m.Key))
		}
		if i == 0 {
			first = sel
		}
		parts[i] = "(" + part + ")"
		args = append(args, partArgs...)
	}
	return strings.Join(parts, " "+op+" "), args, first, options, nil
}
