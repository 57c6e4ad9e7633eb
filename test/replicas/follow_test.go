package replicas_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// followQuery selects the id and name of domain's events.
func followQuery(domain string) map[string]any {
	return map[string]any{"$select": map[string]any{"$columns": []string{"id", "name"}, "$where": map[string]any{"domain": domain}}}
}

// followReq publishes a followed fetch on channel; consumer may be "".
func (d *deployment) followReq(channel string, query map[string]any, window int, consumer string) {
	d.t.Helper()
	req := map[string]any{"channel": channel, "query": query, "window": window, "follow": true, "reason": true}
	if consumer != "" {
		req["consumer"] = consumer
	}
	d.publish(d.fetchChannel(), req)
}

// row is a followed row: its id and name.
type row struct {
	ID   int64
	Name string
}

// takeRows accepts rows on channel until n came (pausing each accept by
// pace), and returns them; a terminal before that fails the test.
func takeRows(t *testing.T, d *deployment, c *collector, channel string, n int, pace time.Duration, timeout time.Duration) []row {
	t.Helper()
	var rows []row
	deadline := time.Now().Add(timeout)
	for len(rows) < n {
		got, err := c.wait(channel, time.Until(deadline), func(m []string) bool { return len(m) > len(rows) })
		if err != nil {
			t.Fatalf("%s: %d of %d rows: %v", channel, len(rows), n, err)
		}
		for _, m := range got[len(rows):] {
			if isTerminal(m) {
				t.Fatalf("%s ended with %s after %d rows, want %d", channel, m, len(rows), n)
			}
			var r row
			if err := json.Unmarshal([]byte(m), &r); err != nil {
				t.Fatalf("%s: row %q: %v", channel, m, err)
			}
			rows = append(rows, r)
			if pace > 0 {
				time.Sleep(pace)
			}
			d.publish(channel, []byte(`"accepted"`))
		}
	}
	return rows
}

// storedIDs are the ids of domain's events, in order.
func (d *deployment) storedIDs(domain string) []int64 {
	d.t.Helper()
	rows, err := d.db.Query("SELECT id FROM `"+d.dbName+"`.event WHERE domain = ? ORDER BY id", domain)
	if err != nil {
		d.t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			d.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// sameIDs fails unless rows carry exactly ids, in order.
func sameIDs(t *testing.T, who string, rows []row, ids []int64) {
	t.Helper()
	got := make([]int64, len(rows))
	for i, r := range rows {
		got[i] = r.ID
	}
	if !slices.Equal(got, ids) {
		for i := range min(len(got), len(ids)) {
			if got[i] != ids[i] {
				t.Fatalf("%s: row %d has id %d, want %d (%d rows, %d stored)", who, i, got[i], ids[i], len(got), len(ids))
			}
		}
		t.Fatalf("%s: %d rows, %d stored", who, len(got), len(ids))
	}
}

// burst persists n events of domain "f", each with one of domain "g"
// beside it, from concurrent clients (whichever server claims each).
func (d *deployment) burst(c *collector, label string, n int) {
	d.t.Helper()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				ch := d.channel(fmt.Sprintf("%s-p%d", label, i))
				d.persist(ch, nil, event("", "p"+strconv.Itoa(i%13), fmt.Sprintf("%s-%d", label, i), i))
				d.publish(d.persistChannel(), map[string]any{"channel": ch + "g", "query": map[string]any{"$insert": map[string]any{"$documents": map[string]any{"pid": "q", "domain": "g", "name": "n", "data": i}}}})
				if r := answer(d.t, c, ch); r.Error != "" {
					d.t.Errorf("persist %d: %+v", i, r)
				}
			}
		})
	}
	wg.Wait()
}

