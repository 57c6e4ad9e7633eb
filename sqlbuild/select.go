package sqlbuild

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/doug-martin/goqu/v9"
	"github.com/doug-martin/goqu/v9/exp"

	"github.com/eventsource/eventsource/ordjson"
)

// KeyAlias names the hidden last column that carries the table's key in
// every page, so the cursor can resume after it. The row encoder drops it.
const KeyAlias = "__eventsource_key"

// SnapshotAlias names the hidden column that carries the snapshot bound
// when a page takes it (Page.Snapshot zero): the first page reads the bound
// and the rows in one statement, one round trip fewer per stream.
const SnapshotAlias = "__eventsource_snapshot"

// HiddenPrefix starts the names of the hidden columns, which the row
// encoder drops.
const HiddenPrefix = "__eventsource_"

// OrderAliasPrefix, followed by the term's position, names the hidden
// columns that carry a keyset-ordered page's order values (KeysetOrdered),
// so that the cursor can resume after its last row.
const OrderAliasPrefix = HiddenPrefix + "order_"

// Select is a translated $select, ready to be read page by page.
type Select struct {
	// Table is the table read.
	Table *Table
	// Ordered is set when the query has its own $orderBy.
	Ordered bool
	// Limit is the query's $limit (0: none, unless Empty); Offset its $offset.
	Limit  uint64
	Offset uint64
	// Empty is set by "$limit": 0, which asks for no rows at all.
	Empty bool
	// Whole is set for results that are not rows of the table (DISTINCT,
	// GROUP BY, aggregates): they cannot be paged on the table's key, so a
	// stream reads them in one statement, bounded like a keyless table.
	Whole bool

	base *goqu.SelectDataset
	// scopeWhere keeps the select's one table inside the caller's scope
	// (nil: the scope puts no filter on it; see Builder.from).
	scopeWhere exp.Expression
	orderBy    []exp.OrderedExpression
	// orderKeys are the $orderBy's columns when pages resume after the last
	// row's values of them (see KeysetOrdered); nil: ordered pages count
	// rows (offset).
	orderKeys []orderTerm
	// alias is the table's alias in $from, if it has one.
	alias string
	// seek is the index keyset pages are forced onto (see seekIndex); empty
	// leaves the plan to MySQL.
	seek string
	// seekChoices are the indexes a page may be told to seek on instead
	// (see seekIndex).
	seekChoices []string
	// scope is the table with the select list's aliases: the names its
	// rows have, which a set operation around it may order by.
	scope *Table
	// prefix and prefixArgs are the WITH clause written before the
	// statement (empty without $with).
	prefix     string
	prefixArgs []any
	// pages, shape, args and slotDoc serve page SQL from the builder's
	// cache (see pagecache.go): the statement holds sentinels where args
	// go; slotDoc maps a sentinel's number to its value in args. shape is
	// empty for a select whose pages are rendered each time.
	pages   *pageCache
	shape   string
	args    []any
	slotDoc []int
}

// withPrefix puts the WITH clause, if any, before a rendered statement.
func (s *Select) withPrefix(sql string, args []any, err error) (string, []any, error) {
	if err != nil || s.prefix == "" {
		return sql, args, err
	}
	return s.prefix + sql, append(append([]any(nil), s.prefixArgs...), args...), nil
}

// Select translates {"$select": {...}}, or a set operation of selects
// ({"$union": [...]}, $intersect, $except), or {"$with": ...}, for a caller
// with scope (the zero Scope: any allowed table, any row).
func (b *Builder) Select(query *ordjson.Value, scope Scope) (*Select, error) {
	c := b.within(scope)
	c.slots = &slots{}
	s, err := c.selectQuery(query)
	if err != nil {
		return nil, err
	}
	s.bindSlots(c, query)
	return s, nil
}

