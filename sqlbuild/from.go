package sqlbuild

import (
	"fmt"

	"github.com/doug-martin/goqu/v9"
	"github.com/doug-martin/goqu/v9/exp"

	"github.com/eventsource/eventsource/ordjson"
)

// joinKinds are the join forms keyed by table ({"schema.table": {"$inner":
// "alias", "$on": ...}}) and keyed by alias ({"alias": {"$innerJoin":
// {"$table": "schema.table", "$on": ...}}}), by the SQL they stand for.
var joinKinds = map[string]string{
	"$inner": "INNER", "$left": "LEFT", "$right": "RIGHT", "$cross": "CROSS",
	"$innerJoin": "INNER", "$leftJoin": "LEFT", "$rightJoin": "RIGHT", "$crossJoin": "CROSS",
}

// from reads $from and $join: the tables a select reads and the aliases its
// columns may be qualified with ("e.pid"). Every table is checked against
// the allow-list. A select with joins is not rows of one table, so a stream
// reads it whole.
func (b *Builder) from(body *ordjson.Value, at path, outer *Table) (*Select, *goqu.SelectDataset, error) {
	t, alias := b.catalog.Default(), ""
	if v := body.Get("$from"); v != nil {
		var err error
		if t, alias, err = b.fromTable(v, at.with("$from")); err != nil {
			return nil, nil, err
		}
	}
	scope := *t
	scope.qualifiers = map[string]*Table{}
	scope.readsAgain = new(bool)
	if outer != nil {
		// A sub-select may name the aliases of the query around it
		// (correlation); its own shadow them.
		for q, qt := range outer.qualifiers {
			scope.qualifiers[q] = qt
		}
	}
	var source exp.Expression = goqu.S(t.Schema).Table(t.Name)
	if alias != "" {
		scope.qualifiers[alias] = t
		source = goqu.S(t.Schema).Table(t.Name).As(alias)
	}
	s := &Select{Table: t, scope: &scope}
	ds := b.dialect.From(source).Prepared(true)
	if v := body.Get("$join"); v != nil {
		var err error
		if ds, err = b.joins(&scope, ds, v, at.with("$join")); err != nil {
			return nil, nil, err
		}
		s.Whole = true
	}
	return s, ds, nil
}

// fromTable reads $from: "schema.table", or {"schema.table": "alias" | true | 1}.
func (b *Builder) fromTable(v *ordjson.Value, at path) (*Table, string, error) {
	switch v.Kind {
	case ordjson.String:
		t, err := b.table(v, at)
		return t, "", err
	case ordjson.Object:
		if len(v.Members) != 1 {
			return nil, "", at.errorf("naming more than one table is not supported yet: use $join")
		}
		m := v.Members[0]
		t, err := b.table(&ordjson.Value{Kind: ordjson.String, Text: m.Key}, at.with(m.Key))
		if err != nil {
			return nil, "", err
		}
		switch {
		case m.Value.Kind == ordjson.String:
			if !validIdentifier(m.Value.Text) {
				return nil, "", at.with(m.Key).errorf(fmt.Sprintf("alias %q is not a plain identifier", m.Value.Text))
			}
			return t, m.Value.Text, nil
		case m.Value.Kind == ordjson.Bool && m.Value.Bool, m.Value.Kind == ordjson.Number && m.Value.Text == "1":
			return t, "", nil
		}
		return nil, "", at.with(m.Key).errorf("must be an alias, true or 1 (sub-selects in $from are not supported yet)")
	}
	return nil, "", at.errorf("must be a table name or {\"schema.table\": \"alias\"}")
}

