package sqlbuild

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/doug-martin/goqu/v9"

	"github.com/eventsource/eventsource/ordjson"
)

// Insert is a translated $insert: one multi-row INSERT. Its SQL is
// rendered only when asked for: a batch of persists renders the one INSERT
// it combines them into, not each request's own.
type Insert struct {
	Table *Table
	// Rows is the number of documents.
	Rows    int
	columns []string
	values  [][]any
	// update is the ON DUPLICATE KEY UPDATE of a writable table (nil: none).
	update []assignment
	// eventIDs are the documents' event ids ("" for one without); nil
	// when no document has one.
	eventIDs []string
}

// assignment is one "column = value" of ON DUPLICATE KEY UPDATE: a bound
// value, or VALUES(from), the value the insert carried for a column.
type assignment struct {
	column, from string
	value        any
}

// SQL renders the statement and its bound values.
func (i *Insert) SQL() (string, []any, error) {
	cols := make([]any, len(i.columns))
	for n, c := range i.columns {
		cols[n] = c
	}
	ds := goqu.Dialect("mysql").Insert(goqu.S(i.Table.Schema).Table(i.Table.Name)).Prepared(true).Cols(cols...)
	for _, row := range i.values {
		ds = ds.Vals(row)
	}
	sql, args, err := sqlString(ds, "insert")
	if err != nil {
		return "", nil, err
	}
	// Written here, not with goqu's OnConflict, which makes MySQL inserts
	// INSERT IGNORE (turning errors into warnings). Column names come from
	// the catalog.
	for n, a := range i.update {
		sep := ", "
		if n == 0 {
			sep = " ON DUPLICATE KEY UPDATE "
		}
		if a.from != "" {
			sql += sep + "`" + a.column + "` = VALUES(`" + a.from + "`)"
			continue
		}
		sql += sep + "`" + a.column + "` = ?"
		args = append(args, a.value)
	}
	return sql, args, nil
}

// Combinable reports whether i and other can be sent as one INSERT: the
// same table and the same columns in the same order.
func (i *Insert) Combinable(other *Insert) bool {
	// An upsert's affected rows and ids are not one per row: it goes alone.
	return i.Table == other.Table && slices.Equal(i.columns, other.columns) && i.update == nil && other.update == nil
}

// Upsert reports whether i has an ON DUPLICATE KEY UPDATE: its affected
// rows count updates twice and its ids are not one per row.
func (i *Insert) Upsert() bool { return i.update != nil }

// EachRow splits a plain insert into one single-row Insert per document, in
// order. Where AUTO_INCREMENT ids of one statement need not be consecutive,
// each row's id is then known from its own statement.
func (i *Insert) EachRow() []*Insert {
	rows := make([]*Insert, len(i.values))
	for n, row := range i.values {
		rows[n] = &Insert{Table: i.Table, Rows: 1, columns: i.columns, values: [][]any{row}}
	}
	return rows
}

// EventIDs returns the documents' event ids in order ("" for a document
// without one), or nil when none has one.
func (i *Insert) EventIDs() []string { return i.eventIDs }

// EventDocument is what an insert writes for one event: what a retry must
// match of the event stored under the same event id.
type EventDocument struct {
	EventID, Pid, Domain, Name string
	// Data is the JSON text bound for the data column; nil for SQL NULL.
	Data *string
}

// Events returns what each document writes into an event table.
func (i *Insert) Events() []EventDocument {
	docs := make([]EventDocument, len(i.values))
	for n, row := range i.values {
		d := &docs[n]
		if i.eventIDs != nil {
			d.EventID = i.eventIDs[n]
		}
		for j, c := range i.columns {
			text, isText := row[j].(string)
			switch c {
			case "pid":
				d.Pid = text
			case "domain":
				d.Domain = text
			case "name":
				d.Name = text
			case "data":
				if isText {
					d.Data = &text
				}
			}
		}
	}
	return docs
}

