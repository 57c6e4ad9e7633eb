package replicas_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/redisbus"
	"github.com/eventsource/eventsource/replicas"
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// keeper starts a keeper of group on the local Redis, with its own
// publisher, stopped when the test ends.
func keeper(t *testing.T, rdb *redis.Client, group string, hooks replicas.Hooks, cfg replicas.Config) *replicas.Keeper {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	pub := redisbus.NewPublisher(rdb.Options(), 1, 64, logger)
	cfg.Group, cfg.FinishedChannel = group, group+":finished"
	k := replicas.New(rdb, pub, cfg, hooks, logger)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k.Close(context.Background())
		pub.Close()
	})
	return k
}

// claim asks for a claim and waits for the answer.
func claim(t *testing.T, k *replicas.Keeper, channel string, takeover bool) *replicas.Claim {
	t.Helper()
	type answer struct {
		c   *replicas.Claim
		err error
	}
	got := make(chan answer, 1)
	k.Claim(channel, false, takeover, func(c *replicas.Claim, err error) { got <- answer{c, err} })
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	return a.c
}

func finish(t *testing.T, k *replicas.Keeper, c *replicas.Claim, payloads ...string) bool {
	t.Helper()
	var list [][]byte
	for _, p := range payloads {
		list = append(list, []byte(p))
	}
	type answer struct {
		held bool
		err  error
	}
	got := make(chan answer, 1)
	k.Finish(c, list, func(held bool, err error) { got <- answer{held, err} })
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	return a.held
}

// One claim per channel across keepers; the end publishes once and leaves
// a tombstone that only a request known to be newer takes over.
func TestClaims(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { _ = rdb.Close() })
	group := "es-replicas-unit:" + randomHex(6)
	a := keeper(t, rdb, group, replicas.Hooks{}, replicas.Config{})
	b := keeper(t, rdb, group, replicas.Hooks{}, replicas.Config{})
	ch := group + ":c1"
	ctx := context.Background()
	ps := rdb.Subscribe(ctx, ch, group+":finished")
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	first := claim(t, a, ch, false)
	if first == nil || !first.Valid() {
		t.Fatal("the first claim was not won")
	}
	if c := claim(t, b, ch, true); c != nil {
		t.Fatal("a second keeper won a channel held by a live claim, takeover or not")
	}
	if !finish(t, a, first, `{"row":1}`, `"end"`) {
		t.Fatal("the holder's finish found the claim gone")
	}
	if finish(t, a, first, `"end"`) {
		t.Fatal("a second finish published again")
	}
	var heard []string
	for len(heard) < 3 {
		m, err := ps.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		heard = append(heard, m.Channel+" "+m.Payload)
	}
	want := []string{ch + ` {"row":1}`, ch + ` "end"`, group + ":finished " + ch}
	for i := range want {
		if heard[i] != want[i] {
			t.Fatalf("heard %q, want %q", heard, want)
		}
	}
	if c := claim(t, b, ch, false); c != nil {
		t.Fatal("a request not known to be newer than the end took the tombstone: a lagging server would serve it again")
	}
	if c := claim(t, b, ch, true); c == nil {
		t.Fatal("a request heard after the end could not take the channel again")
	}
}

// A keeper whose registration expires (its process froze, or lost Redis)
// has its channels ended by a survivor, once, and stops vouching for its
// claims.
func TestReaping(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { _ = rdb.Close() })
	group := "es-replicas-unit:" + randomHex(6)
	fast := replicas.Config{Lease: 900 * time.Millisecond, Registration: 500 * time.Millisecond, ReapEvery: 200 * time.Millisecond}
	var mu sync.Mutex
	reaped := 0
	keeper(t, rdb, group, replicas.Hooks{Reaped: func(n int) { mu.Lock(); reaped += n; mu.Unlock() }}, fast)
	// The dying keeper has a connection of its own, closed below: from then
	// on its heartbeats and renewals fail, as a frozen process's would.
	dyingRdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	dying := keeper(t, dyingRdb, group, replicas.Hooks{}, fast)
	ch := group + ":c1"
	ctx := context.Background()
	ps := rdb.Subscribe(ctx, ch)
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	c := claim(t, dying, ch, false)
	if c == nil {
		t.Fatal("claim not won")
	}
	_ = dyingRdb.Close()
	m, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Payload != `"error"` {
		t.Fatalf("heard %q, want the survivor's \"error\"", m.Payload)
	}
	if c.Valid() {
		t.Fatal("the claim of a server whose registration expired is still valid")
	}
	// Nothing more: the survivor ended it once.
	if m, err := ps.ReceiveTimeout(ctx, time.Second); err == nil {
		t.Fatalf("heard %v after the survivor's error", m)
	}
	mu.Lock()
	defer mu.Unlock()
	if reaped != 1 {
		t.Fatalf("the survivor counted %d streams ended, want 1", reaped)
	}
}

