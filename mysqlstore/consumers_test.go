package mysqlstore_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/mysqlstore"
)

const (
	queryA = `{"$select":{"$where":{"pid":"a"}}}`
	queryB = `{"$select":{"$where":{"pid":"b"}}}`
)

// consumerSteps are what one consumer test does: c has a lease of a
// quarter second (short has one of 150 ms), name is the test's own.
type consumerSteps func(t *testing.T, c, short *mysqlstore.Consumers, name string)

// mustAcquire acquires name and requires the position to start after.
func mustAcquire(t *testing.T, c *mysqlstore.Consumers, name, query, holder string, reset bool, want int64) {
	t.Helper()
	got, err := c.Acquire(testContext(t), name, query, "server-"+holder, holder, reset)
	if err != nil || got != want {
		t.Fatalf("Acquire(%s, %s, reset %v) = %d, %v; want %d", name, holder, reset, got, err, want)
	}
}

func mustGet(t *testing.T, c *mysqlstore.Consumers, name string) mysqlstore.Consumer {
	t.Helper()
	got, err := c.Get(testContext(t), name)
	if err != nil {
		t.Fatalf("Get(%s): %v", name, err)
	}
	return got
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

func TestConsumers(t *testing.T) {
	t.Parallel()
	db, database := mustMigrated(t)
	c := mysqlstore.NewConsumers(db, database)
	short := mysqlstore.NewConsumers(db, database, mysqlstore.WithConsumerLease(150*time.Millisecond))
	tests := []struct {
		name  string
		steps consumerSteps
	}{
		{"a new consumer starts at 0, held", func(t *testing.T, c, _ *mysqlstore.Consumers, name string) {
			mustAcquire(t, c, name, queryA, "h1", false, 0)
			got := mustGet(t, c, name)
			if got.Name != name || got.Query != queryA || got.Position != 0 || !got.Held || got.Holder != "h1" || got.Server != "server-h1" {
				t.Fatalf("consumer %+v", got)
			}
			if d := got.HeldUntil.Sub(got.UpdatedAt); d < 14*time.Second || d > 16*time.Second {
				t.Fatalf("held until %v after the update, want the lease of %v", d, mysqlstore.ConsumerLease)
			}
		}},
		{"record moves only forward", func(t *testing.T, c, _ *mysqlstore.Consumers, name string) {
			mustAcquire(t, c, name, queryA, "h1", false, 0)
			for _, p := range []int64{5, 3, 5, 9, 1} {
				if err := c.Record(testContext(t), name, "h1", p); err != nil {
					t.Fatalf("Record(%d): %v", p, err)
				}
			}
			if got := mustGet(t, c, name); got.Position != 9 || !got.Held {
				t.Fatalf("consumer %+v, want position 9, held", got)
			}
		}},
		{"busy while held", func(t *testing.T, c, _ *mysqlstore.Consumers, name string) {
			mustAcquire(t, c, name, queryA, "h1", false, 0)
			_, err := c.Acquire(testContext(t), name, queryA, "s2", "h2", false)
			wantErr(t, "a second holder", err, messages.ErrBusy)
			_, err = c.Acquire(testContext(t), name, queryB, "s2", "h2", true)
			wantErr(t, "a second holder with reset", err, messages.ErrBusy)
			wantErr(t, "a record by the refused holder", c.Record(testContext(t), name, "h2", 4), messages.ErrConsumerLost)
			mustAcquire(t, c, name, queryA, "h1", false, 0) // its holder again
		}},
		{"release records and frees", func(t *testing.T, c, _ *mysqlstore.Consumers, name string) {
			mustAcquire(t, c, name, queryA, "h1", false, 0)
			if err := c.Release(testContext(t), name, "h1", 7); err != nil {
				t.Fatal(err)
			}
			if got := mustGet(t, c, name); got.Held || got.Holder != "" || got.Server != "" || !got.HeldUntil.IsZero() || got.Position != 7 {
				t.Fatalf("released consumer %+v", got)
			}
			wantErr(t, "a second release", c.Release(testContext(t), name, "h1", 8), messages.ErrConsumerLost)
			wantErr(t, "a record after the release", c.Record(testContext(t), name, "h1", 8), messages.ErrConsumerLost)
			mustAcquire(t, c, name, queryA, "h2", false, 7)
			if err := c.Release(testContext(t), name, "h2", 2); err != nil {
				t.Fatal(err)
			}
			if got := mustGet(t, c, name); got.Position != 7 {
				t.Fatalf("a release moved the position back to %d", got.Position)
			}
		}},
		{"a lease that runs out frees the consumer", func(t *testing.T, _, short *mysqlstore.Consumers, name string) {
			mustAcquire(t, short, name, queryA, "h1", false, 0)
			if err := short.Record(testContext(t), name, "h1", 3); err != nil {
				t.Fatal(err)
			}
			_, err := short.Acquire(testContext(t), name, queryA, "s2", "h2", false)
			wantErr(t, "within the lease", err, messages.ErrBusy)
			waitForConsumer(t, short, name, func(c mysqlstore.Consumer) bool { return !c.Held })
			if got := mustGet(t, short, name); got.Holder != "h1" || got.HeldUntil.IsZero() {
				t.Fatalf("a consumer whose lease ran out: %+v, want its last holder and lease shown", got)
			}
			mustAcquire(t, short, name, queryA, "h2", false, 3)
			wantErr(t, "a record by the holder that lost it", short.Record(testContext(t), name, "h1", 5), messages.ErrConsumerLost)
			wantErr(t, "a release by the holder that lost it", short.Release(testContext(t), name, "h1", 5), messages.ErrConsumerLost)
		}},
		{"renewals keep it held", func(t *testing.T, _, short *mysqlstore.Consumers, name string) {
			mustAcquire(t, short, name, queryA, "h1", false, 0)
			for deadline := time.Now().Add(600 * time.Millisecond); time.Now().Before(deadline); time.Sleep(30 * time.Millisecond) {
				if err := short.RenewServer(testContext(t), "server-h1"); err != nil {
					t.Fatal(err)
				}
			}
			_, err := short.Acquire(testContext(t), name, queryA, "s2", "h2", false)
			wantErr(t, "after renewals past the first lease", err, messages.ErrBusy)
		}},
		{"another query wants reset", func(t *testing.T, c, _ *mysqlstore.Consumers, name string) {
			mustAcquire(t, c, name, queryA, "h1", false, 0)
			if err := c.Release(testContext(t), name, "h1", 12); err != nil {
				t.Fatal(err)
			}
			_, err := c.Acquire(testContext(t), name, queryB, "s2", "h2", false)
			wantErr(t, "another query", err, messages.ErrBadRequest)
			if !strings.Contains(err.Error(), `"reset": true`) {
				t.Fatalf("%v does not say to send reset", err)
			}
			mustAcquire(t, c, name, queryB, "h2", true, 0)
			if got := mustGet(t, c, name); got.Query != queryB || got.Position != 0 || got.Holder != "h2" {
				t.Fatalf("after a reset: %+v", got)
			}
		}},
		{"reset with the same query starts again", func(t *testing.T, c, _ *mysqlstore.Consumers, name string) {
			mustAcquire(t, c, name, queryA, "h1", false, 0)
			if err := c.Record(testContext(t), name, "h1", 12); err != nil {
				t.Fatal(err)
			}
			mustAcquire(t, c, name, queryA, "h1", true, 0)
		}},
		{"Reset moves the position either way and frees it", func(t *testing.T, c, _ *mysqlstore.Consumers, name string) {
			mustAcquire(t, c, name, queryA, "h1", false, 0)
			if err := c.Record(testContext(t), name, "h1", 10); err != nil {
				t.Fatal(err)
			}
			for _, p := range []int64{3, 3, 20} {
				if err := c.Reset(testContext(t), name, p); err != nil {
					t.Fatalf("Reset(%d): %v", p, err)
				}
				if got := mustGet(t, c, name); got.Position != p || got.Held || got.Holder != "" {
					t.Fatalf("after Reset(%d): %+v", p, got)
				}
			}
			wantErr(t, "a record by the holder of before the reset", c.Record(testContext(t), name, "h1", 30), messages.ErrConsumerLost)
			mustAcquire(t, c, name, queryA, "h2", false, 20)
			wantErr(t, "a negative position", c.Reset(testContext(t), name, -1), messages.ErrBadRequest)
			wantErr(t, "an unknown consumer", c.Reset(testContext(t), name+"-none", 1), mysqlstore.ErrNoConsumer)
		}},
		{"delete", func(t *testing.T, c, _ *mysqlstore.Consumers, name string) {
			mustAcquire(t, c, name, queryA, "h1", false, 0)
			if err := c.Record(testContext(t), name, "h1", 10); err != nil {
				t.Fatal(err)
			}
			if err := c.Delete(testContext(t), name); err != nil {
				t.Fatal(err)
			}
			_, err := c.Get(testContext(t), name)
			wantErr(t, "Get after Delete", err, mysqlstore.ErrNoConsumer)
			wantErr(t, "a record after Delete", c.Record(testContext(t), name, "h1", 11), messages.ErrConsumerLost)
			wantErr(t, "a second Delete", c.Delete(testContext(t), name), mysqlstore.ErrNoConsumer)
			mustAcquire(t, c, name, queryB, "h2", false, 0) // a new one
		}},
		{"names compare exactly", func(t *testing.T, c, _ *mysqlstore.Consumers, name string) {
			upper := strings.ToUpper(name)
			mustAcquire(t, c, name, queryA, "h1", false, 0)
			mustAcquire(t, c, upper, queryB, "h2", false, 0)
			if a, b := mustGet(t, c, name), mustGet(t, c, upper); a.Query != queryA || b.Query != queryB {
				t.Fatalf("%s and %s share a row: %+v, %+v", name, upper, a, b)
			}
		}},
		{"bad names", func(t *testing.T, c, _ *mysqlstore.Consumers, name string) {
			for _, bad := range []string{"", "a b", "a/b", strings.Repeat("x", 201)} {
				_, err := c.Acquire(testContext(t), bad, queryA, "s", "h", false)
				wantErr(t, fmt.Sprintf("name %q", bad), err, messages.ErrBadRequest)
			}
			mustAcquire(t, c, name+strings.Repeat("x", 200-len(name)), queryA, "h1", false, 0)
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.steps(t, c, short, fmt.Sprintf("case%02d.%s", i, randomHex(3)))
		})
	}
}

func waitForConsumer(t *testing.T, c *mysqlstore.Consumers, name string, done func(mysqlstore.Consumer) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !done(mustGet(t, c, name)) {
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s: %+v after 5 s", name, mustGet(t, c, name))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConsumersList(t *testing.T) {
	t.Parallel()
	db, database := mustMigrated(t)
	c := mysqlstore.NewConsumers(db, database)
	if list, err := c.List(testContext(t)); err != nil || len(list) != 0 {
		t.Fatalf("List of none = %v, %v", list, err)
	}
	for _, name := range []string{"b", "a:2", "C", "a.1"} {
		mustAcquire(t, c, name, queryA, "h-"+name, false, 0)
	}
	if err := c.Release(testContext(t), "C", "h-C", 4); err != nil {
		t.Fatal(err)
	}
	list, err := c.List(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, cons := range list {
		names = append(names, cons.Name)
		if held := cons.Name != "C"; cons.Held != held {
			t.Errorf("%+v, want held %v", cons, held)
		}
	}
	if want := []string{"C", "a.1", "a:2", "b"}; !slices.Equal(names, want) {
		t.Fatalf("names %q, want %q (bytewise)", names, want)
	}
}

// Acquisitions at once, of a new consumer and of a free one: exactly one
// wins, the others are busy.
func TestConsumersAcquireRace(t *testing.T) {
	t.Parallel()
	db, database := mustMigrated(t)
	const holders = 16
	for _, tt := range []struct {
		name string
		free bool // made and released first
	}{{"new", false}, {"free", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A pool per server, as servers have.
			pools := make([]*mysqlstore.Consumers, 4)
			for i := range pools {
				pdb, _ := mustDatabase(t)
				pools[i] = mysqlstore.NewConsumers(pdb, database)
			}
			name := "race-" + randomHex(4)
			if tt.free {
				c := mysqlstore.NewConsumers(db, database)
				mustAcquire(t, c, name, queryA, "first", false, 0)
				if err := c.Release(testContext(t), name, "first", 5); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			errs := make([]error, holders)
			start := make(chan struct{})
			for i := range holders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					c := pools[i%len(pools)]
					_, errs[i] = c.Acquire(testContext(t), name, queryA, fmt.Sprintf("s%d", i%len(pools)), fmt.Sprintf("h%d", i), false)
				}()
			}
			close(start)
			wg.Wait()
			won := -1
			for i, err := range errs {
				switch {
				case err == nil && won >= 0:
					t.Fatalf("h%d and h%d both acquired %s", won, i, name)
				case err == nil:
					won = i
				case !errors.Is(err, messages.ErrBusy):
					t.Fatalf("h%d: %v, want busy", i, err)
				}
			}
			if won < 0 {
				t.Fatal("no one acquired it")
			}
			if got := mustGet(t, mysqlstore.NewConsumers(db, database), name); got.Holder != fmt.Sprintf("h%d", won) {
				t.Fatalf("holder %s, want the winner h%d", got.Holder, won)
			}
		})
	}
}

func TestConsumerLag(t *testing.T) {
	t.Parallel()
	db, database := mustMigrated(t)
	table := "`" + database + "`.event"
	// ids 1..20: a on the odd ones, b on the even; then 1500 of c, then one
	// a, then 1500 of c.
	for i := 1; i <= 20; i++ {
		mustExec(t, db, "INSERT INTO "+table+" (pid, domain, name, data) VALUES (?, 'd', 'n', '{}')", map[bool]string{true: "a", false: "b"}[i%2 == 1])
	}
	seed := func() {
		mustExec(t, db, "INSERT INTO "+table+" (pid, domain, name, data) SELECT 'c', 'd', 'n', '{}' FROM `"+database+"`.seq_1_to_1500")
	}
	b := mustBuilder(t, db, database+".event")
	c := mysqlstore.NewConsumers(db, database)
	type want struct {
		newest, lag int64
		capped      bool
	}
	check := func(t *testing.T, tests []struct {
		name     string
		query    string
		position int64
		limit    int
		want     want
	}) {
		t.Helper()
		for _, tt := range tests {
			newest, lag, capped, err := c.Lag(testContext(t), b, tt.query, tt.position, tt.limit)
			if got := (want{newest, lag, capped}); err != nil || got != tt.want {
				t.Errorf("%s: Lag = %+v, %v; want %+v", tt.name, got, err, tt.want)
			}
		}
	}
	check(t, []struct {
		name     string
		query    string
		position int64
		limit    int
		want     want
	}{
		{"from the start", queryA, 0, 0, want{19, 10, false}},
		{"after some", queryA, 13, 0, want{19, 3, false}},
		{"at the end", queryA, 19, 0, want{19, 0, false}},
		{"past the end", queryA, 100, 0, want{19, 0, false}},
		{"between two rows", queryB, 15, 0, want{20, 3, false}},
		{"in key order", `{"$select":{"$columns":["name"],"$where":{"pid":"b"},"$orderBy":{"id":true}}}`, 15, 0, want{20, 3, false}},
		{"capped", queryA, 0, 4, want{19, 4, true}},
		{"capped exactly", queryA, 11, 4, want{19, 4, false}},
		{"no rows", `{"$select":{"$where":{"pid":"none"}}}`, 0, 0, want{0, 0, false}},
		{"no rows after a position", `{"$select":{"$where":{"pid":"none"}}}`, 5, 0, want{0, 0, false}},
	})
	seed()
	mustExec(t, db, "INSERT INTO "+table+" (pid, domain, name, data) VALUES ('a', 'd', 'n', '{}')")
	seed()
	// INSERT ... SELECT may leave gaps in the ids: ask what they are.
	lastA := queryColumn[int64](t, db, "SELECT MAX(id) FROM "+table+" WHERE pid = 'a'")[0]
	lastC := queryColumn[int64](t, db, "SELECT MAX(id) FROM "+table+" WHERE pid = 'c'")[0]
	check(t, []struct {
		name     string
		query    string
		position int64
		limit    int
		want     want
	}{
		{"far behind", queryA, 0, 1000, want{lastA, 11, false}},
		{"capped, the newest found from the top", `{"$select":{"$where":{"pid":"c"}}}`, 0, 1000, want{lastC, 1000, true}},
		// Past the reach of the search (50 keys): the newest counted.
		{"capped, the newest out of reach", queryA, 0, 5, want{11, 5, true}},
		{"at the end, the newest just below", queryA, lastA, 1000, want{lastA, 0, false}},
		// Found in the second span down.
		{"past the end, the newest far below", queryA, lastA + 1500, 1000, want{lastA, 0, false}},
		{"past the end in key order", `{"$select":{"$where":{"pid":"a"},"$orderBy":"id"}}`, lastA + 1500, 1000, want{lastA, 0, false}},
	})
	for _, query := range []string{
		`{"$select":{"$where":{"pid":"a"},"$orderBy":{"name":true}}}`,
		`{"$select":{"$where":{"pid":"a"},"$orderBy":{"data":true}}}`,
		`{"$select":{"$columns":{"pid":true,"n":{"$count":"*"}},"$groupBy":{"pid":true}}}`,
		`{"$select":{"$columns":{"pid":true},"$distinct":true}}`,
	} {
		if _, _, _, err := c.Lag(testContext(t), b, query, 0, 0); !errors.Is(err, mysqlstore.ErrNoLag) {
			t.Errorf("Lag of %s: %v, want ErrNoLag", query, err)
		}
	}
}

// Migrate adds the consumer table to a database made before it, and says
// so once.
func TestMigrateAddsConsumers(t *testing.T) {
	t.Parallel()
	db, database := mustMigrated(t)
	mustExec(t, db, "DROP TABLE `"+database+"`.eventsource_consumer")
	changes, err := mysqlstore.Migrate(testContext(t), db, database)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || !strings.Contains(changes[0], database+".eventsource_consumer: created") {
		t.Fatalf("changes %q, want the consumer table created", changes)
	}
	if changes, err := mysqlstore.Migrate(testContext(t), db, database); err != nil || len(changes) != 0 {
		t.Fatalf("second Migrate: %q, %v", changes, err)
	}
	mustAcquire(t, mysqlstore.NewConsumers(db, database), "after-migrate", queryA, "h1", false, 0)
}
