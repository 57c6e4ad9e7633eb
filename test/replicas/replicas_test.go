package replicas_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// seed stores n events of pid, named n0, n1, ..., straight in the table.
func (d *deployment) seed(pid string, n int) {
	d.t.Helper()
	for i := range n {
		if _, err := d.db.Exec("INSERT INTO `"+d.dbName+"`.event (pid, domain, name, data) VALUES (?, 'd', ?, '{}')", pid, "n"+strconv.Itoa(i)); err != nil {
			d.t.Fatal(err)
		}
	}
}

// fetch publishes a fetch of pid's names on channel.
func (d *deployment) fetch(channel, pid string, window int, reason bool) {
	d.t.Helper()
	d.publish(d.fetchChannel(), map[string]any{"channel": channel, "window": window, "reason": reason,
		"query": map[string]any{"$select": map[string]any{"$columns": []string{"name"}, "$where": map[string]any{"pid": pid}}}})
}

// follow accepts every row heard on channel until a terminal, and
// returns what channel heard.
func follow(t *testing.T, d *deployment, c *collector, channel string, timeout time.Duration) []string {
	t.Helper()
	return followWith(t, c, channel, timeout, func() bool {
		d.publish(channel, []byte(`"accepted"`))
		return true
	})
}

// followWith is follow, with accept saying each row's "accepted" (false:
// it could not, and the client gives up).
func followWith(t *testing.T, c *collector, channel string, timeout time.Duration, accept func() bool) []string {
	t.Helper()
	accepted := 0
	for {
		got, err := c.wait(channel, timeout, func(m []string) bool { return len(m) > accepted })
		if err != nil {
			t.Errorf("%v", err)
			return got
		}
		for _, m := range got[accepted:] {
			if isTerminal(m) {
				return got
			}
			if !accept() {
				return got
			}
			accepted++
		}
	}
}

// settle waits a moment for anything more that would be wrong to hear,
// and returns what channel heard then.
func settle(c *collector, channel string, had int) []string {
	got, _ := c.wait(channel, time.Second, func(m []string) bool { return len(m) > had })
	return got
}

// Three servers, 2,000 persists: each stored once, each answered once.
func TestPersistsAnsweredOnce(t *testing.T) {
	d := newDeployment(t)
	for i := range 3 {
		d.start("server-" + strconv.Itoa(i))
	}
	c := d.collect()
	const n = 2000
	for i := range n {
		d.publish(d.persistChannel(), map[string]any{"channel": d.channel("p" + strconv.Itoa(i)),
			"query": map[string]any{"$insert": map[string]any{"$documents": map[string]any{"pid": "p" + strconv.Itoa(i), "domain": "d", "name": "n", "data": map[string]int{"i": i}}}}})
	}
	ids := map[int64]bool{}
	for i := range n {
		ch := d.channel("p" + strconv.Itoa(i))
		got, err := c.wait(ch, 30*time.Second, ended)
		if err != nil {
			t.Fatal(err)
		}
		var ok struct {
			AffectedRows, InsertID int64
		}
		if len(got) != 2 || got[1] != `"end"` || json.Unmarshal([]byte(got[0]), &ok) != nil || ok.AffectedRows != 1 {
			t.Fatalf("%s heard %q, want the OK reply and \"end\"", ch, got)
		}
		if ids[ok.InsertID] {
			t.Fatalf("id %d replied twice", ok.InsertID)
		}
		ids[ok.InsertID] = true
	}
	// Nothing more on any channel, and every event stored once.
	for i := range n {
		ch := d.channel("p" + strconv.Itoa(i))
		if got := c.heard(ch); len(got) != 2 {
			t.Fatalf("%s heard %q", ch, got)
		}
	}
	if got := settle(c, d.channel("p0"), 2); len(got) != 2 {
		t.Fatalf("p0 heard %q after its end", got)
	}
	var rows, pids int
	if err := d.db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT pid) FROM `"+d.dbName+"`.event").Scan(&rows, &pids); err != nil {
		t.Fatal(err)
	}
	if rows != n || pids != n {
		t.Fatalf("%d rows of %d pids stored, want %d of %d", rows, pids, n, n)
	}
}

