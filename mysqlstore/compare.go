package mysqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Difference is one way a database's live tables differ from what Migrate
// creates, for the operator to read: what it is, whether Migrate changes
// it, and if not, what leaving it means.
type Difference struct {
	Database string
	// Table is the table it is in (the trigger is the event table's).
	Table string
	// Object is what differs: "table", "column <name>", "column order",
	// "key", "index <name>" or "trigger <name>".
	Object string
	// Live is how it is ("missing" when it is not there); Want is how
	// Migrate creates it ("none" when Migrate creates no such thing).
	Live, Want string
	// Changes is set when Migrate changes it to what it wants.
	Changes bool
	// Effect says what it means for the server while it is left as it is
	// (set when Changes is not).
	Effect string
}

// String is the difference on one line:
//
//	es.event index pid: is (pid(100)), want (pid); won't change: a prefix index: ...
func (d Difference) String() string {
	verdict := "migrate will change it"
	if !d.Changes {
		verdict = "won't change: " + d.Effect
	}
	return fmt.Sprintf("%s.%s %s: is %s, want %s; %s", d.Database, d.Table, d.Object, d.Live, d.Want, verdict)
}

// Missing tells whether d is the absence of a whole table.
func (d Difference) Missing() bool { return d.Object == "table" && d.Live == "missing" }

// columnSpec is a column as Migrate creates it.
type columnSpec struct {
	name string
	// typ is the type as read normalizes it: lower case, no integer
	// display width, "json" for MariaDB's checked LONGTEXT.
	typ                                string
	nullable, autoIncrement, invisible bool
}

func (c columnSpec) String() string {
	s := c.typ
	if c.nullable {
		s += " NULL"
	} else {
		s += " NOT NULL"
	}
	if c.autoIncrement {
		s += " AUTO_INCREMENT"
	}
	if c.invisible {
		s += " INVISIBLE"
	}
	return s
}

// indexSpec is an index as Migrate creates it (primary: the key).
type indexSpec struct {
	name    string
	unique  bool
	columns []string
}

func (x indexSpec) String() string {
	s := "(" + strings.Join(x.columns, ", ") + ")"
	if x.unique && !strings.EqualFold(x.name, "PRIMARY") {
		s = "UNIQUE " + s
	}
	return s
}

type tableSpec struct {
	name    string
	columns []columnSpec
	key     []string
	indexes []indexSpec
	// effect says what a difference Migrate leaves means, for tables
	// other than event (whose differences each say their own).
	effect string
}

// The tables as the embedded migrations and addSafeWrites create them;
// TestCompareMigrated keeps them in step.
var (
	eventSpec = tableSpec{name: "event", key: []string{"id"}, columns: []columnSpec{
		{name: "timestamp", typ: "datetime(6)"},
		{name: "pid", typ: "varchar(200)"},
		{name: "domain", typ: "varchar(200)"},
		{name: "name", typ: "varchar(200)"},
		{name: "data", typ: "json", nullable: true},
		{name: "id", typ: "bigint", autoIncrement: true},
		{name: EventIDColumn, typ: "varbinary(64)", nullable: true, invisible: true},
		{name: VersionColumn, typ: "bigint", nullable: true, invisible: true},
	}, indexes: []indexSpec{
		{name: EventIDColumn, unique: true, columns: []string{EventIDColumn}},
		{name: "timestamp", columns: []string{"timestamp"}},
		{name: "pid", columns: []string{"pid"}},
		{name: "domain", columns: []string{"domain"}},
		{name: "name", columns: []string{"name"}},
		{name: "domain_name", columns: []string{"domain", "name"}},
	}}
	streamSpec = tableSpec{name: "event" + streamTableSuffix, key: []string{"domain", "pid"}, columns: []columnSpec{
		{name: "domain", typ: "varchar(200)"},
		{name: "pid", typ: "varchar(200)"},
		{name: "version", typ: "bigint"},
	}, effect: "the trigger " + "event" + versionTriggerSuffix + " keeps stream versions in it as it is"}
	consumerSpec = tableSpec{name: consumerTable, key: []string{"name"}, columns: []columnSpec{
		{name: "name", typ: "varbinary(200)"},
		{name: "query", typ: "mediumtext"},
		{name: "position", typ: "bigint"},
		{name: "server", typ: "varchar(100)", nullable: true},
		{name: "holder", typ: "varchar(300)", nullable: true},
		{name: "held_until", typ: "datetime(6)", nullable: true},
		{name: "updated_at", typ: "datetime(6)"},
	}, indexes: []indexSpec{
		{name: "server", columns: []string{"server"}},
	}, effect: "durable consumers read and write it as it is"}
)

