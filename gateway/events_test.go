package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/internal/testserver"
	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/server"
)

func TestPostEventsRefusesBadBodies(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *server.Config) { c.HTTP.MaxBodyBytes = 4096 })
	big := `{"pid":"p","domain":"d","name":"n","data":"` + strings.Repeat("x", 5000) + `"}`
	for _, tc := range []struct {
		name, body string
		status     int
		code, msg  string
	}{
		{"not JSON", `{"pid":`, 400, "bad_request", "events: unexpected end of JSON"},
		{"a string", `"hello"`, 400, "bad_request", "want an event object or an array"},
		{"empty array", `[]`, 400, "bad_request", "the array is empty"},
		{"no pid", `{"domain":"d","name":"n","data":1}`, 400, "bad_request", `"pid" must be a non-empty string`},
		{"empty domain", `{"pid":"p","domain":"","name":"n","data":1}`, 400, "bad_request", `"domain" must be a non-empty string`},
		{"pid a number", `{"pid":1,"domain":"d","name":"n","data":1}`, 400, "bad_request", `"pid" must be a string`},
		{"no data", `{"pid":"p","domain":"d","name":"n"}`, 400, "bad_request", `"data" is required`},
		{"unknown field", `{"pid":"p","domain":"d","name":"n","data":1,"id":7}`, 400, "bad_request", `unknown field "id"`},
		{"second event bad", `[{"pid":"p","domain":"d","name":"n","data":1},{"pid":"p","domain":"d","data":1}]`, 400, "bad_request", `event 1: "name"`},
		{"trailing data", `{"pid":"p","domain":"d","name":"n","data":1} {}`, 400, "bad_request", "unexpected data after the JSON value"},
		{"too large", big, 413, "too_large", "exceeds 4096 bytes"},
		{"empty", ``, 400, "bad_request", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := h.do("POST", "/events", tc.body, "")
			var res struct{ Error, Code string }
			if err := json.Unmarshal(b, &res); err != nil {
				t.Fatalf("body %s is not a JSON error: %v", b, err)
			}
			if status != tc.status || res.Code != tc.code || !strings.Contains(res.Error, tc.msg) {
				t.Fatalf("got %d %+v, want %d %s containing %q", status, res, tc.status, tc.code, tc.msg)
			}
		})
	}
	// Nothing of the refused bodies was stored.
	s := h.open("/events?domain=d&since=0", nil)
	ids := h.post(event("d", "n", "p", 1))
	if ev := decodeEvent(t, s.expect("n")); ev.ID != ids[0] {
		t.Fatalf("first stored event is %d, want the one posted after the refusals, %d", ev.ID, ids[0])
	}
}

func TestStreamRefusesBadRequests(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	for _, tc := range []struct {
		name, path string
		headers    map[string]string
		status     int
		code       string
	}{
		{"no domain", "/events", nil, 400, "bad_request"},
		{"bad since", "/events?domain=d&since=-1", nil, 400, "bad_request"},
		{"bad Last-Event-ID", "/events?domain=d", map[string]string{"Last-Event-ID": "x"}, 400, "bad_request"},
		{"unknown endpoint", "/nope", nil, 404, "not_found"},
		{"no such session", "/sessions/abc/stream", nil, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", h.base+tc.path, nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			res := h.send(req)
			defer res.Body.Close()
			var body struct{ Error, Code string }
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.status || body.Code != tc.code || body.Error == "" {
				t.Fatalf("got %d %+v, want %d %s", res.StatusCode, body, tc.status, tc.code)
			}
		})
	}
}

