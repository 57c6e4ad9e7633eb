package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/eventsource/eventsource/mysqlstore"
)

// postStep is one POST /events of a safe-writes case and what it must
// answer.
type postStep struct {
	ifMatch string // the If-Match header ("": none)
	// body: $D stands for the case's domain, $K for its prefix of event
	// ids (event ids are unique in the whole table).
	body   string
	status int
	// code and msg, for an error: its code, and text its message holds.
	code, msg string
	duplicate bool
	// sameAs is the 1-based step whose ids this one answers again (0:
	// none).
	sameAs int
}

// postResult is a POST /events answer: ids (and duplicate) or an error.
type postResult struct {
	IDs       []int64 `json:"ids"`
	Duplicate bool    `json:"duplicate"`
	Error     string  `json:"error"`
	Code      string  `json:"code"`
}

// postEvents sends a POST /events with an optional If-Match.
func (h *harness) postEvents(ifMatch, body string) (int, postResult, string) {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.base+"/events", strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	res := h.send(req)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	var out postResult
	if err := json.Unmarshal(b, &out); err != nil {
		h.t.Fatalf("POST /events answered %d %q: %v", res.StatusCode, b, err)
	}
	return res.StatusCode, out, string(b)
}

// storedIn lists the versions of domain's events in id order (-1 for
// none).
func (h *harness) storedIn(domain string) []int64 {
	h.t.Helper()
	db, err := mysqlstore.Open(h.cfg.MySQL.StoreConfig())
	if err != nil {
		h.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT COALESCE(version, -1) FROM "+h.cfg.Tables[0]+" WHERE domain = ? ORDER BY id", domain)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	var versions []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			h.t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		h.t.Fatal(err)
	}
	return versions
}

