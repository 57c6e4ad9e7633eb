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
// columns may be qualified with ("e.pid"; a table without an alias also as
// "event.pid" or "eventsource.event.pid"). $from is "schema.table" or an
// object of sources, each {"schema.table": "alias" | true | 1} or {"alias":
// {"$select": ...}} (a derived table); several are joined with commas.
// Every table is checked against the allow-list and the caller's scope. A
// select with joins or derived tables is not rows of one table, so a
// stream reads it whole.
func (b *Builder) from(body *ordjson.Value, at path, outer *Table) (*Select, *goqu.SelectDataset, error) {
	scope := &Table{qualifiers: map[string]*Table{}, readsAgain: new(bool)}
	if outer != nil {
		scope.ctes = outer.ctes
		// A sub-select may name the aliases of the query around it
		// (correlation); its own shadow them.
		for q, qt := range outer.qualifiers {
			scope.qualifiers[q] = qt
		}
	}
	var sources []fromSource
	add := func(src fromSource) {
		sources = append(sources, src)
		if src.alias != "" {
			scope.qualifiers[src.alias] = src.t
		} else if src.table {
			// Unaliased, a table's columns may be qualified by its name.
			scope.qualifiers[src.t.Name] = src.t
			scope.qualifiers[src.t.QualifiedName()] = src.t
		}
	}
	v := body.Get("$from")
	fAt := at.with("$from")
	switch {
	case v == nil:
		t := b.catalog.Default()
		if err := b.readable(t, fAt); err != nil {
			return nil, nil, err
		}
		add(fromSource{t: t, table: true, at: fAt})
	case v.Kind == ordjson.String:
		t, cte, err := b.tableIn(scope, v, fAt)
		if err != nil {
			return nil, nil, err
		}
		add(fromSource{t: t, table: !cte, at: fAt})
	case v.Kind == ordjson.Object && len(v.Members) > 0:
		for _, m := range v.Members {
			if off := m.Value; off.Kind == ordjson.Bool && !off.Bool || off.Kind == ordjson.Number && off.Text == "0" {
				continue // {"people_skills": 0} leaves a source out, as the reference does
			}
			src, err := b.source(scope, m.Key, m.Value, fAt.with(m.Key))
			if err != nil {
				return nil, nil, err
			}
			if src.alias != "" && scope.qualifiers[src.alias] != nil && (outer == nil || outer.qualifiers[src.alias] != scope.qualifiers[src.alias]) {
				return nil, nil, fAt.with(m.Key).errorf(fmt.Sprintf("alias %q is used twice", src.alias))
			}
			add(src)
		}
	default:
		return nil, nil, fAt.errorf(`must be a table name or an object of {"schema.table": "alias"} and {"alias": {"$select": ...}}`)
	}
	if len(sources) == 0 {
		return nil, nil, fAt.errorf("names no table")
	}
	joins := body.Get("$join")
	main := sources[0]
	s := &Select{Table: main.t, scope: scope, Whole: len(sources) > 1 || main.derived != nil || joins != nil}
	exprs := make([]any, len(sources))
	for i, src := range sources {
		switch {
		case src.derived != nil:
			exprs[i] = src.derived
		case !src.table:
			exprs[i] = tableExpr(src.t)
			if src.alias != "" {
				exprs[i] = tableExpr(src.t).As(src.alias)
			}
		case !s.Whole:
			// The one table of a paged select: its scope goes into the
			// WHERE, which keeps its index hints and keyset pages.
			exprs[i] = tableExpr(src.t)
			if src.alias != "" {
				exprs[i] = tableExpr(src.t).As(src.alias)
			}
			qualifier := src.alias
			if qualifier == "" {
				qualifier = src.t.Name
			}
			cond, err := b.rowCondition(src.t, qualifier, src.at)
			if err != nil {
				return nil, nil, err
			}
			s.scopeWhere = cond
		default:
			expr, err := b.scopedTable(src.t, src.alias, src.at)
			if err != nil {
				return nil, nil, err
			}
			exprs[i] = expr
		}
	}
	// The scope reads unqualified names as columns of the first source.
	scope.Schema, scope.Name, scope.Key, scope.Columns, scope.Writable = main.t.Schema, main.t.Name, main.t.Key, main.t.Columns, main.t.Writable
	ds := b.dialect.From(exprs...).Prepared(true)
	if joins != nil {
		var err error
		if ds, err = b.joins(scope, ds, joins, at.with("$join")); err != nil {
			return nil, nil, err
		}
	}
	if !s.Whole {
		s.alias = main.alias
	}
	return s, ds, nil
}

