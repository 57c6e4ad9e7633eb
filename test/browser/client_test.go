package browser_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/eventsource/eventsource/gateway"
	"github.com/eventsource/eventsource/internal/testserver"
)

// The browser client's safe writes: events posted twice with their event
// ids are stored once and answered with the same ids, and a stale expected
// version rejects with a 409 "conflict" error.
func TestClientSafeWrites(t *testing.T) {
	db, dbName := testserver.Database(t, "es_page")
	prefix := "page-" + testserver.RandomHex(4) + ":"
	cfg := testserver.Config(t, dbName, prefix)
	cfg.HTTP = gateway.DefaultConfig()
	cfg.HTTP.Addr, cfg.HTTP.Anonymous = "127.0.0.1:0", true
	srv := testserver.Start(t, cfg, nil)
	p := openPage(t, "http://"+srv.HTTPAddr().String()+"/")
	domain := "cart-" + testserver.RandomHex(3)

	script := fmt.Sprintf(`(async () => {
  const d = %q;
  const events = [
    { pid: "c1", domain: d, name: "added", data: { sku: "A-1" }, eventId: d + "/1" },
    { pid: "c1", domain: d, name: "added", data: { sku: "B-2" }, eventId: d + "/2" },
  ];
  const caught = async (fn) => {
    try { await fn(); return null; } catch (e) { return { name: e.name, status: e.status || 0, code: e.code || "", message: e.message }; }
  };
  const first = await client.persist(events, { expectedVersion: 0 });
  const again = await client.persist(events, { expectedVersion: 0 });
  const retried = await client.postEvent(events);
  const stale = await caught(() => client.postEvent({ pid: "c1", domain: d, name: "paid", data: 1 }, { expectedVersion: 1 }));
  const changed = await caught(() => client.postEvent({ pid: "c1", domain: d, name: "added", data: { sku: "C-3" }, eventId: d + "/1" }));
  const badVersion = await caught(() => client.postEvent({ pid: "c1", domain: d, name: "paid", data: 1 }, { expectedVersion: -1 }));
  const paid = await client.postEvent({ pid: "c1", domain: d, name: "paid", data: 1 }, { expectedVersion: 2 });
  return JSON.stringify({ first, again, retried, stale, changed, badVersion, paid });
})()`, domain)
	out, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](script, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	type persisted struct {
		IDs       []int64 `json:"ids"`
		Duplicate bool    `json:"duplicate"`
	}
	type failure struct {
		Name, Code, Message string
		Status              int
	}
	var got struct {
		First, Again               persisted
		Retried, Paid              []int64
		Stale, Changed, BadVersion *failure
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if len(got.First.IDs) != 2 || got.First.Duplicate {
		t.Fatalf("first post %+v", got.First)
	}
	if !slices.Equal(got.Again.IDs, got.First.IDs) || !got.Again.Duplicate || !slices.Equal(got.Retried, got.First.IDs) {
		t.Fatalf("retries answered %+v and %v, want the first post's ids %v as duplicates", got.Again, got.Retried, got.First.IDs)
	}
	for what, f := range map[string]*failure{"stale expectation": got.Stale, "event id with other content": got.Changed} {
		if f == nil || f.Status != 409 || f.Code != "conflict" {
			t.Errorf("%s: rejected with %+v, want status 409 code conflict", what, f)
		}
	}
	if got.Stale != nil && got.Stale.Message != "the stream is at version 2" {
		t.Errorf("stale expectation message %q", got.Stale.Message)
	}
	if f := got.BadVersion; f == nil || f.Name != "TypeError" {
		t.Errorf("expectedVersion -1: rejected with %+v, want a TypeError before any request", f)
	}
	if len(got.Paid) != 1 || got.Paid[0] <= got.First.IDs[1] {
		t.Errorf("post at the right version answered %v", got.Paid)
	}

	// Stored once each: the two events and the payment, numbered 1 to 3.
	rows, err := db.Query("SELECT name, version FROM `"+dbName+"`.event WHERE domain = ? ORDER BY id", domain)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var stored []string
	for rows.Next() {
		var name string
		var version int64
		if err := rows.Scan(&name, &version); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, fmt.Sprintf("%d:%s", version, name))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"1:added", "2:added", "3:paid"}; !slices.Equal(stored, want) {
		t.Fatalf("stored %v, want %v", stored, want)
	}
}