func (b *Builder) selectQuery(v *ordjson.Value) (*Select, error) {
	root := path{"query"}
	if v == nil {
		return nil, root.errorf("is missing")
	}
	if v.Kind == ordjson.Object && len(v.Members) == 1 && setOperators[v.Members[0].Key] != "" {
		m := v.Members[0]
		return b.setOperation(m.Key, m.Value, root.with(m.Key), nil)
	}
	if v.Kind == ordjson.Object && len(v.Members) == 1 && v.Members[0].Key == "$with" {
		return b.with(v.Members[0].Value, root.with("$with"))
	}
	body, at, err := statementBody(v, root, "$select")
	if err != nil {
		return nil, err
	}
	return b.selectBody(body, at, nil)
}

// selectBody translates the object of a $select; outer is the scope of
// the query around a sub-select (nil at the top), whose aliases it may name.
func (b *Builder) selectBody(body *ordjson.Value, at path, outer *Table) (*Select, error) {
	s, source, err := b.from(body, at, outer)
	if err != nil {
		return nil, err
	}
	t := s.scope
	var columns []any
	var where, having exp.Expression
	var group []any
	var distinct, rollup bool
	// Aliases of the select list may be named in $having and $orderBy.
	aliases := map[string]bool{}
	for _, m := range body.Members {
		mAt := at.with(m.Key)
		switch m.Key {
		case "$from", "$join":
		case "$columns":
			cols, err := b.selectColumns(s, aliases, m.Value, mAt)
			if err != nil {
				return nil, err
			}
			columns = append(columns, cols...)
		case "$distinct":
			if distinct, err = flag(m.Value, mAt); err != nil {
				return nil, err
			}
		case "$groupBy":
			// Read after the select list, whose aliases it may name.
		case "$withRollup":
			if rollup, err = flag(m.Value, mAt); err != nil {
				return nil, err
			}
		case "$where":
			if where, err = b.where(t, m.Value, mAt); err != nil {
				return nil, err
			}
		case "$orderBy", "$having":
			// Read after the select list, whose aliases they may name.
			s.Ordered = s.Ordered || m.Key == "$orderBy"
		case "$limit":
			if s.Limit, s.Empty, err = b.limit(m.Value, mAt); err != nil {
				return nil, err
			}
		case "$calcFoundRows":
			// Accepted and left out: FOUND_ROWS() answers on the
			// connection that ran the query, which a client never holds.
			if _, err := flag(m.Value, mAt); err != nil {
				return nil, err
			}
		case "$offset":
			if s.Offset, err = count(m.Value, mAt, 1<<62); err != nil {
				return nil, err
			}
		default:
			if isOperator(m.Key) {
				return nil, mAt.errorf(fmt.Sprintf("unknown or unsupported clause %q", m.Key))
			}
			// The shortcut form {"col": true|1|"alias"} selects a column;
			// {"alias": {"$count": "*"}} a helper.
			col, err := b.selectColumn(s, aliases, m.Key, m.Value, mAt)
			if err != nil {
				return nil, err
			}
			if col != nil {
				columns = append(columns, col)
			}
		}
	}
	scope := withAliases(t, aliases)
	s.scope = scope
	if v := body.Get("$groupBy"); v != nil {
		if group, err = groupBy(scope, v, at.with("$groupBy")); err != nil {
			return nil, err
		}
	}
	if v := body.Get("$having"); v != nil {
		if having, err = b.where(scope, v, at.with("$having")); err != nil {
			return nil, err
		}
	}
	var order []orderTerm
	if v := body.Get("$orderBy"); v != nil {
		if s.orderBy, order, err = orderBy(scope, v, at.with("$orderBy")); err != nil {
			return nil, err
		}
	}
	if len(columns) == 0 {
		columns = []any{goqu.Star()}
	}
	ds := source.Select(columns...)
	if distinct {
		ds = ds.Distinct()
		s.Whole = true
	}
	if where != nil {
		ds = ds.Where(where)
	}
	if s.scopeWhere != nil {
		ds = ds.Where(s.scopeWhere)
	}
	if rollup && len(group) == 0 {
		return nil, at.with("$withRollup").errorf("needs $groupBy")
	}
	if len(group) > 0 {
		if rollup {
			// goqu has no WITH ROLLUP: it follows the last grouping column.
			group[len(group)-1] = goqu.L("? WITH ROLLUP", group[len(group)-1])
		}
		ds = ds.GroupBy(group...)
		s.Whole = true
	}
	if having != nil {
		ds = ds.Having(having)
	}
	if *t.readsAgain {
		// One statement reads one consistent view: the sub-select sees the
		// rows the outer query sees.
		s.Whole = true
	}
	if !s.Whole && !s.Ordered && s.Table.Key != "" {
		eq := map[string]bool{}
		equalities(t, body.Get("$where"), eq)
		s.seek, s.seekChoices = seekIndex(s.Table, eq)
	}
	if !s.Whole && s.Ordered && s.Table.Key != "" {
		s.orderKeys = keysetOrder(s.Table, t, order, aliases)
	}
	s.base = ds
	return s, nil
}

