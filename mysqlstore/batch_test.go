package mysqlstore_test

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/mysqlstore"
)

// TestBatcherGivesEachRequestItsOwnResult persists many requests at once
// and checks every reply against the rows in the table: the ids a reply
// names are exactly its request's rows.
func TestBatcherGivesEachRequestItsOwnResult(t *testing.T) {
	db, name := mustMigrated(t)
	b := mustBuilder(t, db, name+".event")
	batcher, err := mysqlstore.NewBatcher(testContext(t), db, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer batcher.Close()

	const requests = 64
	type outcome struct {
		ok  messages.OK
		err error
	}
	outcomes := make([]outcome, requests)
	var wg sync.WaitGroup
	for i := range requests {
		docs := make([]string, i%3+1) // 1, 2 or 3 documents
		for j := range docs {
			docs[j] = fmt.Sprintf(`{"pid":"r%d","domain":"d","name":"n%d","data":{}}`, i, j)
		}
		pid := fmt.Sprintf("r%d", i)
		if i == 10 {
			// Too long for VARCHAR(200) in strict mode: fails in MariaDB,
			// after sqlbuild accepted it.
			pid = strings.Repeat("x", 300)
			docs = []string{fmt.Sprintf(`{"pid":%q,"domain":"d","name":"n0","data":{}}`, pid)}
		}
		ins, err := b.Insert([]byte(`{"$insert":{"$documents":[` + strings.Join(docs, ",") + `]}}`))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		batcher.Submit(ins, func(ok messages.OK, err error) {
			outcomes[i] = outcome{ok, err}
			wg.Done()
		})
	}
	wg.Wait()
	if st := batcher.Stats(); st.Requests != requests || st.Batches >= requests {
		t.Fatalf("stats %+v: want %d requests in fewer batches", st, requests)
	}

	for i, o := range outcomes {
		want := int64(i%3 + 1)
		if i == 10 {
			if o.err == nil {
				t.Fatalf("request 10 (pid too long) succeeded: %+v", o.ok)
			}
			continue
		}
		if o.err != nil {
			t.Fatalf("request %d failed: %v", i, o.err)
		}
		if o.ok.AffectedRows != want {
			t.Fatalf("request %d: affectedRows %d, want %d", i, o.ok.AffectedRows, want)
		}
		// The ids of this request's rows are insertId, insertId+1, ...
		rows, err := db.QueryContext(testContext(t), "SELECT id FROM `"+name+"`.event WHERE pid = ? ORDER BY id", fmt.Sprintf("r%d", i))
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if int64(len(ids)) != want || ids[0] != o.ok.InsertID || ids[len(ids)-1] != o.ok.InsertID+want-1 {
			t.Fatalf("request %d: reply insertId %d for %d rows, table has ids %v", i, o.ok.InsertID, want, ids)
		}
	}
}

func TestBatcherAfterClose(t *testing.T) {
	db, name := mustMigrated(t)
	b := mustBuilder(t, db, name+".event")
	batcher, err := mysqlstore.NewBatcher(testContext(t), db, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	batcher.Close()
	ins, err := b.Insert([]byte(`{"$insert":{"$documents":{"pid":"p","domain":"d","name":"n","data":{}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	batcher.Submit(ins, func(_ messages.OK, err error) { got <- err })
	if err := <-got; err != mysqlstore.ErrBatcherClosed {
		t.Fatalf("err = %v, want ErrBatcherClosed", err)
	}
}
