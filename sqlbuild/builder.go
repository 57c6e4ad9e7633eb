package sqlbuild

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/doug-martin/goqu/v9"
	_ "github.com/doug-martin/goqu/v9/dialect/mysql" // registers the dialect
	"github.com/doug-martin/goqu/v9/exp"

	"github.com/eventsource/eventsource/ordjson"
)

// Limits bound the queries a Builder accepts. Zero means the default.
type Limits struct {
	MaxDepth     int    // nesting of the query JSON (default 32)
	MaxNodes     int    // JSON values in the query (default 10,000)
	MaxIn        int    // elements of an $in list (default 1,000)
	MaxLimit     uint64 // largest $limit (default 10,000,000)
	MaxDocuments int    // documents in one $insert (default 1,000)
}

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = 32
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = 10000
	}
	if l.MaxIn <= 0 {
		l.MaxIn = 1000
	}
	if l.MaxLimit == 0 {
		l.MaxLimit = 10_000_000
	}
	if l.MaxDocuments <= 0 {
		l.MaxDocuments = 1000
	}
	return l
}

// Builder turns queries into statements for one catalog. It is immutable:
// each query is translated by a copy that carries the caller's Scope.
type Builder struct {
	catalog *Catalog
	limits  Limits
	dialect goqu.DialectWrapper
	// scope is the scope of the query being translated (zero on the
	// Builder NewBuilder returns).
	scope Scope
	// pages holds the page SQL of the query shapes seen (see PageSQL).
	pages *pageCache
	// slots records the values a select binds (nil: values go into the
	// statement as they are, as an insert's do).
	slots *slots
}

// NewBuilder returns a builder over catalog.
func NewBuilder(catalog *Catalog, limits Limits) *Builder {
	return &Builder{catalog: catalog, limits: limits.withDefaults(), dialect: goqu.Dialect("mysql"), pages: newPageCache(pageCacheSize)}
}

// Catalog returns the allow-list the builder checks against.
func (b *Builder) Catalog() *Catalog { return b.catalog }

// Limits returns the limits the builder applies, defaults filled in: the
// limits requests are decoded under, on the Redis side and the HTTP side.
func (b *Builder) Limits() Limits { return b.limits }

// Parse decodes a query's JSON text under the builder's limits, for
// callers that hold text (the CLI, tests). Requests decode their query
// once, with messages.DecodeRequest or the gateway's body decoding.
func (b *Builder) Parse(raw []byte) (*ordjson.Value, error) {
	v, err := ordjson.Decode(raw, ordjson.Limits{MaxDepth: b.limits.MaxDepth, MaxNodes: b.limits.MaxNodes})
	if err != nil {
		return nil, path{"query"}.errorf(err.Error())
	}
	return v, nil
}

// SelectJSON is Select of a query's JSON text, decoded under the builder's
// limits: for callers that hold text (the CLI, tests).
func (b *Builder) SelectJSON(raw []byte, scope Scope) (*Select, error) {
	q, err := b.Parse(raw)
	if err != nil {
		return nil, err
	}
	return b.Select(q, scope)
}

// InsertJSON is Insert of a query's JSON text, like SelectJSON.
func (b *Builder) InsertJSON(raw []byte, scope Scope) (*Insert, error) {
	q, err := b.Parse(raw)
	if err != nil {
		return nil, err
	}
	return b.Insert(q, scope)
}

// within returns a copy of b that translates one query in scope.
func (b *Builder) within(scope Scope) *Builder {
	c := *b
	c.scope = scope
	return &c
}

// statementBody checks that v holds exactly the one statement key and
// returns its object.
func statementBody(v *ordjson.Value, root path, statement string) (*ordjson.Value, path, error) {
	if v.Kind != ordjson.Object {
		return nil, root, root.errorf("must be an object with " + statement)
	}
	if len(v.Members) != 1 || v.Members[0].Key != statement {
		keys := make([]string, len(v.Members))
		for i, m := range v.Members {
			keys[i] = m.Key
		}
		return nil, root, root.errorf(fmt.Sprintf("must hold exactly one %s statement, got %q", statement, keys))
	}
	body := v.Members[0].Value
	at := root.with(statement)
	if body.Kind != ordjson.Object {
		return nil, at, at.errorf("must be an object")
	}
	return body, at, nil
}

