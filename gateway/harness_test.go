package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/gateway"
	"github.com/eventsource/eventsource/internal/testserver"
	"github.com/eventsource/eventsource/server"
	"github.com/eventsource/eventsource/supervision"
)

// harness is one real server with its gateway on a fresh database, and
// the clients a test needs: HTTP and the Redis client package.
type harness struct {
	t    *testing.T
	srv  *server.Server
	base string
	http *http.Client
	rdb  *redis.Client
	cl   *client.Client
	cfg  server.Config
}

// start runs a server whose gateway is anonymous unless edit says
// otherwise; edit may change the configuration before it starts.
func start(t *testing.T, edit func(*server.Config), opts ...server.Option) *harness {
	t.Helper()
	_, dbName := testserver.Database(t, "es_gw")
	prefix := "gw-" + testserver.RandomHex(4) + ":"
	cfg := testserver.Config(t, dbName, prefix)
	cfg.HTTP = gateway.DefaultConfig()
	cfg.HTTP.Addr, cfg.HTTP.Anonymous = "127.0.0.1:0", true
	cfg.HTTP.SessionGrace = 2 * time.Second
	if edit != nil {
		edit(&cfg)
	}
	srv := testserver.Start(t, cfg, nil, opts...)
	h := &harness{t: t, srv: srv, base: "http://" + srv.HTTPAddr().String(), cfg: cfg,
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	h.rdb = redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr(), Password: cfg.Redis.Password, DB: cfg.Redis.DB})
	h.cl = client.New(h.rdb, client.WithFetchChannel(cfg.FetchChannel), client.WithPersistChannel(cfg.PersistChannel),
		client.WithChannelPrefix(prefix+"c:"), client.WithReason(), client.WithTimeout(20*time.Second))
	t.Cleanup(func() {
		h.http.CloseIdleConnections()
		_ = h.cl.Close()
		_ = h.rdb.Close()
	})
	return h
}

// do sends a request with an optional JSON body and token, and returns the
// status and the body.
func (h *harness) do(method, path, body, token string) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return res.StatusCode, b
}

// must sends a request that must answer want, and decodes its body into
// out (when not nil).
func (h *harness) must(method, path, body string, want int, out any) {
	h.t.Helper()
	status, b := h.do(method, path, body, "")
	if status != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// tokenSession makes a session with tok, opens its stream (registered
// read) and listens to keys.
func (h *harness) tokenSession(tok string, keys ...string) (s *sse, id string) {
	h.t.Helper()
	status, b := h.do("POST", "/sessions", "", tok)
	if status != http.StatusCreated {
		h.t.Fatalf("POST /sessions: %d %s", status, b)
	}
	var created struct{ ID string }
	if err := json.Unmarshal(b, &created); err != nil {
		h.t.Fatal(err)
	}
	s = h.open("/sessions/"+created.ID+"/stream?access_token="+tok, nil)
	s.expect("registered")
	for _, k := range keys {
		if status, b := h.do("POST", "/sessions/"+created.ID+"/listen", `{"key":"`+k+`"}`, tok); status != 200 {
			h.t.Fatalf("listen %s: %d %s", k, status, b)
		}
	}
	return s, created.ID
}

// post persists events over HTTP and returns their ids.
func (h *harness) post(events ...map[string]any) []int64 {
	h.t.Helper()
	var body []byte
	if len(events) == 1 {
		body, _ = json.Marshal(events[0])
	} else {
		body, _ = json.Marshal(events)
	}
	var res struct{ IDs []int64 }
	h.must("POST", "/events", string(body), http.StatusCreated, &res)
	if len(res.IDs) != len(events) {
		h.t.Fatalf("POST /events: %d ids for %d events", len(res.IDs), len(events))
	}
	return res.IDs
}

func event(domain, name, pid string, data any) map[string]any {
	return map[string]any{"pid": pid, "domain": domain, "name": name, "data": data}
}

// message is one SSE message.
type message struct {
	id, event, data string
}

// sse is an open event stream read by a goroutine.
type sse struct {
	t      *testing.T
	res    *http.Response
	cancel context.CancelFunc
	msgs   chan message
	done   chan error // the read error when the stream ends (io.EOF: the server ended it)
	lastID atomic.Value
}

// last is the stream's last event id, as a browser keeps it.
func (s *sse) last() string {
	v, _ := s.lastID.Load().(string)
	return v
}

// open starts a stream on path with headers; it fails the test unless the
// server answers 200 text/event-stream.
func (h *harness) open(path string, headers map[string]string) *sse {
	h.t.Helper()
	s := h.openPaused(path, headers)
	s.resume()
	return s
}

// openPaused opens a stream that nothing reads until resume: a slow
// reader.
func (h *harness) openPaused(path string, headers map[string]string) *sse {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", h.base+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := h.http.Do(req)
	if err != nil {
		cancel()
		h.t.Fatalf("GET %s: %v", path, err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		h.t.Fatalf("GET %s: status %d %s: %s", path, res.StatusCode, res.Header.Get("Content-Type"), b)
	}
	s := &sse{t: h.t, res: res, cancel: cancel, msgs: make(chan message, 1<<16), done: make(chan error, 1)}
	h.t.Cleanup(s.close)
	return s
}

// resume starts reading.
func (s *sse) resume() { go s.read() }

func (s *sse) read() {
	r := bufio.NewReader(s.res.Body)
	var m message
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			s.done <- err
			close(s.msgs)
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if m.id != "" {
				s.lastID.Store(m.id) // as browsers do, even without data
			}
			if data != nil {
				m.data = strings.Join(data, "\n")
				s.msgs <- m
			}
			m, data = message{}, nil
		case strings.HasPrefix(line, ":"):
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				m.id = value
			case "event":
				m.event = value
			case "data":
				data = append(data, value)
			}
		}
	}
}

