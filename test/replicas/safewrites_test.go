package replicas_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// event is a persist document with an event id.
func event(eventID, pid, name string, data any) map[string]any {
	doc := map[string]any{"pid": pid, "domain": "d", "name": name, "data": data}
	if eventID != "" {
		doc["eventId"] = eventID
	}
	return doc
}

// persistReply is what a persist heard: the OK object, or the error's
// reason.
type persistReply struct {
	AffectedRows, InsertID int64
	Duplicate              bool
	Error, Message         string
}

// persist publishes a persist of docs on channel, with reasons, and with
// an expectation when expect is not nil; answer waits for its reply.
func (d *deployment) persist(channel string, expect map[string]any, docs ...map[string]any) {
	d.t.Helper()
	req := map[string]any{"channel": channel, "reason": true, "query": map[string]any{"$insert": map[string]any{"$documents": docs}}}
	if expect != nil {
		req["expect"] = expect
	}
	d.publish(d.persistChannel(), req)
}

func answer(t *testing.T, c *collector, channel string) persistReply {
	t.Helper()
	got, err := c.wait(channel, 30*time.Second, ended)
	if err != nil {
		t.Fatal(err)
	}
	var r persistReply
	switch {
	case len(got) == 1 && json.Unmarshal([]byte(got[0]), &r) == nil && r.Error != "":
	case len(got) == 2 && got[1] == `"end"` && json.Unmarshal([]byte(got[0]), &r) == nil && r.Error == "":
	default:
		t.Fatalf("%s heard %q, want an OK and \"end\", or an error", channel, got)
	}
	return r
}

// The same persist with event ids sent 5 times at once, to one server and
// then to two: stored once, and every reply names the same first id.
func TestRetriesStoredOnceAcrossServers(t *testing.T) {
	d := newDeployment(t)
	servers := []*proc{d.start("a")}
	c := d.collect()
	const sets, tries = 20, 5
	round := func(label string) {
		var wg sync.WaitGroup
		for s := range sets {
			docs := []map[string]any{
				event(fmt.Sprintf("%s-%d-1", label, s), "p"+label, "n", map[string]any{"set": s}),
				event(fmt.Sprintf("%s-%d-2", label, s), "p"+label, "n", []int{s, 2}),
			}
			for i := range tries {
				d.persist(d.channel(fmt.Sprintf("%s-%d-%d", label, s, i)), nil, docs...)
			}
			wg.Go(func() {
				stored, first := int64(0), int64(-1)
				for i := range tries {
					r := answer(t, c, d.channel(fmt.Sprintf("%s-%d-%d", label, s, i)))
					if r.Error != "" {
						t.Errorf("set %d try %d: %s %s", s, i, r.Error, r.Message)
						return
					}
					if first >= 0 && r.InsertID != first {
						t.Errorf("set %d: insertId %d, another try %d", s, r.InsertID, first)
					}
					first = r.InsertID
					stored += r.AffectedRows
					if r.Duplicate != (r.AffectedRows == 0) {
						t.Errorf("set %d: duplicate %v with %d rows", s, r.Duplicate, r.AffectedRows)
					}
				}
				if stored != 2 {
					t.Errorf("set %d: the tries stored %d events, want 2", s, stored)
				}
			})
		}
		wg.Wait()
		var rows, ids int
		if err := d.db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT eventId) FROM `"+d.dbName+"`.event WHERE pid = ?", "p"+label).Scan(&rows, &ids); err != nil {
			t.Fatal(err)
		}
		if rows != 2*sets || ids != 2*sets {
			t.Fatalf("%s: %d rows with %d event ids stored, want %d", label, rows, ids, 2*sets)
		}
	}
	round("one")
	servers = append(servers, d.start("b"))
	round("two")
	var duplicates float64
	for _, p := range servers {
		duplicates += metric(t, p, "eventsource_persist_duplicates_total")
	}
	if want := float64(2 * sets * (tries - 1)); duplicates != want {
		t.Fatalf("servers counted %v duplicates, want %v", duplicates, want)
	}

	// An event id reused with other content: a conflict, nothing stored.
	ch := d.channel("reused")
	d.persist(ch, nil, event("fresh", "pone", "n", 1), event("one-0-1", "pone", "n", 7))
	if r := answer(t, c, ch); r.Error != "conflict" || !strings.Contains(r.Message, "one-0-1") {
		t.Fatalf("an event id reused with other content: %+v", r)
	}
	var n int
	if err := d.db.QueryRow("SELECT COUNT(*) FROM `" + d.dbName + "`.event WHERE eventId = 'fresh'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the conflicting request stored %d events (%v)", n, err)
	}
}