// Stored events first, then live ones, each once, whichever side
// persisted them: HTTP or Redis.
func TestStreamReplaysThenFollows(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	stored := h.post(event("shop", "created", "o1", map[string]int{"total": 42}), event("shop", "paid", "o1", "card"),
		event("other", "created", "x", 1))

	all := h.open("/events?domain=shop&since=0", nil)
	named := h.open("/events?domain=shop&name=created", map[string]string{"Last-Event-ID": "0"})
	byPid := h.open("/events?domain=shop&pid=o2&lastEventId=0", nil)
	fresh := h.open("/events?domain=shop", nil)

	first := decodeEvent(t, all.expect("created"))
	if first.ID != stored[0] || first.Pid != "o1" || string(first.Data) != `{"total":42}` || !strings.HasSuffix(first.Timestamp, "Z") {
		t.Fatalf("first replayed event: %+v", first)
	}
	if ev := decodeEvent(t, all.expect("paid")); ev.ID != stored[1] {
		t.Fatalf("second replayed event: %+v", ev)
	}
	if ev := decodeEvent(t, named.expect("created")); ev.ID != stored[0] {
		t.Fatalf("name filter replayed %+v", ev)
	}
	// fresh starts at the newest id and says so, without an event.
	eventually(t, "fresh stream's start id", func() bool { return fresh.last() == strconv.FormatInt(stored[2], 10) })

	// Live: one over Redis, one over HTTP.
	ok, err := h.cl.Persist(context.Background(), client.Document{PID: "o2", Domain: "shop", Name: "created", Data: map[string]int{"n": 1}})
	if err != nil {
		t.Fatal(err)
	}
	viaHTTP := h.post(event("shop", "shipped", "o1", nil))
	for _, s := range []*sse{all, fresh} {
		if ev := decodeEvent(t, s.expect("created")); ev.ID != ok.InsertID || ev.Pid != "o2" || string(ev.Data) != `{"n":1}` {
			t.Fatalf("live event from Redis: %+v", ev)
		}
		if ev := decodeEvent(t, s.expect("shipped")); ev.ID != viaHTTP[0] {
			t.Fatalf("live event from HTTP: %+v", ev)
		}
	}
	if ev := decodeEvent(t, named.expect("created")); ev.ID != ok.InsertID {
		t.Fatalf("name filter live: %+v", ev)
	}
	if ev := decodeEvent(t, byPid.expect("created")); ev.ID != ok.InsertID {
		t.Fatalf("pid filter live: %+v", ev)
	}
	// Nothing else arrives on the filtered streams.
	h.post(event("shop", "paid", "o9", 1))
	if ev := decodeEvent(t, all.expect("paid")); ev.Pid != "o9" {
		t.Fatalf("unfiltered stream: %+v", ev)
	}
	select {
	case m := <-named.msgs:
		t.Fatalf("name filter let through %+v", m)
	case m := <-byPid.msgs:
		t.Fatalf("pid filter let through %+v", m)
	case <-time.After(200 * time.Millisecond):
	}
}

