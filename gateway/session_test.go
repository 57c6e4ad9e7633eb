package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/eventsource/eventsource/server"
)

// newSession creates a session and returns its id.
func (h *harness) newSession() string {
	h.t.Helper()
	var res struct{ ID string }
	h.must("POST", "/sessions", "", http.StatusCreated, &res)
	if len(res.ID) < 16 {
		h.t.Fatalf("session id %q", res.ID)
	}
	return res.ID
}

// stream opens a session's stream and checks that it begins with
// registered.
func (h *harness) stream(id string, headers map[string]string) *sse {
	h.t.Helper()
	s := h.open("/sessions/"+id+"/stream", headers)
	m := s.expect("registered")
	if m.data != `{"id":"`+id+`"}` {
		h.t.Fatalf("registered %q", m.data)
	}
	return s
}

func (h *harness) listen(id, key string) []string {
	h.t.Helper()
	var res struct{ Keys []string }
	h.must("POST", "/sessions/"+id+"/listen", jsonString(map[string]string{"key": key}), http.StatusOK, &res)
	return res.Keys
}

func (h *harness) task(id, body string) string {
	h.t.Helper()
	var res struct{ Task string }
	h.must("POST", "/sessions/"+id+"/tasks", body, http.StatusAccepted, &res)
	return res.Task
}

// notification is a notify message's data.
type notification struct {
	Key      string          `json:"key"`
	Event    *storedEvent    `json:"event"`
	Time     string          `json:"time"`
	Sessions int             `json:"sessions"`
	Keys     map[string]int  `json:"keys"`
	Raw      json.RawMessage `json:"-"`
}

func decodeNotify(t *testing.T, m message) notification {
	t.Helper()
	if m.event != "notify" {
		t.Fatalf("got %q (%s), want notify", m.event, m.data)
	}
	var n notification
	if err := json.Unmarshal([]byte(m.data), &n); err != nil {
		t.Fatalf("notify %q: %v", m.data, err)
	}
	return n
}

// seqs checks that a session's messages carry consecutive ids from first.
func checkSeq(t *testing.T, m message, want int64) {
	t.Helper()
	if m.id != strconv.FormatInt(want, 10) {
		t.Fatalf("%s message has id %q, want %d", m.event, m.id, want)
	}
}