// table resolves a table name against the allow-list.
func (b *Builder) table(v *ordjson.Value, at path) (*Table, error) {
	if v.Kind != ordjson.String {
		return nil, at.errorf("table must be a string")
	}
	t := b.catalog.Lookup(v.Text)
	if t == nil {
		return nil, at.forbiddenf(fmt.Sprintf("table %q is not allowed", v.Text))
	}
	return t, nil
}

// tableIn resolves a table name that a query reads: a common table
// expression of the scope (cte set), else a table of the allow-list that
// the caller may read.
func (b *Builder) tableIn(scope *Table, v *ordjson.Value, at path) (t *Table, cte bool, err error) {
	if scope != nil && v.Kind == ordjson.String {
		if t := scope.ctes[v.Text]; t != nil {
			return t, true, nil
		}
	}
	if t, err = b.table(v, at); err != nil {
		return nil, false, err
	}
	return t, false, b.readable(t, at)
}

// tableExpr is the identifier of a table: schema.table, or the bare name
// of a common table expression.
func tableExpr(t *Table) exp.IdentifierExpression {
	if t.Schema == "" {
		return goqu.T(t.Name)
	}
	return goqu.S(t.Schema).Table(t.Name)
}

// column resolves a column name of t.
func column(t *Table, name string, at path) (*Column, error) {
	if !validIdentifier(name) {
		return nil, at.errorf(fmt.Sprintf("%q is not a column name", name))
	}
	c := t.Column(name)
	if c == nil {
		return nil, at.errorf(fmt.Sprintf("unknown column %q in %s", name, t.QualifiedName()))
	}
	return c, nil
}

// ref resolves a column reference against the scope t: "column",
// "qualifier.column", or either followed by a JSON path into a JSON column
// ("data->$.order.total"). A qualifier is an alias of the select, or the
// name of a table it reads without one, as "table" or "schema.table".
func ref(t *Table, name string, at path) (valueExpr, error) {
	if colName, jsonPath, ok := strings.Cut(name, "->"); ok {
		return jsonRef(t, colName, jsonPath, at)
	}
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		c, err := column(t, name, at)
		if err != nil {
			return nil, err
		}
		return goqu.C(c.Name), nil
	}
	qualifier, col := name[:dot], name[dot+1:]
	q := t.qualifiers[qualifier]
	if q == nil {
		return nil, at.errorf(fmt.Sprintf("unknown table alias %q in %q", qualifier, name))
	}
	c, err := column(q, col, at)
	if err != nil {
		return nil, err
	}
	return goqu.T(exposedName(qualifier)).Col(c.Name), nil
}

// qualifiedColumn resolves "qualifier.column" to the column's table, or
// nil.
func qualifiedColumn(t *Table, name string) *Column {
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return t.Column(name)
	}
	q := t.qualifiers[name[:dot]]
	if q == nil {
		return nil
	}
	return q.Column(name[dot+1:])
}

// exposedName is the name a qualifier stands for in the SQL: an alias as
// it is, and a table as its name without the schema, which MySQL resolves
// against the tables of the FROM (and which the derived table of a scoped
// table is named).
func exposedName(qualifier string) string {
	return qualifier[strings.LastIndexByte(qualifier, '.')+1:]
}

// queryValue is scalar for the values of a query (not of documents):
// json-sql-builder2 splices strings starting with "__:" into the SQL as
// they are; they are refused rather than quietly bound as text. A string
// starting with "@" is an ordinary value there, bound like any other.
//
// In a select, strings and numbers are recorded as the query's slots and
// stand in the statement as sentinels (see slots): what the SQL text does
// not depend on.
func (b *Builder) queryValue(v *ordjson.Value, at path) (any, error) {
	if err := refuseRaw(v, at); err != nil {
		return nil, err
	}
	val, err := scalar(v, at)
	if err != nil || b.slots == nil {
		return val, err
	}
	switch v.Kind {
	case ordjson.String, ordjson.Number:
		return b.slots.add(b.pages.nonce, v, val), nil
	}
	// null and booleans change the SQL (IS NULL, IS TRUE): they stay in
	// the shape as they are.
	return val, nil
}

// refuseRaw refuses a "__:" string, json-sql-builder2's raw SQL.
func refuseRaw(v *ordjson.Value, at path) error {
	if v.Kind == ordjson.String && strings.HasPrefix(v.Text, "__:") {
		return at.errorf(`raw SQL ("__:...") is refused: every value is a bound parameter`)
	}
	return nil
}