// limit reads $limit: a count up to the limit, or "ALL" (no limit, as
// json-sql-builder2 reads it). empty is set by 0, which asks for no rows.
func (b *Builder) limit(v *ordjson.Value, at path) (n uint64, empty bool, err error) {
	if v.Kind == ordjson.String && v.Text == "ALL" {
		return 0, false, nil
	}
	if n, err = count(v, at, b.limits.MaxLimit); err != nil {
		return 0, false, err
	}
	return n, n == 0, nil
}

// equalities adds to into the columns v, a $where, binds to one value at
// its top level: {"pid": "x"}, {"pid": {"$eq": "x"}}, {"pid": {"$in":
// ["x"]}}, also inside $and. A page of rows matching them can seek on an
// index of exactly those columns.
func equalities(t *Table, v *ordjson.Value, into map[string]bool) {
	if v == nil || v.Kind != ordjson.Object || (len(v.Members) > 1 && isHelper(v.Members[0].Key)) {
		return
	}
	for _, m := range v.Members {
		if m.Key == "$and" {
			switch m.Value.Kind {
			case ordjson.Array:
				for _, item := range m.Value.Items {
					equalities(t, item, into)
				}
			case ordjson.Object:
				equalities(t, m.Value, into)
			}
			continue
		}
		c := t.Column(m.Key)
		if c == nil || c.JSON {
			continue
		}
		val := m.Value
		literal := false // $in takes even "~~name" as a value
		if val.Kind == ordjson.Object && len(val.Members) == 1 {
			switch op := val.Members[0]; {
			case op.Key == "$eq":
				val = op.Value
			case op.Key == "$in" && op.Value.Kind == ordjson.Array && len(op.Value.Items) == 1:
				// The gateway's filters: {"domain": {"$in": ["shop"]}}.
				val, literal = op.Value.Items[0], true
			}
		}
		switch {
		case val.Kind == ordjson.Number, val.Kind == ordjson.Bool,
			val.Kind == ordjson.String && (literal || !strings.HasPrefix(val.Text, "~~")):
			into[m.Key] = true
		}
	}
}

// seekIndex names the index whose columns are exactly the query's
// equalities, or "". Keyset pages read such an index as a range from the
// last key: each page costs its own rows. Left to itself, MariaDB (10.11)
// reads a query like {"pid": "x"} by the index's first column alone and
// filters the key, so each page started again from the pid's first row and
// a long stream cost time quadratic in its length.
//
// Without such an index, choices are the indexes whose columns are some of
// the equalities ({"pid": "x", "domain": "d"} may seek on pid or on
// domain). Which one pays depends on the data, which only MySQL's
// statistics know: the store asks MySQL's plan (see Page.Seek).
func seekIndex(t *Table, eq map[string]bool) (exact string, choices []string) {
	if len(eq) == 0 {
		return "", nil
	}
	for _, idx := range t.Indexes {
		covered := true
		for _, c := range idx.Columns {
			covered = covered && eq[c]
		}
		switch {
		case !covered:
		case len(idx.Columns) == len(eq):
			return idx.Name, nil
		default:
			choices = append(choices, idx.Name)
		}
	}
	return "", choices
}