// joins reads $join, in the order the client wrote it, adding each alias to
// the scope before its condition is read.
func (b *Builder) joins(scope *Table, ds *goqu.SelectDataset, v *ordjson.Value, at path) (*goqu.SelectDataset, error) {
	if v.Kind != ordjson.Object || len(v.Members) == 0 {
		return nil, at.errorf("must be an object of joins")
	}
	for _, m := range v.Members {
		jAt := at.with(m.Key)
		if m.Value.Kind != ordjson.Object || len(m.Value.Members) == 0 {
			return nil, jAt.errorf("must be an object such as {\"$inner\": \"alias\", \"$on\": {...}}")
		}
		kind, tableName, alias, spec, kAt := "", "", "", m.Value, jAt
		first := m.Value.Members[0]
		switch {
		case first.Key == "$full" || first.Key == "$fullJoin":
			return nil, jAt.with(first.Key).errorf("MariaDB has no FULL JOIN")
		case isOperator(first.Key) && len(first.Key) > 5 && first.Key[len(first.Key)-4:] == "Join":
			// Keyed by alias: {"p": {"$innerJoin": {"$table": ..., "$on": ...}}}.
			kind, alias, kAt = joinKinds[first.Key], m.Key, jAt.with(first.Key)
			if kind == "" || len(m.Value.Members) != 1 {
				return nil, kAt.errorf(fmt.Sprintf("unknown join %q", first.Key))
			}
			spec = first.Value
			if spec.Kind != ordjson.Object {
				return nil, kAt.errorf("must be {\"$table\": \"schema.table\", \"$on\": {...}}")
			}
			tv := spec.Get("$table")
			if tv == nil || tv.Kind != ordjson.String {
				if spec.Get("$select") != nil {
					return nil, kAt.with("$select").errorf("joining a sub-select is not supported yet")
				}
				return nil, kAt.errorf("$table is required")
			}
			tableName = tv.Text
		default:
			// Keyed by table: {"schema.table": {"$inner": "alias", "$on": ...}}.
			tableName = m.Key
			for _, o := range m.Value.Members {
				if k, ok := joinKinds[o.Key]; ok && len(o.Key) <= 6 {
					if kind != "" {
						return nil, jAt.with(o.Key).errorf("names a second join kind")
					}
					if o.Value.Kind != ordjson.String {
						return nil, jAt.with(o.Key).errorf("must be the alias of the joined table")
					}
					kind, alias = k, o.Value.Text
				}
			}
			if kind == "" {
				return nil, jAt.errorf("needs one of $inner, $left, $right or $cross")
			}
		}
		t, err := b.table(&ordjson.Value{Kind: ordjson.String, Text: tableName}, kAt)
		if err != nil {
			return nil, err
		}
		if !validIdentifier(alias) {
			return nil, kAt.errorf(fmt.Sprintf("alias %q is not a plain identifier", alias))
		}
		if scope.qualifiers[alias] != nil {
			return nil, kAt.errorf(fmt.Sprintf("alias %q is used twice", alias))
		}
		scope.qualifiers[alias] = t
		joined := goqu.S(t.Schema).Table(t.Name).As(alias)
		if kind == "CROSS" {
			for _, o := range spec.Members {
				if o.Key == "$on" || o.Key == "$using" {
					return nil, kAt.with(o.Key).errorf("a cross join has no condition")
				}
			}
			ds = ds.CrossJoin(joined)
			continue
		}
		cond, err := b.joinCondition(scope, t, spec, kAt)
		if err != nil {
			return nil, err
		}
		switch kind {
		case "INNER":
			ds = ds.InnerJoin(joined, cond)
		case "LEFT":
			ds = ds.LeftJoin(joined, cond)
		case "RIGHT":
			ds = ds.RightJoin(joined, cond)
		}
	}
	return ds, nil
}

// joinCondition reads $on (a $where object over the scope) or $using (a
// column name or an array of them, in the joined table).
func (b *Builder) joinCondition(scope, joined *Table, spec *ordjson.Value, at path) (exp.JoinCondition, error) {
	on, using := spec.Get("$on"), spec.Get("$using")
	for _, o := range spec.Members {
		switch o.Key {
		case "$on", "$using", "$table", "$inner", "$left", "$right":
		default:
			return nil, at.with(o.Key).errorf(fmt.Sprintf("unknown option %q", o.Key))
		}
	}
	switch {
	case on != nil && using == nil:
		cond, err := b.where(scope, on, at.with("$on"))
		if err != nil {
			return nil, err
		}
		return goqu.On(cond), nil
	case using != nil && on == nil:
		var names []*ordjson.Value
		switch using.Kind {
		case ordjson.String:
			names = []*ordjson.Value{using}
		case ordjson.Array:
			names = using.Items
		}
		if len(names) == 0 {
			return nil, at.with("$using").errorf("must be a column name or an array of them")
		}
		cols := make([]any, len(names))
		for i, n := range names {
			if n.Kind != ordjson.String {
				return nil, at.with("$using").errorf("must be a column name or an array of them")
			}
			c, err := column(joined, n.Text, at.with("$using"))
			if err != nil {
				return nil, err
			}
			cols[i] = c.Name
		}
		return goqu.Using(cols...), nil
	}
	return nil, at.errorf("needs either $on or $using")
}