func TestSessionListens(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *server.Config) { c.HTTP.TickInterval = 50 * time.Millisecond })
	id := h.newSession()
	s := h.stream(id, nil)
	if keys := h.listen(id, "domain:shop"); strings.Join(keys, ",") != "domain:shop" {
		t.Fatalf("keys %v", keys)
	}
	h.listen(id, "domain:shop/name:paid")
	h.listen(id, "pid:o7")
	keys := h.listen(id, "listeners-changed")
	if strings.Join(keys, ",") != "domain:shop,domain:shop/name:paid,listeners-changed,pid:o7" {
		t.Fatalf("keys %v", keys)
	}
	seq := int64(1)
	m := s.expect("notify")
	checkSeq(t, m, seq)
	n := decodeNotify(t, m)
	if n.Key != "listeners-changed" || n.Sessions != 1 || n.Keys["domain:shop"] != 1 || n.Keys["pid:o7"] != 1 {
		t.Fatalf("listeners-changed %+v", n)
	}

	// Another session listening changes the counts.
	other := h.newSession()
	h.listen(other, "domain:shop")
	for n.Sessions != 2 || n.Keys["domain:shop"] != 2 {
		m = s.expect("notify")
		seq++
		checkSeq(t, m, seq)
		n = decodeNotify(t, m)
		if n.Key != "listeners-changed" {
			t.Fatalf("unexpected %+v", n)
		}
	}

	// One event can match several keys: one notify per key.
	ids := h.post(event("shop", "paid", "o7", 1))
	got := map[string]bool{}
	for len(got) < 3 {
		m = s.expect("notify")
		seq++
		checkSeq(t, m, seq)
		n = decodeNotify(t, m)
		if n.Key == "listeners-changed" {
			continue // the other session's listen may still be on its way
		}
		if n.Event == nil || n.Event.ID != ids[0] {
			t.Fatalf("notify %+v, want event %d", n, ids[0])
		}
		got[n.Key] = true
	}
	if !got["domain:shop"] || !got["domain:shop/name:paid"] || !got["pid:o7"] {
		t.Fatalf("keys notified %v", got)
	}

	// Unlisten: the domain key goes quiet, the pid key still hears.
	var res struct{ Keys []string }
	h.must("POST", "/sessions/"+id+"/unlisten", `{"key":"domain:shop"}`, 200, &res)
	h.must("POST", "/sessions/"+id+"/unlisten", `{"key":"domain:shop/name:paid"}`, 200, &res)
	h.must("POST", "/sessions/"+id+"/unlisten", `{"key":"listeners-changed"}`, 200, &res)
	if strings.Join(res.Keys, ",") != "pid:o7" {
		t.Fatalf("keys after unlisten %v", res.Keys)
	}
	ids = h.post(event("shop", "created", "o8", 1), event("shop", "paid", "o7", 2))
	for {
		n = decodeNotify(t, s.expect("notify"))
		if n.Key == "listeners-changed" {
			continue // sent before the unlisten took effect
		}
		if n.Key != "pid:o7" || n.Event.ID != ids[1] {
			t.Fatalf("after unlisten: %+v", n)
		}
		break
	}

	// The tick key.
	h.listen(id, "tick")
	n = decodeNotify(t, s.expect("notify"))
	if _, err := time.Parse(time.RFC3339Nano, n.Time); n.Key != "tick" || err != nil {
		t.Fatalf("tick %+v", n)
	}

	// Bad keys and bodies.
	for _, body := range []string{`{"key":"orders"}`, `{"key":""}`, `{"key":"domain:"}`, `{"key":"domain:a/name:"}`, `{"nokey":1}`, `[`} {
		status, b := h.do("POST", "/sessions/"+id+"/listen", body, "")
		if status != 400 || !strings.Contains(string(b), `"code":"bad_request"`) {
			t.Fatalf("listen %s: %d %s", body, status, b)
		}
	}
}