// fromSource is one source of a $from: a table (an allowed one, or a
// common table expression when table is false) or a derived table.
type fromSource struct {
	t       *Table
	alias   string
	table   bool
	derived exp.Expression
	at      path
}

// source is one member of a $from object: a table with an optional alias,
// or a derived table.
func (b *Builder) source(scope *Table, key string, v *ordjson.Value, at path) (fromSource, error) {
	if v.Kind == ordjson.Object {
		t, d, err := b.derived(scope, key, v, at)
		return fromSource{t: t, alias: key, derived: d, at: at}, err
	}
	t, cte, err := b.tableIn(scope, &ordjson.Value{Kind: ordjson.String, Text: key}, at)
	if err != nil {
		return fromSource{}, err
	}
	switch {
	case v.Kind == ordjson.String:
		if !validIdentifier(v.Text) {
			return fromSource{}, at.errorf(fmt.Sprintf("alias %q is not a plain identifier", v.Text))
		}
		return fromSource{t: t, alias: v.Text, table: !cte, at: at}, nil
	case v.Kind == ordjson.Bool && v.Bool, v.Kind == ordjson.Number && v.Text == "1":
		return fromSource{t: t, table: !cte, at: at}, nil
	}
	return fromSource{}, at.errorf(`must be an alias, true, 1 or {"$select": ...}`)
}

// derived is {"alias": {"$select": ...}} (or a set operation): a sub-select
// read as a table. Its columns are the names its rows have.
func (b *Builder) derived(scope *Table, alias string, v *ordjson.Value, at path) (*Table, exp.Expression, error) {
	if !validIdentifier(alias) {
		return nil, nil, at.errorf(fmt.Sprintf("alias %q is not a plain identifier", alias))
	}
	if len(v.Members) != 1 || (v.Members[0].Key != "$select" && setOperators[v.Members[0].Key] == "") {
		return nil, nil, at.errorf(`a derived table must be {"$select": ...} or a set operation`)
	}
	m := v.Members[0]
	var sel *Select
	var err error
	if m.Key == "$select" {
		if m.Value.Kind != ordjson.Object {
			return nil, nil, at.with(m.Key).errorf("must be an object")
		}
		sel, err = b.selectBody(m.Value, at.with(m.Key), &Table{ctes: scope.ctes})
	} else {
		sel, err = b.setOperation(m.Key, m.Value, at.with(m.Key), &Table{ctes: scope.ctes})
	}
	if err != nil {
		return nil, nil, err
	}
	sql, args, err := sel.sql()
	if err != nil {
		return nil, nil, err
	}
	t := &Table{Schema: sel.Table.Schema, Name: alias, Columns: sel.scope.Columns}
	return t, goqu.L("("+sql+")", args...).As(alias), nil
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
			if sub := spec.Get("$select"); sub != nil {
				var err error
				sel := ordjson.NewObject(ordjson.Member{Key: "$select", Value: sub})
				if ds, err = b.joinDerived(scope, ds, kind, alias, sel, spec, kAt); err != nil {
					return nil, err
				}
				continue
			}
			tv := spec.Get("$table")
			if tv == nil || tv.Kind != ordjson.String {
				return nil, kAt.errorf("$table (or $select) is required")
			}
			tableName = tv.Text
		default:
			// Keyed by table: {"schema.table": {"$inner": "alias", "$on": ...}},
			// or by alias with a sub-select: {"alias": {"$inner": {"$select":
			// ...}, "$on": ...}}.
			tableName = m.Key
			var sub *ordjson.Value
			for _, o := range m.Value.Members {
				if k, ok := joinKinds[o.Key]; ok && len(o.Key) <= 6 {
					if kind != "" {
						return nil, jAt.with(o.Key).errorf("names a second join kind")
					}
					switch {
					case o.Value.Kind == ordjson.String:
						kind, alias = k, o.Value.Text
					case o.Value.Kind == ordjson.Object && len(o.Value.Members) == 1 &&
						(o.Value.Members[0].Key == "$select" || setOperators[o.Value.Members[0].Key] != ""):
						kind, alias, sub, kAt = k, m.Key, o.Value, jAt.with(o.Key)
					default:
						return nil, jAt.with(o.Key).errorf(`must be the alias of the joined table, or {"$select": ...}`)
					}
				}
			}
			if kind == "" {
				return nil, jAt.errorf("needs one of $inner, $left, $right or $cross")
			}
			if sub != nil {
				var err error
				if ds, err = b.joinDerived(scope, ds, kind, alias, sub, spec, kAt); err != nil {
					return nil, err
				}
				continue
			}
		}
		t, cte, err := b.tableIn(scope, &ordjson.Value{Kind: ordjson.String, Text: tableName}, kAt)
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
		var joined exp.Expression = tableExpr(t).As(alias)
		if !cte {
			if joined, err = b.scopedTable(t, alias, kAt); err != nil {
				return nil, err
			}
		}
		if ds, err = b.join(scope, ds, kind, joined, t, spec, kAt); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// joinDerived joins a sub-select (sel: {"$select": ...} or a set