// Followers started before, during and after a burst of 2,000 persists
// from two servers, on both servers: each receives every event of its
// domain exactly once, in id order, and none of another.
func TestFollowersSeeEveryCommitOnce(t *testing.T) {
	d := newDeployment(t)
	a, b := d.start("a"), d.start("b")
	c := d.collect()
	const n = 2000
	followers := []string{d.channel("before-1"), d.channel("before-2"), d.channel("before-3"), d.channel("before-4")}
	exact := d.collectExact(followers...)
	for i, ch := range followers {
		d.followReq(ch, followQuery("d"), []int{1, 8, 32, 64}[i], "")
	}
	waitFor(t, "the followers", 10*time.Second, func() bool { return len(a.streams())+len(b.streams()) == len(followers) })
	t.Logf("followers on a: %d, on b: %d", len(a.streams()), len(b.streams()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.burst(c, "burst", n)
	}()
	time.Sleep(200 * time.Millisecond)
	during := d.channel("during")
	exact.subscribe(t, during)
	d.followReq(during, followQuery("d"), 16, "")
	<-done
	after := d.channel("after")
	exact.subscribe(t, after)
	d.followReq(after, followQuery("d"), 16, "")
	ids := d.storedIDs("d")
	if len(ids) != n {
		t.Fatalf("%d events of d stored, want %d", len(ids), n)
	}
	var wg sync.WaitGroup
	for _, ch := range append(followers, during, after) {
		wg.Go(func() {
			rows := takeRows(t, d, exact, ch, n, 0, 60*time.Second)
			sameIDs(t, ch, rows, ids)
			d.publish(ch, []byte(`"end"`))
		})
	}
	wg.Wait()
	// Nothing after the client's "end", not even a terminal.
	time.Sleep(300 * time.Millisecond)
	for _, ch := range append(followers, during, after) {
		// What the channel heard: the rows and the client's own "end".
		if got := exact.heard(ch); len(got) != n+1 || got[n] != `"end"` {
			t.Fatalf("%s heard %d messages, want its %d rows and nothing after its end; last: %q", ch, len(got), n, got[n-1:])
		}
	}
}

// A slow follower (one "accepted" every 20 ms) while 5,000 events commit
// at full speed, and a follower that stops accepting for 10 s: both get
// every event in order, and the server's memory stays bounded.
func TestSlowFollowersMissNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 100 s")
	}
	d := newDeployment(t, "--accept-timeout", "30s")
	p := d.start("server")
	c := d.collect()
	slow, paused := d.channel("slow"), d.channel("paused")
	exact := d.collectExact(slow, paused)
	d.followReq(slow, followQuery("d"), 1, "")
	d.followReq(paused, followQuery("d"), 4, "")
	const n = 5000
	go d.burst(c, "fast", n)
	var wg sync.WaitGroup
	var rssEarly, rssLate int64
	wg.Go(func() {
		// The burst is over long before the slow follower has read 1,000
		// rows: from then on its memory must stay flat while it reads
		// the other 4,000 from the table.
		rows := takeRows(t, d, exact, slow, 1000, 20*time.Millisecond, 4*time.Minute)
		rssEarly = rss(t, p)
		rows = append(rows, takeRowsAfter(t, d, exact, slow, 1000, n, 20*time.Millisecond, 4*time.Minute)...)
		rssLate = rss(t, p)
		sameIDs(t, "slow follower", rows, d.storedIDs("d"))
	})
	wg.Go(func() {
		first := takeRows(t, d, exact, paused, 100, 0, time.Minute)
		time.Sleep(10 * time.Second) // no "accepted" for 10 s (the accept timeout is 30 s)
		rest := takeRowsAfter(t, d, exact, paused, len(first), n, 0, time.Minute)
		sameIDs(t, "paused follower", append(first, rest...), d.storedIDs("d"))
	})
	wg.Wait()
	t.Logf("server RSS %d KiB after the slow follower's first 1,000 rows, %d KiB after all %d", rssEarly, rssLate, n)
	if rssLate > rssEarly+64<<10 {
		t.Fatalf("server RSS grew from %d to %d KiB while the slow follower read", rssEarly, rssLate)
	}
}

