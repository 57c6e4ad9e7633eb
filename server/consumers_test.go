package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/eventsource/eventsource/admin"
	"github.com/eventsource/eventsource/messages"
)

// adminDo sends a request with a body to the server's admin listener.
func adminDo(t testing.TB, h *harness, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+h.srv.AdminAddr().String()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func listConsumers(t testing.TB, h *harness) map[string]admin.ConsumerStatus {
	t.Helper()
	code, body := adminGet(t, h, "/consumers")
	if code != http.StatusOK {
		t.Fatalf("GET /consumers: %d %s", code, body)
	}
	var page struct {
		Server    string                 `json:"server"`
		Consumers []admin.ConsumerStatus `json:"consumers"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatalf("GET /consumers: %v in %s", err, body)
	}
	if page.Server != h.srv.ServerID() || page.Consumers == nil {
		t.Fatalf("GET /consumers: %s", body)
	}
	byName := map[string]admin.ConsumerStatus{}
	for _, c := range page.Consumers {
		byName[c.Name] = c
	}
	return byName
}

func TestConsumerEndpoints(t *testing.T) {
	h := newHarness(t, withAdmin)
	h.persistEvents("orders", 3)
	h.persistEvents("other", 2)
	var ids []int64
	rows, err := h.db.Query("SELECT id FROM `" + h.dbName + "`.event WHERE pid = 'orders' ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()

	ctx := context.Background()
	store := h.srv.Consumers()
	if store == nil {
		t.Fatal("the server keeps no consumers")
	}
	const query = `{"$select":{"$where":{"pid":"orders"}}}`
	if _, err := store.Acquire(ctx, "orders", query, h.srv.ServerID(), "holder-1", false); err != nil {
		t.Fatal(err)
	}
	if err := store.Record(ctx, "orders", "holder-1", ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Acquire(ctx, "by-name", `{"$select":{"$orderBy":{"name":true}}}`, "elsewhere", "holder-2", false); err != nil {
		t.Fatal(err)
	}

	list := listConsumers(t, h)
	got := list["orders"]
	if len(list) != 2 || got.Position != ids[0] || !got.Held || got.Holder != "holder-1" || got.Server != h.srv.ServerID() ||
		got.HeldUntil == nil || got.UpdatedAt.IsZero() || got.Newest != ids[2] || got.Lag != 2 || got.LagCapped || got.LagError != "" {
		t.Fatalf("orders: %+v", got)
	}
	if string(got.Query) != query {
		t.Fatalf("query %s, want %s", got.Query, query)
	}
	if other := list["by-name"]; other.LagError == "" || other.Lag != 0 || !other.Held {
		t.Fatalf("a consumer whose query cannot be followed: %+v, want a lag error", other)
	}
	if m := scrape(t, h); m[`eventsource_consumer_lag{consumer="orders"}`] != 2 {
		t.Fatalf("lag metric %v, want 2", m[`eventsource_consumer_lag{consumer="orders"}`])
	}

	tests := []struct {
		name, method, path, body string
		code                     int
		position                 int64 // after a reset
	}{
		{"reset to a position", "POST", "/consumers/orders/reset", `{"position":` + jsonInt(ids[1]) + `}`, 200, ids[1]},
		{"reset without a body", "POST", "/consumers/orders/reset", ``, 200, 0},
		{"reset past the end", "POST", "/consumers/orders/reset", `{"position":1000000}`, 200, 1000000},
		{"reset to a negative position", "POST", "/consumers/orders/reset", `{"position":-1}`, 400, 0},
		{"reset with another field", "POST", "/consumers/orders/reset", `{"offset":1}`, 400, 0},
		{"reset with no JSON", "POST", "/consumers/orders/reset", `position=1`, 400, 0},
		{"reset an unknown one", "POST", "/consumers/nobody/reset", `{}`, 404, 0},
		{"delete an unknown one", "DELETE", "/consumers/nobody", ``, 404, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := adminDo(t, h, tt.method, tt.path, tt.body)
			if code != tt.code {
				t.Fatalf("%s %s: %d %s, want %d", tt.method, tt.path, code, body, tt.code)
			}
			if code != 200 {
				return
			}
			var st admin.ConsumerStatus
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				t.Fatal(err)
			}
			if st.Name != "orders" || st.Position != tt.position || st.Held || st.Holder != "" || st.HeldUntil != nil || st.Newest != ids[2] {
				t.Fatalf("after the reset: %s", body)
			}
		})
	}
	// The holder of before the reset has lost it.
	if err := store.Record(ctx, "orders", "holder-1", ids[2]); !errors.Is(err, messages.ErrConsumerLost) {
		t.Fatalf("a record after a reset: %v, want lost", err)
	}
	if got := listConsumers(t, h)["orders"]; got.Position != 1000000 || got.Lag != 0 || got.Newest != ids[2] {
		t.Fatalf("after the resets: %+v", got)
	}

	if code, body := adminDo(t, h, "DELETE", "/consumers/orders", ""); code != http.StatusNoContent || body != "" {
		t.Fatalf("DELETE: %d %q", code, body)
	}
	if code, _ := adminDo(t, h, "DELETE", "/consumers/orders", ""); code != http.StatusNotFound {
		t.Fatalf("a second DELETE: %d", code)
	}
	if list := listConsumers(t, h); len(list) != 1 || list["by-name"].Name == "" {
		t.Fatalf("after the delete: %+v", list)
	}
	if _, ok := scrape(t, h)[`eventsource_consumer_lag{consumer="orders"}`]; ok {
		t.Fatal("the lag of a deleted consumer is still reported")
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// On a database of an earlier release, without the consumer table, the
// server runs without consumers and the endpoints say why.
func TestConsumersNeedTheMigration(t *testing.T) {
	h := newDatabase(t)
	if _, err := h.db.Exec("DROP TABLE `" + h.dbName + "`.eventsource_consumer"); err != nil {
		t.Fatal(err)
	}
	h.start(withAdmin)
	if h.srv.Consumers() != nil {
		t.Fatal("consumers without their table")
	}
	code, body := adminGet(t, h, "/consumers")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "eventsource migrate") {
		t.Fatalf("GET /consumers: %d %s", code, body)
	}
}
