package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsource/eventsource/server"
)

func TestStreamsWaitingForClientsHoldNoConnection(t *testing.T) {
	h := newHarness(t, func(cfg *server.Config) { cfg.MySQL.PoolSize = 4; cfg.AcceptTimeout = time.Minute })
	h.persistEvents("idle", 3)
	subs := make([]*sub, 20)
	for i := range subs {
		subs[i] = h.wire.subscribe(h.channel("idle"))
		h.fetch(subs[i].channel, `{"$select":{"$columns":["name"],"$where":{"pid":"idle"}}}`)
		subs[i].expect(`{"name":"n0"}`) // and never accept
	}
	waitFor(t, "no pooled connection in use", 5*time.Second, func() bool { return h.srv.DBStats().InUse == 0 })
	// With 20 streams parked on a pool of 4, others are still served.
	h.persistEvents("other", 1)
	c := h.wire.subscribe(h.channel("other"))
	h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"other"}}}`)
	c.expect(`{"name":"n0"}`)
	c.accept()
	c.expect(`"end"`)
	if open := h.srv.DBStats().OpenConnections; open > 4 {
		t.Fatalf("%d connections open, pool is 4", open)
	}
}

func TestManyStreamsOnASmallPool(t *testing.T) {
	const streams, rows = 200, 3
	h := newHarness(t, func(cfg *server.Config) { cfg.MySQL.PoolSize = 4; cfg.PageSize = 2 })
	h.persistEvents("shared", rows)
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		c := h.wire.subscribe(h.channel(fmt.Sprintf("pool%d", i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"shared"}}}`)
			for r := range rows {
				if got, _ := c.next(20 * time.Second); got != fmt.Sprintf(`{"name":"n%d"}`, r) {
					errs <- fmt.Errorf("%s row %d: got %q", c.channel, r, got)
					return
				}
				c.accept()
			}
			if got, _ := c.next(20 * time.Second); got != `"end"` {
				errs <- fmt.Errorf("%s: got %q, want \"end\"", c.channel, got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if open := h.srv.DBStats().OpenConnections; open > 4 {
		t.Fatalf("%d connections open, pool is 4", open)
	}
}

func TestSnapshotWhilePersisting(t *testing.T) {
	// Descending by name as strings: n9, n8, ..., n19, n18, ... n10, n1, n0.
	byNameDesc := []int{9, 8, 7, 6, 5, 4, 3, 2, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 1, 0}
	for _, tt := range []struct {
		name, where, order string
		want               []int // the names' numbers in order (nil: 0 to 19)
	}{
		{"keyset on id", `{"pid":"snap"}`, "", nil},
		// No index of exactly pid and domain: later pages seek on the one
		// MySQL's plan picks (Store.ChooseSeek).
		{"keyset on a chosen index", `{"pid":"snap","domain":"d"}`, "", nil},
		// Keyset on the order's column and the key.
		{"own order", `{"pid":"snap"}`, `,"$orderBy":{"name":-1}`, byNameDesc},
		{"own order, all tied", `{"pid":"snap"}`, `,"$orderBy":"domain"`, nil},
		// An order on an expression pages by offset.
		{"own order on a JSON path", `{"pid":"snap"}`, `,"$orderBy":{"data->$.i":-1}`, byNameDesc},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(cfg *server.Config) { cfg.PageSize = 3 })
			const before = 20
			h.persistEvents("snap", before) // names n0..n19
			c := h.wire.subscribe(h.channel("snap"))
			h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":`+tt.where+tt.order+`}}`)
			var got []string
			for {
				msg, ok := c.next(10 * time.Second)
				if !ok {
					t.Fatal("stream stalled")
				}
				if msg == `"end"` {
					break
				}
				got = append(got, msg)
				if len(got)%4 == 0 {
					h.persistEvents("snap", 2) // more rows that match, mid-stream
				}
				c.accept()
			}
			want := make([]string, before)
			for i := range want {
				want[i] = fmt.Sprintf(`{"name":"n%d"}`, i)
			}
			if tt.want != nil {
				want = want[:0]
				for _, n := range tt.want {
					want = append(want, fmt.Sprintf(`{"name":"n%d"}`, n))
				}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("rows\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestConcurrentPersistsEachGetTheirOwnReply(t *testing.T) {
	h := newHarness(t, nil)
	const clients = 64
	var wg sync.WaitGroup
	replies := make([]map[string]any, clients)
	subs := make([]*sub, clients)
	for i := range subs {
		subs[i] = h.wire.subscribe(h.channel(fmt.Sprintf("persist%d", i)))
	}
	for i, c := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid := fmt.Sprintf("c%d", i)
			if i == 7 {
				pid = strings.Repeat("x", 300) // too long for the column: fails in MariaDB
			}
			h.persist(c.channel, fmt.Sprintf(`{"$insert":{"$documents":[{"pid":%q,"domain":"d","name":"a","data":{}},{"pid":%q,"domain":"d","name":"b","data":{}}]}}`, pid, pid), `"reason":true`)
			msg, _ := c.next(10 * time.Second)
			if i == 7 {
				if msg != `{"error":"db","message":"the database failed to run the query"}` {
					t.Errorf("failing persist got %s", msg)
				}
				return
			}
			if err := json.Unmarshal([]byte(msg), &replies[i]); err != nil {
				t.Errorf("client %d: got %q, want the OK object", i, msg)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	seen := map[float64]bool{}
	for i, r := range replies {
		if i == 7 {
			continue
		}
		if r["affectedRows"] != float64(2) {
			t.Fatalf("client %d: reply %v", i, r)
		}
		id := r["insertId"].(float64)
		if seen[id] || seen[id+1] {
			t.Fatalf("client %d: ids %v overlap another reply", i, id)
		}
		seen[id], seen[id+1] = true, true
		var pid string
		if err := h.db.QueryRow("SELECT pid FROM `"+h.dbName+"`.event WHERE id = ?", int64(id)).Scan(&pid); err != nil || pid != fmt.Sprintf("c%d", i) {
			t.Fatalf("client %d: row %v has pid %q (%v)", i, id, pid, err)
		}
	}
}
