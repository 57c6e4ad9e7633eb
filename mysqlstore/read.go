package mysqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/sqlbuild"
)

// Page is one batch of rows and where the next batch starts.
type Page struct {
	Rows []messages.Row
	// LastKey is the key of the last row, for keyset paging (0 when the
	// query carries no key column).
	LastKey int64
	// Snapshot is the snapshot bound the page took (0 when it took none, or
	// read no row).
	Snapshot int64
}

// RowOptions says how to encode the values of a result.
type RowOptions struct {
	// DecodeJSON writes JSON columns as JSON values instead of JSON text.
	DecodeJSON bool
	// Table tells which result columns are JSON columns (by name).
	Table *sqlbuild.Table
}

// Querier runs a query: a *sql.DB, or cached Statements.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ReadPage runs one page query and holds a pooled connection only while it
// reads. Values become what the original server sent: DATETIMEs as UTC
// times, text as strings, JSON as text (or decoded, when asked).
func ReadPage(ctx context.Context, db Querier, query string, args []any, opts RowOptions) (Page, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return Page{}, fmt.Errorf("query page: %w", err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return Page{}, fmt.Errorf("read column types: %w", err)
	}
	// Hidden columns (the key, the snapshot bound) come last.
	n := len(types)
	keyIndex, snapshotIndex := -1, -1
	visible := n
	for visible > 0 && strings.HasPrefix(types[visible-1].Name(), sqlbuild.HiddenPrefix) {
		switch types[visible-1].Name() {
		case sqlbuild.KeyAlias:
			keyIndex = visible - 1
		case sqlbuild.SnapshotAlias:
			snapshotIndex = visible - 1
		}
		visible--
	}
	// Column names, JSON-ness and time precision are the same for every row
	// of the page: share the slices between rows.
	columns := make([]string, visible)
	isJSON := make([]bool, visible)
	digits := make([]int, visible)
	for i := 0; i < visible; i++ {
		columns[i] = types[i].Name()
		if types[i].DatabaseTypeName() == "JSON" {
			isJSON[i] = true
		} else if opts.Table != nil {
			if c := opts.Table.Column(columns[i]); c != nil && c.JSON {
				isJSON[i] = true
			}
		}
		if _, scale, ok := types[i].DecimalSize(); ok {
			switch types[i].DatabaseTypeName() {
			case "DATETIME", "TIMESTAMP":
				digits[i] = int(scale)
			}
		}
	}
	var page Page
	dest := make([]any, n)
	ptrs := make([]any, n)
	for i := range dest {
		ptrs[i] = &dest[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return Page{}, fmt.Errorf("scan row: %w", err)
		}
		values := make([]any, visible)
		for i := 0; i < visible; i++ {
			values[i] = wireValue(dest[i], isJSON[i] && opts.DecodeJSON)
		}
		if keyIndex >= 0 {
			key, err := asInt64(dest[keyIndex])
			if err != nil {
				return Page{}, fmt.Errorf("read key column: %w", err)
			}
			page.LastKey = key
		}
		if snapshotIndex >= 0 && page.Snapshot == 0 {
			if page.Snapshot, err = asInt64(dest[snapshotIndex]); err != nil {
				return Page{}, fmt.Errorf("read snapshot column: %w", err)
			}
		}
		page.Rows = append(page.Rows, messages.Row{Columns: columns, Values: values, TimeDigits: digits})
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("read page: %w", err)
	}
	return page, nil
}

// wireValue converts a scanned value to one messages.Row encodes.
func wireValue(v any, decodeJSON bool) any {
	switch v := v.(type) {
	case []byte:
		if decodeJSON && json.Valid(v) {
			return json.RawMessage(append([]byte(nil), v...))
		}
		return string(v)
	case int64, uint64, float64, bool, string, time.Time, nil:
		return v
	case float32:
		return float64(v)
	case int32:
		return int64(v)
	default:
		return fmt.Sprint(v)
	}
}

func asInt64(v any) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case uint64:
		return int64(v), nil
	case []byte:
		return strconv.ParseInt(string(v), 10, 64)
	}
	return 0, fmt.Errorf("unexpected key type %T", v)
}

// Exec runs an INSERT and returns the OK reply the original sent.
func Exec(ctx context.Context, db *sql.DB, ins *sqlbuild.Insert) (messages.OK, error) {
	query, args := ins.SQL()
	res, err := db.ExecContext(ctx, query, args...)
	if err != nil {
		return messages.OK{}, fmt.Errorf("insert into %s: %w", ins.Table.QualifiedName(), err)
	}
	affected, err := res.RowsAffected()
	if err != nil {
		return messages.OK{}, fmt.Errorf("insert into %s: rows affected: %w", ins.Table.QualifiedName(), err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return messages.OK{}, fmt.Errorf("insert into %s: insert id: %w", ins.Table.QualifiedName(), err)
	}
	return messages.NewOK(affected, id), nil
}