// SeekChoices are the indexes a keyset page may be told to seek on
// (Page.Seek): none when an index matches the query's equalities exactly,
// since every page seeks on that one.
func (s *Select) SeekChoices() []string { return s.seekChoices }

// Seeks names the index page p seeks on, or "" when it leaves the plan to
// MySQL. (Only keyset pages have an index to seek on: see selectBody.)
func (s *Select) Seeks(p Page) string {
	switch {
	case p.NoSeek:
		return ""
	case s.seek != "":
		return s.seek
	case p.Seek != "" && slices.Contains(s.seekChoices, p.Seek):
		return p.Seek
	}
	return ""
}

// seekFrom is the FROM of a keyset page with its index hint.
func (s *Select) seekFrom(index string) exp.LiteralExpression {
	var table exp.Expression = tableExpr(s.Table)
	if s.alias != "" {
		table = tableExpr(s.Table).As(s.alias)
	}
	return goqu.L("? FORCE INDEX (?)", table, goqu.I(index))
}

// withAliases is t with the aliases of the select list as extra columns,
// for $having and $orderBy, which may name them.
func withAliases(t *Table, aliases map[string]bool) *Table {
	if len(aliases) == 0 {
		return t
	}
	scope := *t
	scope.Columns = append([]Column(nil), t.Columns...)
	for alias := range aliases {
		if scope.Column(alias) == nil {
			scope.Columns = append(scope.Columns, Column{Name: alias})
		}
	}
	return &scope
}

// selectColumns reads $columns: a name, an array of names and objects in
// the shortcut form, or one object in the shortcut form.
func (b *Builder) selectColumns(s *Select, aliases map[string]bool, v *ordjson.Value, at path) ([]any, error) {
	t := s.scope
	var out []any
	named := func(name string, at path) error {
		if name == "*" {
			out = append(out, goqu.Star())
			return nil
		}
		if q, ok := strings.CutSuffix(name, ".*"); ok && t.qualifiers[q] != nil {
			out = append(out, goqu.T(exposedName(q)).All())
			return nil
		}
		c, err := ref(t, name, at)
		if err != nil {
			return err
		}
		out = append(out, c)
		return nil
	}
	switch v.Kind {
	case ordjson.String:
		if err := named(v.Text, at); err != nil {
			return nil, err
		}
	case ordjson.Array:
		for i, item := range v.Items {
			itemAt := at.with(fmt.Sprint(i))
			switch item.Kind {
			case ordjson.String:
				if err := named(item.Text, itemAt); err != nil {
					return nil, err
				}
			case ordjson.Object:
				// ["domain", {"n": {"$count": "*"}}]: the object's members
				// are columns in the shortcut form.
				for _, m := range item.Members {
					col, err := b.selectColumn(s, aliases, m.Key, m.Value, itemAt.with(m.Key))
					if err != nil {
						return nil, err
					}
					if col != nil {
						out = append(out, col)
					}
				}
			default:
				return nil, itemAt.errorf("must be a column name or an object of columns")
			}
		}
	case ordjson.Object:
		for _, m := range v.Members {
			col, err := b.selectColumn(s, aliases, m.Key, m.Value, at.with(m.Key))
			if err != nil {
				return nil, err
			}
			if col != nil {
				out = append(out, col)
			}
		}
	default:
		return nil, at.errorf("must be a column name, an array or an object")
	}
	if len(out) == 0 {
		return nil, at.errorf("must not be empty")
	}
	return out, nil
}