// liveColumn is a column as the server reports it.
type liveColumn struct {
	columnSpec
	// required: NOT NULL without a default, so an insert must name it.
	required bool
}

// liveIndex is an index as the server reports it.
type liveIndex struct {
	name   string
	unique bool
	kind   string // BTREE, FULLTEXT, ...
	parts  []indexPart
}

type indexPart struct {
	column string // "" for an expression
	prefix int    // SUB_PART: bytes of a prefix index, 0 for the whole column
}

// whole reports whether the index is a B-tree on whole columns.
func (x liveIndex) whole() bool {
	for _, p := range x.parts {
		if p.column == "" || p.prefix > 0 {
			return false
		}
	}
	return x.kind == "BTREE"
}

// columns is the names of its columns, lower-cased.
func (x liveIndex) columns() []string {
	out := make([]string, len(x.parts))
	for i, p := range x.parts {
		out[i] = strings.ToLower(p.column)
	}
	return out
}

func (x liveIndex) String() string {
	parts := make([]string, len(x.parts))
	for i, p := range x.parts {
		switch {
		case p.column == "":
			parts[i] = "(expression)"
		case p.prefix > 0:
			parts[i] = p.column + "(" + strconv.Itoa(p.prefix) + ")"
		default:
			parts[i] = p.column
		}
	}
	s := "(" + strings.Join(parts, ", ") + ")"
	switch {
	case x.kind != "" && x.kind != "BTREE":
		s = x.kind + " " + s
	case x.unique && !strings.EqualFold(x.name, "PRIMARY"):
		s = "UNIQUE " + s
	}
	return s
}

type liveTable struct {
	columns []liveColumn
	indexes []liveIndex // PRIMARY included
}

func (t *liveTable) column(name string) *liveColumn {
	for i := range t.columns {
		if strings.EqualFold(t.columns[i].name, name) {
			return &t.columns[i]
		}
	}
	return nil
}

func (t *liveTable) index(name string) *liveIndex {
	for i := range t.indexes {
		if strings.EqualFold(t.indexes[i].name, name) {
			return &t.indexes[i]
		}
	}
	return nil
}