// operation) as alias, on the condition in spec.
func (b *Builder) joinDerived(scope *Table, ds *goqu.SelectDataset, kind, alias string, sel, spec *ordjson.Value, at path) (*goqu.SelectDataset, error) {
	if scope.qualifiers[alias] != nil {
		return nil, at.errorf(fmt.Sprintf("alias %q is used twice", alias))
	}
	t, joined, err := b.derived(scope, alias, sel, at)
	if err != nil {
		return nil, err
	}
	scope.qualifiers[alias] = t
	return b.join(scope, ds, kind, joined, t, spec, at)
}

// join adds one join of the source joined (table t) to ds.
func (b *Builder) join(scope *Table, ds *goqu.SelectDataset, kind string, joined exp.Expression, t *Table, spec *ordjson.Value, at path) (*goqu.SelectDataset, error) {
	if kind == "CROSS" {
		for _, o := range spec.Members {
			if o.Key == "$on" || o.Key == "$using" {
				return nil, at.with(o.Key).errorf("a cross join has no condition")
			}
		}
		return ds.CrossJoin(joined), nil
	}
	cond, err := b.joinCondition(scope, t, spec, at)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "INNER":
		return ds.InnerJoin(joined, cond), nil
	case "LEFT":
		return ds.LeftJoin(joined, cond), nil
	}
	return ds.RightJoin(joined, cond), nil
}

// joinCondition reads $on (a $where object over the scope) or $using (a
// column name or an array of them, in the joined table).
func (b *Builder) joinCondition(scope, joined *Table, spec *ordjson.Value, at path) (exp.JoinCondition, error) {
	on, using := spec.Get("$on"), spec.Get("$using")
	for _, o := range spec.Members {
		switch o.Key {
		case "$on", "$using", "$table", "$select", "$inner", "$left", "$right":
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
		case ordjson.Object:
			// {"people_id": 1, "skill_id": 0}: the columns set true.
			for _, m := range using.Members {
				on, err := flag(m.Value, at.with("$using").with(m.Key))
				if err != nil {
					return nil, err
				}
				if on {
					names = append(names, ordjson.NewString(m.Key))
				}
			}
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