// selectColumn reads {"col": true|1} (the column), {"col": false|0}
// (nothing), {"col": "alias"}, or {"alias": {helper}}.
func (b *Builder) selectColumn(s *Select, aliases map[string]bool, name string, v *ordjson.Value, at path) (any, error) {
	if v.Kind == ordjson.Bool && v.Bool || v.Kind == ordjson.Number && v.Text == "1" {
		if name == "*" {
			return goqu.Star(), nil
		}
		if q, ok := strings.CutSuffix(name, ".*"); ok && s.scope.qualifiers[q] != nil {
			return goqu.T(exposedName(q)).All(), nil
		}
	}
	if v.Kind == ordjson.Object {
		if err := checkAlias(name, at); err != nil {
			return nil, err
		}
		var e valueExpr
		var aggregated bool
		var err error
		if n := v.Get("$left"); n != nil && n.Kind == ordjson.Number && len(v.Members) == 1 {
			// {"pid": {"$left": 5}}: LEFT(pid, 5) AS pid.
			e, aggregated, err = b.columnHelper(s.scope, name, v, at)
		} else {
			e, aggregated, err = b.expression(s.scope, v, at)
		}
		if err != nil {
			return nil, err
		}
		if aggregated {
			s.Whole = true
		}
		aliases[name] = true
		return e.As(name), nil
	}
	c, err := ref(s.scope, name, at)
	if err != nil {
		return nil, err
	}
	switch {
	case v.Kind == ordjson.Bool && v.Bool, v.Kind == ordjson.Number && v.Text == "1":
		return c, nil
	case v.Kind == ordjson.Bool, v.Kind == ordjson.Number && v.Text == "0":
		return nil, nil
	case v.Kind == ordjson.String:
		if err := checkAlias(v.Text, at); err != nil {
			return nil, err
		}
		aliases[v.Text] = true
		return c.As(v.Text), nil
	}
	return nil, at.errorf("must be true, 1, false, 0, an alias or a helper object")
}

// checkAlias checks the alias of a select-list column: a plain identifier,
// and not one of the hidden columns' names, which the row reader takes for
// its own.
func checkAlias(alias string, at path) error {
	if !validIdentifier(alias) {
		return at.errorf(fmt.Sprintf("alias %q is not a plain identifier", alias))
	}
	if strings.HasPrefix(alias, HiddenPrefix) {
		return at.errorf(fmt.Sprintf("alias %q: names starting with %s are reserved", alias, HiddenPrefix))
	}
	return nil
}

// orderTerm is one term of an $orderBy as written: a name, its direction,
// and whether it is a name alone (no JSON path, no table alias, no NULLs
// placement).
type orderTerm struct {
	name  string
	asc   bool
	plain bool
}

