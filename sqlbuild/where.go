package sqlbuild

import (
	"fmt"

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
	parts := make([]exp.Expression, 0, len(v.Members))
	for _, m := range v.Members {
		e, err := b.condition(t, m.Key, m.Value, at.with(m.Key))
		if err != nil {
			return nil, err
		}
		parts = append(parts, e)
	}
	if len(parts) == 0 {
		return nil, at.errorf("must not be empty")
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
	}
	if isOperator(key) {
		return nil, at.errorf(fmt.Sprintf("unknown operator %q", key))
	}
	col, err := column(t, key, at)
	if err != nil {
		return nil, err
	}
	ident := goqu.C(col.Name)
	switch v.Kind {
	case ordjson.Null:
		return ident.IsNull(), nil
	case ordjson.Object:
		return b.comparisons(ident, v, at)
	case ordjson.Array:
		return nil, at.errorf("a column condition must be a value or an object of operators; use $in for a list")
	}
	val, err := scalar(v, at)
	if err != nil {
		return nil, err
	}
	return ident.Eq(val), nil
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
		return nil, at.errorf("must not be empty")
	}
	if key == "$or" {
		return goqu.Or(parts...), nil
	}
	return goqu.And(parts...), nil
}

// comparison builds one operator on a column from a bound value.
type comparison func(col exp.IdentifierExpression, val any) exp.Expression

var comparisons = map[string]comparison{
	"$eq": func(c exp.IdentifierExpression, v any) exp.Expression {
		if v == nil {
			return c.IsNull()
		}
		return c.Eq(v)
	},
	"$ne": func(c exp.IdentifierExpression, v any) exp.Expression {
		if v == nil {
			return c.IsNotNull()
		}
		return c.Neq(v)
	},
	"$gt":   func(c exp.IdentifierExpression, v any) exp.Expression { return c.Gt(v) },
	"$gte":  func(c exp.IdentifierExpression, v any) exp.Expression { return c.Gte(v) },
	"$lt":   func(c exp.IdentifierExpression, v any) exp.Expression { return c.Lt(v) },
	"$lte":  func(c exp.IdentifierExpression, v any) exp.Expression { return c.Lte(v) },
	"$like": func(c exp.IdentifierExpression, v any) exp.Expression { return c.Like(v) },
}

// comparisons translates {"$op": value, ...} on one column, AND-ed.
func (b *Builder) comparisons(col exp.IdentifierExpression, v *ordjson.Value, at path) (exp.Expression, error) {
	parts := make([]exp.Expression, 0, len(v.Members))
	for _, m := range v.Members {
		opAt := at.with(m.Key)
		switch m.Key {
		case "$in", "$nin":
			list, err := b.list(m.Value, opAt)
			if err != nil {
				return nil, err
			}
			if m.Key == "$in" {
				parts = append(parts, col.In(list...))
			} else {
				parts = append(parts, col.NotIn(list...))
			}
			continue
		}
		cmp, ok := comparisons[m.Key]
		if !ok {
			return nil, opAt.errorf(fmt.Sprintf("unknown operator %q", m.Key))
		}
		val, err := scalar(m.Value, opAt)
		if err != nil {
			return nil, err
		}
		if val == nil && m.Key != "$eq" && m.Key != "$ne" {
			return nil, opAt.errorf("cannot compare with null")
		}
		parts = append(parts, cmp(col, val))
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
	if len(v.Items) == 0 {
		return nil, at.errorf("must not be empty")
	}
	if len(v.Items) > b.limits.MaxIn {
		return nil, at.errorf(fmt.Sprintf("has %d values, more than the limit of %d", len(v.Items), b.limits.MaxIn))
	}
	out := make([]any, len(v.Items))
	for i, item := range v.Items {
		val, err := scalar(item, at.with(fmt.Sprint(i)))
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
