package gateway_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eventsource/eventsource/internal/scopecases"
	"github.com/eventsource/eventsource/server"
)

// A token that reads only domain "a" gets rows of domain a alone through
// session fetch tasks, wherever the query reads the event table.
func TestSessionFetchStaysInScope(t *testing.T) {
	t.Parallel()
	cases, err := scopecases.Load()
	if err != nil {
		t.Fatal(err)
	}
	secret := "scope-secret-" + strings.Repeat("z", 32)
	h := start(t, func(c *server.Config) { c.HTTP.Anonymous, c.HTTP.JWTSecret = false, secret })
	admin := token(t, jwt.SigningMethodHS256, []byte(secret), "admin", []string{"*"}, []string{"*"}, time.Hour)
	alice := token(t, jwt.SigningMethodHS256, []byte(secret), "alice", []string{"a"}, []string{"a"}, time.Hour)
	seed, _ := json.Marshal(cases.Events)
	if status, b := h.do("POST", "/events", string(seed), admin); status != 201 {
		t.Fatalf("seed: %d %s", status, b)
	}
	s, id := h.tokenSession(alice)
	table := h.cfg.MySQL.Database + ".event"
	for _, p := range cases.Positions {
		t.Run(p.Name, func(t *testing.T) {
			status, b := h.do("POST", "/sessions/"+id+"/tasks", `{"type":"fetch","query":`+p.Text(table)+`}`, alice)
			if status != 202 {
				t.Fatalf("task: %d %s", status, b)
			}
			var rows []string
			for done := false; !done; {
				m, ok := s.next(10 * time.Second)
				if !ok {
					t.Fatal("the session stream ended")
				}
				switch m.event {
				case "row":
					rows = append(rows, m.data)
				case "failed":
					t.Fatalf("task failed: %s", m.data)
				case "completed":
					done = true
				}
			}
			if err := cases.Check(p, rows); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Domains, names and pids match exactly, as the token's grants and listen
// keys do: the replay of domain "a" holds none of "A", "á" or "a " (which
// the table's collation takes for "a"), and agrees with live delivery.
func TestReplayMatchesExactly(t *testing.T) {
	t.Parallel()
	secret := "exact-secret-" + strings.Repeat("q", 32)
	h := start(t, func(c *server.Config) { c.HTTP.Anonymous, c.HTTP.JWTSecret = false, secret })
	admin := token(t, jwt.SigningMethodHS256, []byte(secret), "admin", []string{"*"}, []string{"*"}, time.Hour)
	alice := token(t, jwt.SigningMethodHS256, []byte(secret), "alice", []string{"a"}, nil, time.Hour)
	post := func(domain, name, pid string) {
		t.Helper()
		body, _ := json.Marshal(event(domain, name, pid, map[string]any{}))
		if status, b := h.do("POST", "/events", string(body), admin); status != 201 {
			t.Fatalf("post: %d %s", status, b)
		}
	}
	for _, d := range []string{"A", "á", "a ", "a"} {
		post(d, "created", "p-"+d)
	}
	post("a", "Created", "p-a")
	post("a", "created", "P-A")
	for _, tc := range []struct{ query, want string }{
		{"domain=a", "p-a p-a P-A"},
		{"domain=a&name=created", "p-a P-A"},
		{"domain=a&pid=p-a", "p-a p-a"},
		{"domain=a&name=created&pid=p-a", "p-a"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			s := h.open("/events?"+tc.query+"&since=0&access_token="+alice, nil)
			defer s.close()
			next := func() storedEvent {
				t.Helper()
				m, ok := s.next(10 * time.Second)
				if !ok {
					t.Fatal("stream ended")
				}
				return decodeEvent(t, m)
			}
			want := strings.Fields(tc.want)
			for i := range want {
				ev := next()
				if ev.Domain != "a" || ev.Pid != want[i] {
					t.Fatalf("replayed event %d: %+v, want domain a, pid %s", i, ev, want[i])
				}
			}
			// Live delivery follows the same rule: the near misses posted
			// now do not arrive, the exact match does.
			post("A", "created", "p-a")
			post("a", "created", "p-a")
			if ev := next(); ev.Domain != "a" || ev.Pid != "p-a" {
				t.Fatalf("live event %+v, want domain a", ev)
			}
		})
	}
	for _, refused := range []string{"A", "á", "a%20"} {
		if status, _ := h.do("GET", "/events?domain="+refused+"&access_token="+alice, "", ""); status != 403 {
			t.Fatalf("domain %q: status %d, want 403", refused, status)
		}
	}
}