func TestSessionTasks(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *server.Config) { c.HTTP.Buffer = 16; c.HTTP.PageSize = 64 })
	var docs []map[string]any
	for i := 0; i < 300; i++ {
		docs = append(docs, event("catalog", "added", fmt.Sprintf("item-%03d", i), map[string]int{"n": i}))
	}
	ids := h.post(docs...)
	id := h.newSession()
	s := h.stream(id, nil)

	// A fetch: its rows in order, progress per page, then completed.
	task := h.task(id, `{"type":"fetch","query":{"$select":{"$columns":["id","pid","data"],"$where":{"domain":"catalog"}}}}`)
	rows, lastProgress := 0, int64(0)
	for done := false; !done; {
		m, ok := s.next(10 * time.Second)
		if !ok {
			t.Fatal("stream ended")
		}
		switch m.event {
		case "row":
			var r struct {
				Task string
				Row  struct {
					ID   int64
					Pid  string
					Data struct{ N int }
				}
			}
			if err := json.Unmarshal([]byte(m.data), &r); err != nil {
				t.Fatal(err)
			}
			if r.Task != task || r.Row.ID != ids[rows] || r.Row.Data.N != rows {
				t.Fatalf("row %d: %s", rows, m.data)
			}
			rows++
		case "progress":
			var p struct{ Rows int64 }
			_ = json.Unmarshal([]byte(m.data), &p)
			if p.Rows != int64(rows) || p.Rows <= lastProgress {
				t.Fatalf("progress %s after %d rows", m.data, rows)
			}
			lastProgress = p.Rows
		case "completed":
			if m.data != `{"task":"`+task+`","rows":300}` {
				t.Fatalf("completed %s", m.data)
			}
			done = true
		default:
			t.Fatalf("unexpected %s %s", m.event, m.data)
		}
	}
	if rows != 300 || lastProgress != 300 {
		t.Fatalf("%d rows, last progress %d", rows, lastProgress)
	}

	// A bulk persist: progress per chunk, then every id.
	var events []map[string]any
	for i := 0; i < 250; i++ {
		events = append(events, event("bulk", "loaded", "b", i))
	}
	task = h.task(id, jsonString(map[string]any{"type": "persist", "events": events}))
	for _, done := range []int{100, 200, 250} {
		if m := s.expect("progress"); m.data != fmt.Sprintf(`{"task":"%s","done":%d,"total":250}`, task, done) {
			t.Fatalf("progress %s", m.data)
		}
	}
	var completed struct{ IDs []int64 }
	if err := json.Unmarshal([]byte(s.expect("completed").data), &completed); err != nil || len(completed.IDs) != 250 {
		t.Fatalf("completed: %v %v", completed, err)
	}
	// Persisted like any event: a Redis fetch reads them.
	n := 0
	for _, err := range h.cl.Fetch(context.Background(), `{"$select":{"$where":{"domain":"bulk"}}}`) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 250 {
		t.Fatalf("Redis fetch read %d bulk events", n)
	}

	// Refused tasks.
	for _, tc := range []struct{ body, msg string }{
		{`{"type":"fetch"}`, "a fetch needs a"},
		{`{"type":"fetch","query":{"$delete":{}}}`, "$select"},
		{`{"type":"fetch","query":{"$select":{"$where":{"nope":1}}}}`, `unknown column \"nope\"`},
		{`{"type":"persist","events":[]}`, "the array is empty"},
		{`{"type":"persist","events":[{"pid":"p","domain":"d","name":"n"}]}`, `data\" is required`},
		{`{"type":"sleep"}`, `type\" must be`},
		{`{"type":"fetch","query":{},"extra":1}`, `unknown field \"extra\"`},
	} {
		status, b := h.do("POST", "/sessions/"+id+"/tasks", tc.body, "")
		if status != 400 || !strings.Contains(string(b), tc.msg) {
			t.Fatalf("task %s: %d %s, want 400 with %q", tc.body, status, b, tc.msg)
		}
	}
}

func TestSessionCancelsTask(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	var docs []map[string]any
	for i := 0; i < 50; i++ {
		docs = append(docs, event("big", "e", "p", i))
	}
	h.post(docs...)
	id := h.newSession()
	// No stream yet: a fetch's rows wait for one (the connection's
	// backpressure), so the task is still running when cancelled.
	task := h.task(id, `{"type":"fetch","query":{"$select":{"$where":{"domain":"big"}}}}`)
	h.must("DELETE", "/sessions/"+id+"/tasks/"+task, "", http.StatusAccepted, nil)
	status, b := h.do("DELETE", "/sessions/"+id+"/tasks/"+task, "", "")
	if status != 404 || !strings.Contains(string(b), "not_found") {
		t.Fatalf("second cancel: %d %s", status, b)
	}
	s := h.stream(id, nil)
	if m := s.expect("cancelled"); m.data != `{"task":"`+task+`"}` || m.id != "1" {
		t.Fatalf("cancelled %s %s", m.id, m.data)
	}
	// The next task runs to completion; nothing of the cancelled one
	// follows.
	next := h.task(id, `{"type":"fetch","query":{"$select":{"$where":{"domain":"big"},"$limit":2}}}`)
	for _, want := range []string{"row", "row", "progress", "completed"} {
		m := s.expect(want)
		if !strings.Contains(m.data, `"task":"`+next+`"`) {
			t.Fatalf("%s of another task: %s", want, m.data)
		}
	}
}

