package mysqlstore_test

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/sqlbuild"
)

// persister submits persists to a batcher and waits for their outcomes.
type persister struct {
	t       *testing.T
	db      *sql.DB
	name    string
	b       *sqlbuild.Builder
	batcher *mysqlstore.Batcher
}

func newPersister(t *testing.T) *persister {
	t.Helper()
	db, name := mustMigrated(t)
	batcher, err := mysqlstore.NewBatcher(testContext(t), db, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(batcher.Close)
	return &persister{t: t, db: db, name: name, b: mustBuilder(t, db, name+".event"), batcher: batcher}
}

// insert builds docs (JSON objects) as one request, with an expectation
// when expect is not nil.
func (p *persister) insert(expect *messages.Expectation, docs ...string) (*sqlbuild.Insert, error) {
	ins, err := p.b.InsertJSON([]byte(`{"$insert":{"$documents":[`+strings.Join(docs, ",")+`]}}`), sqlbuild.Scope{})
	if err == nil && expect != nil {
		ins, err = ins.Expect(expect.Domain, expect.PID, expect.Version)
	}
	return ins, err
}

type result struct {
	ok  messages.OK
	err error
}

// persist sends requests at once (one batch or a few) and returns their
// results in order.
func (p *persister) persist(inserts ...*sqlbuild.Insert) []result {
	p.t.Helper()
	out := make([]result, len(inserts))
	var wg sync.WaitGroup
	for i, ins := range inserts {
		wg.Add(1)
		p.batcher.Submit(ins, func(ok messages.OK, err error) {
			out[i] = result{ok, err}
			wg.Done()
		})
	}
	wg.Wait()
	return out
}

func (p *persister) one(expect *messages.Expectation, docs ...string) result {
	p.t.Helper()
	ins, err := p.insert(expect, docs...)
	if err != nil {
		p.t.Fatalf("build %v: %v", docs, err)
	}
	return p.persist(ins)[0]
}

func (p *persister) count(where string) int {
	p.t.Helper()
	var n int
	if err := p.db.QueryRowContext(testContext(p.t), "SELECT COUNT(*) FROM `"+p.name+"`.event WHERE "+where).Scan(&n); err != nil {
		p.t.Fatal(err)
	}
	return n
}

func doc(eventID, pid, name, data string) string {
	id := ""
	if eventID != "" {
		id = fmt.Sprintf(`"eventId":%q,`, eventID)
	}
	return fmt.Sprintf(`{%s"pid":%q,"domain":"d","name":%q,"data":%s}`, id, pid, name, data)
}

// TestRetriesStoreNothingTwice walks the rules of event ids, each step on
// what the steps before stored.
func TestRetriesStoreNothingTwice(t *testing.T) {
	t.Parallel()
	p := newPersister(t)
	first := p.one(nil, doc("a1", "p", "n", `{"x":1,"y":[1,2]}`), doc("a2", "p", "n", `null`))
	if first.err != nil || first.ok.AffectedRows != 2 {
		t.Fatalf("first persist: %+v", first)
	}
	id := first.ok.InsertID
	for _, tt := range []struct {
		name     string
		docs     []string
		affected int64
		conflict bool
		// ids of the documents, as offsets from the first persist's id; -1
		// for one stored now.
		ids []int64
	}{
		{"the same request again", []string{doc("a1", "p", "n", `{"x":1,"y":[1,2]}`), doc("a2", "p", "n", `null`)}, 0, false, []int64{0, 1}},
		{"key order and number spelling differ", []string{doc("a1", "p", "n", `{"y":[1.0,2e0],"x":1}`), doc("a2", "p", "n", `null`)}, 0, false, []int64{0, 1}},
		{"one of them alone", []string{doc("a2", "p", "n", `null`)}, 0, false, []int64{1}},
		{"a stored id with another name", []string{doc("a9", "p", "n", `{}`), doc("a1", "p", "other", `{"x":1,"y":[1,2]}`)}, 0, true, nil},
		{"a stored id with other data", []string{doc("a1", "p", "n", `{"x":2,"y":[1,2]}`)}, 0, true, nil},
		{"a stored id with data where it had none", []string{doc("a2", "p", "n", `{}`)}, 0, true, nil},
		{"an id differing only in case", []string{doc("A1", "p", "n", `{}`)}, 1, false, []int64{-1}},
		{"an id differing by a trailing space", []string{doc("a1 ", "p", "n", `{}`)}, 1, false, []int64{-1}},
		{"stored and new ids mixed", []string{doc("a1", "p", "n", `{"x":1,"y":[1,2]}`), doc("a3", "p", "n", `{}`), doc("", "p", "n", `{}`)}, 2, false, []int64{0, -1, -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := p.count("1")
			got := p.one(nil, tt.docs...)
			if tt.conflict {
				if !errors.Is(got.err, messages.ErrConflict) {
					t.Fatalf("got %+v, want a conflict", got)
				}
				if after := p.count("1"); after != before {
					t.Fatalf("a conflict stored %d rows", after-before)
				}
				return
			}
			if got.err != nil || got.ok.AffectedRows != tt.affected {
				t.Fatalf("got %+v, want affectedRows %d", got, tt.affected)
			}
			if after := p.count("1"); after-before != int(tt.affected) {
				t.Fatalf("stored %d rows, want %d", after-before, tt.affected)
			}
			if got.ok.Duplicate != (tt.affected == 0) {
				t.Fatalf("duplicate = %v with %d rows stored", got.ok.Duplicate, tt.affected)
			}
			ids := got.ok.DocumentIDs(len(tt.docs))
			if len(ids) != len(tt.docs) {
				t.Fatalf("ids %v for %d documents", ids, len(tt.docs))
			}
			for i, off := range tt.ids {
				if off >= 0 && ids[i] != id+off {
					t.Fatalf("document %d has id %d, want %d", i, ids[i], id+off)
				}
				if off < 0 && ids[i] <= id+1 {
					t.Fatalf("document %d has id %d, want a new one", i, ids[i])
				}
			}
			if got.ok.InsertID != ids[0] {
				t.Fatalf("insertId %d, want the first document's id %d", got.ok.InsertID, ids[0])
			}
		})
	}
	if n := p.count("eventId = 'a9'"); n != 0 {
		t.Fatalf("the new id of a request that conflicted was stored %d times", n)
	}
	if _, err := p.insert(nil, doc("b1", "p", "n", `{}`), doc("b1", "p", "n", `{}`)); err == nil || !strings.Contains(err.Error(), "also the event id") {
		t.Fatalf("the same event id twice in a request: %v", err)
	}
	for _, bad := range []string{`""`, `"` + strings.Repeat("x", 65) + `"`, `"tab\there"`, `"é"`, `7`} {
		if _, err := p.b.InsertJSON([]byte(`{"$insert":{"$documents":{"eventId":`+bad+`,"pid":"p","domain":"d","name":"n","data":{}}}}`), sqlbuild.Scope{}); err == nil {
			t.Fatalf("event id %s accepted", bad)
		}
	}
}

// TestRetriesInOneBatch sends a request and its retries together: they
// meet in one batch, and only one stores.
func TestRetriesInOneBatch(t *testing.T) {
	t.Parallel()
	p := newPersister(t)
	var inserts []*sqlbuild.Insert
	for range 5 {
		ins, err := p.insert(nil, doc("c1", "p", "n", `{"k":1}`), doc("c2", "p", "n", `{"k":2}`))
		if err != nil {
			t.Fatal(err)
		}
		inserts = append(inserts, ins)
	}
	stored := 0
	var ids []int64
	for i, r := range p.persist(inserts...) {
		if r.err != nil {
			t.Fatalf("request %d: %v", i, r.err)
		}
		stored += int(r.ok.AffectedRows)
		got := r.ok.DocumentIDs(2)
		if ids == nil {
			ids = got
		}
		if !reflect.DeepEqual(got, ids) {
			t.Fatalf("request %d names ids %v, another %v", i, got, ids)
		}
	}
	if stored != 2 || p.count("1") != 2 {
		t.Fatalf("stored %d (table holds %d), want 2", stored, p.count("1"))
	}
}

// TestExpectedVersions walks the rules of expectations on one stream.
func TestExpectedVersions(t *testing.T) {
	t.Parallel()
	p := newPersister(t)
	at := func(v int64) *messages.Expectation { return &messages.Expectation{Domain: "d", PID: "s", Version: v} }
	steps := []struct {
		name     string
		expect   *messages.Expectation
		docs     []string
		conflict string // part of the conflict's message; "" for success
	}{
		{"a new stream", at(0), []string{doc("", "s", "n", `1`)}, ""},
		{"version 0 again", at(0), []string{doc("", "s", "n", `2`)}, "at version 1"},
		{"two events at version 1", at(1), []string{doc("e1", "s", "n", `2`), doc("e2", "s", "n", `3`)}, ""},
		{"ahead of the stream", at(7), []string{doc("", "s", "n", `4`)}, "at version 3"},
		{"a full retry of an expectation met", at(1), []string{doc("e1", "s", "n", `2`), doc("e2", "s", "n", `3`)}, ""},
		{"a partial retry", at(3), []string{doc("e2", "s", "n", `3`), doc("e3", "s", "n", `4`)}, "stored already"},
		{"a plain append", nil, []string{doc("", "s", "n", `5`)}, ""},
		{"the version after it", at(4), []string{doc("", "s", "n", `6`)}, ""},
	}
	for _, st := range steps {
		got := p.one(st.expect, st.docs...)
		switch {
		case st.conflict == "" && got.err != nil:
			t.Fatalf("%s: %v", st.name, got.err)
		case st.conflict != "" && (!errors.Is(got.err, messages.ErrConflict) || !strings.Contains(got.err.Error(), st.conflict)):
			t.Fatalf("%s: got %+v, want a conflict saying %q", st.name, got, st.conflict)
		}
	}
	versions := queryColumn[int64](t, p.db, "SELECT version FROM `"+p.name+"`.event WHERE domain = 'd' AND pid = 's' ORDER BY id")
	if want := []int64{1, 2, 3, 4, 5}; !reflect.DeepEqual(versions, want) {
		t.Fatalf("versions %v, want %v", versions, want)
	}
	for _, tt := range []struct {
		name string
		docs []string
	}{
		{"a document of another stream", []string{doc("", "s", "n", `1`), doc("", "other", "n", `1`)}},
		{"a version in a document", []string{`{"pid":"s","domain":"d","name":"n","data":1,"version":6}`}},
	} {
		if _, err := p.insert(at(5), tt.docs...); err == nil {
			t.Fatalf("%s: accepted", tt.name)
		}
	}
}

// TestOneOfConcurrentExpectationsWins sends 20 persists with the same
// expectation at once, then 1,000 appends of which some expect the
// version they read: versions stay 1..n in every stream.
func TestOneOfConcurrentExpectationsWins(t *testing.T) {
	t.Parallel()
	p := newPersister(t)
	var inserts []*sqlbuild.Insert
	for i := range 20 {
		ins, err := p.insert(&messages.Expectation{Domain: "d", PID: "race", Version: 0}, doc("", "race", fmt.Sprint(i), `{}`))
		if err != nil {
			t.Fatal(err)
		}
		inserts = append(inserts, ins)
	}
	won := 0
	for _, r := range p.persist(inserts...) {
		switch {
		case r.err == nil:
			won++
		case !errors.Is(r.err, messages.ErrConflict):
			t.Fatalf("a loser failed with %v, want a conflict", r.err)
		}
	}
	if won != 1 {
		t.Fatalf("%d persists with the same expectation won, want 1", won)
	}

	inserts = inserts[:0]
	for i := range 1000 {
		stream := fmt.Sprintf("m%d", i%7)
		var expect *messages.Expectation
		if i%3 == 0 {
			expect = &messages.Expectation{Domain: "d", PID: stream, Version: int64(i / 7)} // often stale
		}
		ins, err := p.insert(expect, doc("", stream, "n", fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		inserts = append(inserts, ins)
	}
	for _, r := range p.persist(inserts...) {
		if r.err != nil && !errors.Is(r.err, messages.ErrConflict) {
			t.Fatalf("append failed: %v", r.err)
		}
	}
	for i := range 7 {
		versions := queryColumn[int64](t, p.db, "SELECT version FROM `"+p.name+"`.event WHERE domain = 'd' AND pid = ? ORDER BY id", fmt.Sprintf("m%d", i))
		for n, v := range versions {
			if v != int64(n+1) {
				t.Fatalf("stream m%d: versions %v, want 1..%d", i, versions, len(versions))
			}
		}
	}
}

// TestSafeWritesNeedTheMigration: a table of the original schema works
// without them, and says what is missing when a request uses them.
func TestSafeWritesNeedTheMigration(t *testing.T) {
	t.Parallel()
	db, name := mustDatabase(t)
	mustExec(t, db, "CREATE DATABASE `"+name+"`")
	mustExec(t, db, "CREATE TABLE `"+name+"`.event (timestamp DATETIME(6) NOT NULL DEFAULT NOW(6), pid VARCHAR(200) NOT NULL, domain VARCHAR(200) NOT NULL, name VARCHAR(200) NOT NULL, data JSON NOT NULL)")
	if _, err := mysqlstore.Migrate(testContext(t), db, name); err != nil {
		t.Fatal(err)
	}
	b := mustBuilder(t, db, name+".event")
	if _, err := b.InsertJSON([]byte(`{"$insert":{"$documents":{"eventId":"x","pid":"p","domain":"d","name":"n","data":{}}}}`), sqlbuild.Scope{}); err == nil || !strings.Contains(err.Error(), "eventsource migrate") {
		t.Fatalf("an event id into the original table: %v", err)
	}
	ins, err := b.InsertJSON([]byte(`{"$insert":{"$documents":{"pid":"p","domain":"d","name":"n","data":{}}}}`), sqlbuild.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ins.Expect("d", "p", 0); err == nil || !strings.Contains(err.Error(), "eventsource migrate") {
		t.Fatalf("an expectation on the original table: %v", err)
	}
	if _, err := mysqlstore.Exec(testContext(t), db, ins); err != nil {
		t.Fatalf("a plain persist into the original table: %v", err)
	}
}

// TestMigrateNumbersStoredEvents: events stored before the migration get
// versions in id order per stream, and appends go on from there.
func TestMigrateNumbersStoredEvents(t *testing.T) {
	t.Parallel()
	db, name := mustDatabase(t)
	mustExec(t, db, "CREATE DATABASE `"+name+"`")
	mustExec(t, db, "CREATE TABLE `"+name+"`.event (`timestamp` DATETIME(6) NOT NULL DEFAULT NOW(6), pid VARCHAR(200) NOT NULL, domain VARCHAR(200) NOT NULL, name VARCHAR(200) NOT NULL, data JSON NULL, id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY) DEFAULT CHARSET=utf8mb4")
	mustExec(t, db, "INSERT INTO `"+name+"`.event (pid, domain, name) VALUES ('a','d','n'), ('b','d','n'), ('a','d','n'), ('a','e','n')")
	changes, err := mysqlstore.Migrate(testContext(t), db, name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(changes, "\n"), "versions given to 4 events") {
		t.Fatalf("changes %q", changes)
	}
	mustExec(t, db, "INSERT INTO `"+name+"`.event (pid, domain, name) VALUES ('a','d','n'), ('c','d','n')")
	got := queryColumn[int64](t, db, "SELECT version FROM `"+name+"`.event ORDER BY id")
	if want := []int64{1, 1, 2, 1, 3, 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("versions %v, want %v", got, want)
	}
	if changes, err := mysqlstore.Migrate(testContext(t), db, name); err != nil || len(changes) != 0 {
		t.Fatalf("second Migrate: %q, %v", changes, err)
	}

	// Many events, numbered a range of ids at a time; a run stopped
	// halfway goes on where it stopped.
	mustExec(t, db, "DROP TRIGGER `"+name+"`.event_version")
	mustExec(t, db, "INSERT INTO `"+name+"`.event (pid, domain, name) SELECT CONCAT('s', seq % 7), IF(seq % 3 = 0, 'd', 'D'), 'n' FROM `"+name+"`.seq_1_to_45000")
	mustExec(t, db, "UPDATE `"+name+"`.event SET version = NULL")
	if _, err := mysqlstore.Migrate(testContext(t), db, name); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "UPDATE `"+name+"`.event SET version = NULL WHERE id > 25000")
	if _, err := mysqlstore.Migrate(testContext(t), db, name); err != nil {
		t.Fatal(err)
	}
	var wrong int
	if err := db.QueryRowContext(testContext(t), "SELECT COUNT(*) FROM `"+name+"`.event e JOIN (SELECT id, ROW_NUMBER() OVER (PARTITION BY domain, pid ORDER BY id) AS v FROM `"+name+"`.event) r ON e.id = r.id WHERE NOT e.version <=> r.v").Scan(&wrong); err != nil || wrong != 0 {
		t.Fatalf("%d of 45,006 events numbered wrong (%v)", wrong, err)
	}
}
