package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventsource/eventsource/admin"
	"github.com/eventsource/eventsource/gateway"
	"github.com/eventsource/eventsource/server"
)

// sseMessage is one message of a Server-Sent Events stream.
type sseMessage struct{ event, data string }

// readSSE opens a GET on url and sends its messages on the returned
// channel, which is closed when the response ends.
func readSSE(t *testing.T, url string) <-chan sseMessage {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	out := make(chan sseMessage, 64)
	go func() {
		defer close(out)
		defer res.Body.Close()
		var m sseMessage
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m.event != "" || m.data != "" {
					out <- m
				}
				m = sseMessage{}
			case strings.HasPrefix(line, "event: "):
				m.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				m.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return out
}

// nextSSE returns the next message, failing after a while.
func nextSSE(t *testing.T, msgs <-chan sseMessage) (sseMessage, bool) {
	t.Helper()
	select {
	case m, ok := <-msgs:
		return m, ok
	case <-time.After(10 * time.Second):
		t.Fatal("no message on the event stream for 10s")
		return sseMessage{}, false
	}
}

func adminPost(t *testing.T, h *harness, path string) (int, string) {
	t.Helper()
	res, err := http.Post("http://"+h.srv.AdminAddr().String()+path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func withAdminAndHTTP(cfg *server.Config) {
	cfg.Admin = "127.0.0.1:0"
	cfg.HTTP = gateway.DefaultConfig()
	cfg.HTTP.Addr, cfg.HTTP.Anonymous = "127.0.0.1:0", true
}

// An operator stops a stream and an HTTP session through the admin
// listener: the stream's client gets "error" and the stream counts as
// ending "stopped", not as a failure; the session's stream gets "closed"
// and the session is gone. The actor kinds a running server has are the
// ones GET /actors filters on, and it refuses any other.
func TestOperatorStopsStreamsAndSessions(t *testing.T) {
	h := newHarness(t, withAdminAndHTTP)
	base := "http://" + h.srv.HTTPAddr().String()
	h.persistEvents("opstop", 2)
	victim := h.wire.subscribe(h.channel("opstop"))
	h.fetch(victim.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"opstop"}}}`)
	victim.expect(`{"name":"n0"}`)

	res, err := http.Post(base+"/sessions", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	err = json.NewDecoder(res.Body).Decode(&created)
	res.Body.Close()
	if err != nil || created.ID == "" {
		t.Fatalf("POST /sessions: %d %v", res.StatusCode, err)
	}
	session := readSSE(t, base+"/sessions/"+created.ID+"/stream")
	if m, _ := nextSSE(t, session); m.event != "registered" {
		t.Fatalf("first session message %+v, want registered", m)
	}
	events := readSSE(t, base+"/events?domain=opstop")

	// Every kind the registry holds can be filtered on.
	want := []string{"router", "stream", "http", "session", "sse"}
	var kinds []string
	waitFor(t, "the session and the event stream in the tree", 5*time.Second, func() bool {
		entries, _ := listActors(t, h, "")
		kinds = kinds[:0]
		for _, e := range entries {
			if !slices.Contains(kinds, e.Kind) {
				kinds = append(kinds, e.Kind)
			}
		}
		for _, k := range want {
			if !slices.Contains(kinds, k) {
				return false
			}
		}
		return true
	})
	for _, k := range kinds {
		if !slices.Contains(admin.Kinds, k) {
			t.Errorf("the tree holds kind %q, which admin.Kinds %v lacks", k, admin.Kinds)
		}
		if _, n := listActors(t, h, "kind="+k); n == 0 {
			t.Errorf("GET /actors?kind=%s lists nothing", k)
		}
	}
	code, body := adminGet(t, h, "/actors?kind=bogus")
	var refused struct {
		Error string   `json:"error"`
		Kinds []string `json:"kinds"`
	}
	if err := json.Unmarshal([]byte(body), &refused); code != http.StatusBadRequest || err != nil ||
		!strings.Contains(refused.Error, "bogus") || !slices.Equal(refused.Kinds, admin.Kinds) {
		t.Errorf("GET /actors?kind=bogus: %d %s, want 400 naming the kinds", code, body)
	}

	// The stream: "error" on its channel, and counted as stopped.
	before := scrape(t, h)
	if code, body := adminPost(t, h, "/actors/stream:"+victim.channel+"/stop"); code != http.StatusOK {
		t.Fatalf("stop the stream: %d %s", code, body)
	}
	victim.expect(`"error"`)
	const stopped, failed = `eventsource_streams_ended_total{ending="stopped",kind="stream"}`, `eventsource_streams_ended_total{ending="error",kind="stream"}`
	var after map[string]float64
	waitFor(t, "the stopped stream to be counted", 5*time.Second, func() bool {
		after = scrape(t, h)
		return after[stopped]-before[stopped] == 1
	})
	if d := after[failed] - before[failed]; d != 0 {
		t.Errorf("%s changed by %v, want 0: a stop is no failure", failed, d)
	}

	// The session: "closed" on its stream, which then ends, and gone.
	if code, body := adminPost(t, h, "/actors/session:"+created.ID+"/stop"); code != http.StatusOK {
		t.Fatalf("stop the session: %d %s", code, body)
	}
	m, _ := nextSSE(t, session)
	if m.event != "closed" || !strings.Contains(m.data, "stopped by an operator") {
		t.Fatalf("session message %+v, want closed, stopped by an operator", m)
	}
	if m, ok := nextSSE(t, session); ok {
		t.Fatalf("the session's stream goes on after closed: %+v", m)
	}
	waitFor(t, "the session to leave the tree", 5*time.Second, func() bool {
		_, n := listActors(t, h, "kind=session")
		return n == 0
	})
	if code, body := adminPost(t, h, "/actors/session:"+created.ID+"/stop"); code != http.StatusNotFound {
		t.Errorf("stop the session again: %d %s, want 404", code, body)
	}
	res, err = http.Post(base+"/sessions/"+created.ID+"/listen", "application/json", strings.NewReader(`{"key":"tick"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("listen on the stopped session: %d, want 404", res.StatusCode)
	}
	select {
	case m, ok := <-events:
		if ok {
			t.Errorf("the event stream heard %+v", m)
		}
	default:
	}
}