// takeRowsAfter is takeRows for a channel whose first rows were taken
// (and accepted) already: it goes on from the message at index from, up
// to total rows, accepting each after pace.
func takeRowsAfter(t *testing.T, d *deployment, c *collector, channel string, from, total int, pace, timeout time.Duration) []row {
	t.Helper()
	var rows []row
	deadline := time.Now().Add(timeout)
	for seen := from; seen < total; {
		got, err := c.wait(channel, time.Until(deadline), func(m []string) bool { return len(m) > seen })
		if err != nil {
			t.Fatalf("%s: %d of %d rows: %v", channel, seen, total, err)
		}
		for _, m := range got[seen:] {
			var r row
			if isTerminal(m) || json.Unmarshal([]byte(m), &r) != nil {
				t.Fatalf("%s: %q after %d rows", channel, m, seen)
			}
			rows = append(rows, r)
			seen++
			if pace > 0 {
				time.Sleep(pace)
			}
			d.publish(channel, []byte(`"accepted"`))
		}
	}
	return rows
}

// rss is the server process's resident memory in KiB.
func rss(t *testing.T, p *proc) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// A follower whose client went away (its channel unsubscribed) is ended
// within the follow idle time, and its consumer is free again.
func TestFollowerWithoutClientEnds(t *testing.T) {
	d := newDeployment(t, "--follow-idle", "3s")
	p := d.start("server")
	ch := d.channel("gone")
	exact := d.collectExact(ch)
	d.followReq(ch, followQuery("d"), 1, "gone-consumer")
	waitFor(t, "the follower", 5*time.Second, func() bool { return len(p.streams()) == 1 })
	if err := exact.ps.Unsubscribe(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	left := time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for len(p.streams()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the follower still runs 10 s after its client left:\n%s", p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("ended %s after its client left", time.Since(left).Round(100*time.Millisecond))
	again := d.channel("again")
	exact.subscribe(t, again)
	d.followReq(again, followQuery("d"), 1, "gone-consumer")
	if got, _ := exact.wait(again, time.Second, ended); ended(got) {
		t.Fatalf("the consumer of a follower whose client left is not free: %q", got)
	}
}

// What cannot be followed is refused with bad_request naming the part.
func TestUnfollowableQueriesRefused(t *testing.T) {
	d := newDeployment(t)
	d.start("server")
	c := d.collect()
	for i, tt := range []struct {
		query map[string]any
		part  string
	}{
		{map[string]any{"$select": map[string]any{"$columns": []string{"name"}, "$groupBy": "name"}}, "$groupBy"},
		{map[string]any{"$select": map[string]any{"$columns": []string{"name"}, "$limit": 5}}, "$limit"},
		{map[string]any{"$select": map[string]any{"$columns": []string{"name"}, "$orderBy": map[string]any{"name": 1}}}, "$orderBy"},
		{map[string]any{"$select": map[string]any{"$distinct": true, "$columns": []string{"name"}}}, "$distinct"},
		{map[string]any{"$select": map[string]any{"$columns": []string{"name"}, "$where": map[string]any{"pid": map[string]any{"$in": map[string]any{"$select": map[string]any{"pid": true, "$from": "event"}}}}}}, "sub-select"},
	} {
		ch := d.channel("refused" + strconv.Itoa(i))
		d.followReq(ch, tt.query, 1, "")
		got, err := c.wait(ch, 10*time.Second, ended)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error, Message string }
		if len(got) != 1 || json.Unmarshal([]byte(got[0]), &e) != nil || e.Error != "bad_request" || !strings.Contains(e.Message, strings.TrimPrefix(tt.part, "sub-")) {
			t.Fatalf("query %d heard %q, want bad_request naming %s", i, got, tt.part)
		}
	}
}

// A consumer that accepted 500 rows, whose client and then whose server
// are killed, starts again after its recorded position: the rows since
// the last record repeated at most, none missing.
func TestConsumerResumesAfterKills(t *testing.T) {
	d := newDeployment(t, "--follow-idle", "2s")
	a := d.start("a")
	for i := range 3000 {
		if _, err := d.db.Exec("INSERT INTO `"+d.dbName+"`.event (pid, domain, name, data) VALUES ('r', 'd', ?, '{}')", "n"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	ids := d.storedIDs("d")
	var delivered []row
	resume := func(label string) []row {
		ch := d.channel(label)
		exact := d.collectExact(ch)
		d.followReq(ch, followQuery("d"), 8, "projection")
		rows := takeRows(t, d, exact, ch, 500, 0, 30*time.Second)
		// The client vanishes without a word: its rows were accepted,
		// nothing more.
		_ = exact.ps.Close()
		return rows
	}
	record := func(rows []row) {
		if len(delivered) > 0 {
			last := delivered[len(delivered)-1].ID
			repeated := 0
			for _, r := range rows {
				if r.ID <= last {
					repeated++
				}
			}
			if rows[0].ID > last && rows[0].ID != nextID(ids, last) {
				t.Fatalf("resumed at id %d after %d: a gap", rows[0].ID, last)
			}
			if repeated > 100 {
				t.Fatalf("%d rows sent again, want at most 100", repeated)
			}
			t.Logf("resumed with %d rows sent again", repeated)
			rows = rows[repeated:]
		}
		delivered = append(delivered, rows...)
	}
	record(resume("first"))
	// The client's server ends its stream once nobody listens; the next
	// fetch finds the consumer free.
	waitFor(t, "the first stream to end", 10*time.Second, func() bool { return len(a.streams()) == 0 })
	record(resume("second"))
	// Now its server dies; another serves the consumer once the lease has
	// run out (within 20 s).
	b := d.start("b")
	a.signal(syscall.SIGKILL)
	start := time.Now()
	var rows []row
	for time.Since(start) < 25*time.Second {
		ch := d.channel("third-" + strconv.Itoa(int(time.Since(start)/time.Second)))
		exact := d.collectExact(ch)
		d.followReq(ch, followQuery("d"), 8, "projection")
		// A held consumer is refused busy after the server waited 2 s for it.
		got, _ := exact.wait(ch, 5*time.Second, func(m []string) bool { return len(m) > 0 })
		if len(got) > 0 && strings.Contains(got[0], "busy") {
			_ = exact.ps.Close()
			time.Sleep(time.Second)
			continue
		}
		rows = takeRows(t, d, exact, ch, 500, 0, 30*time.Second)
		break
	}
	if rows == nil {
		t.Fatal("the consumer of a killed server was not free within 25 s")
	}
	t.Logf("served by b %s after a was killed", time.Since(start).Round(100*time.Millisecond))
	record(rows)
	sameIDs(t, "the consumer's rows", delivered, ids[:len(delivered)])
	_ = b
}

func nextID(ids []int64, after int64) int64 {
	for _, id := range ids {
		if id > after {
			return id
		}
	}
	return 0
}

// Two followed fetches for one consumer at once, on two servers: one is
// refused busy, the other served.
func TestOneStreamPerConsumer(t *testing.T) {
	d := newDeployment(t)
	d.start("a")
	d.start("b")
	d.seed("r", 50)
	c := d.collect()
	for round := range 5 {
		chs := []string{d.channel(fmt.Sprintf("one-%d-a", round)), d.channel(fmt.Sprintf("one-%d-b", round))}
		consumer := "pair-" + strconv.Itoa(round)
		for _, ch := range chs {
			d.publish(d.fetchChannel(), map[string]any{"channel": ch, "consumer": consumer, "reason": true, "window": 64, "follow": true,
				"query": map[string]any{"$select": map[string]any{"$columns": []string{"id", "name"}}}})
		}
		busy, served := 0, 0
		for _, ch := range chs {
			got, err := c.wait(ch, 10*time.Second, func(m []string) bool { return len(m) > 0 })
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(got[0], `"busy"`) {
				busy++
			} else {
				served++
			}
		}
		if busy != 1 || served != 1 {
			t.Fatalf("round %d: %d busy, %d served; want one of each", round, busy, served)
		}
	}
}
