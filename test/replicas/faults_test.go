package replicas_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/internal/localcluster"
)

// Faults met as a user's operations meet them: the server's connections
// killed, Redis killed and restarted or frozen, a database connection
// killed, a read that never ends. Each stream hears its rows at most once,
// in order, and exactly one terminal.

// onOwnRedis gives the deployment a redis-server of its own, which the
// test may kill, restart and freeze.
func (d *deployment) onOwnRedis() *localcluster.Server {
	d.t.Helper()
	srv, err := localcluster.StartServer()
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(srv.Stop)
	_ = d.rdb.Close()
	d.redisAt = srv.Addr
	d.rdb = redis.NewClient(&redis.Options{Addr: d.redisAt})
	d.t.Cleanup(func() { _ = d.rdb.Close() })
	return srv
}

// killConnections kills the connections named eventsource on the
// deployment's Redis (the server's), only those not in pub/sub mode when
// publishers; it returns how many.
func (d *deployment) killConnections(publishers bool) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	list, err := d.rdb.ClientList(ctx).Result()
	if err != nil {
		return 0
	}
	killed := 0
	for line := range strings.Lines(list) {
		fields := map[string]string{}
		for f := range strings.FieldsSeq(line) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["name"] != "eventsource" || (publishers && (fields["sub"] != "0" || fields["psub"] != "0")) {
			continue
		}
		if d.rdb.ClientKillByFilter(ctx, "ID", fields["id"]).Err() == nil {
			killed++
		}
	}
	return killed
}

// killDatabaseConnections kills the server's MariaDB connections (those
// on the deployment's database) and returns how many.
func (d *deployment) killDatabaseConnections() int {
	ids, err := d.db.Query("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()", d.dbName)
	if err != nil {
		return 0
	}
	var list []int64
	for ids.Next() {
		var id int64
		if ids.Scan(&id) == nil {
			list = append(list, id)
		}
	}
	ids.Close()
	killed := 0
	for _, id := range list {
		if _, err := d.db.Exec("KILL " + strconv.FormatInt(id, 10)); err == nil {
			killed++
		}
	}
	return killed
}

// wantRows is pid's n seeded rows as a fetch of names hears them.
func wantRows(n int) []string {
	rows := make([]string, n)
	for i := range rows {
		rows[i] = `{"name":"n` + strconv.Itoa(i) + `"}`
	}
	return rows
}

// checkStream checks what a stream heard: a prefix of rows, in order, each
// once, then one terminal; all the rows when that terminal is "end". It
// returns the terminal.
func checkStream(t *testing.T, channel string, got, rows []string) string {
	t.Helper()
	if !ended(got) {
		t.Errorf("%s heard no terminal: %q", channel, got)
		return ""
	}
	body, terminal := got[:len(got)-1], got[len(got)-1]
	if len(body) > len(rows) || !slices.Equal(body, rows[:len(body)]) {
		t.Errorf("%s heard %q: not the rows in order, each once", channel, body)
	}
	if terminal == `"end"` && len(body) != len(rows) {
		t.Errorf("%s ended \"end\" after %d of %d rows", channel, len(body), len(rows))
	}
	return terminal
}

// The server's publishing connections killed every 50 ms under windowed
// streams: no row twice, none after a hole, exactly one terminal each,
// none lost; a stream whose rows' fate became unknown ends with "error".
func TestPublisherConnectionKilledUnderStreams(t *testing.T) {
	d := newDeployment(t, "--accept-timeout", "1m")
	d.onOwnRedis()
	d.start("server")
	const rows, streams = 1000, 30
	d.seed("k", rows)
	want := wantRows(rows)
	c := d.collect()

	stop := make(chan struct{})
	kills := every(50*time.Millisecond, stop, func() int { return d.killConnections(true) })
	var wg sync.WaitGroup
	var mu sync.Mutex
	endings := map[string]int{}
	for i := range streams {
		wg.Go(func() {
			ch := d.channel("k" + strconv.Itoa(i))
			d.fetch(ch, "k", []int{1, 8, 32}[i%3], false)
			got := follow(t, d, c, ch, 45*time.Second)
			terminal := checkStream(t, ch, got, want)
			mu.Lock()
			endings[terminal]++
			mu.Unlock()
		})
	}
	wg.Wait()
	close(stop)
	noneAfterTerminals(t, c, d, "k", streams)
	t.Logf("%d connections killed; streams ended: %v", kills.Load(), endings)
	if kills.Load() == 0 {
		t.Fatal("no connection was killed: the test tested nothing")
	}
}