// Expects reports whether the insert carries an expected version (Expect).
func (i *Insert) Expects() bool { return slices.Contains(i.columns, "version") && i.Table.SafeWrites() }

// Subset returns the insert of the documents at rows, in that order.
func (i *Insert) Subset(rows []int) *Insert {
	sub := &Insert{Table: i.Table, Rows: len(rows), columns: i.columns, update: i.update}
	for _, r := range rows {
		sub.values = append(sub.values, i.values[r])
		if i.eventIDs != nil {
			sub.eventIDs = append(sub.eventIDs, i.eventIDs[r])
		}
	}
	return sub
}

// Expect returns the insert that commits only if the stream of domain and
// pid is at version when it runs: its documents, which must all belong to
// that stream, take versions version+1, version+2, ... and the table's
// trigger refuses any other.
func (i *Insert) Expect(domain, pid string, version int64) (*Insert, error) {
	at := path{"expect"}
	switch {
	case !i.Table.SafeWrites():
		return nil, at.errorf(fmt.Sprintf("%s has no stream versions (eventsource migrate adds them)", i.Table.QualifiedName()))
	case i.update != nil:
		return nil, at.errorf("cannot go with $onDuplicateKeyUpdate")
	case version < 0:
		return nil, at.with("version").errorf("must be 0 or more")
	}
	for n, doc := range i.Events() {
		if doc.Domain != domain || doc.Pid != pid {
			return nil, at.errorf(fmt.Sprintf("document %d is in stream %q/%q, not in the expected %q/%q", n, doc.Domain, doc.Pid, domain, pid))
		}
	}
	expected := &Insert{Table: i.Table, Rows: i.Rows, columns: append(slices.Clip(i.columns), "version"), eventIDs: i.eventIDs}
	for n, row := range i.values {
		expected.values = append(expected.values, append(slices.Clip(row), version+1+int64(n)))
	}
	return expected, nil
}

// Combine joins combinable inserts into one multi-row INSERT whose rows are
// theirs in order, so that batched persists cost one statement.
func Combine(inserts ...*Insert) (*Insert, error) {
	if len(inserts) == 0 {
		return nil, fmt.Errorf("combine inserts: none given")
	}
	first := inserts[0]
	combined := &Insert{Table: first.Table, columns: first.columns, values: make([][]any, 0, len(inserts))}
	for _, ins := range inserts {
		if !first.Combinable(ins) {
			return nil, fmt.Errorf("combine inserts: %s%v and %s%v differ",
				first.Table.QualifiedName(), first.columns, ins.Table.QualifiedName(), ins.columns)
		}
		combined.values = append(combined.values, ins.values...)
		combined.Rows += ins.Rows

	}
	return combined, nil
}

// eventColumns must be non-empty strings in every document of an event
// table, as the original protocol requires.
var eventColumns = []string{"pid", "domain", "name"}

// Insert translates {"$insert": {"$table"|"$into": t, "$documents":
// doc|[doc...]}}, or the same with "$columns" and "$values" (one row) or
// "$records" (rows as [{"$values": [...]}, ...] or {"name": {"$values":
// [...]}, ...}), which become documents, for a caller with scope (the
// zero Scope: any allowed table, any row).
func (b *Builder) Insert(query *ordjson.Value, scope Scope) (*Insert, error) {
	return b.within(scope).insert(query)
}