// Events posted over HTTP are rows for Redis fetches, like any persist.
func TestRedisFetchReadsPostedEvents(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ids := h.post(event("crm", "signed", "c1", map[string]any{"plan": "pro", "seats": 3}), event("crm", "left", "c1", []int{1}))
	var got []storedEvent
	for row, err := range h.cl.Fetch(context.Background(), `{"$select":{"$where":{"pid":"c1"}}}`, client.WithDecode()) {
		if err != nil {
			t.Fatal(err)
		}
		var ev storedEvent
		if err := row.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	if len(got) != 2 || got[0].ID != ids[0] || got[1].ID != ids[1] || got[0].Name != "signed" || string(got[0].Data) != `{"plan":"pro","seats":3}` {
		t.Fatalf("fetched %+v, want ids %v", got, ids)
	}
}

// A reader that disconnects and resumes with Last-Event-ID while events
// keep arriving sees every event exactly once, in order.
func TestResumeLosesNothingWhileWriting(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *server.Config) { c.HTTP.PageSize = 7 }) // many pages per replay
	const total = 600
	var wg sync.WaitGroup
	wg.Add(1)
	var mu sync.Mutex
	var written []int64
	go func() {
		defer wg.Done()
		for i := 0; i < total; {
			n := min(1+i%5, total-i)
			batch := make([]map[string]any, n)
			for j := range batch {
				batch[j] = event("flow", "tick", fmt.Sprintf("p%d", (i+j)%3), i+j)
			}
			ids := h.post(batch...)
			mu.Lock()
			written = append(written, ids...)
			mu.Unlock()
			i += n
			if i%40 == 0 {
				h.post(event("noise", "tick", "p0", i)) // another domain, interleaved
			}
		}
	}()

	var seen []int64
	last := "0"
	for round := 0; ; round++ {
		s := h.open("/events?domain=flow", map[string]string{"Last-Event-ID": last})
		// Read a few, then drop the connection.
		for i := 0; i < 37+round; i++ {
			m, ok := s.next(10 * time.Second)
			if !ok {
				t.Fatal("stream ended")
			}
			ev := decodeEvent(t, m)
			seen = append(seen, ev.ID)
			last = m.id
			if len(seen) == total {
				break
			}
		}
		s.close()
		if len(seen) == total {
			break
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(written) {
		t.Fatalf("saw %d events, %d were written", len(seen), len(written))
	}
	for i := range seen {
		if seen[i] != written[i] {
			t.Fatalf("event %d: saw id %d, written %d (lost or repeated)", i, seen[i], written[i])
		}
	}
}

// A reader too slow for its buffer is told to reconnect, and resuming
// with Last-Event-ID loses nothing.
func TestSlowReaderReconnectsWithoutLoss(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *server.Config) { c.HTTP.Buffer = 4; withAdmin(c) })
	const lost = `eventsource_sse_feed_lost_total{cause="slow_reader"}`
	before := h.scrape()[lost]
	s := h.openPaused("/events?domain=bulk", map[string]string{"Last-Event-ID": "0"})
	// Nothing reads the stream while big events pile up: the socket
	// buffers fill, the handler blocks, the listener's buffer overflows.
	pad := strings.Repeat("x", 32<<10)
	var ids []int64
	for i := 0; i < 40; i++ {
		batch := make([]map[string]any, 25)
		for j := range batch {
			batch[j] = event("bulk", "big", "p", pad)
		}
		ids = append(ids, h.post(batch...)...)
	}
	s.resume()
	var seen []int64
	reconnected := false
	for len(seen) < len(ids) {
		m, ok := s.next(20 * time.Second)
		if !ok {
			t.Fatalf("stream ended without reconnect after %d events", len(seen))
		}
		if m.event == "reconnect" {
			if !strings.Contains(m.data, "slow reader") {
				t.Fatalf("reconnect %q", m.data)
			}
			s.ended()
			reconnected = true
			s = h.open("/events?domain=bulk", map[string]string{"Last-Event-ID": m.id})
			continue
		}
		seen = append(seen, decodeEvent(t, m).ID)
	}
	if !reconnected {
		t.Fatal("the slow reader was never told to reconnect")
	}
	if got := h.scrape()[lost]; got <= before {
		t.Errorf("%s = %v after the slow reader was told to reconnect, %v before", lost, got, before)
	}
	for i := range ids {
		if seen[i] != ids[i] {
			t.Fatalf("event %d: saw %d, want %d", i, seen[i], ids[i])
		}
	}
}

// The global cap alone: whole shares, so that neither the streams' share
// nor the per-subject ones refuse first (admission_test.go tests those).
func TestLimits(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *server.Config) {
		c.HTTP.MaxConnections = 2
		c.HTTP.StreamShare, c.HTTP.SubjectStreams, c.HTTP.SubjectRequests = 1, 1, 1
	})
	h.open("/events?domain=a", nil)
	h.open("/events?domain=b", nil)
	status, b := h.do("POST", "/events", `{"pid":"p","domain":"a","name":"n","data":1}`, "")
	if status != http.StatusTooManyRequests || !strings.Contains(string(b), `"code":"too_many"`) {
		t.Fatalf("third connection: %d %s", status, b)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *server.Config) { c.HTTP.CORSOrigins = []string{"https://app.example"} })
	for _, tc := range []struct {
		origin     string
		status     int
		allowOrig  string
		allowHeads bool
	}{
		{"https://app.example", 204, "https://app.example", true},
		{"https://evil.example", 403, "", false},
	} {
		t.Run(tc.origin, func(t *testing.T) {
			req, _ := http.NewRequest("OPTIONS", h.base+"/events", nil)
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, if-match")
			res := h.send(req)
			res.Body.Close()
			allowed := res.Header.Get("Access-Control-Allow-Headers")
			if res.StatusCode != tc.status || res.Header.Get("Access-Control-Allow-Origin") != tc.allowOrig ||
				strings.Contains(allowed, "Last-Event-ID") != tc.allowHeads || strings.Contains(allowed, "If-Match") != tc.allowHeads {
				t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
			}
		})
	}
}