// A MariaDB connection killed under batches of persists with event ids:
// every request, retried until it is answered OK, ends stored exactly
// once.
func TestRetriesAfterDatabaseKillsStoreOnce(t *testing.T) {
	d := newDeployment(t)
	d.start("server")
	c := d.collect()
	stop := make(chan struct{})
	kills := every(5*time.Millisecond, stop, d.killDatabaseConnections)
	const requests, docsEach, attempts = 600, 5, 40
	failures := make([]int, requests)
	var committedAnyway atomic.Int64 // "error" replies whose events had been stored
	var wg sync.WaitGroup
	for r := range requests {
		wg.Go(func() {
			var docs []map[string]any
			for i := range docsEach {
				docs = append(docs, event(fmt.Sprintf("k%d-%d", r, i), "k", "n", map[string]any{"r": r, "i": i, "pad": strings.Repeat("x", 500)}))
			}
			for try := range attempts {
				ch := d.channel(fmt.Sprintf("k%d-%d", r, try))
				d.persist(ch, nil, docs...)
				if reply := answer(t, c, ch); reply.Error == "" {
					if reply.Duplicate && failures[r] > 0 {
						committedAnyway.Add(1)
					}
					return
				}
				failures[r]++
				time.Sleep(10 * time.Millisecond)
			}
			t.Errorf("request %d failed %d times", r, attempts)
		})
	}
	wg.Wait()
	close(stop)
	failed := 0
	for _, f := range failures {
		failed += f
	}
	t.Logf("%d database connections killed; %d replies were \"error\" and retried; %d requests answered \"error\" had been stored, and their retry was a duplicate",
		kills.Load(), failed, committedAnyway.Load())
	if kills.Load() == 0 || failed == 0 {
		t.Fatal("no persist failed: the test tested nothing")
	}
	var rows, ids int
	if err := d.db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT eventId) FROM `"+d.dbName+"`.event WHERE pid = 'k'").Scan(&rows, &ids); err != nil {
		t.Fatal(err)
	}
	if rows != docsEach*requests || ids != docsEach*requests {
		t.Fatalf("%d rows, %d event ids stored; want each of %d once", rows, ids, docsEach*requests)
	}
}

// 20 persists with the same expectation across two servers: one wins,
// 19 hear conflict. Then 1,000 appends, some expecting the version they
// last heard of: every stream's versions are 1..n.
func TestOneExpectationWinsAcrossServers(t *testing.T) {
	d := newDeployment(t)
	d.start("a")
	d.start("b")
	c := d.collect()
	expect := map[string]any{"domain": "d", "pid": "race", "version": 0}
	for i := range 20 {
		d.persist(d.channel("race"+strconv.Itoa(i)), expect, event("", "race", strconv.Itoa(i), nil))
	}
	won, conflicts := 0, 0
	for i := range 20 {
		switch r := answer(t, c, d.channel("race"+strconv.Itoa(i))); r.Error {
		case "":
			won++
		case "conflict":
			conflicts++
			if !strings.Contains(r.Message, "version 1") {
				t.Fatalf("conflict message %q, want the stream's version", r.Message)
			}
		default:
			t.Fatalf("race %d: %+v", i, r)
		}
	}
	if won != 1 || conflicts != 19 {
		t.Fatalf("%d won, %d conflicts; want 1 and 19", won, conflicts)
	}

	const appends, streams = 1000, 5
	for i := range appends {
		pid := "m" + strconv.Itoa(i%streams)
		var expect map[string]any
		if i%2 == 0 {
			expect = map[string]any{"domain": "d", "pid": pid, "version": i / streams}
		}
		d.persist(d.channel("m"+strconv.Itoa(i)), expect, event("", pid, "n", i))
	}
	outcomes := map[string]int{}
	for i := range appends {
		r := answer(t, c, d.channel("m"+strconv.Itoa(i)))
		outcomes[r.Error]++
		if r.Error != "" && r.Error != "conflict" {
			t.Fatalf("append %d: %+v", i, r)
		}
	}
	t.Logf("appends: %v", outcomes)
	for s := range streams {
		rows, err := d.db.Query("SELECT version FROM `"+d.dbName+"`.event WHERE domain = 'd' AND pid = ? ORDER BY id", "m"+strconv.Itoa(s))
		if err != nil {
			t.Fatal(err)
		}
		n := int64(0)
		for rows.Next() {
			var v int64
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			if n++; v != n {
				t.Fatalf("stream m%d: version %d where %d was due", s, v, n)
			}
		}
		rows.Close()
		if n == 0 {
			t.Fatalf("stream m%d has no events", s)
		}
	}
}