// columnRef resolves "~~name", json-sql-builder2's identifier reference,
// whose name it is given without the "~~". There "~~@name" is a session
// variable, refused here.
func columnRef(t *Table, name string, at path) (valueExpr, error) {
	if strings.HasPrefix(name, "@") {
		return nil, at.errorf(`session variables ("~~@...") are refused`)
	}
	return ref(t, name, at)
}

// scalar turns a JSON value into a bound parameter.
func scalar(v *ordjson.Value, at path) (any, error) {
	switch v.Kind {
	case ordjson.Null:
		return nil, nil
	case ordjson.Bool:
		return v.Bool, nil
	case ordjson.String:
		return v.Text, nil
	case ordjson.Number:
		return number(v.Text), nil
	}
	return nil, at.errorf("must be a string, number, boolean or null, got " + v.Kind.String())
}

// number keeps integers exact as int64 and passes other numbers on as their
// decimal text, which MySQL converts without the rounding of float64.
func number(text string) any {
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return n
	}
	return text
}

// count reads a non-negative integer such as $limit.
func count(v *ordjson.Value, at path, max uint64) (uint64, error) {
	if v.Kind != ordjson.Number {
		return 0, at.errorf("must be a non-negative integer")
	}
	n, err := strconv.ParseUint(v.Text, 10, 64)
	if err != nil {
		return 0, at.errorf("must be a non-negative integer")
	}
	if n > max {
		return 0, at.errorf(fmt.Sprintf("%d exceeds the limit of %d", n, max))
	}
	return n, nil
}

// sqlString renders a dataset in prepared mode and names what failed.
func sqlString(ds interface {
	ToSQL() (string, []interface{}, error)
}, what string) (string, []any, error) {
	sql, args, err := ds.ToSQL()
	if err != nil {
		return "", nil, fmt.Errorf("build %s: %w", what, err)
	}
	return sql, args, nil
}

func isOperator(key string) bool { return strings.HasPrefix(key, "$") }

// jsonPathPattern is the JSON path form accepted after "->": $ then
// members (.name) and array indexes ([0]).
var jsonPathPattern = regexp.MustCompile(`^\$(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]{1,9}\])+$`)

// jsonRef is "column->$.path": the value at path in a JSON column, as text
// (JSON_UNQUOTE(JSON_EXTRACT(column, path))). The path is checked against a
// strict grammar and bound as a parameter, never written into the SQL.
func jsonRef(t *Table, colName, jsonPath string, at path) (valueExpr, error) {
	if len(jsonPath) > 256 || !jsonPathPattern.MatchString(jsonPath) {
		return nil, at.errorf(fmt.Sprintf("JSON path %q: want $ followed by .name or [index] steps", jsonPath))
	}
	col, err := ref(t, colName, at)
	if err != nil {
		return nil, err
	}
	if c := qualifiedColumn(t, colName); c == nil || !c.JSON {
		return nil, at.errorf(fmt.Sprintf("%q is not a JSON column: only JSON columns have paths", colName))
	}
	return jsonValue{goqu.Func("JSON_UNQUOTE", goqu.Func("JSON_EXTRACT", col, jsonPath)), goqu.Func("JSON_EXTRACT", col, jsonPath)}, nil
}

// jsonValue is the text at a JSON path; raw is the JSON there (JSON_EXTRACT
// without JSON_UNQUOTE), which tells a JSON null from a missing member.
type jsonValue struct {
	exp.SQLFunctionExpression
	raw exp.SQLFunctionExpression
}

// isNull is col IS NULL; at a JSON path it also holds where the member is
// JSON null, which JSON_UNQUOTE reads as the text "null".
func isNull(col valueExpr) exp.Expression {
	if j, ok := col.(jsonValue); ok {
		return goqu.Or(j.raw.IsNull(), j.raw.Eq("null"))
	}
	return col.IsNull()
}

// isNotNull is the negation of isNull.
func isNotNull(col valueExpr) exp.Expression {
	if j, ok := col.(jsonValue); ok {
		return goqu.And(j.raw.IsNotNull(), j.raw.Neq("null"))
	}
	return col.IsNotNull()
}

// comparable adapts a bound value to the column it is compared with: at a
// JSON path, whose value is text, true and false are the texts "true" and
// "false" (bound as 1 and 0 they would never match).
func comparable(col valueExpr, val any) any {
	if _, ok := col.(jsonValue); ok {
		if b, ok := val.(bool); ok {
			return fmt.Sprint(b)
		}
	}
	return val
}
