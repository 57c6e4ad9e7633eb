package cursor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/eventsource/eventsource/cursor"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/sqlbuild"
)

// refusedChoice is the real store, except that asking which index to seek
// on fails, as when MySQL refuses the EXPLAIN.
type refusedChoice struct{ mysqlstore.Store }

func (refusedChoice) ChooseSeek(context.Context, *sqlbuild.Select, sqlbuild.Page) (string, error) {
	return "", errors.New("EXPLAIN refused")
}

// TestCursorWhenTheSeekChoiceFails: a stream whose question about the seek
// index fails says so in the log and still reads every row once, in order,
// on MySQL's own plan.
func TestCursorWhenTheSeekChoiceFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "es_actors_" + hex.EncodeToString(b)
	db, err := mysqlstore.Open(mysqlstore.Config{Host: "127.0.0.1", Port: 3306, User: "root", Charset: "utf8mb4", PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		db.Close()
	})
	if _, err := mysqlstore.Migrate(ctx, db, name); err != nil {
		t.Fatal(err)
	}
	values := make([]string, 300)
	for i := range values {
		values[i] = fmt.Sprintf("('p', 'd%d', 'n', '{}')", i%2) // every other row matches
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO `"+name+"`.event (pid, domain, name, data) VALUES "+strings.Join(values, ",")); err != nil {
		t.Fatal(err)
	}
	catalog, err := mysqlstore.LoadCatalog(ctx, db, []string{name + ".event"})
	if err != nil {
		t.Fatal(err)
	}
	// No index is exactly (pid, domain): the second page asks which to seek on.
	sel, err := sqlbuild.NewBuilder(catalog, sqlbuild.Limits{}).SelectJSON([]byte(`{"$select":{"$where":{"pid":"p","domain":"d1"}}}`), sqlbuild.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sel.SeekChoices()) == 0 {
		t.Fatal("the select has no seek choices: the test would not ask")
	}

	tests := []struct {
		name    string
		store   cursor.Store
		warning bool
	}{
		{"the question fails", refusedChoice{mysqlstore.Store{DB: db}}, true},
		{"the question is answered", mysqlstore.Store{DB: db}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			c := cursor.New(sel, tt.store, cursor.Options{FirstPage: 32, PageSize: 32, MaxBuffered: 1000,
				Logger: slog.New(slog.NewTextHandler(&log, nil)), Channel: "reply-1"})
			var last int64
			rows := 0
			for done := false; !done; {
				var page cursor.Page
				if page, done, err = c.Next(ctx); err != nil {
					t.Fatal(err)
				}
				for _, row := range page.Rows {
					id := row.Values[len(row.Values)-1].(int64)
					if id <= last {
						t.Fatalf("id %d after %d", id, last)
					}
					last = id
					rows++
				}
			}
			if rows != 150 {
				t.Errorf("read %d rows, want 150", rows)
			}
			warned := strings.Contains(log.String(), "choose a seek index") && strings.Contains(log.String(), "channel=reply-1")
			if warned != tt.warning {
				t.Errorf("warning logged: %v, want %v; log: %s", warned, tt.warning, log.String())
			}
		})
	}
}
