package mysqlstore

import (
	"errors"
	"fmt"
	"testing"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/sqlbuild"
)

// TestAddedIDs: which ids a request's outcome announces as added, where the
// ids of one statement are consecutive or not.
func TestAddedIDs(t *testing.T) {
	counter := &sqlbuild.Table{Schema: "app", Name: "counter", Key: "id", Writable: true, Columns: []sqlbuild.Column{{Name: "id"}, {Name: "name"}, {Name: "hits"}}}
	log := &sqlbuild.Table{Schema: "app", Name: "log", Columns: []sqlbuild.Column{{Name: "line"}}}
	cat, err := sqlbuild.NewCatalog(counter, log)
	if err != nil {
		t.Fatal(err)
	}
	b := sqlbuild.NewBuilder(cat, sqlbuild.Limits{})
	insert := func(q string) *sqlbuild.Insert {
		ins, err := b.InsertJSON([]byte(q), sqlbuild.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		return ins
	}
	plain := insert(`{"$insert":{"$documents":[{"name":"a"},{"name":"b"},{"name":"c"}]}}`)
	upsert := insert(`{"$insert":{"$documents":[{"name":"a"},{"name":"b"}],"$onDuplicateKeyUpdate":{"hits":1}}}`)
	upsertOne := insert(`{"$insert":{"$documents":{"name":"a"},"$onDuplicateKeyUpdate":{"hits":1}}}`)
	keyless := insert(`{"$insert":{"$into":"app.log","$documents":{"line":"x"}}}`)
	tests := []struct {
		name        string
		consecutive bool
		ins         *sqlbuild.Insert
		out         outcome
		want        string
	}{
		{"plain, consecutive", true, plain, outcome{ok: messages.NewOK(3, 10)}, "[[10 12]]"},
		{"rows inserted one by one", false, plain, outcome{ok: messages.NewOK(3, 10), ids: [][2]int64{{10, 10}, {12, 13}}}, "[[10 10] [12 13]]"},
		{"failed", true, plain, outcome{err: errors.New("no")}, "[]"},
		{"no key", true, keyless, outcome{ok: messages.NewOK(1, 0)}, "[]"},
		{"upsert that added every row", true, upsert, outcome{ok: messages.NewOK(2, 7)}, "[[7 8]]"},
		{"upsert that updated a row", true, upsert, outcome{ok: messages.NewOK(3, 7)}, "[]"},
		{"upsert of two rows, ids not consecutive", false, upsert, outcome{ok: messages.NewOK(2, 7)}, "[]"},
		{"upsert of one row, ids not consecutive", false, upsertOne, outcome{ok: messages.NewOK(1, 7)}, "[[7 7]]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bt := &Batcher{consecutiveIDs: tt.consecutive}
			if got := fmt.Sprint(bt.addedIDs(tt.ins, tt.out)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
