package sqlbuild

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// The peer examples (testdata/peer): json-sql-builder2's own examples of
// MySQL/MariaDB selects and inserts, with the reference's SQL for each,
// extracted by testdata/peer/generate.js. TestPeerExamples runs each
// through our builder and requires the rows (for inserts: the tables
// afterwards) the reference's SQL gives on seed.sql.

// minPeerAgreeing is how many examples must agree; raise it as the builder
// grows (the test logs when it may rise).
const minPeerAgreeing = 180

// notYetSupported lists the examples ours does not agree on yet, each with
// a one-line reason (example name: reason). The test tolerates them and
// fails when one starts agreeing, so the list only shrinks.
var notYetSupported = map[string]string{}

// peerExample is one entry of examples.json (see generate.js).
type peerExample struct {
	Name    string          `json:"name"`
	Kind    string          `json:"kind"`
	Query   json.RawMessage `json:"query"`
	SQL     string          `json:"sql"`
	Values  json.RawMessage `json:"values"`
	Refused string          `json:"refused"`
}

// peerInvalid starts the refusal of an example whose reference SQL fails on
// MariaDB; the test checks that it does.
const peerInvalid = "reference SQL invalid on MariaDB: "

// peerSessionTime fixes NOW() and CURRENT_TIMESTAMP on every connection
// (MariaDB's timestamp session variable), so ours and the reference's
// statements see the same time whenever they run.
const peerSessionTime = "1700000000"

// peerEnv is the seeded database and a builder over all its tables.
type peerEnv struct {
	db *sql.DB
	b  *Builder
	// snapshots are the selects that read each table as text, without
	// AUTO_INCREMENT columns (their next value survives a rollback).
	snapshots map[string]string
}