// Compare reads the live tables of database (the event table, its stream
// table and version trigger, and the table of durable consumers) and
// returns how they differ from what Migrate creates: columns (names,
// types, nullability, order), the key, indexes (names and columns), and
// the objects of safe writes. Each difference says whether Migrate
// changes it. A missing event table is one difference alone: Migrate
// creates everything. Compare only reads.
func Compare(ctx context.Context, db *sql.DB, database string) ([]Difference, error) {
	if !identifier.MatchString(database) {
		return nil, fmt.Errorf("compare: database name %q is not a plain identifier", database)
	}
	c := comparison{ctx: ctx, db: db, database: database}
	event, err := c.read(eventSpec.name)
	if err != nil {
		return nil, err
	}
	if event == nil {
		c.add(eventSpec.name, "table", "missing", "present", true, "")
		return c.out, nil
	}
	c.event(event)
	if c.hasID {
		streams, err := c.read(streamSpec.name)
		if err != nil {
			return nil, err
		}
		if streams == nil {
			c.add(streamSpec.name, "table", "missing", "present", true, "")
		} else {
			c.table(streamSpec, streams)
		}
		trigger := "event" + versionTriggerSuffix
		var found int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TRIGGERS
			WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ? AND EVENT_OBJECT_TABLE = ?
			AND EVENT_MANIPULATION = 'INSERT' AND ACTION_TIMING = 'BEFORE'`, database, trigger, eventSpec.name).Scan(&found); err != nil {
			return nil, fmt.Errorf("compare: look for trigger %s.%s: %w", database, trigger, err)
		}
		if found == 0 {
			c.add(eventSpec.name, "trigger "+trigger, "missing", "BEFORE INSERT, numbering each stream's events", true, "")
		}
	}
	consumers, err := c.read(consumerSpec.name)
	if err != nil {
		return nil, err
	}
	if consumers == nil {
		c.add(consumerSpec.name, "table", "missing", "present", true, "")
	} else {
		c.table(consumerSpec, consumers)
	}
	return c.out, nil
}

type comparison struct {
	ctx      context.Context
	db       *sql.DB
	database string
	// hasID: the event table has an id column, so Migrate adds safe
	// writes to it (addSafeWrites).
	hasID bool
	out   []Difference
}

func (c *comparison) add(table, object, live, want string, changes bool, effect string) {
	c.out = append(c.out, Difference{Database: c.database, Table: table, Object: object,
		Live: live, Want: want, Changes: changes, Effect: effect})
}

// event compares the event table, saying for each difference what it
// means to the server.
func (c *comparison) event(live *liveTable) {
	id := live.column("id")
	c.hasID = id != nil
	addsSafeWrites := c.hasID && live.column(EventIDColumn) == nil
	for _, want := range eventSpec.columns {
		have := live.column(want.name)
		switch {
		case have == nil && want.name == "id":
			c.add("event", "column id", "missing", want.String(), false,
				"no id column: original schema, safe writes and keyset paging off (streams read results whole, up to --max-buffered-rows)")
		case have == nil && !c.hasID && (want.name == EventIDColumn || want.name == VersionColumn):
			// Said by the missing id: safe writes need it.
		case have == nil && addsSafeWrites && (want.name == EventIDColumn || want.name == VersionColumn):
			c.add("event", "column "+want.name, "missing", want.String(), true, "")
		case have == nil:
			c.add("event", "column "+want.name, "missing", want.String(), false, missingEventColumn(want.name))
		case have.columnSpec.String() != want.String():
			// allowNullData makes a NOT NULL data column JSON NULL.
			changes := want.name == "data" && !have.nullable
			c.add("event", "column "+want.name, have.columnSpec.String(), want.String(), changes, eventColumnEffect(have.columnSpec, want))
		}
	}
	c.order("event", eventSpec, live)
	for _, have := range live.columns {
		if eventSpec.column(have.name) != nil {
			continue
		}
		effect := "SELECT * rows carry it, and persist leaves it to its default"
		switch {
		case have.invisible:
			effect = "persist leaves it to its default"
		case have.required:
			effect = "SELECT * rows carry it, and persist fails: it is NOT NULL without a default"
		}
		c.add("event", "column "+have.name, have.columnSpec.String(), "none", false, effect)
	}
	if c.hasID {
		key := live.index("PRIMARY")
		switch {
		case key == nil:
			c.add("event", "key", "none", "PRIMARY KEY (id)", false, "no key: streams read results whole, up to --max-buffered-rows (keyset paging off)")
		case !slices.Equal(key.columns(), []string{"id"}) || !id.autoIncrement:
			c.add("event", "key", "PRIMARY KEY "+key.String()+autoIncrement(id), "PRIMARY KEY (id) AUTO_INCREMENT", false,
				"no AUTO_INCREMENT key of one column: streams read results whole, up to --max-buffered-rows (keyset paging off)")
		}
	}
	c.indexes("event", eventSpec, live, func(want indexSpec, have *liveIndex) (bool, string) {
		if want.name == EventIDColumn {
			if !c.hasID {
				return false, "" // said by the missing id
			}
			if have == nil && addsSafeWrites {
				return true, "" // added with the column
			}
			return false, "event ids are not kept unique: a retried persist with an event id may store it twice"
		}
		cols := strings.Join(want.columns, ", ")
		switch {
		case have == nil:
			return false, fmt.Sprintf("queries binding %s read through another index or the whole table, and their streams don't seek on an index", cols)
		case !have.whole():
			return false, fmt.Sprintf("index %s is a prefix index: streams on %s read whole pages without seeking on it", have.name, cols)
		case slices.Equal(have.columns(), lower(want.columns)) && have.unique:
			return false, fmt.Sprintf("a unique index: persists of an event whose %s another event has fail", cols)
		default:
			return false, fmt.Sprintf("streams on %s don't seek on it; index %s serves queries binding %s", cols, have.name, strings.Join(have.columns(), ", "))
		}
	})
}

func autoIncrement(c *liveColumn) string {
	if c.autoIncrement {
		return " AUTO_INCREMENT"
	}
	return ""
}

// missingEventColumn says what an event table without column name means.
func missingEventColumn(name string) string {
	switch name {
	case VersionColumn:
		return "safe writes fail: the trigger numbers events in it (migrate adds it only with eventId)"
	case EventIDColumn:
		return "safe writes off" // not reached: added when id exists
	}
	return "queries and persists naming " + name + " fail"
}

// eventColumnEffect says what a column of another type, nullability or
// visibility than Migrate's means.
func eventColumnEffect(have, want columnSpec) string {
	var effects []string
	if have.typ != want.typ {
		switch {
		case want.name == "data" && have.typ != "json":
			effects = append(effects, "data is not a JSON column: persist takes only scalars for it, and rows carry it as stored text")
		case varcharLength(have.typ) > varcharLength(want.typ) && varcharLength(want.typ) > 0:
			effects = append(effects, fmt.Sprintf("%s holds longer values than migrate's: the server works with it", want.name))
		case varcharLength(have.typ) > 0 && varcharLength(want.typ) > 0:
			effects = append(effects, fmt.Sprintf("%s holds only %d characters: persists of longer values fail (or are cut, outside strict mode)", want.name, varcharLength(have.typ)))
		default:
			effects = append(effects, fmt.Sprintf("%s is read and written as %s", want.name, have.typ))
		}
	}
	if have.nullable && !want.nullable {
		effects = append(effects, fmt.Sprintf("%s may hold NULL: streams ordered by it page by offset, not by keyset", want.name))
	}
	if !have.nullable && want.nullable {
		effects = append(effects, fmt.Sprintf("%s may not hold NULL: persists without it fail", want.name))
	}
	if have.invisible != want.invisible {
		if have.invisible {
			effects = append(effects, "SELECT * rows leave it out")
		} else {
			effects = append(effects, "SELECT * rows carry it, unlike the original's")
		}
	}
	if have.autoIncrement != want.autoIncrement {
		effects = append(effects, "see the key")
	}
	if len(effects) == 0 {
		return "left as it is"
	}
	return strings.Join(effects, "; ")
}

func (s tableSpec) column(name string) *columnSpec {
	for i := range s.columns {
		if strings.EqualFold(s.columns[i].name, name) {
			return &s.columns[i]
		}
	}
	return nil
}

// order compares the order of the columns both have.
func (c *comparison) order(table string, spec tableSpec, live *liveTable) {
	var have, want []string
	for _, col := range live.columns {
		if s := spec.column(col.name); s != nil {
			have = append(have, s.name)
		}
	}
	for _, col := range spec.columns {
		if live.column(col.name) != nil {
			want = append(want, col.name)
		}
	}
	if !slices.Equal(have, want) {
		effect := "SELECT * rows list the columns in this order, not the original's"
		if spec.effect != "" {
			effect = spec.effect
		}
		c.add(table, "column order", strings.Join(have, ", "), strings.Join(want, ", "), false, effect)
	}
}

// indexes compares the secondary indexes; verdict says whether Migrate
// changes a difference and what leaving it means (an empty effect with no
// change leaves it unsaid). An index Migrate does not create is reported
// unless it stands in for one of the same columns.
func (c *comparison) indexes(table string, spec tableSpec, live *liveTable, verdict func(want indexSpec, have *liveIndex) (bool, string)) {
	standIns := map[string]bool{}
	for _, want := range spec.indexes {
		have := live.index(want.name)
		if have != nil && have.unique == want.unique && have.whole() && slices.Equal(have.columns(), lower(want.columns)) {
			continue
		}
		if have == nil {
			// An index of the same columns under another name does the
			// same work: the live catalog finds it by its columns.
			for _, other := range live.indexes {
				if spec.index(other.name) == nil && other.unique == want.unique && other.whole() && slices.Equal(other.columns(), lower(want.columns)) {
					have = &other
					break
				}
			}
		}
		changes, effect := verdict(want, have)
		if !changes && effect == "" {
			continue
		}
		switch {
		case have == nil:
			c.add(table, "index "+want.name, "missing", want.String(), changes, effect)
		case !strings.EqualFold(have.name, want.name):
			standIns[strings.ToLower(have.name)] = true
			c.add(table, "index "+want.name, "missing (index "+have.name+" "+have.String()+" has its columns)", want.String(), false,
				"harmless: the server seeks on "+have.name+" instead")
		default:
			c.add(table, "index "+want.name, have.String(), want.String(), changes, effect)
		}
	}
	for _, have := range live.indexes {
		if strings.EqualFold(have.name, "PRIMARY") || spec.index(have.name) != nil || standIns[strings.ToLower(have.name)] {
			continue
		}
		c.add(table, "index "+have.name, have.String(), "none", false, "writes keep it up to date too")
	}
}

func (s tableSpec) index(name string) *indexSpec {
	for i := range s.indexes {
		if strings.EqualFold(s.indexes[i].name, name) {
			return &s.indexes[i]
		}
	}
	return nil
}

func lower(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(n)
	}
	return out
}

// table compares a table other than event: every difference is left as it
// is, with the spec's effect.
func (c *comparison) table(spec tableSpec, live *liveTable) {
	for _, want := range spec.columns {
		have := live.column(want.name)
		switch {
		case have == nil:
			c.add(spec.name, "column "+want.name, "missing", want.String(), false, spec.effect)
		case have.columnSpec.String() != want.String():
			c.add(spec.name, "column "+want.name, have.columnSpec.String(), want.String(), false, spec.effect)
		}
	}
	c.order(spec.name, spec, live)
	for _, have := range live.columns {
		if spec.column(have.name) == nil {
			c.add(spec.name, "column "+have.name, have.columnSpec.String(), "none", false, spec.effect)
		}
	}
	key := live.index("PRIMARY")
	switch {
	case key == nil:
		c.add(spec.name, "key", "none", "PRIMARY KEY ("+strings.Join(spec.key, ", ")+")", false, spec.effect)
	case !slices.Equal(key.columns(), lower(spec.key)):
		c.add(spec.name, "key", "PRIMARY KEY "+key.String(), "PRIMARY KEY ("+strings.Join(spec.key, ", ")+")", false, spec.effect)
	}
	c.indexes(spec.name, spec, live, func(indexSpec, *liveIndex) (bool, string) { return false, spec.effect })
}

var varchar = regexp.MustCompile(`^varchar\((\d+)\)$`)

// varcharLength is the length of a VARCHAR type, 0 for other types.
func varcharLength(typ string) int {
	m := varchar.FindStringSubmatch(typ)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// integerWidth is the display width MariaDB and MySQL before 8.0.19 show
// in integer types (bigint(20)); it means nothing to storage.
var integerWidth = regexp.MustCompile(`^(tinyint|smallint|mediumint|int|bigint)\(\d+\)`)

// read reads a table's columns and indexes; nil if it does not exist.
func (c *comparison) read(table string) (*liveTable, error) {
	rows, err := c.db.QueryContext(c.ctx, `
		SELECT COLUMN_NAME, LOWER(COLUMN_TYPE), LOWER(DATA_TYPE), IS_NULLABLE = 'YES', LOWER(EXTRA), COLUMN_DEFAULT IS NULL
		FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
		ORDER BY ORDINAL_POSITION`, c.database, table)
	if err != nil {
		return nil, fmt.Errorf("compare: read the columns of %s.%s: %w", c.database, table, err)
	}
	defer rows.Close()
	t := &liveTable{}
	for rows.Next() {
		var col liveColumn
		var dataType, extra string
		var noDefault bool
		if err := rows.Scan(&col.name, &col.typ, &dataType, &col.nullable, &extra, &noDefault); err != nil {
			return nil, fmt.Errorf("compare: read the columns of %s.%s: %w", c.database, table, err)
		}
		col.typ = integerWidth.ReplaceAllString(col.typ, "$1")
		if dataType == "json" {
			col.typ = "json"
		}
		col.autoIncrement = strings.Contains(extra, "auto_increment")
		col.invisible = strings.Contains(extra, "invisible")
		// MariaDB reports no default as NULL, and a default of NULL as
		// the text NULL.
		col.required = !col.nullable && noDefault && !col.autoIncrement
		t.columns = append(t.columns, col)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("compare: read the columns of %s.%s: %w", c.database, table, err)
	}
	if len(t.columns) == 0 {
		return nil, nil
	}
	// MariaDB's JSON is LONGTEXT with a json_valid check.
	if checks, err := c.db.QueryContext(c.ctx, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, c.database, table); err == nil {
		defer checks.Close()
		for checks.Next() {
			var clause string
			if err := checks.Scan(&clause); err != nil {
				return nil, fmt.Errorf("compare: read the checks of %s.%s: %w", c.database, table, err)
			}
			for i := range t.columns {
				if t.columns[i].typ == "longtext" && strings.EqualFold(clause, "json_valid(`"+t.columns[i].name+"`)") {
					t.columns[i].typ = "json"
				}
			}
		}
		if err := checks.Err(); err != nil {
			return nil, fmt.Errorf("compare: read the checks of %s.%s: %w", c.database, table, err)
		}
	} // else MySQL before 8.0.16, whose JSON DATA_TYPE says it already.
	stats, err := c.db.QueryContext(c.ctx, `
		SELECT INDEX_NAME, NON_UNIQUE = 0, COALESCE(COLUMN_NAME, ''), COALESCE(SUB_PART, 0), INDEX_TYPE
		FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
		ORDER BY INDEX_NAME, SEQ_IN_INDEX`, c.database, table)
	if err != nil {
		return nil, fmt.Errorf("compare: read the indexes of %s.%s: %w", c.database, table, err)
	}
	defer stats.Close()
	for stats.Next() {
		var name, kind string
		var unique bool
		var part indexPart
		if err := stats.Scan(&name, &unique, &part.column, &part.prefix, &kind); err != nil {
			return nil, fmt.Errorf("compare: read the indexes of %s.%s: %w", c.database, table, err)
		}
		if n := len(t.indexes); n == 0 || t.indexes[n-1].name != name {
			t.indexes = append(t.indexes, liveIndex{name: name, unique: unique, kind: kind})
		}
		x := &t.indexes[len(t.indexes)-1]
		x.parts = append(x.parts, part)
	}
	if err := stats.Err(); err != nil {
		return nil, fmt.Errorf("compare: read the indexes of %s.%s: %w", c.database, table, err)
	}
	return t, nil
}