// Event ids and expected versions over HTTP: a retry is answered with the
// stored ids (200, duplicate), a conflict is a 409 that stores nothing, a
// malformed id or expectation a 400.
func TestPostEventsSafeWrites(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	const (
		a1     = `{"pid":"p","domain":"$D","name":"n","data":{"x":1},"eventId":"$Ka1"}`
		a1Same = `{"eventId":"$Ka1","data":{"x":1.0},"name":"n","domain":"$D","pid":"p"}` // same content, other spelling
		a1Else = `{"pid":"p","domain":"$D","name":"n","data":{"x":2},"eventId":"$Ka1"}`
		b2     = `{"pid":"p","domain":"$D","name":"n","data":[2],"eventId":"$Kb2"}`
		c3     = `{"pid":"p","domain":"$D","name":"n","data":"three","eventId":"$Kc3"}`
		plain  = `{"pid":"p","domain":"$D","name":"n","data":null}`
		other  = `{"pid":"q","domain":"$D","name":"n","data":1}`
	)
	for n, tc := range []struct {
		name  string
		steps []postStep
		// stored is how many events the case's domain holds at the end.
		stored int
		// check, if set, looks at every step's ids.
		check func(t *testing.T, ids [][]int64)
	}{
		{name: "retry with event ids", stored: 2, steps: []postStep{
			{body: "[" + a1 + "," + b2 + "]", status: 201},
			{body: "[" + a1Same + "," + b2 + "]", status: 200, duplicate: true, sameAs: 1},
			{body: "[" + a1 + "," + b2 + "]", status: 200, duplicate: true, sameAs: 1},
		}},
		{name: "one event retried", stored: 1, steps: []postStep{
			{body: a1, status: 201},
			{body: a1, status: 200, duplicate: true, sameAs: 1},
		}},
		{name: "stored and new ids mixed", stored: 3, steps: []postStep{
			{body: a1, status: 201},
			{body: "[" + a1 + "," + b2 + "," + c3 + "]", status: 201},
			{body: "[" + c3 + "," + a1 + "]", status: 200, duplicate: true},
		}, check: func(t *testing.T, ids [][]int64) {
			if ids[1][0] != ids[0][0] || ids[1][1] <= ids[0][0] || ids[1][2] != ids[1][1]+1 {
				t.Fatalf("mixed post answered %v after %v: want the stored id first, then two new ones", ids[1], ids[0])
			}
			if !slices.Equal(ids[2], []int64{ids[1][2], ids[0][0]}) {
				t.Fatalf("retry in another order answered %v, want %v", ids[2], []int64{ids[1][2], ids[0][0]})
			}
		}},
		{name: "event id with other content", stored: 1, steps: []postStep{
			{body: a1, status: 201},
			{body: a1Else, status: 409, code: "conflict", msg: `a1" is stored with other content`},
			{body: "[" + b2 + "," + a1Else + "]", status: 409, code: "conflict", msg: `a1" is stored`},
		}},
		{name: "If-Match 0 on a new stream, then again", stored: 2, steps: []postStep{
			{ifMatch: "0", body: plain, status: 201},
			{ifMatch: "0", body: plain, status: 409, code: "conflict", msg: "the stream is at version 1"},
			{ifMatch: `"1"`, body: "[" + plain + "]", status: 201},
			{ifMatch: `"1"`, body: plain, status: 409, code: "conflict", msg: "the stream is at version 2"},
		}},
		{name: "If-Match retry with event ids is a duplicate", stored: 3, steps: []postStep{
			{ifMatch: "0", body: "[" + a1 + "," + b2 + "]", status: 201},
			{ifMatch: "0", body: "[" + a1 + "," + b2 + "]", status: 200, duplicate: true, sameAs: 1},
			{ifMatch: "0", body: "[" + a1Else + "," + b2 + "]", status: 409, code: "conflict"},
			{ifMatch: "2", body: c3, status: 201},
		}},
		{name: "expect in the body", stored: 4, steps: []postStep{
			{body: `{"events":[` + plain + `,` + plain + `],"expect":{"domain":"$D","pid":"p","version":0}}`, status: 201},
			{body: `{"events":` + plain + `,"expect":{"domain":"$D","pid":"p","version":1}}`, status: 409, code: "conflict", msg: "the stream is at version 2"},
			{body: `{"expect":{"version":2,"pid":"p","domain":"$D"},"events":[` + plain + `]}`, status: 201},
			{body: `{"events":[` + plain + `]}`, status: 201},
			{body: `{"events":[` + plain + `],"expect":{"domain":"$D","pid":"p","version":3}}`, status: 409, code: "conflict", msg: "the stream is at version 4"},
		}},
		{name: "refused expectations", stored: 0, steps: []postStep{
			{ifMatch: "0", body: "[" + plain + "," + other + "]", status: 400, code: "bad_request", msg: "If-Match: the events must all be in one stream"},
			{ifMatch: "x", body: plain, status: 400, code: "bad_request", msg: "If-Match: want the stream's expected version"},
			{ifMatch: "-1", body: plain, status: 400, code: "bad_request", msg: "If-Match"},
			{ifMatch: `W/"1"`, body: plain, status: 400, code: "bad_request", msg: "If-Match"},
			{ifMatch: "*", body: plain, status: 400, code: "bad_request", msg: "If-Match"},
			{ifMatch: "0", body: `{"events":[` + plain + `],"expect":{"domain":"$D","pid":"p","version":0}}`, status: 400, code: "bad_request", msg: "given twice"},
			{body: `{"events":[` + plain + `,` + other + `],"expect":{"domain":"$D","pid":"p","version":0}}`, status: 400, code: "bad_request", msg: `event 1 is in stream`},
			{body: `{"events":[` + plain + `],"expect":{"domain":"$D","pid":"p","version":-1}}`, status: 400, code: "bad_request", msg: "expect: want"},
			{body: `{"events":[` + plain + `],"expect":{"domain":"$D","pid":"p","version":1.5}}`, status: 400, code: "bad_request", msg: "expect: want"},
			{body: `{"events":[` + plain + `],"expect":{"domain":"$D","pid":"p"}}`, status: 400, code: "bad_request", msg: "expect: want"},
			{body: `{"events":[` + plain + `],"expect":{"domain":"$D","pid":"p","version":0,"stream":1}}`, status: 400, code: "bad_request", msg: `unknown field "stream"`},
			{body: `{"events":[` + plain + `],"expected":0}`, status: 400, code: "bad_request", msg: `unknown field "expected"`},
		}},
		{name: "bad event ids", stored: 0, steps: []postStep{
			{body: `{"pid":"p","domain":"$D","name":"n","data":1,"eventId":""}`, status: 400, code: "bad_request", msg: `event 0: "eventId" must be a string of 1 to 64`},
			{body: `{"pid":"p","domain":"$D","name":"n","data":1,"eventId":7}`, status: 400, code: "bad_request", msg: `"eventId" must be a string`},
			{body: `{"pid":"p","domain":"$D","name":"n","data":1,"eventId":"` + strings.Repeat("x", 65) + `"}`, status: 400, code: "bad_request", msg: `"eventId" must be`},
			{body: `{"pid":"p","domain":"$D","name":"n","data":1,"eventId":"é"}`, status: 400, code: "bad_request", msg: `"eventId" must be`},
			{body: `{"pid":"p","domain":"$D","name":"n","data":1,"eventId":"tab\there"}`, status: 400, code: "bad_request", msg: `"eventId" must be`},
			{body: "[" + a1 + "," + b2 + "," + a1 + "]", status: 400, code: "bad_request", msg: `a1" is also the event id of event 0`},
		}},
		{name: "longest event id", stored: 1, steps: []postStep{
			{body: `{"pid":"p","domain":"$D","name":"n","data":1,"eventId":"` + strings.Repeat("~", 64) + `"}`, status: 201},
			{body: `{"pid":"p","domain":"$D","name":"n","data":1,"eventId":"` + strings.Repeat("~", 64) + `"}`, status: 200, duplicate: true, sameAs: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			domain := fmt.Sprintf("sw-%s", strings.ReplaceAll(tc.name, " ", "-"))
			var ids [][]int64
			for i, s := range tc.steps {
				body := strings.NewReplacer("$D", domain, "$K", fmt.Sprintf("k%d-", n)).Replace(s.body)
				status, res, raw := h.postEvents(s.ifMatch, body)
				if status != s.status || res.Code != s.code || !strings.Contains(res.Error, s.msg) || res.Duplicate != s.duplicate {
					t.Fatalf("step %d (If-Match %q) %s: got %d %s, want %d code %q with %q, duplicate %v",
						i+1, s.ifMatch, body, status, raw, s.status, s.code, s.msg, s.duplicate)
				}
				if status < 300 && len(res.IDs) != strings.Count(body, `"name":"n"`) {
					t.Fatalf("step %d: %d ids for %s", i+1, len(res.IDs), body)
				}
				if s.sameAs > 0 && !slices.Equal(res.IDs, ids[s.sameAs-1]) {
					t.Fatalf("step %d answered ids %v, want step %d's %v", i+1, res.IDs, s.sameAs, ids[s.sameAs-1])
				}
				ids = append(ids, res.IDs)
			}
			if tc.check != nil {
				tc.check(t, ids)
			}
			// Nothing stored twice, nothing of a refusal stored; the
			// stream (every case stores into one) numbered 1, 2, ...
			versions := h.storedIn(domain)
			want := make([]int64, tc.stored)
			for i := range want {
				want[i] = int64(i + 1)
			}
			if !slices.Equal(versions, want) {
				t.Fatalf("stored versions %v, want %v", versions, want)
			}
		})
	}
}

// A persist task takes event ids: a retry completes with the same ids and
// "duplicate", an event id stored with other content fails the task with
// reason "conflict".
func TestPersistTaskSafeWrites(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	id := h.newSession()
	s := h.stream(id, nil)
	events := []map[string]any{
		{"pid": "p", "domain": "tasks-sw", "name": "n", "data": 1, "eventId": "t-1"},
		{"pid": "p", "domain": "tasks-sw", "name": "n", "data": 2, "eventId": "t-2"},
	}
	body := jsonString(map[string]any{"type": "persist", "events": events})
	var completed []struct {
		IDs       []int64
		Duplicate bool
	}
	for range 2 {
		task := h.task(id, body)
		if m := s.expect("progress"); !strings.Contains(m.data, `"task":"`+task+`"`) {
			t.Fatalf("progress %s", m.data)
		}
		m := s.expect("completed")
		var c struct {
			Task      string
			IDs       []int64
			Duplicate bool
		}
		if err := json.Unmarshal([]byte(m.data), &c); err != nil || c.Task != task || len(c.IDs) != 2 {
			t.Fatalf("completed %s: %v", m.data, err)
		}
		completed = append(completed, struct {
			IDs       []int64
			Duplicate bool
		}{c.IDs, c.Duplicate})
	}
	if completed[0].Duplicate || !completed[1].Duplicate || !slices.Equal(completed[0].IDs, completed[1].IDs) {
		t.Fatalf("first persist %+v, retry %+v: want the same ids, the retry a duplicate", completed[0], completed[1])
	}

	events[1]["data"] = 3
	task := h.task(id, jsonString(map[string]any{"type": "persist", "events": events}))
	m := s.expect("failed")
	var failed struct{ Task, Error, Reason string }
	if err := json.Unmarshal([]byte(m.data), &failed); err != nil || failed.Task != task || failed.Reason != "conflict" ||
		!strings.Contains(failed.Error, `event id "t-2" is stored with other content`) {
		t.Fatalf("failed %s: %v", m.data, err)
	}
	if n := len(h.storedIn("tasks-sw")); n != 2 {
		t.Fatalf("%d events stored, want 2", n)
	}

	// A bad event id is refused before the task starts.
	events[1]["eventId"] = ""
	status, b := h.do("POST", "/sessions/"+id+"/tasks", jsonString(map[string]any{"type": "persist", "events": events}), "")
	if status != 400 || !strings.Contains(string(b), `event 1: \"eventId\" must be`) {
		t.Fatalf("task with an empty event id: %d %s", status, b)
	}
}