// Dropping the connection and resuming with Last-Event-ID gives the
// messages after it, each once.
func TestSessionResumes(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	id := h.newSession()
	h.listen(id, "domain:chat")
	s := h.stream(id, nil)
	var ids []int64
	for i := 0; i < 10; i++ {
		ids = append(ids, h.post(event("chat", "said", "u", i))...)
	}
	last := ""
	for i := 0; i < 4; i++ {
		m := s.expect("notify")
		last = m.id
	}
	s.close()
	for i := 0; i < 5; i++ {
		ids = append(ids, h.post(event("chat", "said", "u", 10+i))...)
	}
	s = h.open("/sessions/"+id+"/stream", map[string]string{"Last-Event-ID": last})
	if m := s.expect("registered"); m.id != last {
		t.Fatalf("registered id %q, want the resumption point %q", m.id, last)
	}
	want, _ := strconv.ParseInt(last, 10, 64)
	for i := 4; i < 15; i++ {
		want++
		m := s.expect("notify")
		checkSeq(t, m, want)
		if n := decodeNotify(t, m); n.Event.ID != ids[i] {
			t.Fatalf("after resume: event %d, want %d", n.Event.ID, ids[i])
		}
	}
	status, _ := h.do("GET", "/sessions/"+id+"/stream?lastEventId=999", "", "")
	if status != 400 {
		t.Fatalf("resume ahead of the session: %d", status)
	}
}

// A reader too slow for the buffer gets reconnect and resumes from it
// without a gap.
func TestSessionSlowReaderReconnects(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *server.Config) { c.HTTP.Buffer = 4; c.HTTP.SessionGrace = time.Minute })
	id := h.newSession()
	h.listen(id, "domain:feed")
	s := h.openPaused("/sessions/"+id+"/stream", nil)
	pad := strings.Repeat("z", 32<<10)
	var ids []int64
	for i := 0; i < 16; i++ {
		batch := make([]map[string]any, 25)
		for j := range batch {
			batch[j] = event("feed", "item", "p", pad)
		}
		ids = append(ids, h.post(batch...)...)
	}
	s.resume()
	s.expect("registered")
	var seen []int64
	seq := int64(0)
	reconnected := false
	for len(seen) < len(ids) {
		m, ok := s.next(20 * time.Second)
		if !ok {
			t.Fatalf("stream ended without reconnect after %d events", len(seen))
		}
		if m.event == "reconnect" {
			if !strings.Contains(m.data, "slow reader") || m.id != strconv.FormatInt(seq, 10) {
				t.Fatalf("reconnect %s %s after seq %d", m.id, m.data, seq)
			}
			s.ended()
			reconnected = true
			s = h.open("/sessions/"+id+"/stream", map[string]string{"Last-Event-ID": m.id})
			s.expect("registered")
			continue
		}
		seq++
		checkSeq(t, m, seq)
		seen = append(seen, decodeNotify(t, m).Event.ID)
	}
	if !reconnected {
		t.Fatal("the slow reader was never told to reconnect")
	}
	for i := range ids {
		if seen[i] != ids[i] {
			t.Fatalf("event %d: %d, want %d", i, seen[i], ids[i])
		}
	}
}