// orderBy reads $orderBy: "col", ["col", ...], or {"col": 1|-1|"ASC"|"DESC"}.
func orderBy(t *Table, v *ordjson.Value, at path) ([]exp.OrderedExpression, []orderTerm, error) {
	var out []exp.OrderedExpression
	var terms []orderTerm
	add := func(name string, dir *ordjson.Value, at path) error {
		plain := !strings.Contains(name, "->") && !strings.Contains(name, ".")
		c, err := ref(t, name, at)
		if err != nil {
			return err
		}
		asc := true
		if dir != nil && dir.Kind == ordjson.Object {
			// {"$asc": true}, {"$desc": true}, with $nullsFirst or
			// $nullsLast. MariaDB has no NULLS FIRST/LAST: an IS NULL key
			// before the column does it.
			nulls := 0
			for _, h := range dir.Members {
				if h.Value.Kind != ordjson.Bool {
					return at.with(h.Key).errorf("must be true or false")
				}
				switch h.Key {
				case "$asc":
					asc = h.Value.Bool
				case "$desc":
					asc = !h.Value.Bool
				case "$nullsFirst":
					if h.Value.Bool {
						nulls = 1
					}
				case "$nullsLast":
					if h.Value.Bool {
						nulls = -1
					}
				default:
					return at.errorf(`direction must be 1, -1, "ASC", "DESC", or an object of $asc, $desc, $nullsFirst, $nullsLast`)
				}
			}
			switch nulls {
			case 1:
				out = append(out, goqu.L("(? IS NULL)", c).Desc())
			case -1:
				out = append(out, goqu.L("(? IS NULL)", c).Asc())
			}
			plain = plain && nulls == 0
			dir = nil
		}
		if dir != nil && dir.Kind == ordjson.Number && dir.Text == "0" {
			return nil // {"col": 0} leaves the column out, as the reference does
		}
		if dir != nil {
			switch {
			case dir.Kind == ordjson.Number && dir.Text == "1", dir.Kind == ordjson.Bool && dir.Bool,
				dir.Kind == ordjson.String && (dir.Text == "ASC" || dir.Text == "asc"):
			case dir.Kind == ordjson.Number && dir.Text == "-1", dir.Kind == ordjson.Bool && !dir.Bool,
				dir.Kind == ordjson.String && (dir.Text == "DESC" || dir.Text == "desc"):
				asc = false
			default:
				return at.errorf("direction must be 1, -1, \"ASC\" or \"DESC\"")
			}
		}
		if asc {
			out = append(out, c.Asc())
		} else {
			out = append(out, c.Desc())
		}
		terms = append(terms, orderTerm{name: name, asc: asc, plain: plain})
		return nil
	}
	switch v.Kind {
	case ordjson.String:
		if err := add(v.Text, nil, at); err != nil {
			return nil, nil, err
		}
	case ordjson.Array:
		for i, item := range v.Items {
			itemAt := at.with(fmt.Sprint(i))
			if item.Kind != ordjson.String {
				return nil, nil, itemAt.errorf("must be a column name")
			}
			if err := add(item.Text, nil, itemAt); err != nil {
				return nil, nil, err
			}
		}
	case ordjson.Object:
		for _, m := range v.Members {
			if err := add(m.Key, m.Value, at.with(m.Key)); err != nil {
				return nil, nil, err
			}
		}
	default:
		return nil, nil, at.errorf("must be a column name, an array or an object")
	}
	if len(out) == 0 {
		return nil, nil, at.errorf("must not be empty")
	}
	return out, terms, nil
}

// keysetOrder returns the order's terms if pages of a select from table,
// whose scope is scope, can resume after the last row's values of them:
// every term names a column of the table itself (not a select-list alias,
// which ORDER BY would read instead, nor a JSON path) that is Keyset, and
// the table is not a common table expression. (A select of joins or
// derived tables is read whole, never paged.) Otherwise nil: pages count
// rows.
func keysetOrder(table, scope *Table, terms []orderTerm, aliases map[string]bool) []orderTerm {
	if len(terms) == 0 || len(scope.ctes) > 0 {
		return nil
	}
	for _, term := range terms {
		if c := table.Column(term.name); !term.plain || aliases[term.name] || c == nil || !c.Keyset {
			return nil
		}
	}
	return terms
}

// KeysetOrdered reports whether the pages of an ordered select resume after
// the values of the last row read (Page.AfterOrder) instead of counting
// the rows before them (Page.Offset): a page then costs the same however
// far into the result it starts.
func (s *Select) KeysetOrdered() bool { return len(s.orderKeys) > 0 && s.prefix == "" }

// SQL renders the query as the client wrote it, without paging: what
// `eventsource sql` prints.
func (s *Select) SQL() (string, []any, error) {
	sql, args, err := s.sql()
	if err != nil {
		return "", nil, err
	}
	t, err := s.template(sql, args, false, false)
	if err != nil {
		return "", nil, err
	}
	return t.sql, t.bind(s.args, Page{}), nil
}

