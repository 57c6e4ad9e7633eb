package sqlbuild

import (
	"fmt"
	"strings"

	"github.com/doug-martin/goqu/v9"
	"github.com/doug-martin/goqu/v9/exp"

	"github.com/eventsource/eventsource/ordjson"
)

// where translates a $where object: its members are AND-ed in the order the
// client wrote them, as json-sql-builder2 does.
func (b *Builder) where(t *Table, v *ordjson.Value, at path) (exp.Expression, error) {
	if v.Kind != ordjson.Object {
		return nil, at.errorf("must be an object")
	}
	if len(v.Members) > 1 && isHelper(v.Members[0].Key) {
		return b.helperCondition(t, v, at)
	}
	parts := make([]exp.Expression, 0, len(v.Members))
	for _, m := range v.Members {
		e, err := b.condition(t, m.Key, m.Value, at.with(m.Key))
		if err != nil {
			return nil, err
		}
		parts = append(parts, e)
	}
	if len(parts) == 0 {
		// {} asks for nothing: every row, as json-sql-builder2 reads it.
		return goqu.L("TRUE"), nil
	}
	return goqu.And(parts...), nil
}

// condition translates one member of a $where (or of $and/$or).
func (b *Builder) condition(t *Table, key string, v *ordjson.Value, at path) (exp.Expression, error) {
	switch key {
	case "$and", "$or":
		return b.logical(t, key, v, at)
	case "$not":
		inner, err := b.where(t, v, at)
		if err != nil {
			return nil, err
		}
		return goqu.Func("NOT", inner), nil
	case "$anyExpr":
		// {"$anyExpr": {"$count": "*", "$gt": 1}}: a condition on a helper.
		return b.where(t, v, at)
	case "$cmp":
		e, _, err := b.cmp(t, v, at)
		return e, err
	}
	if isOperator(key) {
		return nil, at.errorf(fmt.Sprintf("unknown operator %q", key))
	}
	ident, err := ref(t, key, at)
	if err != nil {
		return nil, err
	}
	switch v.Kind {
	case ordjson.Null:
		return isNull(ident), nil
	case ordjson.Object:
		return b.comparisons(t, ident, v, at)
	case ordjson.Array:
		return nil, at.errorf("a column condition must be a value or an object of operators; use $in for a list")
	}
	val, err := b.operand(t, v, at)
	if err != nil {
		return nil, err
	}
	return ident.Eq(comparable(ident, val)), nil
}

// operand is a value to compare with: a bound value, or a column named
// "~~column" (json-sql-builder2's identifier reference), checked against
// the table like any identifier.
func (b *Builder) operand(t *Table, v *ordjson.Value, at path) (any, error) {
	if v.Kind == ordjson.Object {
		e, _, err := b.expression(t, v, at)
		return e, err
	}
	if v.Kind == ordjson.String && strings.HasPrefix(v.Text, "~~") {
		return columnRef(t, strings.TrimPrefix(v.Text, "~~"), at)
	}
	return b.queryValue(v, at)
}

// between reads {"$min": a, "$max": b} or [a, b].
func (b *Builder) between(t *Table, col valueExpr, v *ordjson.Value, at path) (exp.Expression, error) {
	var lo, hi *ordjson.Value
	switch {
	case v.Kind == ordjson.Object:
		lo, hi = v.Get("$min"), v.Get("$max")
	case v.Kind == ordjson.Array && len(v.Items) == 2:
		lo, hi = v.Items[0], v.Items[1]
	}
	if lo == nil || hi == nil {
		return nil, at.errorf(`must be {"$min": a, "$max": b} or [a, b]`)
	}
	a, err := b.operand(t, lo, at.with("$min"))
	if err != nil {
		return nil, err
	}
	z, err := b.operand(t, hi, at.with("$max"))
	if err != nil {
		return nil, err
	}
	if a == nil || z == nil {
		return nil, at.errorf("bounds must not be null")
	}
	return col.Between(exp.NewRangeVal(a, z)), nil
}

// logical translates $and/$or: an array of condition objects, or an object
// whose members each are one condition.
func (b *Builder) logical(t *Table, key string, v *ordjson.Value, at path) (exp.Expression, error) {
	var parts []exp.Expression
	switch v.Kind {
	case ordjson.Array:
		for i, item := range v.Items {
			e, err := b.where(t, item, at.with(fmt.Sprint(i)))
			if err != nil {
				return nil, err
			}
			parts = append(parts, e)
		}
	case ordjson.Object:
		for _, m := range v.Members {
			e, err := b.condition(t, m.Key, m.Value, at.with(m.Key))
			if err != nil {
				return nil, err
			}
			parts = append(parts, e)
		}
	default:
		return nil, at.errorf("must be an array or an object of conditions")
	}
	if len(parts) == 0 {
		// An AND of nothing holds; an OR of nothing does not (the
		// reference drops the clause and returns every row).
		if key == "$or" {
			return goqu.L("FALSE"), nil
		}
		return goqu.L("TRUE"), nil
	}
	if key == "$or" {
		return goqu.Or(parts...), nil
	}
	return goqu.And(parts...), nil
}

// comparison builds one operator on a column from a bound value.
type comparison func(col valueExpr, val any) exp.Expression