// Disconnect frees everything of a session; so does dropping the
// connection once the grace period passed. No actor, listener or
// goroutine is left behind.
func TestSessionsLeaveNothingBehind(t *testing.T) {
	h := start(t, func(c *server.Config) {
		c.HTTP.SessionGrace = 300 * time.Millisecond
		c.HTTP.Buffer = 8
		c.HTTP.TickInterval = 20 * time.Millisecond
	})
	var docs []map[string]any
	for i := 0; i < 200; i++ {
		docs = append(docs, event("inv", "e", "p", i))
	}
	h.post(docs...)
	// Warm up the pools, then count.
	warm := h.open("/events?domain=inv&since=0", nil)
	warm.expect("e")
	warm.close()
	eventually(t, "warm-up stream gone", func() bool { return len(h.actors("sse")) == 0 })
	h.http.CloseIdleConnections()
	time.Sleep(200 * time.Millisecond)
	baseline := httpGoroutines()

	busy := func() (string, *sse) {
		id := h.newSession()
		for _, k := range []string{"domain:inv", "pid:p", "tick", "listeners-changed"} {
			h.listen(id, k)
		}
		s := h.openPaused("/sessions/"+id+"/stream", nil)
		h.task(id, `{"type":"fetch","query":{"$select":{"$where":{"domain":"inv"}}}}`) // paced: stays running
		return id, s
	}
	leaver, ls := busy()
	dropper, ds := busy()
	events := h.open("/events?domain=inv", nil)
	eventually(t, "actors registered", func() bool { return len(h.actors("session")) == 2 && len(h.actors("sse")) == 1 })
	if parents := h.actors("session")[0].Parent; parents != "http" {
		t.Fatalf("session parent %q, want http", parents)
	}

	// Disconnect: closed, then the stream ends.
	h.must("POST", "/sessions/"+leaver+"/disconnect", "", 200, nil)
	ls.resume()
	for {
		m, ok := ls.next(10 * time.Second)
		if !ok {
			t.Fatal("stream ended without closed")
		}
		if m.event == "closed" {
			if m.data != `{"reason":"disconnected"}` {
				t.Fatalf("closed %s", m.data)
			}
			break
		}
	}
	ls.ended()
	status, _ := h.do("POST", "/sessions/"+leaver+"/listen", `{"key":"tick"}`, "")
	if status != 404 {
		t.Fatalf("listen after disconnect: %d", status)
	}
	// Drop: the client just goes away.
	ds.close()
	events.close()
	eventually(t, "dropped session freed after the grace period", func() bool {
		status, _ := h.do("POST", "/sessions/"+dropper+"/listen", `{"key":"tick"}`, "")
		return status == 404
	})
	gw := h.srv.Gateway()
	eventually(t, "no actor, listener or session left", func() bool {
		listeners, sessions := gw.Listeners()
		return len(h.actors("session")) == 0 && len(h.actors("sse")) == 0 && listeners == 0 && sessions == 0
	})
	h.http.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for httpGoroutines() > baseline {
		if time.Now().After(deadline) {
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			t.Fatalf("%d goroutines of the gateway and its connections, %d before the sessions", httpGoroutines(), baseline)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpGoroutines counts the goroutines of the gateway and of HTTP
// connections, server and client side. (The MySQL and Redis pools keep
// goroutines per pooled connection, which come and go with the load.)
func httpGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "eventsource/gateway.") || strings.Contains(g, "net/http.") {
			count++
		}
	}
	return count
}

// A session actor that fails is stopped and its stream closed; other
// sessions go on.
func TestFailingSessionIsIsolated(t *testing.T) {
	t.Parallel()
	h := start(t, nil, server.WithChildMiddleware(func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
			if fmt.Sprintf("%T", env.Message) == "gateway.listenReq" && strings.Contains(fmt.Sprint(env.Message), "domain:boom") {
				panic("injected session fault")
			}
			next(ctx, env)
		}
	}))
	victim, bystander := h.newSession(), h.newSession()
	vs, bs := h.stream(victim, nil), h.stream(bystander, nil)
	h.listen(bystander, "domain:ok")
	status, _ := h.do("POST", "/sessions/"+victim+"/listen", `{"key":"domain:boom"}`, "")
	if status < 400 {
		t.Fatalf("listen that crashed the session: %d", status)
	}
	if m := vs.expect("closed"); m.data != `{"reason":"internal error"}` {
		t.Fatalf("victim closed %s", m.data)
	}
	vs.ended()
	eventually(t, "victim gone", func() bool { return len(h.actors("session")) == 1 })
	ids := h.post(event("ok", "n", "p", 1))
	if n := decodeNotify(t, bs.expect("notify")); n.Event.ID != ids[0] {
		t.Fatalf("bystander: %+v", n)
	}
}

