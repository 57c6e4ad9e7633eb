package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventsource/eventsource/server"
	"github.com/eventsource/eventsource/supervision"
)

// adminGet fetches a path from the server's admin listener.
func adminGet(t testing.TB, h *harness, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + h.srv.AdminAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func listActors(t testing.TB, h *harness, query string) (entries []supervision.Entry, total int) {
	t.Helper()
	code, body := adminGet(t, h, "/actors?"+query)
	if code != http.StatusOK {
		t.Fatalf("GET /actors: %d %s", code, body)
	}
	var page struct {
		Total  int                 `json:"total"`
		Actors []supervision.Entry `json:"actors"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	return page.Actors, page.Total
}

func withAdmin(cfg *server.Config) { cfg.Admin = "127.0.0.1:0" }

func TestActorTreeFollowsStreams(t *testing.T) {
	h := newHarness(t, withAdmin)
	h.persistEvents("tree", 2)
	subs := make([]*sub, 3)
	for i := range subs {
		subs[i] = h.wire.subscribe(h.channel("tree"))
		h.fetch(subs[i].channel, `{"$select":{"$columns":["name"],"$where":{"pid":"tree"}}}`, `"window":2`)
		subs[i].expect(`{"name":"n0"}`)
		subs[i].expect(`{"name":"n1"}`)
	}
	// A stream records a row in the registry just after it queued the
	// publish, so the client may hear the row first: the tree catches up.
	var entries []supervision.Entry
	waiting := func(channel string) bool {
		for _, e := range entries {
			if e.Channel == channel {
				return e.State == "waiting" && e.RowsSent == 2 && e.Unaccepted == 2 && e.Credit == 0 && e.Deadline != nil
			}
		}
		return false
	}
	waitFor(t, "every stream to be waiting with 2 rows unaccepted", 5*time.Second, func() bool {
		entries, _ = listActors(t, h, "")
		return waiting(subs[0].channel) && waiting(subs[1].channel) && waiting(subs[2].channel)
	})
	if len(entries) != 4 || entries[0].Name != "router" {
		t.Fatalf("tree %+v", entries)
	}
	for _, e := range entries[1:] {
		if e.Kind != "stream" || e.Parent != "router" || !strings.HasPrefix(e.Name, "stream:") {
			t.Fatalf("entry %+v", e)
		}
	}
	if streams, n := listActors(t, h, "kind=stream&limit=2&offset=1"); n != 3 || len(streams) != 2 {
		t.Fatalf("paging: %d of %d", len(streams), n)
	}
	if _, n := listActors(t, h, "prefix="+subs[0].channel); n != 1 {
		t.Fatalf("prefix filter matched %d", n)
	}
	for _, c := range subs {
		c.accept()
		c.accept()
		c.expect(`"end"`)
	}
	waitFor(t, "the tree to hold only the router", 5*time.Second, func() bool {
		_, n := listActors(t, h, "")
		return n == 1
	})
}

func TestStopOneStreamByName(t *testing.T) {
	h := newHarness(t, withAdmin)
	h.persistEvents("stop", 2)
	subs := make([]*sub, 100)
	for i := range subs {
		subs[i] = h.wire.subscribe(h.channel(fmt.Sprintf("stop%d", i)))
		h.fetch(subs[i].channel, `{"$select":{"$columns":["name"],"$where":{"pid":"stop"}}}`)
		subs[i].expect(`{"name":"n0"}`)
	}
	victim := subs[42]
	resp, err := http.Post("http://"+h.srv.AdminAddr().String()+"/actors/stream:"+victim.channel+"/stop", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stop: %d", resp.StatusCode)
	}
	victim.expect(`"error"`)
	for i, c := range subs {
		if i == 42 {
			continue
		}
		c.accept()
		c.expect(`{"name":"n1"}`)
		c.accept()
		c.expect(`"end"`)
	}
	resp, err = http.Post("http://"+h.srv.AdminAddr().String()+"/actors/stream:no-such-channel/stop", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("stopping a missing stream: %d", resp.StatusCode)
	}
}

// scrape reads the server's metrics as name{labels} -> value.
func scrape(t testing.TB, h *harness) map[string]float64 {
	t.Helper()
	_, body := adminGet(t, h, "/metrics")
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, "eventsource_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func TestMetricsCountAKnownWorkload(t *testing.T) {
	h := newHarness(t, withAdmin)
	before := scrape(t, h)
	h.persistEvents("m", 3) // one persist of 3 rows
	c := h.wire.subscribe(h.channel("m"))
	h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"m"}}}`)
	for i := range 3 {
		c.expect(fmt.Sprintf(`{"name":"n%d"}`, i))
		c.accept()
	}
	c.expect(`"end"`)
	bad := h.wire.subscribe(h.channel("bad"))
	h.fetch(bad.channel, `{"$select":{"$where":{"nope":1}}}`)
	bad.expect(`"error"`)
	waitForNoChildren(t, h)

	after := scrape(t, h)
	delta := func(name string) float64 { return after[name] - before[name] }
	for name, want := range map[string]float64{
		`eventsource_requests_total{kind="fetch"}`:                     2,
		`eventsource_requests_total{kind="persist"}`:                   1,
		`eventsource_requests_refused_total{reason="bad_request"}`:     1,
		`eventsource_rows_sent_total`:                                  3,
		`eventsource_streams_ended_total{ending="end",kind="stream"}`:  1,
		`eventsource_streams_ended_total{ending="end",kind="persist"}`: 1,
		`eventsource_accept_latency_seconds_count`:                     3,
		`eventsource_persist_duration_seconds_count`:                   1,
		`eventsource_streams_open{kind="stream"}`:                      0,
	} {
		if got := delta(name); got != want {
			t.Errorf("%s changed by %v, want %v", name, got, want)
		}
	}
	if t.Failed() {
		for k, v := range after {
			if strings.Contains(k, "ended") || strings.Contains(k, "requests") {
				t.Logf("%s %v", k, v)
			}
		}
	}
}

func TestReadyzFollowsRedis(t *testing.T) {
	port := freePort(t)
	startRedis := func() *exec.Cmd {
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			t.Skipf("cannot start a private redis-server: %v", err)
		}
		waitFor(t, "the private redis to answer", 5*time.Second, func() bool {
			conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err == nil {
				conn.Close()
			}
			return err == nil
		})
		return cmd
	}
	redis := startRedis()
	t.Cleanup(func() { _ = redis.Process.Kill(); _ = redis.Wait() })
	h := newHarness(t, func(cfg *server.Config) {
		withAdmin(cfg)
		cfg.Redis.Port = port
	})
	ready := func() int { code, _ := adminGet(t, h, "/readyz"); return code }
	if code := ready(); code != http.StatusOK {
		t.Fatalf("readyz %d with Redis up", code)
	}
	// The metrics follow the subscriber's own connection through the outage.
	const (
		open   = `eventsource_redis_connections{role="subscriber"}`
		ok     = `eventsource_redis_dials_total{outcome="ok",role="subscriber"}`
		failed = `eventsource_redis_dials_total{outcome="failed",role="subscriber"}`
	)
	if m := scrape(t, h); m[open] != 1 || m[ok] != 1 || m[failed] != 0 {
		t.Fatalf("with Redis up: %s %v, %s %v, %s %v", open, m[open], ok, m[ok], failed, m[failed])
	}
	_ = redis.Process.Kill()
	_ = redis.Wait()
	waitFor(t, "readyz to turn unready", 10*time.Second, func() bool { return ready() == http.StatusServiceUnavailable })
	if code, _ := adminGet(t, h, "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d while Redis is down", code)
	}
	waitFor(t, "a failed redial to be counted", 10*time.Second, func() bool {
		m := scrape(t, h)
		return m[open] == 0 && m[failed] >= 1
	})
	redis = startRedis()
	waitFor(t, "readyz to be ready again", 15*time.Second, func() bool { return ready() == http.StatusOK })
	if m := scrape(t, h); m[open] != 1 || m[ok] != 2 {
		t.Fatalf("after the outage: %s %v, %s %v; want 1 open after 2 good dials", open, m[open], ok, m[ok])
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestAdminTokenIsRequiredOffLoopback(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Admin = "0.0.0.0:0"
	if _, err := server.New(cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), "admin token") {
		t.Fatalf("err = %v, want a demand for a token", err)
	}
	_ = context.Background
}