func TestPeerExamples(t *testing.T) {
	examples := loadPeerExamples(t)
	env := peerEnvironment(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	names := map[string]bool{}
	refused := map[string]int{} // by reason
	var agreed, notYet []string
	ran, refusedCount := 0, 0
	for _, ex := range examples {
		names[ex.Name] = true
		reason, listed := notYetSupported[ex.Name]
		t.Run(ex.Name, func(t *testing.T) {
			ran++
			if ex.Refused != "" {
				refused[ex.Refused]++
				refusedCount++
				if listed {
					t.Errorf("refused on purpose (%s), but listed in notYetSupported: remove it", ex.Refused)
				}
				if strings.HasPrefix(ex.Refused, peerInvalid) {
					if _, err := env.reference(ctx, ex); err == nil {
						t.Errorf("noted %q, but the reference SQL runs on MariaDB: %s", ex.Refused, ex.SQL)
					}
				}
				if ourRefusal(ex.Refused) && env.translates(ex) {
					t.Errorf("refused on purpose (%s), but our builder translates it", ex.Refused)
				}
				t.Skip("refused on purpose: " + ex.Refused)
			}
			want, err := env.reference(ctx, ex)
			if err != nil {
				t.Fatalf("the reference SQL fails on MariaDB (note it in INVALID_ON_MARIADB of generate.js if that is the reference's fault): %v\n%s %s", err, ex.SQL, ex.Values)
			}
			diff := env.ours(ctx, ex, want)
			switch {
			case diff == "" && listed:
				agreed = append(agreed, ex.Name)
				t.Errorf("agrees now: remove it from notYetSupported (%s)", reason)
			case diff == "":
				agreed = append(agreed, ex.Name)
			case listed:
				notYet = append(notYet, ex.Name+": "+diff)
				t.Skip("not yet supported: " + diff)
			default:
				notYet = append(notYet, ex.Name+": "+diff)
				t.Errorf("does not agree and is not listed in notYetSupported: %s", diff)
			}
		})
	}
	for name := range notYetSupported {
		if !names[name] {
			t.Errorf("notYetSupported lists %q, which is no example: remove it", name)
		}
	}

	t.Logf("%d examples (%d run): %d agree, %d refused on purpose, %d not yet supported", len(examples), ran, len(agreed), refusedCount, len(notYet))
	reasons := make([]string, 0, len(refused))
	for r := range refused {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		t.Logf("refused on purpose (%d): %s", refused[r], r)
	}
	for _, n := range notYet {
		t.Logf("not yet supported: %s", n)
	}
	switch {
	case ran < len(examples):
		// -run chose some examples: the floor counts all of them.
	case len(agreed) < minPeerAgreeing:
		t.Errorf("only %d examples agree, want at least minPeerAgreeing = %d", len(agreed), minPeerAgreeing)
	case len(agreed) > minPeerAgreeing:
		t.Logf("%d examples agree: raise minPeerAgreeing (%d) to %d", len(agreed), minPeerAgreeing, len(agreed))
	}
}

// ourRefusal reports whether a reason of refusal is one the server gives
// (not a JavaScript-only or another dialect's example), which the builder
// must then really refuse.
func ourRefusal(reason string) bool {
	for _, p := range []string{"$update", "$delete", "$create", "$into", "$insert with $select", "raw SQL", "FULL JOIN"} {
		if strings.HasPrefix(reason, p) {
			return true
		}
	}
	return false
}

// translates reports whether our builder takes the example's query.
func (env *peerEnv) translates(ex peerExample) bool {
	var err error
	if ex.Kind == "insert" {
		_, err = env.b.InsertJSON(ex.Query, Scope{})
	} else {
		_, err = env.b.SelectJSON(ex.Query, Scope{})
	}
	return err == nil
}

func loadPeerExamples(t *testing.T) []peerExample {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "peer", "examples.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var examples []peerExample
	if err := dec.Decode(&examples); err != nil {
		t.Fatalf("examples.json: %v", err)
	}
	for _, ex := range examples {
		if ex.Refused == "" && ex.Kind != "select" && ex.Kind != "insert" {
			t.Fatalf("examples.json: %s: kind %q is neither refused nor a select or an insert", ex.Name, ex.Kind)
		}
	}
	return examples
}

// peerEnvironment seeds seed.sql into a fresh database (referenceDatabase's,
// dropped at the end, which also holds the reference corpus's event table)
// and returns a builder allowing the seeded tables.
func peerEnvironment(t *testing.T) *peerEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, name := referenceDatabase(t)
	seed, err := os.ReadFile(filepath.Join("testdata", "peer", "seed.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ExecContext(ctx, strings.ReplaceAll(string(seed), "{{db}}", name)); err != nil {
		t.Fatalf("seed.sql: %v", err)
	}

	// The reference names tables unqualified: connections use the database.
	cfg, err := mysql.ParseDSN(referenceDSN)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = name
	cfg.Params = map[string]string{"timestamp": peerSessionTime}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // before referenceDatabase drops it

	catalog, snapshots, err := peerCatalog(ctx, db, name)
	if err != nil {
		t.Fatal(err)
	}
	return &peerEnv{db: db, b: NewBuilder(catalog, Limits{}), snapshots: snapshots}
}

// peerCatalog allows every table seed.sql makes in the schema (not the
// reference corpus's event table), default_row first, all writable, with
// their live columns. (mysqlstore.LoadCatalog imports this
// package, so its tests cannot use it.) It also returns each table's
// snapshot select: its columns but the AUTO_INCREMENT one as a JSON array.
func peerCatalog(ctx context.Context, db *sql.DB, schema string) (*Catalog, map[string]string, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT c.TABLE_NAME, c.COLUMN_NAME, c.IS_NULLABLE = 'YES', COALESCE(c.DATETIME_PRECISION, 0),
			c.EXTRA LIKE '%auto_increment%',
			c.DATA_TYPE = 'json' OR EXISTS (SELECT 1 FROM information_schema.CHECK_CONSTRAINTS k
				WHERE k.CONSTRAINT_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME
				AND k.CHECK_CLAUSE = CONCAT('json_valid(`+"`"+`', c.COLUMN_NAME, '`+"`"+`)'))
		FROM information_schema.COLUMNS c WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME <> 'event'
		ORDER BY c.TABLE_NAME <> 'default_row', c.TABLE_NAME, c.ORDINAL_POSITION`, schema)
	if err != nil {
		return nil, nil, fmt.Errorf("read the columns of %s: %w", schema, err)
	}
	defer rows.Close()
	var tables []*Table
	snapshotColumns := map[string][]string{}
	for rows.Next() {
		var table string
		var c Column
		var auto bool
		if err := rows.Scan(&table, &c.Name, &c.Nullable, &c.TimeDigits, &auto, &c.JSON); err != nil {
			return nil, nil, fmt.Errorf("scan a column of %s: %w", schema, err)
		}
		if len(tables) == 0 || tables[len(tables)-1].Name != table {
			tables = append(tables, &Table{Schema: schema, Name: table, Writable: true})
		}
		t := tables[len(tables)-1]
		t.Columns = append(t.Columns, c)
		if auto {
			t.Key = c.Name
		} else {
			snapshotColumns[table] = append(snapshotColumns[table], "`"+c.Name+"`")
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read the columns of %s: %w", schema, err)
	}
	snapshots := map[string]string{}
	for table, cols := range snapshotColumns {
		snapshots[table] = "SELECT JSON_ARRAY(" + strings.Join(cols, ", ") + ") FROM `" + schema + "`.`" + table + "`"
	}
	catalog, err := NewCatalog(tables...)
	if err != nil {
		return nil, nil, fmt.Errorf("catalog of %s: %w", schema, err)
	}
	return catalog, snapshots, nil
}

// peerResult is what a statement gives, as text: a select's rows, or the
// rows of every table after an insert.
type peerResult []peerPart

type peerPart struct {
	name string // "rows", or "table <name>"
	rows []string
}

// reference runs the reference's SQL of ex.
func (env *peerEnv) reference(ctx context.Context, ex peerExample) (peerResult, error) {
	args, err := referenceValues(ex.Values)
	if err != nil {
		return nil, fmt.Errorf("values %s: %w", ex.Values, err)
	}
	return env.run(ctx, ex, ex.SQL, args)
}

// run runs ex's select as query, sorting the rows unless the reference's
// SQL orders them, or its insert in a transaction that is rolled back.
func (env *peerEnv) run(ctx context.Context, ex peerExample, query string, args []any) (peerResult, error) {
	if ex.Kind == "select" {
		rows, err := rowStrings(ctx, env.db, query, args)
		if err != nil {
			return nil, err
		}
		if !strings.Contains(strings.ToUpper(ex.SQL), "ORDER BY") {
			sort.Strings(rows)
		}
		return peerResult{{"rows", rows}}, nil
	}
	tx, err := env.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		return nil, err
	}
	tables := make([]string, 0, len(env.snapshots))
	for table := range env.snapshots {
		tables = append(tables, table)
	}
	sort.Strings(tables)
	var out peerResult
	for _, table := range tables {
		rows, err := textRows(ctx, tx, env.snapshots[table])
		if err != nil {
			return nil, fmt.Errorf("read table %s: %w", table, err)
		}
		sort.Strings(rows)
		out = append(out, peerPart{"table " + table, rows})
	}
	return out, nil
}

// textRows runs a select of one text column in tx.
func textRows(ctx context.Context, tx *sql.Tx, query string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// ours builds ex with our builder, runs it and says how its result differs
// from want ("" when it agrees).
func (env *peerEnv) ours(ctx context.Context, ex peerExample, want peerResult) string {
	var text string
	var args []any
	var err error
	if ex.Kind == "select" {
		var sel *Select
		if sel, err = env.b.SelectJSON(ex.Query, Scope{}); err == nil {
			text, args, err = sel.SQL()
		}
	} else {
		var ins *Insert
		if ins, err = env.b.InsertJSON(ex.Query, Scope{}); err == nil {
			text, args, err = ins.SQL()
		}
	}
	if err != nil {
		return "ours refuses: " + err.Error()
	}
	got, err := env.run(ctx, ex, text, args)
	if err != nil {
		return fmt.Sprintf("our SQL fails on MariaDB: %v; ours: %s %v", err, text, args)
	}
	if d := peerDiff(got, want); d != "" {
		return fmt.Sprintf("%s; ours: %s %v; reference: %s %s", d, text, args, ex.SQL, ex.Values)
	}
	return ""
}

// peerDiff describes how got differs from want, briefly: the rows only one
// side has, or else that the order differs.
func peerDiff(got, want peerResult) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d results, want %d", len(got), len(want))
	}
	var out []string
	for i, w := range want {
		g := got[i].rows
		if slices.Equal(g, w.rows) {
			continue
		}
		where := w.name
		onlyOurs, onlyTheirs := peerMissing(g, w.rows), peerMissing(w.rows, g)
		if len(onlyOurs) == 0 && len(onlyTheirs) == 0 {
			out = append(out, fmt.Sprintf("%s: same %d rows in another order", where, len(g)))
			continue
		}
		out = append(out, fmt.Sprintf("%s: ours %d, reference %d; only ours %s; only reference %s",
			where, len(g), len(w.rows), peerFew(onlyOurs), peerFew(onlyTheirs)))
	}
	return strings.Join(out, "; ")
}

// peerMissing lists the rows of a that b lacks, counting duplicates.
func peerMissing(a, b []string) []string {
	left := map[string]int{}
	for _, r := range b {
		left[r]++
	}
	var out []string
	for _, r := range a {
		if left[r] > 0 {
			left[r]--
		} else {
			out = append(out, r)
		}
	}
	return out
}

// peerFew quotes up to three rows.
func peerFew(rows []string) string {
	if len(rows) > 3 {
		return fmt.Sprintf("%q and %d more", rows[:3], len(rows)-3)
	}
	return fmt.Sprintf("%q", rows)
}
