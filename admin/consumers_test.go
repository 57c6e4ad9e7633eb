package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/eventsource/eventsource/admin"
	"github.com/eventsource/eventsource/supervision"
)

// consumerBackend keeps consumers in a map.
type consumerBackend struct {
	backend
	mu        sync.Mutex
	consumers map[string]int64 // name: position
	fail      error
}

func (b *consumerBackend) ListConsumers(context.Context) ([]admin.ConsumerStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return nil, b.fail
	}
	var list []admin.ConsumerStatus
	for name, p := range b.consumers {
		list = append(list, admin.ConsumerStatus{Name: name, Query: admin.QueryJSON(`{"$select":{}}`), Position: p})
	}
	return list, nil
}

func (b *consumerBackend) ResetConsumer(_ context.Context, name string, position int64) (admin.ConsumerStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.consumers[name]; !ok {
		return admin.ConsumerStatus{}, fmt.Errorf("consumer %s: %w", name, admin.ErrNoConsumer)
	}
	b.consumers[name] = position
	return admin.ConsumerStatus{Name: name, Position: position, Query: admin.QueryJSON("not json")}, nil
}

func (b *consumerBackend) DeleteConsumer(_ context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.consumers[name]; !ok {
		return fmt.Errorf("consumer %s: %w", name, admin.ErrNoConsumer)
	}
	delete(b.consumers, name)
	return nil
}

func TestConsumerEndpoints(t *testing.T) {
	t.Parallel()
	b := &consumerBackend{backend: backend{supervision.NewRegistry()}, consumers: map[string]int64{"a": 5, "b.c:d-e": 7}}
	ts := httptest.NewServer(admin.Handler(b, nil, "tok", slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(ts.Close)
	tests := []struct {
		name, method, path, body string
		code                     int
		want                     string // in the body
	}{
		{"list", "GET", "/consumers", "", 200, `"position":5`},
		{"reset", "POST", "/consumers/a/reset", `{"position": 3}`, 200, `"query":"not json","position":3,`},
		{"reset without a body", "POST", "/consumers/b.c:d-e/reset", "", 200, `"position":0,`},
		{"reset an empty object", "POST", "/consumers/a/reset", "{}", 200, `"position":0,`},
		{"reset negative", "POST", "/consumers/a/reset", `{"position":-2}`, 400, "negative"},
		{"reset with a string", "POST", "/consumers/a/reset", `{"position":"3"}`, 400, "position"},
		{"reset unknown", "POST", "/consumers/z/reset", "", 404, `"no consumer named z"`},
		{"reset by GET", "GET", "/consumers/a/reset", "", 405, ""},
		{"delete", "DELETE", "/consumers/b.c:d-e", "", 204, ""},
		{"delete unknown", "DELETE", "/consumers/b.c:d-e", "", 404, "no consumer named"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, ts.URL+tt.path, strings.NewReader(tt.body))
		req.Header.Set("Authorization", "Bearer tok")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.code || !strings.Contains(string(body), tt.want) {
			t.Errorf("%s: %s %s: %d %s, want %d with %s", tt.name, tt.method, tt.path, res.StatusCode, body, tt.code, tt.want)
		}
	}
	b.mu.Lock()
	if b.consumers["a"] != 0 || len(b.consumers) != 1 {
		t.Errorf("consumers %v", b.consumers)
	}
	b.mu.Unlock()

	// Without the token.
	res, err := http.Get(ts.URL + "/consumers")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /consumers without the token: %d", res.StatusCode)
	}

	// A listing that fails says why.
	b.mu.Lock()
	b.fail = errors.New("durable consumers are off: run eventsource migrate")
	b.mu.Unlock()
	req, _ := http.NewRequest("GET", ts.URL+"/consumers?access_token=tok", nil)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "eventsource migrate") {
		t.Fatalf("a failed listing: %d %s", res.StatusCode, body)
	}
}

// An empty listing is an empty array, not null.
func TestConsumersListEmpty(t *testing.T) {
	t.Parallel()
	b := &consumerBackend{backend: backend{supervision.NewRegistry()}, consumers: map[string]int64{}}
	ts := httptest.NewServer(admin.Handler(b, nil, "", slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(ts.Close)
	res, err := http.Get(ts.URL + "/consumers")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var page map[string]json.RawMessage
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil || string(page["consumers"]) != "[]" || string(page["server"]) != `"test"` {
		t.Fatalf("%v, %v", page, err)
	}
}

// A backend without consumers has no such endpoints.
func TestConsumersNeedABackendThatKeepsThem(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(admin.Handler(backend{supervision.NewRegistry()}, nil, "", slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(ts.Close)
	res, err := http.Get(ts.URL + "/consumers")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /consumers: %d, want 404", res.StatusCode)
	}
}
