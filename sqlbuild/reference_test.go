package sqlbuild

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// The reference corpus (testdata/reference): cases.json holds client queries,
// golden.json what json-sql-builder2 1.0.24 (MySQL) makes of them, generated
// by testdata/reference/generate.js. This file checks the corpus itself on
// MariaDB, independently of our translator: every reference SQL runs on the
// seeded table unless its case is noted "invalid:", and every "invalid:" case
// really fails, so the notes stay true.

const referenceDSN = "root@tcp(127.0.0.1:3306)/?parseTime=true&loc=UTC&multiStatements=true"

// referenceCase is one entry of cases.json.
type referenceCase struct {
	Name  string          `json:"name"`
	Kind  string          `json:"kind"`
	Query json.RawMessage `json:"query"`
	Note  string          `json:"note"`
}

// referenceGolden is one entry of golden.json.
type referenceGolden struct {
	Name   string          `json:"name"`
	SQL    string          `json:"sql"`
	Values json.RawMessage `json:"values"`
	Error  string          `json:"error"`
}

// Note prefixes of cases.json (see generate.js).
const (
	referenceNoteInvalid = "invalid: "
	referenceNoteDiffers = "differs: "
	referenceNoteError   = "error: "
)

// referenceTable matches the event table as the reference writes it:
// eventsource.event, or with either part quoted in backticks.
var referenceTable = regexp.MustCompile("(?:`eventsource`|\\beventsource)\\.(?:`event`|event\\b)")

func loadReferenceCorpus(t *testing.T) ([]referenceCase, []referenceGolden) {
	t.Helper()
	var cases []referenceCase
	var golden []referenceGolden
	for name, dst := range map[string]any{"cases.json": &cases, "golden.json": &golden} {
		b, err := os.ReadFile(filepath.Join("testdata", "reference", name))
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if len(cases) != len(golden) {
		t.Fatalf("cases.json has %d cases, golden.json %d: regenerate (see generate.js)", len(cases), len(golden))
	}
	for i := range cases {
		if cases[i].Name != golden[i].Name {
			t.Fatalf("case %d: cases.json %q, golden.json %q: regenerate (see generate.js)", i, cases[i].Name, golden[i].Name)
		}
	}
	return cases, golden
}

// referenceValues decodes golden values into driver arguments: integers as
// int64 (MariaDB refuses a float LIMIT), other numbers as float64.
func referenceValues(raw json.RawMessage) ([]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var vals []any
	if err := dec.Decode(&vals); err != nil {
		return nil, err
	}
	for i, v := range vals {
		switch x := v.(type) {
		case nil, string, bool:
		case json.Number:
			if n, err := x.Int64(); err == nil {
				vals[i] = n
			} else if f, err := x.Float64(); err == nil {
				vals[i] = f
			} else {
				return nil, fmt.Errorf("value %d: %v", i, err)
			}
		default:
			return nil, fmt.Errorf("value %d: unexpected %T", i, v)
		}
	}
	return vals, nil
}

func referenceDatabase(t *testing.T) (*sql.DB, string) {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "es_ref_" + hex.EncodeToString(b)
	cfg, err := mysql.ParseDSN(referenceDSN)
	if err != nil {
		t.Fatal(err)
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		db.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("MariaDB on 127.0.0.1:3306: %v", err)
	}
	seed, err := os.ReadFile(filepath.Join("testdata", "reference", "seed.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, strings.ReplaceAll(string(seed), "{{db}}", name)); err != nil {
		t.Fatalf("seed.sql: %v", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM `"+name+"`.`event`").Scan(&n); err != nil || n == 0 {
		t.Fatalf("seed.sql: %d rows, %v", n, err)
	}
	return db, name
}

// runReference runs one reference statement: a select to its last row, an
// insert inside a transaction that is rolled back. It returns the number of
// rows read or inserted.
func runReference(ctx context.Context, db *sql.DB, kind, query string, args []any) (int64, error) {
	if kind == "insert" {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		defer tx.Rollback()
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

func TestReferenceCorpusRunsOnMariaDB(t *testing.T) {
	cases, golden := loadReferenceCorpus(t)
	db, dbName := referenceDatabase(t)
	quoted := "`" + dbName + "`.`event`"

	for i, c := range cases {
		g := golden[i]
		t.Run(c.Name, func(t *testing.T) {
			switch {
			case c.Note == "":
			case strings.HasPrefix(c.Note, referenceNoteInvalid), strings.HasPrefix(c.Note, referenceNoteDiffers), strings.HasPrefix(c.Note, referenceNoteError):
			default:
				t.Fatalf("note %q: starts with none of %q, %q, %q", c.Note, referenceNoteInvalid, referenceNoteDiffers, referenceNoteError)
			}
			if c.Kind != "select" && c.Kind != "insert" {
				t.Fatalf("kind %q", c.Kind)
			}
			errorNote := strings.HasPrefix(c.Note, referenceNoteError)
			if g.Error != "" {
				if !errorNote {
					t.Fatalf("the reference throws %q, but the case has no %q note", g.Error, referenceNoteError)
				}
				return
			}
			if errorNote {
				t.Fatalf("noted %q, but the reference builds it: %s", c.Note, g.SQL)
			}

			query := referenceTable.ReplaceAllLiteralString(g.SQL, quoted)
			if strings.Contains(query, "eventsource") {
				t.Fatalf("the SQL still names eventsource after rewriting the table: %s", query)
			}
			args, err := referenceValues(g.Values)
			if err != nil {
				t.Fatalf("values %s: %v", g.Values, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			n, err := runReference(ctx, db, c.Kind, query, args)
			invalid := strings.HasPrefix(c.Note, referenceNoteInvalid)
			switch {
			case err != nil && !invalid:
				t.Errorf("reference SQL fails on MariaDB and the case has no %q note: %v\n%s\nvalues %s", referenceNoteInvalid, err, query, g.Values)
			case err == nil && invalid:
				t.Errorf("noted %q, but the reference SQL runs (%d rows):\n%s\nvalues %s", c.Note, n, query, g.Values)
			case err != nil:
				t.Logf("fails as noted: %v", err)
			default:
				t.Logf("%d rows", n)
			}
		})
	}
}
