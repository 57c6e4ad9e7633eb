package main

import (
	"strings"
	"testing"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runBinary(t, []string{"MYSQL_DATABASE=eventsource"}, tt.args...)
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
