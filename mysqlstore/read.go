package mysqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/eventsource/eventsource/cursor"
	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/ordjson"
	"github.com/eventsource/eventsource/sqlbuild"
)

// RowOptions says how to encode the values of a result.
type RowOptions struct {
	// DecodeJSON writes JSON columns as JSON values instead of JSON text.
	DecodeJSON bool
	// Table tells which result columns are JSON columns (by name).
	Table *sqlbuild.Table
	// Encode returns the rows as their JSON payloads (Page.Payloads),
	// written while they are read: text is encoded straight from the
	// driver's buffer, and a page costs one allocation for all its rows
	// instead of several per row.
	Encode bool
	// Rows is how many rows the page asked for (its LIMIT; 0 if unknown).
	// With Encode, the payload buffer is sized for them once the first row
	// shows how long a row is.
	Rows uint64
	// Keys fills Page.Keys with every row's key.
	Keys bool
}

// Sizing the payload buffer: room for presizeFew rows after the first row,
// then for the page's rows, at most presizeRows rows or presizeBytes bytes
// (a page read whole, up to maxBuffered rows, grows by doubling past that).
const (
	presizeFew   = 16
	presizeRows  = 512
	presizeBytes = 256 << 10
)

// Querier runs a query: a *sql.DB, or cached Statements.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ReadPage runs one page query and holds a pooled connection only while it
// reads. Values become what the original server sent: DATETIMEs as UTC
// times, text as strings, JSON as text (or decoded, when asked).
func ReadPage(ctx context.Context, db Querier, query string, args []any, opts RowOptions) (cursor.Page, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return cursor.Page{}, fmt.Errorf("query page: %w", err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return cursor.Page{}, fmt.Errorf("read column types: %w", err)
	}
	// Hidden columns (the key, the snapshot bound, the order values) come
	// last.
	n := len(types)
	keyIndex, snapshotIndex := -1, -1
	var orderIndexes []int
	visible := n
	for visible > 0 && strings.HasPrefix(types[visible-1].Name(), sqlbuild.HiddenPrefix) {
		switch name := types[visible-1].Name(); {
		case name == sqlbuild.KeyAlias:
			keyIndex = visible - 1
		case name == sqlbuild.SnapshotAlias:
			snapshotIndex = visible - 1
		case strings.HasPrefix(name, sqlbuild.OrderAliasPrefix):
			orderIndexes = append([]int{visible - 1}, orderIndexes...)
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
	var page cursor.Page
	dest := make([]any, n)
	ptrs := make([]any, n)
	// Encoding: text columns are scanned as RawBytes, which point into the
	// driver's buffer until the next row, and encoded before it comes.
	raw := make([]sql.RawBytes, n)
	texts := make([]encodedText, n)
	scansRaw := make([]bool, n)
	for i := range dest {
		ptrs[i] = &dest[i]
		if opts.Encode && i < visible && isText(types[i].DatabaseTypeName()) {
			ptrs[i], scansRaw[i] = &raw[i], true
		}
	}
	var (
		encoded []byte
		ends    []int // where each row's payload ends in encoded
		row     = messages.Row{Columns: columns, TimeDigits: digits}
	)
	if opts.Encode {
		row.Values = make([]any, visible)
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return cursor.Page{}, fmt.Errorf("scan row: %w", err)
		}
		values := row.Values
		if !opts.Encode {
			values = make([]any, visible)
		}
		for i := 0; i < visible; i++ {
			if scansRaw[i] {
				texts[i] = encodedText{raw[i], isJSON[i] && opts.DecodeJSON}
				values[i] = &texts[i] // a pointer: boxing it allocates nothing
				continue
			}
			values[i] = wireValue(dest[i], isJSON[i] && opts.DecodeJSON)
		}
		if keyIndex >= 0 {
			key, err := asInt64(dest[keyIndex])
			if err != nil {
				return cursor.Page{}, fmt.Errorf("read key column: %w", err)
			}
			page.LastKey = key
			if opts.Keys {
				page.Keys = append(page.Keys, key)
			}
		}
		if snapshotIndex >= 0 && page.Snapshot == 0 {
			if page.Snapshot, err = asInt64(dest[snapshotIndex]); err != nil {
				return cursor.Page{}, fmt.Errorf("read snapshot column: %w", err)
			}
		}
		if opts.Encode {
			encoded = row.AppendJSON(encoded)
			// Room for a few rows after the first, for the page's rows
			// once a few came: most pages are short or full.
			switch len(ends) {
			case 0:
				encoded = presize(encoded, 1, min(opts.Rows, presizeFew))
				ends = make([]int, 0, min(opts.Rows, presizeFew))
			case presizeFew - 1:
				encoded = presize(encoded, presizeFew, opts.Rows)
			}
			ends = append(ends, len(encoded))
			continue
		}
		page.Rows = append(page.Rows, messages.Row{Columns: columns, Values: values, TimeDigits: digits})
	}
	if err := rows.Err(); err != nil {
		return cursor.Page{}, fmt.Errorf("read page: %w", err)
	}
	if len(orderIndexes) > 0 && (len(page.Rows) > 0 || len(ends) > 0) {
		// dest holds the last row's values, its text copied by database/sql.
		// Bound again, text is compared in the column's collation, as ORDER
		// BY compares it.
		page.LastOrder = make([]any, len(orderIndexes))
		for i, at := range orderIndexes {
			page.LastOrder[i] = dest[at]
		}
	}
	if opts.Encode && len(ends) > 0 {
		// A stream keeps its payloads until they are sent: a page that
		// came out much shorter than asked for (the many streams of a few
		// rows each) gives back the room of the rows it never had.
		if len(encoded) < cap(encoded)/2 {
			encoded = append([]byte(nil), encoded...)
		}
		// Cut once the buffer stopped growing; each payload capped, so that
		// nothing appended to one reaches into the next.
		page.Payloads = make([][]byte, len(ends))
		start := 0
		for i, end := range ends {
			page.Payloads[i] = encoded[start:end:end]
			start = end
		}
	}
	return page, nil
}

// presize makes room in buf, which holds the first written rows, for
// wanted rows of their average length: two allocations for a page instead
// of one per doubling.
func presize(buf []byte, written int, wanted uint64) []byte {
	want := len(buf) / written * int(min(wanted, presizeRows))
	want = min(want+want/8, presizeBytes) // rows vary a little in length
	if want <= cap(buf) {
		return buf
	}
	return append(make([]byte, 0, want), buf...)
}

// isText tells the column types whose values the driver hands over as
// bytes: text, JSON, binary strings and decimals, all written as strings.
func isText(databaseType string) bool {
	switch databaseType {
	case "CHAR", "VARCHAR", "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT", "JSON",
		"BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB",
		"ENUM", "SET", "DECIMAL":
		return true
	}
	return false
}

// encodedText is a text value scanned as RawBytes (nil for NULL), written
// the way wireValue's result for it would be.
type encodedText struct {
	raw        sql.RawBytes
	decodeJSON bool
}

// AppendJSON writes the value as JSON.
func (t *encodedText) AppendJSON(buf []byte) []byte {
	switch {
	case t.raw == nil:
		return append(buf, "null"...)
	case t.decodeJSON && json.Valid(t.raw):
		return append(buf, t.raw...)
	}
	return ordjson.AppendString(buf, t.raw)
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
	query, args, err := ins.SQL()
	if err != nil {
		return messages.OK{}, fmt.Errorf("insert into %s: %w", ins.Table.QualifiedName(), err)
	}
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