// Three servers, 300 concurrent fetches: each row once, in order, and one
// terminal.
func TestFetchesAnsweredOnce(t *testing.T) {
	d := newDeployment(t)
	for i := range 3 {
		d.start("server-" + strconv.Itoa(i))
	}
	const rows, streams = 20, 300
	d.seed("f", rows)
	want := make([]string, 0, rows+1)
	for i := range rows {
		want = append(want, `{"name":"n`+strconv.Itoa(i)+`"}`)
	}
	want = append(want, `"end"`)
	c := d.collect()
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := d.channel("f" + strconv.Itoa(i))
			d.fetch(ch, "f", 1+i%4, false)
			got := follow(t, d, c, ch, 30*time.Second)
			if !slices.Equal(got, want) {
				t.Errorf("%s heard %q, want every row once and \"end\"", ch, got)
			}
		}()
	}
	wg.Wait()
	for i := range streams {
		ch := d.channel("f" + strconv.Itoa(i))
		if got := c.heard(ch); len(got) != len(want) {
			t.Fatalf("%s heard %d messages after its end, want %d: %q", ch, len(got), len(want), got)
		}
	}
}

// openHeld opens n streams of pid (window 1) and waits for each one's
// first row: they hold their servers' slots until accepted.
func openHeld(t *testing.T, d *deployment, c *collector, name, pid string, n int, reason bool) []string {
	t.Helper()
	channels := make([]string, n)
	for i := range n {
		channels[i] = d.channel(name + strconv.Itoa(i))
		d.fetch(channels[i], pid, 1, reason)
	}
	for _, ch := range channels {
		if _, err := c.wait(ch, 20*time.Second, func(m []string) bool { return len(m) > 0 }); err != nil {
			t.Fatal(err)
		}
	}
	return channels
}

// A server killed with SIGKILL while it streams: a survivor ends each of
// its streams with "error" within 20 s, exactly once; the other streams
// complete.
func TestDeadServersStreamsEnd(t *testing.T) {
	d := newDeployment(t, "--accept-timeout", "2m")
	servers := []*proc{d.start("server-0"), d.start("server-1"), d.start("server-2")}
	d.seed("k", 3)
	c := d.collect()
	channels := openHeld(t, d, c, "k", "k", 60, false)
	byServer := map[*proc][]string{}
	listedBy := map[string]string{}
	for _, s := range servers {
		byServer[s] = s.streams()
		for _, ch := range byServer[s] {
			if other, ok := listedBy[ch]; ok {
				t.Fatalf("GET /actors lists %s on %s and %s", ch, other, s.name)
			}
			listedBy[ch] = s.name
		}
	}
	for _, ch := range channels {
		if listedBy[ch] == "" {
			t.Fatalf("no server's GET /actors lists the open stream %s", ch)
		}
	}
	victim := servers[0]
	for _, s := range servers {
		if len(byServer[s]) > len(byServer[victim]) {
			victim = s
		}
	}
	if len(byServer[victim]) == 0 {
		t.Fatal("no server streams")
	}
	victim.signal(syscall.SIGKILL)
	killed := time.Now()
	for _, ch := range byServer[victim] {
		got, err := c.wait(ch, 20*time.Second-time.Since(killed), ended)
		if err != nil {
			t.Fatalf("the dead server's stream got no terminal within 20 s: %v", err)
		}
		if len(got) != 2 || got[1] != `"error"` {
			t.Fatalf("%s heard %q, want its row and \"error\"", ch, got)
		}
	}
	t.Logf("the dead server's %d streams ended %.1f s after SIGKILL", len(byServer[victim]), time.Since(killed).Seconds())
	for _, ch := range channels {
		if slices.Contains(byServer[victim], ch) {
			continue
		}
		if got := follow(t, d, c, ch, 20*time.Second); !slices.Equal(got, []string{`{"name":"n0"}`, `{"name":"n1"}`, `{"name":"n2"}`, `"end"`}) {
			t.Fatalf("%s of a live server heard %q", ch, got)
		}
	}
	settle(c, byServer[victim][0], 2)
	for _, ch := range byServer[victim] {
		if got := c.heard(ch); len(got) != 2 {
			t.Fatalf("%s heard %q after its \"error\"", ch, got)
		}
	}
}