func (b *Builder) insert(query *ordjson.Value) (*Insert, error) {
	if query == nil {
		return nil, path{"query"}.errorf("is missing")
	}
	body, at, err := statementBody(query, path{"query"}, "$insert")
	if err != nil {
		return nil, err
	}
	t := b.catalog.Default()
	tableAt := at
	var docs, columns, values, records, upsert *ordjson.Value
	var upsertAt path
	var docsAt, columnsAt path
	for _, m := range body.Members {
		mAt := at.with(m.Key)
		switch m.Key {
		case "$table", "$into":
			if t, err = b.table(m.Value, mAt); err != nil {
				return nil, err
			}
			tableAt = mAt
		case "$documents":
			docs, docsAt = m.Value, mAt
		case "$columns":
			columns, columnsAt = m.Value, mAt
		case "$values":
			values = m.Value
		case "$records":
			records = m.Value
		case "$onDuplicateKeyUpdate":
			upsert, upsertAt = m.Value, mAt
		case "$update", "$delete":
			return nil, mAt.errorf("refused: only inserts run on persist")
		case "$select":
			// INSERT ... SELECT copies stored rows into the table: an event
			// store appends what its clients send, never copies of itself.
			return nil, mAt.errorf("refused: an insert takes its rows from the request ($documents, $values, $records), not from a select")
		default:
			return nil, mAt.errorf(fmt.Sprintf("unknown or unsupported clause %q", m.Key))
		}
	}
	if err := b.writable(t, tableAt); err != nil {
		return nil, err
	}
	switch {
	case docs != nil && (columns != nil || values != nil || records != nil):
		return nil, at.errorf("either $documents or $columns with $values or $records, not both")
	case docs == nil && columns != nil:
		if docs, err = rowsAsDocuments(columns, values, records, columnsAt, at); err != nil {
			return nil, err
		}
		docsAt = at.with("$records")
		if values != nil {
			docsAt = at.with("$values")
		}
	case docs == nil:
		return nil, at.errorf("$documents (or $columns with $values or $records) is required")
	}
	list := []*ordjson.Value{docs}
	if docs.Kind == ordjson.Array {
		list = docs.Items
		if len(list) == 0 {
			return nil, docsAt.errorf("must not be empty")
		}
	}
	if len(list) > b.limits.MaxDocuments {
		return nil, docsAt.errorf(fmt.Sprintf("has %d documents, more than the limit of %d", len(list), b.limits.MaxDocuments))
	}

	// Columns in first-seen order across documents; a document that lacks
	// one gets the column's DEFAULT.
	var cols []string
	seen := map[string]bool{}
	for i, doc := range list {
		docAt := docsAt
		if docs.Kind == ordjson.Array {
			docAt = docsAt.with(fmt.Sprint(i))
		}
		if doc.Kind != ordjson.Object {
			return nil, docAt.errorf("a document must be an object")
		}
		for _, m := range doc.Members {
			if seen[m.Key] {
				continue
			}
			switch {
			case m.Key == "eventId" && !t.SafeWrites():
				return nil, docAt.with(m.Key).errorf(fmt.Sprintf("%s takes no event ids (eventsource migrate adds them)", t.QualifiedName()))
			case m.Key == "version" && t.SafeWrites():
				return nil, docAt.with(m.Key).errorf("is given by the database: a persist that expects a version says so in the request's expect")
			}
			c, err := column(t, m.Key, docAt.with(m.Key))
			if err != nil {
				return nil, err
			}
			if c.Name == t.Key {
				return nil, docAt.with(m.Key).errorf("is generated by the database and cannot be written")
			}
			seen[m.Key] = true
			cols = append(cols, m.Key)
		}
	}
	isEventTable := t.Column("pid") != nil && t.Column("domain") != nil && t.Column("name") != nil && t.Column("data") != nil

	var eventIDs []string
	if seen["eventId"] {
		if eventIDs, err = documentEventIDs(list, docs.Kind == ordjson.Array, docsAt); err != nil {
			return nil, err
		}
	}
	rows := make([][]any, len(list))
	for i, doc := range list {
		docAt := docsAt
		if docs.Kind == ordjson.Array {
			docAt = docsAt.with(fmt.Sprint(i))
		}
		if isEventTable {
			for _, name := range eventColumns {
				if v := doc.Get(name); v == nil || v.Kind != ordjson.String || v.Text == "" {
					return nil, docAt.with(name).errorf("must be a non-empty string")
				}
			}
			// Without data, or with null, the original stored SQL NULL.
			if v := doc.Get("data"); (v == nil || v.Kind == ordjson.Null) && !t.Column("data").Nullable {
				return nil, docAt.with("data").errorf(fmt.Sprintf("is required: data of %s is NOT NULL (eventsource migrate lets it hold NULL)", t.QualifiedName()))
			}
		}
		err := b.checkWrite(t, func(column string) (string, bool) {
			v := doc.Get(column)
			if v == nil || v.Kind != ordjson.String {
				return "", false
			}
			return v.Text, true
		}, docAt)
		if err != nil {
			return nil, err
		}
		row := make([]any, len(cols))
		for j, name := range cols {
			v := doc.Get(name)
			if v == nil {
				row[j] = goqu.L("DEFAULT")
				continue
			}
			val, err := documentValue(t.Column(name), v, docAt.with(name))
			if err != nil {
				return nil, err
			}
			row[j] = val
		}
		rows[i] = row
	}
	var update []assignment
	if upsert != nil {
		if b.limitsWrites(t) {
			// It would rewrite rows already stored, which the scope cannot
			// see: a caller limited to some rows may only append.
			return nil, upsertAt.forbiddenf("cannot be limited to the caller's scope: only inserts are")
		}
		if !t.Writable {
			return nil, upsertAt.errorf(fmt.Sprintf("refused: %s is append-only (see --writable-tables)", t.QualifiedName()))
		}
		if update, err = onDuplicateKeyUpdate(t, upsert, upsertAt); err != nil {
			return nil, err
		}
	}
	if update != nil && eventIDs != nil {
		return nil, upsertAt.errorf("cannot go with event ids: a retry would update what it should find stored")
	}
	return &Insert{Table: t, Rows: len(list), columns: cols, values: rows, update: update, eventIDs: eventIDs}, nil
}