// Operators stop a session by name; shutdown closes every session and
// stream with a reason.
func TestStopAndShutdown(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	stopped, kept := h.newSession(), h.newSession()
	ss, ks := h.stream(stopped, nil), h.stream(kept, nil)
	events := h.open("/events?domain=x", nil)
	found, err := h.srv.StopActor(context.Background(), "session:"+stopped)
	if err != nil || !found {
		t.Fatalf("stop: %v %v", found, err)
	}
	if m := ss.expect("closed"); m.data != `{"reason":"stopped by an operator"}` {
		t.Fatalf("closed %s", m.data)
	}
	ss.ended()
	if found, err := h.srv.StopActor(context.Background(), "session:nope"); found || err != nil {
		t.Fatalf("stop unknown: %v %v", found, err)
	}
	// A stream too: it is told to reconnect.
	other := h.open("/events?domain=y", nil)
	eventually(t, "two stream actors", func() bool { return len(h.actors("sse")) == 2 })
	var name string
	for _, a := range h.actors("sse") {
		if a.Channel == "domain=y" {
			name = a.Name
		}
	}
	if found, err := h.srv.StopActor(context.Background(), name); err != nil || !found {
		t.Fatalf("stop %s: %v %v", name, found, err)
	}
	if m := other.expect("reconnect"); m.data != `{"reason":"stopped by an operator"}` {
		t.Fatalf("stopped stream: %s", m.data)
	}
	other.ended()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if m := ks.expect("closed"); m.data != `{"reason":"shutdown"}` {
		t.Fatalf("closed %s", m.data)
	}
	ks.ended()
	if m := events.expect("reconnect"); m.data != `{"reason":"shutdown"}` {
		t.Fatalf("event stream: %s", m.data)
	}
	events.ended()
}

// When the live feed has a hole (here the server's Redis subscriber
// connection is killed, so commit notifications may be lost), a session
// hears "lost" for each event key, in order with its other messages, and
// the keys go on listening once the server has resubscribed.
func TestSessionHearsAFeedHole(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	id := h.newSession()
	s := h.stream(id, nil)
	h.listen(id, "domain:holes")
	h.listen(id, "pid:h1")

	ctx := context.Background()
	list, err := h.rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for line := range strings.SplitSeq(list, "\n") {
		fields := map[string]string{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["name"] == h.cfg.Redis.ClientName && fields["sub"] != "" && fields["sub"] != "0" {
			if err := h.rdb.Do(ctx, "CLIENT", "KILL", "ID", fields["id"]).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed == 0 {
		t.Fatal("found no subscriber connection of the server to kill")
	}
	lost := map[string]string{}
	for len(lost) < 2 {
		m := s.expect("lost")
		var l struct{ Key, Reason string }
		if err := json.Unmarshal([]byte(m.data), &l); err != nil {
			t.Fatal(err)
		}
		lost[l.Key] = l.Reason
	}
	if !strings.Contains(lost["domain:holes"], "Redis") || lost["pid:h1"] != lost["domain:holes"] {
		t.Fatalf("lost %v", lost)
	}

	// Once the subscriber is back, each key hears a second "lost": what
	// was announced between the first and the resubscription is missed.
	back := map[string]string{}
	for len(back) < 2 {
		m := s.expect("lost")
		var l struct{ Key, Reason string }
		if err := json.Unmarshal([]byte(m.data), &l); err != nil {
			t.Fatal(err)
		}
		back[l.Key] = l.Reason
	}
	if !strings.Contains(back["domain:holes"], "is back") || back["pid:h1"] != back["domain:holes"] {
		t.Fatalf("lost once the subscriber is back: %v", back)
	}
	ids := h.post(event("holes", "after", "h2", 1))
	if n := decodeNotify(t, s.expect("notify")); n.Key != "domain:holes" || n.Event == nil || n.Event.ID != ids[0] {
		t.Fatalf("notify after the hole: %+v", n)
	}
}