// next returns the next message; ok is false once the stream ended.
func (s *sse) next(timeout time.Duration) (message, bool) {
	s.t.Helper()
	select {
	case m, ok := <-s.msgs:
		return m, ok
	case <-time.After(timeout):
		s.t.Fatalf("no SSE message within %s", timeout)
		return message{}, false
	}
}

// expect returns the next message and fails unless it is of kind event.
func (s *sse) expect(event string) message {
	s.t.Helper()
	m, ok := s.next(10 * time.Second)
	if !ok {
		s.t.Fatalf("stream ended while waiting for %q", event)
	}
	if m.event != event {
		s.t.Fatalf("got %q (%s), want %q", m.event, m.data, event)
	}
	return m
}

// ended waits for the server to end the stream.
func (s *sse) ended() {
	s.t.Helper()
	for {
		select {
		case _, ok := <-s.msgs:
			if !ok {
				return
			}
		case <-time.After(10 * time.Second):
			s.t.Fatal("the stream did not end")
		}
	}
}

func (s *sse) close() {
	s.cancel()
	s.res.Body.Close()
}

// storedEvent is the event JSON of the contract.
type storedEvent struct {
	ID        int64           `json:"id"`
	Timestamp string          `json:"timestamp"`
	Pid       string          `json:"pid"`
	Domain    string          `json:"domain"`
	Name      string          `json:"name"`
	Data      json.RawMessage `json:"data"`
}

func decodeEvent(t *testing.T, m message) storedEvent {
	t.Helper()
	var ev storedEvent
	if err := json.Unmarshal([]byte(m.data), &ev); err != nil {
		t.Fatalf("event %q: %v", m.data, err)
	}
	if strconv.FormatInt(ev.ID, 10) != m.id {
		t.Fatalf("message id %q but event id %d", m.id, ev.ID)
	}
	return ev
}

// eventually polls cond until it holds or 10 s passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// actors lists the live actors of kind.
func (h *harness) actors(kind string) []supervision.Entry {
	entries, _ := h.srv.Actors(supervision.Filter{Kind: kind}, 0, 0)
	return entries
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(bytes.TrimSpace(b))
}

// send sends req; the caller closes the body.
func (h *harness) send(req *http.Request) *http.Response {
	h.t.Helper()
	res, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return res
}
