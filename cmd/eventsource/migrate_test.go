package main

import (
	"strings"
	"testing"
)

// migrate says how an existing event table differs from its schema, and
// for each difference whether it changes it or what leaving it means.
func TestMigrateSaysWhatDiffers(t *testing.T) {
	t.Parallel()
	db := mustDB(t)
	tests := []struct {
		name  string
		setup []string // {{db}} is the database
		// want are the lines stdout must hold, in order, on the first
		// run; again those that remain on the second.
		want, again []string
		// not are lines stdout must not hold on the first run.
		not []string
	}{
		{
			name: "original schema",
			setup: []string{
				"CREATE DATABASE `{{db}}`",
				"CREATE TABLE `{{db}}`.`event` (`timestamp` DATETIME(6) NOT NULL DEFAULT NOW(6), `pid` VARCHAR(200) NOT NULL, " +
					"`domain` VARCHAR(200) NOT NULL, `name` VARCHAR(200) NOT NULL, `data` JSON NOT NULL, " +
					"KEY `timestamp` (`timestamp`), KEY `pid` (`pid`(100)), KEY `domain` (`domain`(100)), KEY `name` (`name`(100)), " +
					"KEY `domain_name` (`domain`(100), `name`(100))) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			},
			want: []string{
				"differs: {{db}}.event column data: is json NOT NULL, want json NULL; migrate will change it",
				"differs: {{db}}.event column id: is missing, want bigint NOT NULL AUTO_INCREMENT; won't change: no id column: original schema, safe writes and keyset paging off",
				"differs: {{db}}.event index pid: is (pid(100)), want (pid); won't change: index pid is a prefix index: streams on pid read whole pages without seeking on it",
				"differs: {{db}}.event index domain_name: is (domain(100), name(100)), want (domain, name); won't change: index domain_name is a prefix index",
				"differs: {{db}}.eventsource_consumer table: is missing, want present; migrate will change it",
				"changed: {{db}}.event: data may now hold NULL",
				"changed: {{db}}.eventsource_consumer: created",
				"migrated {{db}}.event",
			},
			again: []string{
				"differs: {{db}}.event column id: is missing",
				"differs: {{db}}.event index pid: is (pid(100)), want (pid); won't change",
				"migrated {{db}}.event",
			},
			not: []string{"column pid:", "column timestamp:", "index timestamp:", "still differs:"},
		},
		{
			name: "missing index",
			setup: []string{
				"CREATE DATABASE `{{db}}`",
				"CREATE TABLE `{{db}}`.`event` (`timestamp` DATETIME(6) NOT NULL DEFAULT NOW(6), `pid` VARCHAR(200) NOT NULL, " +
					"`domain` VARCHAR(200) NOT NULL, `name` VARCHAR(200) NOT NULL, `data` JSON NULL, " +
					"`id` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, " +
					"KEY `timestamp` (`timestamp`), KEY `pid` (`pid`), KEY `domain` (`domain`), KEY `name` (`name`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			},
			want: []string{
				"differs: {{db}}.event column eventId: is missing, want varbinary(64) NULL INVISIBLE; migrate will change it",
				"differs: {{db}}.event index domain_name: is missing, want (domain, name); won't change: queries binding domain, name read through another index or the whole table",
				"differs: {{db}}.event_stream table: is missing, want present; migrate will change it",
				"differs: {{db}}.event trigger event_version: is missing",
				"changed: {{db}}.event: eventId (unique) and version columns added",
				"migrated {{db}}.event",
			},
			again: []string{
				"differs: {{db}}.event index domain_name: is missing, want (domain, name); won't change",
				"migrated {{db}}.event",
			},
			not: []string{"index pid:", "column id:", "still differs:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name := databaseName(t, db)
			fill := func(s string) string { return strings.ReplaceAll(s, "{{db}}", name) }
			for _, stmt := range tt.setup {
				if _, err := db.Exec(fill(stmt)); err != nil {
					t.Fatalf("%s: %v", fill(stmt), err)
				}
			}
			env := []string{"MYSQL_DATABASE=" + name}
			for run, want := range [][]string{tt.want, tt.again} {
				res := runBinary(t, env, "migrate")
				if res.code != 0 {
					t.Fatalf("run %d: exit %d\nstdout: %s\nstderr: %s", run+1, res.code, res.stdout, res.stderr)
				}
				rest := res.stdout
				for _, w := range want {
					i := strings.Index(rest, fill(w))
					if i < 0 {
						t.Fatalf("run %d: stdout lacks %q (in order)\nstdout:\n%s", run+1, fill(w), res.stdout)
					}
					rest = rest[i+len(fill(w)):]
				}
				if run == 1 && strings.Contains(res.stdout, "changed:") {
					t.Fatalf("run 2 changed something:\n%s", res.stdout)
				}
				if run == 0 {
					for _, n := range tt.not {
						if strings.Contains(res.stdout, n) {
							t.Fatalf("stdout holds %q:\n%s", n, res.stdout)
						}
					}
				}
			}
		})
	}
}
