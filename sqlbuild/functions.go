package sqlbuild

import (
	"fmt"
	"strings"

	"github.com/doug-martin/goqu/v9"
	"github.com/doug-martin/goqu/v9/exp"

	"github.com/eventsource/eventsource/ordjson"
)

// valueExpr is what a helper translates to: it can be compared, aliased and
// ordered like a column.
type valueExpr interface {
	exp.Expression
	exp.Comparable
	exp.Inable
	exp.Isable
	exp.Likeable
	exp.Rangeable
	exp.Aliaseable
	exp.Orderable
}

// arithmetic are json-sql-builder2's arithmetic helpers. Their text comes
// from here, never from the client.
var arithmetic = map[string]string{"$add": "+", "$sub": "-", "$mul": "*", "$div": "/"}

// castTypes are the types $cast accepts, by the names clients write, and
// the MariaDB type each stands for. The type is SQL text: it comes from
// here, never from the client (json-sql-builder2 binds it as a value, which
// MariaDB refuses).
var castTypes = map[string]string{
	"char": "CHAR", "varchar": "CHAR", "text": "CHAR", "string": "CHAR",
	"signed": "SIGNED", "integer": "SIGNED", "int": "SIGNED", "bigint": "SIGNED", "unsigned": "UNSIGNED",
	"decimal": "DECIMAL(65,30)", "numeric": "DECIMAL(65,30)", "double": "DOUBLE", "float": "DOUBLE",
	"date": "DATE", "datetime": "DATETIME(6)", "timestamp": "DATETIME(6)", "time": "TIME(6)",
}

// comparators are the comparators $cmp accepts.
var comparators = map[string]bool{"=": true, "!=": true, "<>": true, "<": true, "<=": true, ">": true, ">=": true}

// expression translates an object holding one helper in a value position:
// an aggregate ($count, $sum, $avg, $min, $max), $coalesce, $concat, $left,
// $now, $add/$sub/$mul/$div, $ (a helper followed by arithmetic), $cmp or
// $i (a column).
// It reports whether the result aggregates. Every value in it is bound.
func (b *Builder) expression(t *Table, v *ordjson.Value, at path) (valueExpr, bool, error) {
	if v.Kind != ordjson.Object || len(v.Members) == 0 {
		return nil, false, at.errorf("must be an object with one helper such as $count")
	}
	m := v.Members[0]
	hAt := at.with(m.Key)
	if !isOperator(m.Key) {
		return nil, false, at.errorf("must be a value, a ~~column or a helper object such as {\"$concat\": [...]}")
	}
	if _, ok := aggregates[m.Key]; ok && len(v.Members) == 1 {
		fn, agg, err := b.helper(t, v, at)
		return fn, agg, err
	}
	if m.Key == "$select" || setOperators[m.Key] != "" {
		if len(v.Members) != 1 {
			return nil, false, at.errorf("a sub-select must be the only member")
		}
		sql, args, err := b.subquery(t, v, at)
		if err != nil {
			return nil, false, err
		}
		return goqu.L("("+sql+")", args...), false, nil
	}
	if m.Key == "$" {
		if len(v.Members) != 1 {
			return nil, false, at.errorf("$ must be the only member")
		}
		return b.chain(t, m.Value, hAt)
	}
	if len(v.Members) != 1 {
		return nil, false, at.errorf("must hold exactly one helper")
	}
	switch m.Key {
	case "$i":
		// json-sql-builder2's identifier helper: {"$i": "column"}.
		if m.Value.Kind != ordjson.String {
			return nil, false, hAt.errorf("must be a column name")
		}
		c, err := columnRef(t, m.Value.Text, hAt)
		return c, false, err
	case "$coalesce", "$concat":
		args, agg, err := b.arguments(t, m.Value, hAt, false)
		if err != nil {
			return nil, false, err
		}
		return goqu.Func(strings.ToUpper(m.Key[1:]), args...), agg, nil
	case "$left":
		if m.Value.Kind != ordjson.Object {
			return nil, false, hAt.errorf(`must be {"$str": ..., "$len": n}, or a number on a column key`)
		}
		str, length := m.Value.Get("$str"), m.Value.Get("$len")
		if str == nil || length == nil || len(m.Value.Members) != 2 {
			return nil, false, hAt.errorf(`must be {"$str": ..., "$len": n}`)
		}
		s, agg, err := b.argument(t, str, hAt.with("$str"), false)
		if err != nil {
			return nil, false, err
		}
		n, err := count(length, hAt.with("$len"), 1<<20)
		if err != nil {
			return nil, false, err
		}
		return goqu.Func("LEFT", s, int64(n)), agg, nil
	case "$cast":
		if m.Value.Kind != ordjson.Object || len(m.Value.Members) != 2 || m.Value.Get("$expr") == nil || m.Value.Get("$format") == nil {
			return nil, false, hAt.errorf(`must be {"$expr": ..., "$format": "type"}`)
		}
		format := m.Value.Get("$format")
		typ := ""
		if format.Kind == ordjson.String {
			typ = castTypes[strings.ToLower(format.Text)]
		}
		if typ == "" {
			return nil, false, hAt.with("$format").errorf("must be one of char, varchar, text, signed, integer, unsigned, decimal, double, date, datetime, time")
		}
		e, agg, err := b.argument(t, m.Value.Get("$expr"), hAt.with("$expr"), false)
		if err != nil {
			return nil, false, err
		}
		return goqu.L("CAST(? AS "+typ+")", e), agg, nil
	case "$date":
		e, agg, err := b.argument(t, m.Value, hAt, false)
		if err != nil {
			return nil, false, err
		}
		return goqu.Func("DATE", e), agg, nil
	case "$now":
		if m.Value.Kind != ordjson.Bool && m.Value.Kind != ordjson.Number {
			return nil, false, hAt.errorf("must be true or a number")
		}
		return goqu.Func("NOW"), false, nil
	case "$cmp":
		return b.cmp(t, m.Value, hAt)
	}
	if op, ok := arithmetic[m.Key]; ok {
		args, agg, err := b.arguments(t, m.Value, hAt, true)
		if err != nil {
			return nil, false, err
		}
		if len(args) < 2 {
			return nil, false, hAt.errorf("needs at least two operands")
		}
		return goqu.L("("+strings.TrimSuffix(strings.Repeat("? "+op+" ", len(args)), " "+op+" ")+")", args...), agg, nil
	}
	return nil, false, hAt.errorf(fmt.Sprintf("unknown or unsupported helper %q", m.Key))
}