// Redis killed under 200 open streams and restarted 2 s later: every
// client, resubscribed, hears its "error" once; new requests are served
// within 10 s of the restart.
func TestRedisRestartedUnderStreams(t *testing.T) {
	d := newDeployment(t, "--accept-timeout", "2m")
	redisSrv := d.onOwnRedis()
	d.start("server")
	d.seed("r", 3)
	want := wantRows(3)
	c := d.collect()
	const streams = 200
	channels := openHeld(t, d, c, "r", "r", streams, true)

	redisSrv.Kill()
	time.Sleep(2 * time.Second)
	if err := redisSrv.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()

	// A new request is served, whenever the server hears Redis again.
	fresh := d.channel("after")
	var served []string
	for time.Since(restarted) < 10*time.Second {
		ch := fresh + strconv.Itoa(int(time.Since(restarted)/time.Second))
		if err := d.rdb.Publish(context.Background(), d.fetchChannel(),
			fmt.Sprintf(`{"channel":%q,"query":{"$select":{"$columns":["name"],"$where":{"pid":"r"}}}}`, ch)).Err(); err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		got, err := c.wait(ch, time.Second, func(m []string) bool { return len(m) > 0 })
		if err == nil && got[0] == want[0] {
			served = follow(t, d, c, ch, 10*time.Second)
			break
		}
	}
	if !slices.Equal(served, append(slices.Clone(want), `"end"`)) {
		t.Fatalf("within 10 s of the restart a new fetch heard %q, want its rows and \"end\"", served)
	}
	t.Logf("a new request was served %s after the restart", time.Since(restarted).Round(time.Millisecond))

	for _, ch := range channels {
		got, err := c.wait(ch, 30*time.Second, func(m []string) bool { return len(m) >= 2 })
		if err != nil {
			t.Fatalf("%v: no terminal after the outage", err)
		}
		if len(got) != 2 || got[0] != want[0] || !strings.HasPrefix(got[1], `{"error":"unavailable"`) {
			t.Fatalf("%s heard %q, want its first row and the error", ch, got)
		}
	}
	noneAfterTerminals(t, c, d, "r", streams)
	t.Logf("%d streams heard their error %s after the restart", streams, time.Since(restarted).Round(time.Millisecond))
}

// Redis frozen while streams with wide windows publish: the publisher's
// queue fills, the streams hold their rows instead of blocking anyone, the
// server answers its admin listener, and once Redis is back every stream
// ends with one terminal, its rows at most once, and new fetches are
// served.
func TestFullPublisherQueueDuringAnOutage(t *testing.T) {
	d := newDeployment(t, "--accept-timeout", "1m", "--redis-publish-queue", "64")
	redisSrv := d.onOwnRedis()
	p := d.start("server")
	const rows, streams = 1500, 20
	big := strings.Repeat("x", 4000)
	for i := range rows {
		if _, err := d.db.Exec("INSERT INTO `"+d.dbName+"`.event (pid, domain, name, data) VALUES ('q', 'd', ?, JSON_OBJECT('pad', ?))", "n"+strconv.Itoa(i), big); err != nil {
			t.Fatal(err)
		}
	}
	want := wantRows(rows)
	c := d.collect()
	var wg sync.WaitGroup
	results := make([][]string, streams)
	for i := range streams {
		ch := d.channel("q" + strconv.Itoa(i))
		d.fetch(ch, "q", 1000, false)
		wg.Go(func() { results[i] = followThrough(t, d, c, ch, 60*time.Second) })
	}
	// Freeze Redis as soon as rows flow: what the server publishes piles
	// up in its sockets, then in its queue.
	waitFor(t, "the first rows", 20*time.Second, func() bool { return len(c.heard(d.channel("q0"))) > 0 })
	if err := redisSrv.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := func() float64 { return metric(t, p, "eventsource_publish_paused_total") }
	deadline := time.Now().Add(15 * time.Second)
	for paused() == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if paused() == 0 {
		_ = redisSrv.Resume()
		t.Fatal("no stream paused for a full queue: the outage did not fill it")
	}
	// The server is not wedged: its admin listener answers at once.
	for _, path := range []string{"/readyz", "/actors?kind=stream"} {
		// /readyz gives Redis 2 s to answer its ping.
		asked := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.admin+path, nil)
		res, err := http.DefaultClient.Do(req)
		cancel()
		if err != nil {
			_ = redisSrv.Resume()
			t.Fatalf("GET %s during the outage: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		t.Logf("GET %s during the outage: %d in %s", path, res.StatusCode, time.Since(asked).Round(time.Millisecond))
	}
	time.Sleep(time.Second)
	if err := redisSrv.Resume(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// A stream whose rows were written when Redis froze cannot know
	// whether they went out once its connection gave up on them (3 s): it
	// ends with "error"; the others end "end".
	endings := map[string]int{}
	for i, got := range results {
		endings[checkStream(t, d.channel("q"+strconv.Itoa(i)), got, want)]++
	}
	noneAfterTerminals(t, c, d, "q", streams)
	t.Logf("streams ended: %v", endings)
	after := d.channel("after")
	d.fetch(after, "q", 64, false)
	if got := follow(t, d, c, after, 30*time.Second); checkStream(t, after, got, want) != `"end"` {
		t.Fatalf("a fetch after the outage did not complete")
	}
}

// noneAfterTerminals checks that streams name0... hear nothing more once
// ended: whatever they heard a second ago is all they hear.
func noneAfterTerminals(t *testing.T, c *collector, d *deployment, name string, streams int) {
	t.Helper()
	had := make([]int, streams)
	for i := range streams {
		had[i] = len(c.heard(d.channel(name + strconv.Itoa(i))))
	}
	time.Sleep(time.Second)
	for i := range streams {
		ch := d.channel(name + strconv.Itoa(i))
		if got := c.heard(ch); len(got) != had[i] {
			t.Errorf("%s heard %q after its terminal", ch, got[had[i]:])
		}
	}
}

// followThrough is follow for a client that rides out an outage: its
// "accepted" goes again until Redis takes it (at worst twice, which grants
// nothing more than the window).
func followThrough(t *testing.T, d *deployment, c *collector, channel string, timeout time.Duration) []string {
	return followWith(t, c, channel, timeout, func() bool {
		deadline := time.Now().Add(timeout)
		for d.rdb.Publish(context.Background(), channel, `"accepted"`).Err() != nil {
			if time.Now().After(deadline) {
				t.Errorf("%s: could not accept for %s", channel, timeout)
				return false
			}
			time.Sleep(100 * time.Millisecond)
		}
		return true
	})
}

// every runs fault every interval until stop is closed, and returns the
// count it adds up.
func every(interval time.Duration, stop <-chan struct{}, fault func() int) *atomic.Int64 {
	var n atomic.Int64
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(interval):
				n.Add(int64(fault()))
			}
		}
	}()
	return &n
}