// MaxEventID is the longest event id, in bytes.
const MaxEventID = 64

// documentEventIDs reads each document's eventId: 1 to 64 printable ASCII
// characters, compared exactly, and each once in the request.
func documentEventIDs(list []*ordjson.Value, array bool, docsAt path) ([]string, error) {
	ids := make([]string, len(list))
	first := map[string]int{}
	for i, doc := range list {
		at := docsAt
		if array {
			at = docsAt.with(fmt.Sprint(i))
		}
		at = at.with("eventId")
		v := doc.Get("eventId")
		if v == nil {
			continue
		}
		if v.Kind != ordjson.String || !validEventID(v.Text) {
			return nil, at.errorf(fmt.Sprintf("must be a string of 1 to %d printable ASCII characters", MaxEventID))
		}
		if j, ok := first[v.Text]; ok {
			return nil, at.errorf(fmt.Sprintf("%q is also the event id of document %d", v.Text, j))
		}
		first[v.Text] = i
		ids[i] = v.Text
	}
	return ids, nil
}

func validEventID(id string) bool {
	if len(id) == 0 || len(id) > MaxEventID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// documentValue binds one document value. A JSON column takes any JSON
// value, or JSON text in a string (the original clients sent both), and
// stores null as SQL NULL, as the original did; other columns take
// scalars.
func documentValue(c *Column, v *ordjson.Value, at path) (any, error) {
	if j := v.Get("$json"); j != nil && len(v.Members) == 1 {
		// json-sql-builder2's $json helper: the value's JSON text, for any
		// column.
		return string(j.AppendJSON(nil)), nil
	}
	if !c.JSON || v.Kind == ordjson.Null {
		return scalar(v, at)
	}
	if v.Kind == ordjson.String {
		if !json.Valid([]byte(v.Text)) {
			return nil, at.errorf("a string for a JSON column must be JSON text")
		}
		return v.Text, nil
	}
	return string(v.AppendJSON(nil)), nil
}

// rowsAsDocuments turns $columns with $values or $records into the
// documents they stand for: the n-th value goes to the n-th column.
func rowsAsDocuments(columns, values, records *ordjson.Value, columnsAt, at path) (*ordjson.Value, error) {
	var names []string
	switch columns.Kind {
	case ordjson.Array:
		for i, c := range columns.Items {
			if c.Kind != ordjson.String {
				return nil, columnsAt.with(fmt.Sprint(i)).errorf("must be a column name")
			}
			names = append(names, c.Text)
		}
	case ordjson.Object:
		for _, m := range columns.Members {
			on, err := flag(m.Value, columnsAt.with(m.Key))
			if err != nil {
				return nil, err
			}
			if on {
				names = append(names, m.Key)
			}
		}
	default:
		return nil, columnsAt.errorf("must be an array of column names or an object of them")
	}
	if len(names) == 0 {
		return nil, columnsAt.errorf("must name at least one column")
	}
	row := func(v *ordjson.Value, at path) (*ordjson.Value, error) {
		if v.Kind != ordjson.Array || len(v.Items) != len(names) {
			return nil, at.errorf(fmt.Sprintf("must be an array of %d values, one per column", len(names)))
		}
		doc := &ordjson.Value{Kind: ordjson.Object, Members: make([]ordjson.Member, len(names))}
		for i, name := range names {
			doc.Members[i] = ordjson.Member{Key: name, Value: v.Items[i]}
		}
		return doc, nil
	}
	switch {
	case values != nil && records != nil:
		return nil, at.errorf("either $values or $records, not both")
	case values != nil:
		return row(values, at.with("$values"))
	case records == nil:
		return nil, at.errorf("$columns needs $values or $records")
	}
	recordsAt := at.with("$records")
	var entries []ordjson.Member
	switch records.Kind {
	case ordjson.Array:
		for i, r := range records.Items {
			entries = append(entries, ordjson.Member{Key: fmt.Sprint(i), Value: r})
		}
	case ordjson.Object:
		entries = records.Members
	default:
		return nil, recordsAt.errorf(`must be an array or an object of {"$values": [...]}`)
	}
	if len(entries) == 0 {
		return nil, recordsAt.errorf("must not be empty")
	}
	docs := &ordjson.Value{Kind: ordjson.Array}
	for _, e := range entries {
		eAt := recordsAt.with(e.Key)
		if e.Value.Kind != ordjson.Object || len(e.Value.Members) != 1 || e.Value.Members[0].Key != "$values" {
			return nil, eAt.errorf(`must be {"$values": [...]}`)
		}
		doc, err := row(e.Value.Members[0].Value, eAt.with("$values"))
		if err != nil {
			return nil, err
		}
		docs.Items = append(docs.Items, doc)
	}
	return docs, nil
}

// onDuplicateKeyUpdate reads {"col": value | {"$values": "col"}, ...}: the
// columns an insert that meets an existing key sets instead, to a bound
// value or to the value the insert carried for a column.
func onDuplicateKeyUpdate(t *Table, v *ordjson.Value, at path) ([]assignment, error) {
	if v.Kind != ordjson.Object || len(v.Members) == 0 {
		return nil, at.errorf(`must be an object of {"column": value}`)
	}
	var set []assignment
	for _, m := range v.Members {
		mAt := at.with(m.Key)
		c, err := column(t, m.Key, mAt)
		if err != nil {
			return nil, err
		}
		if m.Value.Kind == ordjson.Object {
			src := m.Value.Get("$values")
			if src == nil || len(m.Value.Members) != 1 || src.Kind != ordjson.String {
				return nil, mAt.errorf(`must be a value or {"$values": "column"}`)
			}
			from, err := column(t, src.Text, mAt.with("$values"))
			if err != nil {
				return nil, err
			}
			set = append(set, assignment{column: c.Name, from: from.Name})
			continue
		}
		val, err := documentValue(c, m.Value, mAt)
		if err != nil {
			return nil, err
		}
		set = append(set, assignment{column: c.Name, value: val})
	}
	return set, nil
}