var comparisons = map[string]comparison{
	"$eq": func(c valueExpr, v any) exp.Expression {
		if v == nil {
			return isNull(c)
		}
		return c.Eq(v)
	},
	"$ne": func(c valueExpr, v any) exp.Expression {
		if v == nil {
			return isNotNull(c)
		}
		return c.Neq(v)
	},
	"$gt":   func(c valueExpr, v any) exp.Expression { return c.Gt(v) },
	"$gte":  func(c valueExpr, v any) exp.Expression { return c.Gte(v) },
	"$lt":   func(c valueExpr, v any) exp.Expression { return c.Lt(v) },
	"$lte":  func(c valueExpr, v any) exp.Expression { return c.Lte(v) },
	"$like": func(c valueExpr, v any) exp.Expression { return c.Like(v) },
}

// comparisons translates {"$op": value, ...} on one column, AND-ed.
func (b *Builder) comparisons(t *Table, col valueExpr, v *ordjson.Value, at path) (exp.Expression, error) {
	parts := make([]exp.Expression, 0, len(v.Members))
	for _, m := range v.Members {
		opAt := at.with(m.Key)
		switch m.Key {
		case "$in", "$nin":
			if sub := m.Value; sub.Kind == ordjson.Object && len(sub.Members) == 1 &&
				(sub.Members[0].Key == "$select" || setOperators[sub.Members[0].Key] != "") {
				sql, args, err := b.subquery(t, sub, opAt)
				if err != nil {
					return nil, err
				}
				op := " IN ("
				if m.Key == "$nin" {
					op = " NOT IN ("
				}
				parts = append(parts, goqu.L("?"+op+sql+")", append([]any{col}, args...)...))
				continue
			}
			list, err := b.list(m.Value, opAt)
			if err != nil {
				return nil, err
			}
			switch {
			case len(list) == 0 && m.Key == "$in":
				// IN () is a syntax error; the client meant no value matches.
				parts = append(parts, goqu.L("FALSE"))
			case len(list) == 0:
				parts = append(parts, goqu.L("TRUE"))
			case m.Key == "$in":
				parts = append(parts, col.In(list...))
			default:
				parts = append(parts, col.NotIn(list...))
			}
			continue
		}
		switch m.Key {
		case "$between":
			e, err := b.between(t, col, m.Value, opAt)
			if err != nil {
				return nil, err
			}
			parts = append(parts, e)
			continue
		case "$startsWith", "$endsWith", "$contains":
			if m.Value.Kind != ordjson.String {
				return nil, opAt.errorf("must be a string")
			}
			pattern := likePattern(m.Value.Text)
			switch m.Key {
			case "$startsWith":
				pattern += "%"
			case "$endsWith":
				pattern = "%" + pattern
			default:
				pattern = "%" + pattern + "%"
			}
			parts = append(parts, col.Like(pattern))
			continue
		case "$isNull":
			wanted, err := flag(m.Value, opAt)
			if err != nil {
				return nil, err
			}
			if wanted {
				parts = append(parts, isNull(col))
			} else {
				parts = append(parts, isNotNull(col))
			}
			continue
		case "$not":
			if m.Value.Kind != ordjson.Object {
				return nil, opAt.errorf("must be an object of operators")
			}
			inner, err := b.comparisons(t, col, m.Value, opAt)
			if err != nil {
				return nil, err
			}
			parts = append(parts, goqu.Func("NOT", inner))
			continue
		}
		cmp, ok := comparisons[m.Key]
		if !ok {
			return nil, opAt.errorf(fmt.Sprintf("unknown operator %q", m.Key))
		}
		val, err := b.operand(t, m.Value, opAt)
		if err != nil {
			return nil, err
		}
		if val == nil && m.Key != "$eq" && m.Key != "$ne" {
			return nil, opAt.errorf("cannot compare with null")
		}
		parts = append(parts, cmp(col, comparable(col, val)))
	}
	if len(parts) == 0 {
		return nil, at.errorf("must not be an empty object")
	}
	return goqu.And(parts...), nil
}

// list reads the array of an $in or $nin.
func (b *Builder) list(v *ordjson.Value, at path) ([]any, error) {
	if v.Kind != ordjson.Array {
		return nil, at.errorf("must be an array")
	}
	if len(v.Items) > b.limits.MaxIn {
		return nil, at.errorf(fmt.Sprintf("has %d values, more than the limit of %d", len(v.Items), b.limits.MaxIn))
	}
	out := make([]any, len(v.Items))
	for i, item := range v.Items {
		val, err := b.queryValue(item, at.with(fmt.Sprint(i)))
		if err != nil {
			return nil, err
		}
		if val == nil {
			return nil, at.with(fmt.Sprint(i)).errorf("null never matches in a list")
		}
		out[i] = val
	}
	return out, nil
}

// isHelper reports whether key names a helper that can stand on the left of
// a comparison, as in {"$count": "*", "$gt": 6}.
func isHelper(key string) bool {
	if _, ok := aggregates[key]; ok {
		return true
	}
	switch key {
	case "$coalesce", "$concat", "$left", "$now", "$cast", "$date":
		return true
	}
	_, ok := arithmetic[key]
	return ok
}

// helperCondition translates {"$count": "*", "$gt": 6}: the first member a
// helper, the others operators comparing it (AND-ed).
func (b *Builder) helperCondition(t *Table, v *ordjson.Value, at path) (exp.Expression, error) {
	first := &ordjson.Value{Kind: ordjson.Object, Members: v.Members[:1]}
	e, _, err := b.expression(t, first, at)
	if err != nil {
		return nil, err
	}
	return b.comparisons(t, e, &ordjson.Value{Kind: ordjson.Object, Members: v.Members[1:]}, at)
}