// sql is SQL with sentinels for the query's values: how a select inside
// another is written into it.
func (s *Select) sql() (string, []any, error) {
	ds := s.base
	if s.Empty {
		// goqu reads LIMIT 0 as no limit at all.
		ds = ds.Where(goqu.L("FALSE"))
	}
	if len(s.orderBy) > 0 {
		ds = ds.Order(s.orderBy...)
	}
	switch {
	case s.Limit > 0:
		ds = ds.Limit(uint(s.Limit))
	case s.Offset > 0:
		// MySQL has no OFFSET without LIMIT: "all the rest" is a LIMIT no
		// table reaches. (json-sql-builder2 throws.) Not MaxUint64: goqu
		// binds limits as int64, and -1 would mean "all" only by accident
		// of server-side prepared statements.
		ds = ds.Limit(math.MaxInt64)
	}
	if s.Offset > 0 {
		ds = ds.Offset(uint(s.Offset))
	}
	return s.withPrefix(sqlString(ds, "select"))
}

// afterOrder is the condition for the rows after the page's last one in a
// KeysetOrdered select: for the order (a, b DESC) and the key k, after the
// values (va, vb, vk) it is
//
//	a >= va AND (a > va OR (a = va AND b < vb) OR (a = va AND b = vb AND k < vk))
//
// (k < vk: the key breaks ties in the last term's direction), whose first
// part lets MySQL start a range scan on an index of a.
func (s *Select) afterOrder(p pageValues) (exp.Expression, error) {
	if len(p.afterOrder) != len(s.orderKeys) {
		return nil, fmt.Errorf("build page: %d order values to resume after, want %d", len(p.afterOrder), len(s.orderKeys))
	}
	var (
		ties  []exp.Expression // the terms so far equal to the last row's
		after []exp.Expression
	)
	for i, term := range s.orderKeys {
		col, v := goqu.C(term.name), p.afterOrder[i]
		beyond := col.Gt(v)
		if !term.asc {
			beyond = col.Lt(v)
		}
		after = append(after, goqu.And(append(slices.Clone(ties), beyond)...))
		ties = append(ties, col.Eq(v))
	}
	beyond := goqu.C(s.Table.Key).Gt(p.after)
	if s.tiesDescend() {
		beyond = goqu.C(s.Table.Key).Lt(p.after)
	}
	after = append(after, goqu.And(append(ties, beyond)...))
	first, v := goqu.C(s.orderKeys[0].name), p.afterOrder[0]
	from := first.Gte(v)
	if !s.orderKeys[0].asc {
		from = first.Lte(v)
	}
	return goqu.And(from, goqu.Or(after...)), nil
}

// tiesDescend reports whether the key breaks the order's ties descending:
// it follows the direction of the order's last term, so that an index on
// that term (which InnoDB ends with the key) serves the whole order, read
// backwards for a descending one, instead of a sort of every row left.
func (s *Select) tiesDescend() bool {
	n := len(s.orderBy)
	return n > 0 && !s.orderBy[n-1].IsAsc()
}

// Page says which slice of the result to read.
type Page struct {
	// Snapshot is the highest key the stream may return (tables with a Key);
	// zero takes it in this statement, as the hidden column SnapshotAlias.
	Snapshot int64
	// After resumes after this key (keyset paging; 0 reads from the start).
	After int64
	// AfterOrder, for a KeysetOrdered select, are the order values of the
	// row whose key is After, one per $orderBy term, as the page before
	// returned them (OrderAliasPrefix).
	AfterOrder []any
	// Offset skips rows (offset paging, and the client's $offset on the
	// first keyset page).
	Offset uint64
	// Size is the number of rows to read.
	Size uint64
	// Seek names the index to seek on, one of the select's SeekChoices
	// (others are ignored).
	Seek string
	// NoSeek leaves the plan to MySQL even when the select has an index
	// to seek on (for a table whose index went away since the catalog was
	// read).
	NoSeek bool
	// Keys asks the reader for every row's key, not only the last one's
	// (a durable consumer records the key of the last row accepted).
	Keys bool
}

