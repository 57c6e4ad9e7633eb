package mysqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/eventsource/eventsource/sqlbuild"
)

// ErrNoTable is the error of LoadCatalog for an allowed table the database
// lacks (or the user may not see).
var ErrNoTable = errors.New("no such table (run eventsource migrate)")

// LoadCatalog reads the live columns of the allowed tables, named
// schema.table, the first being the default. It finds JSON columns both as
// MySQL reports them (DATA_TYPE json) and as MariaDB does (LONGTEXT with a
// json_valid check), and the key column streams page on: a single-column
// AUTO_INCREMENT primary key.
func LoadCatalog(ctx context.Context, db *sql.DB, tables []string) (*sqlbuild.Catalog, error) {
	out := make([]*sqlbuild.Table, 0, len(tables))
	for _, name := range tables {
		schema, table, err := sqlbuild.SplitTableName(name)
		if err != nil {
			return nil, fmt.Errorf("load catalog: %w", err)
		}
		t, err := loadTable(ctx, db, schema, table)
		if err != nil {
			return nil, fmt.Errorf("load catalog: table %s: %w", name, err)
		}
		out = append(out, t)
	}
	return sqlbuild.NewCatalog(out...)
}

func loadTable(ctx context.Context, db *sql.DB, schema, table string) (*sqlbuild.Table, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT COLUMN_NAME, LOWER(DATA_TYPE), COALESCE(DATETIME_PRECISION, 0), COLUMN_KEY, EXTRA, IS_NULLABLE = 'YES'
		FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
		ORDER BY ORDINAL_POSITION`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	defer rows.Close()
	t := &sqlbuild.Table{Schema: schema, Name: table}
	primaries := 0
	autoKey := ""
	for rows.Next() {
		var c sqlbuild.Column
		var dataType, key, extra string
		var nullable bool
		if err := rows.Scan(&c.Name, &dataType, &c.TimeDigits, &key, &extra, &nullable); err != nil {
			return nil, fmt.Errorf("scan column: %w", err)
		}
		c.JSON = dataType == "json"
		c.Nullable = nullable
		c.Invisible = strings.Contains(strings.ToLower(extra), "invisible")
		c.Keyset = !nullable && keysetTypes[dataType]
		if key == "PRI" {
			primaries++
			if strings.Contains(strings.ToLower(extra), "auto_increment") && strings.HasSuffix(dataType, "int") {
				autoKey = c.Name
			}
		}
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	if len(t.Columns) == 0 {
		return nil, ErrNoTable
	}
	if primaries == 1 {
		t.Key = autoKey
	}
	if t.Indexes, err = loadIndexes(ctx, db, schema, table); err != nil {
		return nil, err
	}
	checks, err := db.QueryContext(ctx, `
		SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, schema, table)
	if err != nil {
		// MySQL before 8.0.16 has no CHECK_CONSTRAINTS; its JSON type is
		// already known from DATA_TYPE.
		return t, nil
	}
	defer checks.Close()
	for checks.Next() {
		var clause string
		if err := checks.Scan(&clause); err != nil {
			return nil, fmt.Errorf("scan check constraint: %w", err)
		}
		for i := range t.Columns {
			if strings.EqualFold(clause, "json_valid(`"+t.Columns[i].Name+"`)") {
				t.Columns[i].JSON = true
			}
		}
	}
	return t, checks.Err()
}

// keysetTypes are the column types whose values come back from the driver
// as values MySQL compares exactly with the column when bound again: not
// floating point (rounded), DECIMAL (bound as text, compared as a double),
// ENUM and SET (ordered by position, not text), or JSON.
var keysetTypes = map[string]bool{
	"tinyint": true, "smallint": true, "mediumint": true, "int": true, "bigint": true,
	"char": true, "varchar": true, "date": true, "datetime": true, "timestamp": true,
}

// loadIndexes reads the secondary B-tree indexes of whole columns, which
// keyset pages may seek on (prefix, full-text and spatial indexes are left
// out).
func loadIndexes(ctx context.Context, db *sql.DB, schema, table string) ([]sqlbuild.Index, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT INDEX_NAME, COLUMN_NAME, SUB_PART IS NOT NULL, INDEX_TYPE
		FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME <> 'PRIMARY'
		ORDER BY INDEX_NAME, SEQ_IN_INDEX`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("read indexes: %w", err)
	}
	defer rows.Close()
	var indexes []sqlbuild.Index
	unusable := map[string]bool{}
	for rows.Next() {
		var name, indexType string
		var column sql.NullString // NULL for an index on an expression
		var prefix bool
		if err := rows.Scan(&name, &column, &prefix, &indexType); err != nil {
			return nil, fmt.Errorf("scan index: %w", err)
		}
		if prefix || !column.Valid || indexType != "BTREE" {
			unusable[name] = true
		}
		if n := len(indexes); n == 0 || indexes[n-1].Name != name {
			indexes = append(indexes, sqlbuild.Index{Name: name})
		}
		indexes[len(indexes)-1].Columns = append(indexes[len(indexes)-1].Columns, column.String)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read indexes: %w", err)
	}
	return slices.DeleteFunc(indexes, func(idx sqlbuild.Index) bool { return unusable[idx.Name] }), nil
}