// subquery renders {"$select": ...} or a set operation inside another
// query, checked like a top-level one; t is the scope around it.
func (b *Builder) subquery(t *Table, v *ordjson.Value, at path) (string, []any, error) {
	if t.readsAgain != nil {
		*t.readsAgain = true
	}
	m := v.Members[0]
	var sel *Select
	var err error
	if m.Key == "$select" {
		if m.Value.Kind != ordjson.Object {
			return "", nil, at.with(m.Key).errorf("must be an object")
		}
		sel, err = b.selectBody(m.Value, at.with(m.Key), t)
	} else {
		sel, err = b.setOperation(m.Key, m.Value, at.with(m.Key), t)
	}
	if err != nil {
		return "", nil, err
	}
	return sel.sql()
}

// chain translates {"$": {"$max": "id", "$add": 1, ...}}: the first member a
// helper, each following one an arithmetic operator applied in order. As in
// the arithmetic helpers, a plain string there is a column.
func (b *Builder) chain(t *Table, v *ordjson.Value, at path) (valueExpr, bool, error) {
	if v.Kind != ordjson.Object || len(v.Members) < 2 {
		return nil, false, at.errorf("must be an object: a helper, then arithmetic such as $add")
	}
	first := &ordjson.Value{Kind: ordjson.Object, Members: v.Members[:1]}
	e, agg, err := b.expression(t, first, at)
	if err != nil {
		return nil, false, err
	}
	for _, m := range v.Members[1:] {
		op, ok := arithmetic[m.Key]
		if !ok {
			return nil, false, at.with(m.Key).errorf(fmt.Sprintf("unknown arithmetic operator %q", m.Key))
		}
		arg, argAgg, err := b.argument(t, m.Value, at.with(m.Key), true)
		if err != nil {
			return nil, false, err
		}
		agg = agg || argAgg
		e = goqu.L("(? "+op+" ?)", e, arg)
	}
	return e, agg, nil
}