// A server stopped past its lease (SIGSTOP) and then continued: after the
// survivor's "error", nothing but at most one row from it.
func TestPausedServerPublishesNothingAfterTheSurvivor(t *testing.T) {
	d := newDeployment(t, "--accept-timeout", "2m")
	servers := []*proc{d.start("server-0"), d.start("server-1")}
	d.seed("z", 5)
	c := d.collect()
	channels := openHeld(t, d, c, "z", "z", 4, true)
	var holder *proc
	for _, s := range servers {
		if len(s.streams()) > 0 {
			holder = s
		}
	}
	held := holder.streams()
	holder.signal(syscall.SIGSTOP)
	stopped := time.Now()
	for _, ch := range held {
		got, err := c.wait(ch, 20*time.Second, ended)
		if err != nil {
			t.Fatalf("the paused server's stream got no terminal within 20 s: %v", err)
		}
		if len(got) != 2 || !strings.HasPrefix(got[1], `{"error":"unavailable"`) {
			t.Fatalf("%s heard %q, want its row and the survivor's error", ch, got)
		}
		// A client that did not listen accepts rows all the same: a server
		// that published on a lease it cannot vouch for would send them.
		for range 3 {
			d.publish(ch, []byte(`"accepted"`))
		}
	}
	t.Logf("a survivor ended the paused server's %d streams %.1f s after SIGSTOP", len(held), time.Since(stopped).Seconds())
	holder.signal(syscall.SIGCONT)
	waitFor(t, "the continued server to find its claims lost", 15*time.Second, func() bool {
		return strings.Contains(holder.log(), "claim lost")
	})
	settle(c, held[0], 2)
	for _, ch := range held {
		got := c.heard(ch)
		if len(got) > 3 || len(got) == 3 && isTerminal(got[2]) {
			t.Fatalf("%s heard %q: more than one row after the survivor's error", ch, got)
		}
	}
	for _, ch := range channels {
		if !slices.Contains(held, ch) {
			follow(t, d, c, ch, 20*time.Second)
		}
	}
}

// Every server full: each request gets exactly one refusal.
func TestEveryServerFullRefusesOnce(t *testing.T) {
	d := newDeployment(t, "--max-streams", "1", "--accept-timeout", "2m")
	servers := []*proc{d.start("server-0"), d.start("server-1")}
	d.seed("h", 2)
	c := d.collect()
	held := openHeld(t, d, c, "h", "h", 2, false)
	for _, s := range servers {
		if got := s.streams(); len(got) != 1 {
			t.Fatalf("%s streams %q, want one: a full server left the second request to the other", s.name, got)
		}
	}
	const n = 10
	for i := range n {
		d.fetch(d.channel("over"+strconv.Itoa(i)), "h", 1, true)
	}
	for i := range n {
		if _, err := c.wait(d.channel("over"+strconv.Itoa(i)), 10*time.Second, ended); err != nil {
			t.Fatal(err)
		}
	}
	settle(c, d.channel("over0"), 1)
	for i := range n {
		ch := d.channel("over" + strconv.Itoa(i))
		if got := c.heard(ch); len(got) != 1 || got[0] != `{"error":"refused","message":"too many concurrent streams"}` {
			t.Fatalf("%s heard %q, want one refusal", ch, got)
		}
	}
	for _, ch := range held {
		follow(t, d, c, ch, 10*time.Second)
	}
}

// GET /replicas on any server lists them all.
func TestReplicasListed(t *testing.T) {
	d := newDeployment(t)
	servers := []*proc{d.start("server-0"), d.start("server-1")}
	for _, s := range servers {
		res, err := httpGetJSON("http://" + s.admin + "/replicas")
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Server   string
			Replicas []struct{ ID, Host, Version string }
		}
		if err := json.Unmarshal(res, &body); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range body.Replicas {
			ids = append(ids, r.ID)
		}
		want := []string{servers[0].id, servers[1].id}
		slices.Sort(want)
		if body.Server != s.id || !slices.Equal(ids, want) {
			t.Fatalf("%s: /replicas %s, want server %s and %v", s.name, res, s.id, want)
		}
	}
	// eventsource replicas reads the same from Redis.
	out, err := exec.Command(binary, "replicas", "--redis", d.redisAt, "--fetch-channel", d.fetchChannel(), "--json").Output()
	if err != nil {
		t.Fatalf("eventsource replicas: %v", err)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 2 ||
		!strings.Contains(string(out), servers[0].id) || !strings.Contains(string(out), servers[1].id) {
		t.Fatalf("eventsource replicas printed %s", out)
	}
}

func httpGetJSON(url string) ([]byte, error) {
	res, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return io.ReadAll(res.Body)
}
