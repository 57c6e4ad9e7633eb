package sqlbuild

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Column is one column of an allowed table.
type Column struct {
	Name string
	// JSON is set for JSON columns (MariaDB reports them as LONGTEXT with a
	// json_valid check; the catalog loader finds both forms).
	JSON bool
	// TimeDigits is the fractional-second precision of a temporal column.
	TimeDigits int
	// Nullable is set for a column that may hold NULL.
	Nullable bool
	// Keyset is set for a NOT NULL column of a type MySQL compares exactly
	// with a value read from it and bound again (integers, strings, dates
	// and times): a stream ordered by it resumes after its last row's value
	// instead of counting the rows before it.
	Keyset bool
	// Invisible is set for a column SELECT * leaves out (MariaDB and MySQL
	// INVISIBLE columns): a query reads it only by naming it.
	Invisible bool
}

// Index is a secondary index: its name and columns in order. InnoDB ends
// every secondary index with the primary key, so an index whose columns a
// query binds to single values lists the matching rows in key order.
type Index struct {
	Name    string
	Columns []string
}

// Table is an allowed table and its live columns.
type Table struct {
	Schema  string
	Name    string
	Columns []Column
	// Key is the unique, increasing integer column streams page on (the
	// AUTO_INCREMENT primary key, "id" in our schema); empty when the table
	// has none, as with the original schema.
	Key string
	// Writable allows updates and deletes; the event table is append-only.
	Writable bool
	// Indexes are the table's secondary B-tree indexes (whole columns
	// only), which keyset pages may seek on.
	Indexes []Index

	// qualifiers, set on the scope of a select that names its tables (an
	// alias in $from, joins), maps each alias to its table.
	qualifiers map[string]*Table
	// readsAgain, shared by the copies of one select's scope, is set when
	// the select holds a sub-select: reading it in pages would run the
	// sub-select again for each page, against newer rows.
	readsAgain *bool
	// ctes are the common table expressions of the statement ($with): names
	// a query inside it may read like allowed tables.
	ctes map[string]*Table
}

// QualifiedName is schema.table.
func (t *Table) QualifiedName() string { return t.Schema + "." + t.Name }

// Column returns the named column, or nil.
func (t *Table) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// SafeWrites reports whether t takes event ids and expected versions:
// eventsource migrate gave it the eventId and version columns and the
// trigger that numbers each stream's events.
func (t *Table) SafeWrites() bool {
	return t.Column("eventId") != nil && t.Column("version") != nil
}

// Catalog is the allow-list: the only tables a query may name.
type Catalog struct {
	tables []*Table
}

// NewCatalog builds a catalog; the first table is the default one.
func NewCatalog(tables ...*Table) (*Catalog, error) {
	if len(tables) == 0 {
		return nil, fmt.Errorf("catalog: no tables allowed")
	}
	for _, t := range tables {
		if !validIdentifier(t.Schema) || !validIdentifier(t.Name) {
			return nil, fmt.Errorf("catalog: table %q is not schema.table of plain identifiers", t.QualifiedName())
		}
		if len(t.Columns) == 0 {
			return nil, fmt.Errorf("catalog: table %s has no columns (does it exist?)", t.QualifiedName())
		}
		// An index is only ever named in a hint written into the SQL: one
		// whose names are not plain identifiers is left out.
		t.Indexes = slices.DeleteFunc(slices.Clone(t.Indexes), func(idx Index) bool {
			return !validIdentifier(idx.Name) || len(idx.Columns) == 0 || slices.ContainsFunc(idx.Columns, func(c string) bool { return !validIdentifier(c) })
		})
	}
	return &Catalog{tables: tables}, nil
}

// Default is the table of queries that name none.
func (c *Catalog) Default() *Table { return c.tables[0] }

// Tables lists the allowed tables.
func (c *Catalog) Tables() []*Table { return c.tables }

// Lookup finds an allowed table by "table" (in the default table's schema)
// or "schema.table".
func (c *Catalog) Lookup(name string) *Table {
	schema, table, found := strings.Cut(name, ".")
	if !found {
		schema, table = c.Default().Schema, name
	}
	for _, t := range c.tables {
		if t.Schema == schema && t.Name == table {
			return t
		}
	}
	return nil
}

var identifierPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,63}$`)

// validIdentifier accepts the plain identifiers a query may use. goqu quotes
// them anyway; refusing the rest keeps error messages and logs readable.
func validIdentifier(s string) bool { return identifierPattern.MatchString(s) }

// SplitTableName splits "schema.table" for configuration.
func SplitTableName(name string) (schema, table string, err error) {
	schema, table, found := strings.Cut(name, ".")
	if !found || !validIdentifier(schema) || !validIdentifier(table) {
		return "", "", fmt.Errorf("table %q: want schema.table", name)
	}
	return schema, table, nil
}