// cmp translates {"$value": a, "$comparator": "=", "$other": b}.
func (b *Builder) cmp(t *Table, v *ordjson.Value, at path) (valueExpr, bool, error) {
	if v.Kind != ordjson.Object {
		return nil, false, at.errorf(`must be {"$value": ..., "$comparator": ..., "$other": ...}`)
	}
	for _, m := range v.Members {
		if m.Key != "$value" && m.Key != "$comparator" && m.Key != "$other" {
			return nil, false, at.with(m.Key).errorf(fmt.Sprintf("unknown option %q", m.Key))
		}
	}
	left, right, comparator := v.Get("$value"), v.Get("$other"), v.Get("$comparator")
	if left == nil || right == nil || comparator == nil {
		return nil, false, at.errorf("$value, $comparator and $other are required")
	}
	if comparator.Kind != ordjson.String || !comparators[comparator.Text] {
		return nil, false, at.with("$comparator").errorf("must be one of =, !=, <>, <, <=, >, >=")
	}
	a, aggA, err := b.argument(t, left, at.with("$value"), false)
	if err != nil {
		return nil, false, err
	}
	z, aggZ, err := b.argument(t, right, at.with("$other"), false)
	if err != nil {
		return nil, false, err
	}
	op := comparator.Text
	if op == "!=" {
		op = "<>"
	}
	return goqu.L("(? "+op+" ?)", a, z), aggA || aggZ, nil
}

// arguments reads a helper's operands: an array, or an object of one column
// key with its value ({"name": "none"} is the column, then the value).
func (b *Builder) arguments(t *Table, v *ordjson.Value, at path, stringsAreColumns bool) ([]any, bool, error) {
	var items []*ordjson.Value
	switch v.Kind {
	case ordjson.Array:
		items = v.Items
	case ordjson.Object:
		for _, m := range v.Members {
			items = append(items, &ordjson.Value{Kind: ordjson.String, Text: "~~" + m.Key}, m.Value)
		}
	default:
		return nil, false, at.errorf("must be an array of operands")
	}
	if len(items) == 0 {
		return nil, false, at.errorf("must not be empty")
	}
	out := make([]any, len(items))
	agg := false
	for i, item := range items {
		e, a, err := b.argument(t, item, at.with(fmt.Sprint(i)), stringsAreColumns)
		if err != nil {
			return nil, false, err
		}
		out[i], agg = e, agg || a
	}
	return out, agg, nil
}

// argument is one operand: "~~column" (or any string, where strings are
// columns, as in arithmetic), a bound value, a nested helper, or
// {"column": {"$left": n}}.
func (b *Builder) argument(t *Table, v *ordjson.Value, at path, stringsAreColumns bool) (exp.Expression, bool, error) {
	switch v.Kind {
	case ordjson.String:
		if err := refuseRaw(v, at); err != nil {
			return nil, false, err
		}
		name, isRef := strings.CutPrefix(v.Text, "~~")
		if isRef || stringsAreColumns {
			c, err := columnRef(t, name, at)
			if err != nil {
				return nil, false, err
			}
			return c, false, nil
		}
		return goqu.V(v.Text), false, nil
	case ordjson.Object:
		if len(v.Members) == 1 && !isOperator(v.Members[0].Key) {
			return b.columnHelper(t, v.Members[0].Key, v.Members[0].Value, at.with(v.Members[0].Key))
		}
		return b.expression(t, v, at)
	case ordjson.Array:
		return nil, false, at.errorf("must be a value, a column or a helper, not an array")
	}
	val, err := b.queryValue(v, at)
	if err != nil {
		return nil, false, err
	}
	return goqu.V(val), false, nil
}

// columnHelper is {"column": {"$left": n}}: a helper on the column its key
// names.
func (b *Builder) columnHelper(t *Table, name string, v *ordjson.Value, at path) (valueExpr, bool, error) {
	c, err := ref(t, name, at)
	if err != nil {
		return nil, false, err
	}
	if n := v.Get("$left"); n != nil && len(v.Members) == 1 && n.Kind == ordjson.Number {
		length, err := count(n, at.with("$left"), 1<<20)
		if err != nil {
			return nil, false, err
		}
		return goqu.Func("LEFT", c, int64(length)), false, nil
	}
	return nil, false, at.errorf(`must be {"$left": n}`)
}
