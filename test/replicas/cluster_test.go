package replicas_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/internal/localcluster"
	"github.com/eventsource/eventsource/redisbus"
)

var (
	clusterOnce sync.Once
	cluster     *localcluster.Cluster
	clusterErr  error
)

// testCluster is the package's three-master Redis Cluster, started by the
// first test that needs it, on ports of its own.
func testCluster(t *testing.T) *localcluster.Cluster {
	t.Helper()
	clusterOnce.Do(func() { cluster, clusterErr = localcluster.Start(3) })
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return cluster
}

func stopCluster() {
	if cluster != nil {
		cluster.Stop()
	}
}

// Two servers on a three-node Redis Cluster, clients on the third node:
// persists and fetches answered exactly once, by the protocol of the
// original clients, by the Go client and by the CLI.
func TestClusterAnswersOnce(t *testing.T) {
	addrs := testCluster(t).Addrs
	d := newDeployment(t)
	d.onCluster(addrs)
	d.start("server-0")
	d.start("server-1")
	c := d.collect()
	const persists, fetches = 300, 60
	for i := range persists {
		d.publish(d.persistChannel(), map[string]any{"channel": d.channel("p" + strconv.Itoa(i)),
			"query": map[string]any{"$insert": map[string]any{"$documents": map[string]any{"pid": "cp", "domain": "d", "name": "n" + strconv.Itoa(i), "data": map[string]int{"i": i}}}}})
	}
	for i := range persists {
		ch := d.channel("p" + strconv.Itoa(i))
		got, err := c.wait(ch, 30*time.Second, ended)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[1] != `"end"` || !strings.Contains(got[0], `"affectedRows":1`) {
			t.Fatalf("%s heard %q", ch, got)
		}
	}
	// The two servers commit in their own order: the rows come by id.
	var want []string
	names, err := d.db.Query("SELECT name FROM `" + d.dbName + "`.event ORDER BY id LIMIT 30")
	if err != nil {
		t.Fatal(err)
	}
	for names.Next() {
		var name string
		if err := names.Scan(&name); err != nil {
			t.Fatal(err)
		}
		want = append(want, `{"name":"`+name+`"}`)
	}
	names.Close()
	want = append(want, `"end"`)
	var wg sync.WaitGroup
	for i := range fetches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := d.channel("f" + strconv.Itoa(i))
			d.publish(d.fetchChannel(), map[string]any{"channel": ch, "window": 1 + i%3,
				"query": map[string]any{"$select": map[string]any{"$columns": []string{"name"}, "$where": map[string]any{"pid": "cp"}, "$limit": 30}}})
			if got := follow(t, d, c, ch, 30*time.Second); !slices.Equal(got, want) {
				t.Errorf("%s heard %q, want %q", ch, got, want)
			}
		}()
	}
	wg.Wait()
	settle(c, d.channel("f0"), 31)
	for i := range persists {
		if got := c.heard(d.channel("p" + strconv.Itoa(i))); len(got) != 2 {
			t.Fatalf("persist %d heard %q", i, got)
		}
	}
	for i := range fetches {
		if got := c.heard(d.channel("f" + strconv.Itoa(i))); len(got) != 31 {
			t.Fatalf("fetch %d heard %d messages", i, len(got))
		}
	}
	var rows int
	if err := d.db.QueryRow("SELECT COUNT(*) FROM `" + d.dbName + "`.event").Scan(&rows); err != nil || rows != persists {
		t.Fatalf("%d rows stored (%v), want %d", rows, err, persists)
	}

	// The Go client through the cluster client.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs[2:]})
	t.Cleanup(func() { _ = cc.Close() })
	cl := client.New(cc, client.WithFetchChannel(d.fetchChannel()), client.WithPersistChannel(d.persistChannel()),
		client.WithChannelPrefix(d.prefix+"c:go:"), client.WithTimeout(20*time.Second))
	t.Cleanup(func() { _ = cl.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ok, err := cl.Persist(ctx, client.Document{PID: "go", Domain: "d", Name: "n", Data: map[string]any{}})
	if err != nil || ok.AffectedRows != 1 {
		t.Fatalf("client persist: %+v %v", ok, err)
	}
	n := 0
	for row, err := range cl.Fetch(ctx, json.RawMessage(`{"$select":{"$where":{"pid":"cp"}}}`)) {
		if err != nil {
			t.Fatalf("client fetch: %v", err)
		}
		_ = row
		n++
	}
	if n != persists {
		t.Fatalf("client fetched %d rows, want %d", n, persists)
	}

	// The CLI too.
	out, err := exec.Command(binary, "persist", "--redis-cluster", addrs[2], "--persist-channel", d.persistChannel(),
		"--pid", "cli", "--domain", "d", "--name", "n", "--data", "{}").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"affectedRows":1`) {
		t.Fatalf("eventsource persist --redis-cluster: %v\n%s", err, out)
	}
}

// The servers' connections to one cluster node are killed while streams
// wait for "accepted": each stream ends with one terminal and no row
// twice, and the servers serve again.
func TestClusterNodeConnectionsKilled(t *testing.T) {
	addrs := testCluster(t).Addrs
	d := newDeployment(t, "--accept-timeout", "2m")
	d.onCluster(addrs)
	d.start("server-0")
	d.start("server-1")
	d.seed("ck", 3)
	c := d.collect()
	channels := openHeld(t, d, c, "ck", "ck", 20, true)
	// Every connection to the servers' nodes goes (the test's own are on
	// the last node): subscribers, publishers, command pools.
	for _, addr := range addrs[:len(addrs)-1] {
		node := redis.NewClient(&redis.Options{Addr: addr})
		err := node.Do(context.Background(), "CLIENT", "KILL", "USER", "default", "SKIPME", "yes").Err()
		node.Close()
		if err != nil {
			t.Fatalf("CLIENT KILL on %s: %v", addr, err)
		}
	}
	errors := 0
	for _, ch := range channels {
		got := follow(t, d, c, ch, 30*time.Second)
		last := got[len(got)-1]
		if last != `"end"` {
			errors++
		}
		rows := got[:len(got)-1]
		if last != `"end"` && !strings.HasPrefix(last, `{"error":"unavailable"`) {
			t.Fatalf("%s ended with %s", ch, last)
		}
		if len(slices.Compact(slices.Clone(rows))) != len(rows) || len(rows) > 3 {
			t.Fatalf("%s heard a row twice: %q", ch, got)
		}
	}
	t.Logf("%d of %d streams ended with \"error\", the others completed", errors, len(channels))
	settle(c, channels[0], len(c.heard(channels[0])))
	for _, ch := range channels {
		got := c.heard(ch)
		terminals := 0
		for _, m := range got {
			if isTerminal(m) {
				terminals++
			}
		}
		if terminals != 1 {
			t.Fatalf("%s heard %d terminals: %q", ch, terminals, got)
		}
	}
	// Served again, through whatever node.
	after := d.channel("after")
	d.fetch(after, "ck", 3, true)
	if got := follow(t, d, c, after, 30*time.Second); len(got) != 4 || got[3] != `"end"` {
		t.Fatalf("after the kill: %q", got)
	}
}

// The slot the servers route a channel's messages by is the cluster's own.
func TestSlotAgreesWithTheCluster(t *testing.T) {
	node := redis.NewClient(&redis.Options{Addr: testCluster(t).Addrs[0]})
	defer node.Close()
	for i := range 300 {
		key := randomHex(i%7+1) + []string{"", "{", "}", "{x}", "{}", "é"}[i%6] + randomHex(i%3)
		want, err := node.ClusterKeySlot(context.Background(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := redisbus.Slot(key); int64(got) != want {
			t.Fatalf("Slot(%q) = %d, the cluster says %d", key, got, want)
		}
	}
}