// metric reads a counter or gauge without labels from the server's
// /metrics.
func metric(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	res, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, line)
			}
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// The server's MariaDB connections killed (KILL) while streams read: each
// stream hears its rows at most once, in order, and one terminal; new
// fetches are served after.
func TestDatabaseConnectionKilledUnderStreams(t *testing.T) {
	d := newDeployment(t, "--accept-timeout", "1m", "--page-size", "32")
	d.start("server")
	const rows, streams = 600, 16
	d.seed("m", rows)
	want := wantRows(rows)
	c := d.collect()
	stop := make(chan struct{})
	kills := every(50*time.Millisecond, stop, d.killDatabaseConnections)
	var wg sync.WaitGroup
	var mu sync.Mutex
	endings := map[string]int{}
	for i := range streams {
		wg.Go(func() {
			ch := d.channel("m" + strconv.Itoa(i))
			d.fetch(ch, "m", []int{1, 8}[i%2], false)
			terminal := checkStream(t, ch, follow(t, d, c, ch, 60*time.Second), want)
			mu.Lock()
			endings[terminal]++
			mu.Unlock()
		})
	}
	wg.Wait()
	close(stop)
	t.Logf("%d database connections killed; streams ended: %v", kills.Load(), endings)
	if kills.Load() == 0 {
		t.Fatal("no connection was killed: the test tested nothing")
	}
	after := d.channel("after")
	d.fetch(after, "m", 64, false)
	if got := follow(t, d, c, after, 30*time.Second); checkStream(t, after, got, want) != `"end"` {
		t.Fatalf("a fetch after the kills did not complete")
	}
}

// A read past --mysql-read-timeout ends its stream with "error" (reason
// db), and the database stops the statement too; other streams go on.
func TestSlowReadHitsItsDeadline(t *testing.T) {
	d := newDeployment(t, "--mysql-read-timeout", "500ms")
	p := d.start("server")
	d.seed("s", 400)
	c := d.collect()
	slow := d.channel("slow")
	// A count over a three-way cross join of 400 rows: 64 million rows.
	d.publish(d.fetchChannel(), map[string]any{"channel": slow, "reason": true, "query": map[string]any{"$select": map[string]any{
		"n": map[string]any{"$count": "*"}, "$from": map[string]any{"event": "a"},
		"$join": map[string]any{
			"b": map[string]any{"$crossJoin": map[string]any{"$table": "event"}},
			"c": map[string]any{"$crossJoin": map[string]any{"$table": "event"}},
			"e": map[string]any{"$crossJoin": map[string]any{"$table": "event"}},
		}}}})
	started := time.Now()
	got, err := c.wait(slow, 20*time.Second, ended)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], `{"error":"db"`) {
		t.Fatalf("the slow read heard %q, want one error with reason db", got)
	}
	t.Logf("the slow read ended %s after its request", time.Since(started).Round(time.Millisecond))
	if n := metric(t, p, "eventsource_read_deadlines_total"); n != 1 {
		t.Fatalf("eventsource_read_deadlines_total = %v, want 1", n)
	}
	quick := d.channel("quick")
	d.fetch(quick, "s", 100, false)
	if got := follow(t, d, c, quick, 20*time.Second); checkStream(t, quick, got, wantRows(400)) != `"end"` {
		t.Fatal("a quick fetch after the slow one did not complete")
	}
	// The statement does not run on in the database.
	waitFor(t, "the database to stop the slow statement", 10*time.Second, func() bool {
		var n int
		err := d.db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE '%CROSS JOIN%'", d.dbName).Scan(&n)
		return err == nil && n == 0
	})
}