// Events committed by another server on the same Redis and database reach
// this server's streams.
func TestStreamHearsAnotherServer(t *testing.T) {
	t.Parallel()
	a := start(t, nil)
	cfg := a.cfg
	prefix := "gw-b-" + testserver.RandomHex(4) + ":"
	cfg.FetchChannel, cfg.PersistChannel, cfg.FetchNextChannel = prefix+"fetch", prefix+"persist", prefix+"fetch-next"
	cfg.Redis.ClientName = "es-test-" + testserver.RandomHex(4)
	b := testserver.Start(t, cfg, nil)
	s := a.open("/events?domain=shared", nil)
	// Posted to b, over HTTP.
	req, _ := http.NewRequest("POST", "http://"+b.HTTPAddr().String()+"/events", strings.NewReader(`{"pid":"p","domain":"shared","name":"from-b","data":1}`))
	res := a.send(req)
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("POST to the other server: %d", res.StatusCode)
	}
	if ev := decodeEvent(t, s.expect("from-b")); ev.Domain != "shared" {
		t.Fatalf("%+v", ev)
	}
}

// No client may take the commit channel as its response channel: the
// server does not answer there, so the channel carries notifications only.
func TestCommitChannelIsReserved(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := context.Background()
	ps := h.rdb.Subscribe(ctx, h.cfg.CommitChannel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	bad := `{"channel":"` + h.cfg.CommitChannel + `","query":{"$select":{}}}`
	if err := h.rdb.Publish(ctx, h.cfg.FetchChannel, bad).Err(); err != nil {
		t.Fatal(err)
	}
	ids := h.post(event("d", "n", "p", 1))
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"table":"%s","ranges":[[%d,%d]]}`, h.cfg.Tables[0], ids[0], ids[0])
	if msg.Payload != want {
		t.Fatalf("first message on the commit channel %q, want the notification %q", msg.Payload, want)
	}
	if m, err := ps.ReceiveTimeout(ctx, 300*time.Millisecond); err == nil {
		t.Fatalf("the server answered on the commit channel: %v", m)
	}
}

// A notification that a commit may have happened with ids unknown (a
// persist whose connection died while it committed) has every live stream
// catch up from the database: a reader that resumes hears the row that
// was committed unannounced.
func TestUncertainCommitHasStreamsCatchUp(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	s := h.open("/events?domain=unsure", map[string]string{"Last-Event-ID": "0"})
	first := h.post(event("unsure", "announced", "p", 1))
	if ev := decodeEvent(t, s.expect("announced")); ev.ID != first[0] {
		t.Fatalf("%+v", ev)
	}
	// A row committed behind the server's back: no notification.
	db, err := mysqlstore.Open(h.cfg.MySQL.StoreConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec("INSERT INTO " + h.cfg.Tables[0] + " (pid, domain, name, data) VALUES ('p', 'unsure', 'unannounced', '2')")
	if err != nil {
		t.Fatal(err)
	}
	hidden, _ := res.LastInsertId()
	note := messages.Committed{Table: h.cfg.Tables[0], Uncertain: true}
	if err := h.rdb.Publish(context.Background(), h.cfg.CommitChannel, note.Encode()).Err(); err != nil {
		t.Fatal(err)
	}
	m := s.expect("reconnect")
	if m.id != strconv.FormatInt(first[0], 10) {
		t.Fatalf("reconnect at %q, want after %d", m.id, first[0])
	}
	s.ended()
	s = h.open("/events?domain=unsure", map[string]string{"Last-Event-ID": m.id})
	if ev := decodeEvent(t, s.expect("unannounced")); ev.ID != hidden {
		t.Fatalf("resumed with %+v, want the unannounced row %d", ev, hidden)
	}
}