// A renewal that meets a claim its own terminal just released is not a
// loss; a claim another server took over under a live stream is.
func TestLossesAreReal(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { _ = rdb.Close() })
	group := "es-replicas-unit:" + randomHex(6)
	lost := make(chan string, 16)
	hooks := replicas.Hooks{Lost: func(channel string) { lost <- channel }}
	// Renewals every 20 ms, so that many of them cross a terminal.
	k := keeper(t, rdb, group, hooks, replicas.Config{Lease: 60 * time.Millisecond, Registration: 5 * time.Second})

	deadline := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				ch := group + ":w" + string(rune('a'+w)) + ":" + randomHex(4)
				c := claim(t, k, ch, false)
				if c == nil {
					t.Error("claim of a fresh channel not won")
					return
				}
				finish(t, k, c, `"end"`)
			}
		}()
	}
	wg.Wait()
	select {
	case ch := <-lost:
		t.Fatalf("claim of %s reported lost though only its terminal released it", ch)
	default:
	}

	ch := group + ":taken"
	if claim(t, k, ch, false) == nil {
		t.Fatal("claim not won")
	}
	if err := rdb.Set(context.Background(), replicas.ClaimKey(group, ch), "another-server:1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-lost:
		if got != ch {
			t.Fatalf("lost %s, want %s", got, ch)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a claim taken over was not reported lost")
	}
}

// Terminals finished while the server's subscriber is down wait; they go,
// once each, when the outage ends; one that cannot go within the terminal
// retry time is dropped and counted.
func TestTerminalsWaitThroughAnOutage(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { _ = rdb.Close() })
	group := "es-replicas-unit:" + randomHex(6)
	var dropped atomic.Int32
	k := keeper(t, rdb, group, replicas.Hooks{TerminalDropped: func() { dropped.Add(1) }},
		replicas.Config{TerminalRetry: 400 * time.Millisecond})
	ctx := context.Background()
	chans := []string{group + ":a", group + ":b"}
	ps := rdb.Subscribe(ctx, chans...)
	t.Cleanup(func() { _ = ps.Close() })
	for range chans {
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	claims := []*replicas.Claim{claim(t, k, chans[0], false), claim(t, k, chans[1], false)}

	outage := k.BusDown()
	answered := make(chan bool, 2)
	k.Finish(claims[0], [][]byte{[]byte(`"error"`)}, func(held bool, err error) { answered <- held && err == nil })
	if m, err := ps.ReceiveTimeout(ctx, 300*time.Millisecond); err == nil {
		t.Fatalf("heard %v during the outage", m)
	}
	if n := k.WaitingTerminals(); n != 1 {
		t.Fatalf("%d terminals wait, want 1", n)
	}
	k.BusUp(outage)
	m, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Channel != chans[0] || m.Payload != `"error"` {
		t.Fatalf("heard %s %s, want the waiting terminal", m.Channel, m.Payload)
	}
	if !<-answered {
		t.Fatal("the waiting terminal's sender was not told it went")
	}

	// A BusUp of an earlier outage does not end a later one; a terminal
	// kept past the retry time is dropped.
	stale := k.BusDown()
	k.BusDown()
	k.BusUp(stale)
	k.Finish(claims[1], [][]byte{[]byte(`"error"`)}, func(held bool, err error) { answered <- held })
	time.Sleep(600 * time.Millisecond)
	k.BusUp(k.Outage())
	if held := <-answered; held {
		t.Fatal("a terminal past its retry time went anyway")
	}
	if dropped.Load() != 1 {
		t.Fatalf("%d terminals dropped, want 1", dropped.Load())
	}
	if m, err := ps.ReceiveTimeout(ctx, 300*time.Millisecond); err == nil && m.(*redis.Message).Channel == chans[1] {
		t.Fatalf("heard %v: a dropped terminal", m)
	}
}

// Claims whose connection dies under them are tried again until they are
// answered: with the keeper's connections killed again and again, every
// claim of a fresh channel is won, and none answered with an error.
func TestClaimsOutliveKilledConnections(t *testing.T) {
	admin := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { _ = admin.Close() })
	name := "es-replicas-unit-" + randomHex(6)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ClientName: name})
	t.Cleanup(func() { _ = rdb.Close() })
	group := "es-replicas-unit:" + randomHex(6)
	k := keeper(t, rdb, group, replicas.Hooks{}, replicas.Config{})

	stop := make(chan struct{})
	var kills atomic.Int32
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			list, _ := admin.ClientList(context.Background()).Result()
			for line := range strings.Lines(list) {
				if strings.Contains(line, " name="+name+" ") {
					id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
					if admin.ClientKillByFilter(context.Background(), "ID", id).Err() == nil {
						kills.Add(1)
					}
				}
			}
		}
	}()
	const n = 300
	type answer struct {
		c   *replicas.Claim
		err error
	}
	answers := make(chan answer, n)
	for i := range n {
		k.Claim(group+":c"+strconv.Itoa(i), false, false, func(c *replicas.Claim, err error) { answers <- answer{c, err} })
		time.Sleep(time.Millisecond)
	}
	for range n {
		a := <-answers
		if a.err != nil || a.c == nil {
			t.Fatalf("a claim of a fresh channel answered %v, %v: want it won", a.c, a.err)
		}
	}
	close(stop)
	if kills.Load() == 0 {
		t.Fatal("no connection was killed: the test tested nothing")
	}
	t.Logf("%d claims won through %d killed connections", n, kills.Load())
}
