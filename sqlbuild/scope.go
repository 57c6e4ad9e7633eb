package sqlbuild

import (
	"fmt"
	"slices"

	"github.com/doug-martin/goqu/v9"
	"github.com/doug-martin/goqu/v9/exp"
)

// Scope is what one caller may read and write, within the catalog's
// allow-list. The Redis side runs every query with the zero Scope (every
// allowed table, every row); the HTTP gateway gives each token the scope
// of its claims. The builder applies it wherever a query reads or writes a
// table: $from, joins, derived tables, sub-selects in columns, conditions
// and $in, common table expressions (recursive ones too) and each branch of
// a set operation.
type Scope struct {
	// ReadTables, if not nil, are the only tables (schema.table) a query
	// may read; nil allows every table of the catalog.
	ReadTables []string
	// WriteTables, if not nil, are the only tables an insert may write.
	WriteTables []string
	// Read limits the rows a query sees of a table (by schema.table):
	// every filter of the table holds for each row read, wherever the
	// table is read.
	Read map[string][]RowFilter
	// Write limits the rows an insert may add to a table the same way:
	// each document must give every filter's column a value it allows.
	Write map[string][]RowFilter
}

// RowFilter allows the rows whose Column holds one of Values. Values are
// compared exactly, byte for byte, and not by the column's collation,
// which may ignore case, accents and trailing spaces ("a" would let "A",
// "á" and "a " through). No values allow no row.
type RowFilter struct {
	Column string
	Values []string
}

// ErrForbidden marks a query that reaches outside the caller's scope: a
// table it may not read or write, or rows it may not write. Every such
// error is a QueryError that also matches ErrInvalid.
var ErrForbidden = fmt.Errorf("outside the caller's scope")

// forbiddenf is a refusal at a place in the query for want of scope.
func (p path) forbiddenf(msg string) error {
	return &QueryError{Path: p.String(), Msg: msg, Forbidden: true}
}

// readable checks that the scope lets the query read t.
func (b *Builder) readable(t *Table, at path) error {
	if b.scope.ReadTables != nil && !slices.Contains(b.scope.ReadTables, t.QualifiedName()) {
		return at.forbiddenf(fmt.Sprintf("table %s is outside the caller's scope", t.QualifiedName()))
	}
	return nil
}

// writable checks that the scope lets an insert write t.
func (b *Builder) writable(t *Table, at path) error {
	if b.scope.WriteTables != nil && !slices.Contains(b.scope.WriteTables, t.QualifiedName()) {
		return at.forbiddenf(fmt.Sprintf("table %s is outside the caller's scope", t.QualifiedName()))
	}
	return nil
}

// rowCondition is the condition that keeps a read of t, named qualifier in
// its select, inside the scope; nil when the scope puts none on t. Each
// filter reads
//
//	col IN (...) AND CAST(col AS BINARY) IN (...)
//
// whose first part lets MySQL use an index on the column, under its
// collation, and whose second keeps only the exact values.
func (b *Builder) rowCondition(t *Table, qualifier string, at path) (exp.Expression, error) {
	filters := b.scope.Read[t.QualifiedName()]
	if len(filters) == 0 {
		return nil, nil
	}
	parts := make([]exp.Expression, 0, len(filters))
	for _, f := range filters {
		if t.Column(f.Column) == nil {
			return nil, at.forbiddenf(fmt.Sprintf("cannot limit %s to the caller's scope: it has no column %q", t.QualifiedName(), f.Column))
		}
		if len(f.Values) == 0 {
			parts = append(parts, goqu.L("FALSE"))
			continue
		}
		col := goqu.T(qualifier).Col(f.Column)
		values := make([]any, len(f.Values))
		for i, v := range f.Values {
			values[i] = v
		}
		parts = append(parts, goqu.And(col.In(values...), goqu.L("CAST(? AS BINARY)", col).In(values...)))
	}
	return goqu.And(parts...), nil
}

// scopedTable is the source that reads t as alias inside the scope: the
// table itself when the scope puts no filter on it, else a derived table
// of its rows the scope allows, (SELECT * FROM t WHERE ...) AS alias, which
// holds in any position (either side of an outer join included).
func (b *Builder) scopedTable(t *Table, alias string, at path) (exp.Expression, error) {
	cond, err := b.rowCondition(t, t.Name, at)
	if err != nil {
		return nil, err
	}
	if cond == nil {
		if alias == "" {
			return tableExpr(t), nil
		}
		return tableExpr(t).As(alias), nil
	}
	// SELECT * leaves out invisible columns: named, they stay readable
	// through the derived table.
	columns := []any{goqu.Star()}
	for _, c := range t.Columns {
		if c.Invisible {
			columns = append(columns, goqu.C(c.Name))
		}
	}
	sql, args, err := sqlString(b.dialect.From(tableExpr(t)).Prepared(true).Select(columns...).Where(cond), "scoped table")
	if err != nil {
		return nil, err
	}
	if alias == "" {
		alias = t.Name
	}
	return goqu.L("("+sql+")", args...).As(alias), nil
}

// checkWrite checks one document of an insert into t against the scope's
// row filters for t.
func (b *Builder) checkWrite(t *Table, doc func(column string) (string, bool), at path) error {
	for _, f := range b.scope.Write[t.QualifiedName()] {
		v, ok := doc(f.Column)
		if !ok {
			return at.with(f.Column).forbiddenf(fmt.Sprintf("must be a string the caller may write to %s", t.QualifiedName()))
		}
		if !slices.Contains(f.Values, v) {
			return at.with(f.Column).forbiddenf(fmt.Sprintf("%q is outside the caller's scope", v))
		}
	}
	return nil
}

// limitsWrites reports whether the scope filters the rows written to t.
func (b *Builder) limitsWrites(t *Table) bool { return len(b.scope.Write[t.QualifiedName()]) > 0 }
