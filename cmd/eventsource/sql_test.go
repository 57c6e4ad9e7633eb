package main

import (
	"database/sql"
	"encoding/json"
	"strings"
	"testing"

	"github.com/eventsource/eventsource/internal/scopecases"
)

func TestSQLCommand(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a line the output must contain
		stderr string
	}{
		{"select with its first page", []string{"sql", "--query", `{"$select":{"$where":{"pid":"p"},"$limit":10}}`}, 0,
			"SELECT * FROM `eventsource`.`event` WHERE (`pid` = ?) LIMIT ?\n-- values: [\"p\",10]", ""},
		{"insert as JSON", []string{"sql", "--json", "--query", `{"$insert":{"$documents":{"pid":"p","domain":"d","name":"n","data":{"a":1}}}}`}, 0,
			`{"sql":"INSERT INTO ` + "`eventsource`.`event`" + ` (` + "`pid`, `domain`, `name`, `data`" + `) VALUES (?, ?, ?, ?)","values":["p","d","n","{\"a\":1}"]}`, ""},
		{"refused query", []string{"sql", "--query", `{"$select":{"$from":"mysql.user"}}`}, 1,
			"", `query.$select.$from: table "mysql.user" is not allowed`},
		{"no query", []string{"sql"}, 2, "", "--query is required"},
		{"no database", []string{"sql", "--query", `{"$select":{}}`}, 0,
			"SELECT * FROM `eventsource`.`event`", "eventsource sql: no database reachable: showing the SQL for the schema eventsource migrate creates ("},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No MySQL answers on port 1: the SQL is for the schema
			// migrate creates.
			res := runBinary(t, []string{"MYSQL_DATABASE=eventsource", "MYSQL_PORT=1"}, tt.args...)
			if res.code != tt.code || !strings.Contains(res.stdout, tt.stdout) || !strings.Contains(res.stderr, tt.stderr) {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", res.code, tt.code, res.stdout, res.stderr)
			}
		})
	}
}

func TestSQLCommandExplain(t *testing.T) {
	db := mustDB(t)
	name := databaseName(t, db)
	if res := runBinary(t, []string{"MYSQL_DATABASE=" + name}, "migrate"); res.code != 0 {
		t.Fatalf("migrate: %s", res.stderr)
	}
	res := runBinary(t, []string{"MYSQL_DATABASE=" + name}, "sql", "--explain", "--query", `{"$select":{"$where":{"pid":"p"}}}`)
	if res.code != 0 || !strings.Contains(res.stdout, "-- explain:") || !strings.Contains(res.stdout, "possible_keys") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
}

// What `eventsource sql --read-domains a` prints is what the HTTP gateway
// runs for a token that reads domain a only: run on MariaDB over rows of
// other domains, from every place a query reads the table, it returns rows
// of domain a alone.
func TestSQLCommandShowsTheScope(t *testing.T) {
	db := mustDB(t)
	name := databaseName(t, db)
	env := []string{"MYSQL_DATABASE=" + name}
	if res := runBinary(t, env, "migrate"); res.code != 0 {
		t.Fatalf("migrate: %s", res.stderr)
	}
	cases, err := scopecases.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cases.Events {
		if _, err := db.Exec("INSERT INTO `"+name+"`.`event` (pid, domain, name, data) VALUES (?, ?, ?, ?)", e.Pid, e.Domain, e.Name, string(e.Data)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range cases.Positions {
		t.Run(p.Name, func(t *testing.T) {
			res := runBinary(t, env, "sql", "--json", "--read-domains", "a", "--query", p.Text(name+".event"))
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			var st statement
			if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
				t.Fatalf("%s: %v", res.stdout, err)
			}
			rows, err := db.Query(st.SQL, st.Values...)
			if err != nil {
				t.Fatalf("%s: %v", st.SQL, err)
			}
			defer rows.Close()
			cols, _ := rows.Columns()
			var got []string
			for rows.Next() {
				cells := make([]sql.RawBytes, len(cols))
				ptrs := make([]any, len(cells))
				for i := range cells {
					ptrs[i] = &cells[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				row := make([]string, len(cells))
				for i, c := range cells {
					row[i] = string(c)
				}
				got = append(got, strings.Join(row, "|"))
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if err := cases.Check(p, got); err != nil {
				t.Fatalf("%v\n%s", err, st.SQL)
			}
		})
	}
}
