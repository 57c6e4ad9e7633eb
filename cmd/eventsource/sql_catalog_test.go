package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// `eventsource sql` builds against the live tables when MySQL answers: an
// index the live table lacks is never forced, and the static schema (which
// has it) is used only offline or for a table the database lacks, saying
// so.
func TestSQLCommandUsesTheLiveCatalog(t *testing.T) {
	t.Parallel()
	db := mustDB(t)
	name := databaseName(t, db)
	env := []string{"MYSQL_DATABASE=" + name}
	if res := runBinary(t, env, "migrate"); res.code != 0 {
		t.Fatalf("migrate: %s", res.stderr)
	}
	query := `{"$select":{"$where":{"domain":"d","name":"n"}}}`
	force := "FORCE INDEX (`domain_name`)"
	page := func(t *testing.T, args ...string) (statement, string) {
		t.Helper()
		res := runBinary(t, env, append([]string{"sql", "--json", "--query", query}, args...)...)
		if res.code != 0 {
			t.Fatalf("exit %d\nstderr: %s", res.code, res.stderr)
		}
		var st statement
		if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
			t.Fatalf("%s: %v", res.stdout, err)
		}
		return st, res.stderr
	}

	// With the index, the stream's pages seek on it.
	if st, stderr := page(t); !strings.Contains(st.Page, force) || stderr != "" {
		t.Fatalf("migrated table: page %q, stderr %q; want %s and nothing on stderr", st.Page, stderr, force)
	}
	if _, err := db.Exec("ALTER TABLE `" + name + "`.`event` DROP INDEX `domain_name`"); err != nil {
		t.Fatal(err)
	}
	st, stderr := page(t)
	if st.Page == "" || strings.Contains(st.Page, "domain_name") || stderr != "" {
		t.Fatalf("without the index: page %q, stderr %q; want a page that does not name domain_name", st.Page, stderr)
	}
	// With --explain, MySQL runs what was printed: it would refuse a
	// FORCE INDEX on a missing index.
	res := runBinary(t, env, "sql", "--explain", "--query", query)
	if res.code != 0 || !strings.Contains(res.stdout, "-- explain:") {
		t.Fatalf("--explain: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	// Offline, the schema migrate creates, which has the index.
	if st, _ := page(t, "--offline"); !strings.Contains(st.Page, force) {
		t.Fatalf("--offline: page %q, want %s", st.Page, force)
	}
	// A table the database lacks: the schema migrate creates, said on
	// stderr.
	missing := name + ".nothing"
	st, stderr = page(t, "--tables", missing)
	if !strings.Contains(st.SQL, "`nothing`") || !strings.Contains(stderr, "no table "+missing+": showing the SQL for the schema eventsource migrate creates") {
		t.Fatalf("missing table: sql %q, stderr %q", st.SQL, stderr)
	}
}
