package gateway_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eventsource/eventsource/server"
)

// taskRow is a row message of a fetch task whose rows are events.
type taskRow struct {
	Task string
	Row  storedEvent
}

// expectRow reads the next message, which must be a row of task, and
// returns its event's name.
func expectRow(t *testing.T, s *sse, task string) string {
	t.Helper()
	m := s.expect("row")
	var r taskRow
	if err := json.Unmarshal([]byte(m.data), &r); err != nil {
		t.Fatal(err)
	}
	if r.Task != task {
		t.Fatalf("row of task %s, want %s: %s", r.Task, task, m.data)
	}
	return r.Row.Name
}

// A follow task sends the rows that match, says when they are out, then
// sends each new matching event as it commits, and never one that does
// not match, until it is cancelled.
func TestSessionFollowTask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		before  []map[string]any // posted before the task
		query   string
		history []string
		during  []map[string]any // posted once the history is out
		live    []string
	}{
		{
			name:    "history then live",
			before:  []map[string]any{event("orders", "created", "o1", 1), event("other", "created", "x", 1), event("orders", "paid", "o1", 2)},
			query:   `{"$select":{"$where":{"domain":"orders"}}}`,
			history: []string{"created", "paid"},
			during:  []map[string]any{event("other", "ignored", "x", 2), event("orders", "shipped", "o1", 3), event("other", "ignored", "x", 3), event("orders", "delivered", "o1", 4)},
			live:    []string{"shipped", "delivered"},
		},
		{
			name:   "empty table",
			query:  `{"$select":{"$columns":["id","name"],"$where":{"name":{"$like":"s%"}},"$orderBy":"id"}}`,
			during: []map[string]any{event("orders", "shipped", "o1", 1), event("orders", "paid", "o1", 2), event("orders", "settled", "o1", 3)},
			live:   []string{"shipped", "settled"},
		},
		{
			name:    "no match yet",
			before:  []map[string]any{event("other", "created", "x", 1)},
			query:   `{"$select":{"$where":{"pid":"o2"}}}`,
			history: nil,
			during:  []map[string]any{event("orders", "created", "o2", 1), event("orders", "created", "o3", 1)},
			live:    []string{"created"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, nil)
			if len(tt.before) > 0 {
				h.post(tt.before...)
			}
			id := h.newSession()
			s := h.stream(id, nil)
			task := h.task(id, `{"type":"fetch","follow":true,"query":`+tt.query+`}`)
			var history []string
			for range tt.history {
				history = append(history, expectRow(t, s, task))
			}
			if strings.Join(history, ",") != strings.Join(tt.history, ",") {
				t.Fatalf("history %q, want %q", history, tt.history)
			}
			want := `{"task":"` + task + `","rows":` + strconv.Itoa(len(tt.history)) + `,"following":true}`
			if m := s.expect("progress"); m.data != want {
				t.Fatalf("progress %s, want %s", m.data, want)
			}
			// One at a time, so the live rows' order is the posts' order.
			for _, ev := range tt.during {
				h.post(ev)
			}
			var live []string
			for range tt.live {
				live = append(live, expectRow(t, s, task))
			}
			if strings.Join(live, ",") != strings.Join(tt.live, ",") {
				t.Fatalf("live rows %q, want %q", live, tt.live)
			}

			// Cancelled, it sends nothing more: the next task's messages
			// come, and none of the follow's, though a matching event
			// commits in between.
			h.must("DELETE", "/sessions/"+id+"/tasks/"+task, "", http.StatusAccepted, nil)
			if m := s.expect("cancelled"); m.data != `{"task":"`+task+`"}` {
				t.Fatalf("cancelled %s", m.data)
			}
			h.post(tt.during...)
			next := h.task(id, `{"type":"fetch","query":{"$select":{"$limit":1}}}`)
			for _, want := range []string{"row", "progress", "completed"} {
				if m := s.expect(want); !strings.Contains(m.data, `"task":"`+next+`"`) {
					t.Fatalf("%s of another task: %s", want, m.data)
				}
			}
		})
	}
}

// A follow task goes on while its stream is away, within the session's
// grace: the rows committed meanwhile come when a stream is back; and it
// ends with its session.
func TestSessionFollowTaskOutlivesStream(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	id := h.newSession()
	s := h.stream(id, nil)
	task := h.task(id, `{"type":"fetch","follow":true,"query":{"$select":{"$where":{"domain":"chat"}}}}`)
	s.expect("progress")
	s.close()
	h.post(event("chat", "said", "a", 1), event("chat", "said", "b", 2))
	s = h.stream(id, nil)
	for range 2 {
		if name := expectRow(t, s, task); name != "said" {
			t.Fatalf("row %s", name)
		}
	}
	h.must("DELETE", "/sessions/"+id, "", http.StatusOK, nil)
	s.expect("closed")
}

// What cannot follow is refused before it starts, and a token limited to
// some domains follows only those.
func TestSessionFollowTaskRefusedAndScoped(t *testing.T) {
	t.Parallel()
	secret := "follow-secret-" + strings.Repeat("f", 32)
	h := start(t, func(c *server.Config) { c.HTTP.Anonymous, c.HTTP.JWTSecret = false, secret })
	admin := token(t, jwt.SigningMethodHS256, []byte(secret), "admin", []string{"*"}, []string{"*"}, time.Hour)
	alice := token(t, jwt.SigningMethodHS256, []byte(secret), "alice", []string{"a"}, []string{"a"}, time.Hour)
	s, id := h.tokenSession(alice)

	for _, tc := range []struct{ name, body, msg string }{
		{"limit", `{"type":"fetch","follow":true,"query":{"$select":{"$limit":1}}}`, "cannot be followed"},
		{"order", `{"type":"fetch","follow":true,"query":{"$select":{"$orderBy":{"id":"DESC"}}}}`, "cannot be followed"},
		{"aggregate", `{"type":"fetch","follow":true,"query":{"$select":{"$columns":[{"n":{"$count":"*"}}]}}}`, "cannot be followed"},
		{"follow not a boolean", `{"type":"fetch","follow":1,"query":{"$select":{}}}`, `follow\" must be true or false`},
		{"persist", `{"type":"persist","follow":true,"events":[{"pid":"p","domain":"a","name":"n","data":1}]}`, "only a fetch can follow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := h.do("POST", "/sessions/"+id+"/tasks", tc.body, alice)
			if status != 400 || !strings.Contains(string(b), tc.msg) {
				t.Fatalf("%d %s, want 400 with %q", status, b, tc.msg)
			}
		})
	}

	status, b := h.do("POST", "/sessions/"+id+"/tasks", `{"type":"fetch","follow":true,"query":{"$select":{}}}`, alice)
	if status != 202 {
		t.Fatalf("follow task: %d %s", status, b)
	}
	var created struct{ Task string }
	if err := json.Unmarshal(b, &created); err != nil {
		t.Fatal(err)
	}
	s.expect("progress")
	for _, ev := range []map[string]any{event("b", "hidden", "p", 1), event("a", "seen", "p", 2)} {
		body, _ := json.Marshal(ev)
		if status, b := h.do("POST", "/events", string(body), admin); status != 201 {
			t.Fatalf("post: %d %s", status, b)
		}
	}
	if name := expectRow(t, s, created.Task); name != "seen" {
		t.Fatalf("row %s, want only domain a's", name)
	}
}