// PageSQL renders one page. With a Key, the table's key is appended as the
// hidden column KeyAlias and breaks ties in the order, which makes paging
// exact on an append-only table: keyset on the key when the client gave no
// order (its order is then the key's), keyset on the order's columns and
// the key when it is KeysetOrdered, offset otherwise.
//
// A page's text is rendered once per query shape and kind of page, and
// kept in the builder's cache; later pages, and other requests of the
// shape, only bind their values.
func (s *Select) PageSQL(p Page) (string, []any, error) {
	key, cached := s.pageKey(p)
	if cached {
		if t, ok := s.pages.lru.Get(key); ok {
			return t.sql, t.bind(s.args, p), nil
		}
	}
	// Rendered with sentinels for the page's values when kept, else with
	// the values themselves.
	vals := pageValues{snapshot: p.Snapshot, after: p.After, afterOrder: p.AfterOrder}
	if cached {
		vals.snapshot = sentinel(s.pages.nonce, slotSnapshot, 0)
		vals.after = sentinel(s.pages.nonce, slotAfter, 0)
		vals.afterOrder = make([]any, len(p.AfterOrder))
		for i := range p.AfterOrder {
			vals.afterOrder[i] = sentinel(s.pages.nonce, slotAfterOrder, i)
		}
	}
	sql, args, err := s.renderPage(p, vals)
	if err != nil {
		return "", nil, err
	}
	t, err := s.template(sql, args, p.Size > 0, p.Offset > 0)
	if err != nil {
		return "", nil, err
	}
	if cached {
		s.pages.lru.Add(key, t)
	}
	return t.sql, t.bind(s.args, p), nil
}

// pageValues are the values of a page as they go into its statement.
type pageValues struct {
	snapshot, after any
	afterOrder      []any
}

// renderPage renders page p with vals in place of its values, and LIMIT 1
// and OFFSET 1 in place of its size and offset.
func (s *Select) renderPage(p Page, vals pageValues) (string, []any, error) {
	ds := s.base
	key := s.Table.Key
	if key == "" || s.Whole {
		ds = ds.Order(s.orderBy...)
	} else {
		if p.Snapshot == 0 {
			// One statement reads one consistent view, so the bound in the
			// WHERE and in the column are the same value.
			bound := goqu.Dialect("mysql").From(goqu.S(s.Table.Schema).Table(s.Table.Name)).Prepared(true).
				Select(goqu.COALESCE(goqu.MAX(key), 0))
			ds = ds.SelectAppend(goqu.C(key).As(KeyAlias), bound.As(SnapshotAlias)).Where(goqu.C(key).Lte(bound))
		} else {
			ds = ds.SelectAppend(goqu.C(key).As(KeyAlias)).Where(goqu.C(key).Lte(vals.snapshot))
		}
		switch {
		case s.KeysetOrdered():
			for i, term := range s.orderKeys {
				ds = ds.SelectAppend(goqu.C(term.name).As(OrderAliasPrefix + strconv.Itoa(i)))
			}
			if p.After > 0 {
				after, err := s.afterOrder(vals)
				if err != nil {
					return "", nil, err
				}
				ds = ds.Where(after)
			}
		case p.After > 0:
			ds = ds.Where(goqu.C(key).Gt(vals.after))
		}
		if index := s.Seeks(p); index != "" {
			ds = ds.From(s.seekFrom(index))
		}
		// Ordered by the hidden column, not by the key's name: ORDER BY reads
		// a name as a select-list alias first, and a client may have named
		// another column "id" ({"pid": "id"}).
		tie := goqu.C(KeyAlias).Asc()
		if s.tiesDescend() {
			tie = goqu.C(KeyAlias).Desc()
		}
		ds = ds.Order(append(append([]exp.OrderedExpression{}, s.orderBy...), tie)...)
	}
	if p.Size > 0 {
		ds = ds.Limit(1)
	}
	if p.Offset > 0 {
		ds = ds.Offset(1)
	}
	return s.withPrefix(sqlString(ds, "page"))
}
