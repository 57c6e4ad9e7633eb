package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/ordjson"
	"github.com/eventsource/eventsource/sqlbuild"
)

// insertEvents translates events into the INSERT that stores them, inside
// p's scope (a token limited to some domains writes only those). With
// expect, the INSERT commits only if the events' stream is at the
// expected version.
func (g *Gateway) insertEvents(p *Principal, events []EventInput, expect *messages.Expectation) (*sqlbuild.Insert, error) {
	ins, err := g.deps.Builder.Insert(insertQuery(g.table.QualifiedName(), events), p.scope(g.table))
	if err == nil && expect != nil {
		ins, err = ins.Expect(expect.Domain, expect.PID, expect.Version)
	}
	if err != nil {
		return nil, queryError(err)
	}
	return ins, nil
}

// committed is what a commit of events answers.
type committed struct {
	// ids are the events' ids, in order.
	ids []int64
	// duplicate says that every event id was stored already, with the
	// same content: nothing was stored, ids are the stored events'.
	duplicate bool
}

// commit writes an insert of events through the server's batcher, with the
// same validation, limits and group commit as a persist on Redis, and
// returns their ids in order. The insert is not tied to ctx once
// submitted: it commits even if the client goes away. A conflict with
// what is stored (an expected version, an event id stored with other
// content) is a 409 "conflict" with the batcher's safe message.
func (g *Gateway) commit(ctx context.Context, ins *sqlbuild.Insert) (committed, error) {
	type result struct {
		ok  messages.OK
		err error
	}
	done := make(chan result, 1)
	g.deps.Persister.Submit(ins, func(ok messages.OK, err error) { done <- result{ok, err} })
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		return committed{}, fmt.Errorf("wait for the commit: %w", ctx.Err())
	}
	var conflict *messages.ConflictError
	switch {
	case errors.As(res.err, &conflict):
		g.deps.Metrics.PersistFailed(string(messages.ReasonConflict))
		g.logger.Debug("http persist conflict", slog.String("reason", string(messages.ReasonConflict)), slog.Int("rows", ins.Rows), slog.Any("err", res.err))
		return committed{}, newError(http.StatusConflict, "conflict", "%s", conflict.Message)
	case res.err != nil:
		g.deps.Metrics.PersistFailed(string(messages.ReasonDB))
		g.logger.Warn("http persist failed", slog.String("reason", string(messages.ReasonDB)), slog.Any("err", res.err))
		return committed{}, unavailable("the database failed to store the events")
	}
	ids := res.ok.DocumentIDs(ins.Rows)
	if ids == nil {
		return committed{}, fmt.Errorf("insert of %d events reported id %d, %d rows and %d ids", ins.Rows, res.ok.InsertID, res.ok.AffectedRows, len(res.ok.IDs))
	}
	if res.ok.Duplicate {
		g.deps.Metrics.PersistDuplicate()
	}
	return committed{ids: ids, duplicate: res.ok.Duplicate}, nil
}

// postReply is the answer to POST /events.
type postReply struct {
	IDs       []int64 `json:"ids"`
	Duplicate bool    `json:"duplicate,omitempty"`
}

// postEvents is POST /events: one event, an array of them, or {"events":
// ..., "expect": {...}}, answered with their ids: 201, or 200 with
// "duplicate": true when every event id was stored already (a retry:
// nothing was created); 409 on a conflict with what is stored.
func (g *Gateway) postEvents(w http.ResponseWriter, r *http.Request) {
	body, err := g.readBody(w, r)
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	ins, err := g.postInsert(r, body)
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	res, err := g.commit(r.Context(), ins)
	if err != nil && r.Context().Err() != nil {
		return // the client left; the events commit all the same
	}
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	status := http.StatusCreated
	if res.duplicate {
		status = http.StatusOK
	}
	writeJSON(w, status, postReply{IDs: res.ids, Duplicate: res.duplicate})
}

// postInsert reads a POST /events body and its If-Match into the insert
// that stores the events.
func (g *Gateway) postInsert(r *http.Request, body []byte) (*sqlbuild.Insert, error) {
	v, err := g.decodeBody(body, "events")
	if err != nil {
		return nil, err
	}
	events, expect, err := decodePost(v)
	if err != nil {
		return nil, err
	}
	version, ok, err := ifMatch(r.Header)
	switch {
	case err != nil:
		return nil, err
	case ok && expect != nil:
		return nil, badRequest("the expected version is given twice: send If-Match or the body's \"expect\", not both")
	case ok:
		first := events[0]
		for i, e := range events {
			if e.Domain != first.Domain || e.Pid != first.Pid {
				return nil, badRequest("If-Match: the events must all be in one stream (one domain and pid): event %d is in %q/%q, event 0 in %q/%q",
					i, e.Domain, e.Pid, first.Domain, first.Pid)
			}
		}
		expect = &messages.Expectation{Domain: first.Domain, PID: first.Pid, Version: version}
	case expect != nil:
		for i, e := range events {
			if e.Domain != expect.Domain || e.Pid != expect.PID {
				return nil, badRequest("expect: event %d is in stream %q/%q, not in the expected %q/%q", i, e.Domain, e.Pid, expect.Domain, expect.PID)
			}
		}
	}
	return g.insertEvents(principal(r), events, expect)
}

// decodePost reads a POST /events body: one event, an array of them, or
// {"events": one or an array, "expect": {"domain": D, "pid": P,
// "version": N}} (expect optional). An object with an "events" member is
// the last form.
func decodePost(v *ordjson.Value) ([]EventInput, *messages.Expectation, error) {
	if v.Kind != ordjson.Object || v.Get("events") == nil {
		events, err := decodeEvents(v)
		return events, nil, err
	}
	if err := objectMembers(v, "events", "events", "expect"); err != nil {
		return nil, nil, err
	}
	events, err := decodeEvents(v.Get("events"))
	if err != nil {
		return nil, nil, err
	}
	e := v.Get("expect")
	if e == nil {
		return events, nil, nil
	}
	expect, err := decodeExpect(e)
	if err != nil {
		return nil, nil, err
	}
	return events, expect, nil
}

// decodeExpect reads {"domain": D, "pid": P, "version": N}.
func decodeExpect(v *ordjson.Value) (*messages.Expectation, error) {
	const shape = `expect: want {"domain": string, "pid": string, "version": integer from 0}`
	if v.Kind != ordjson.Object {
		return nil, badRequest("%s, got %s", shape, v.Kind)
	}
	if err := objectMembers(v, "expect", "domain", "pid", "version"); err != nil {
		return nil, err
	}
	domain, pid, version := v.Get("domain"), v.Get("pid"), v.Get("version")
	if domain == nil || domain.Kind != ordjson.String || domain.Text == "" ||
		pid == nil || pid.Kind != ordjson.String || pid.Text == "" || version == nil || version.Kind != ordjson.Number {
		return nil, badRequest("%s", shape)
	}
	n, ok := parseVersion(version.Text)
	if !ok {
		return nil, badRequest("%s: version %s", shape, version.Text)
	}
	return &messages.Expectation{Domain: domain.Text, PID: pid.Text, Version: n}, nil
}

// ifMatch reads the expected version of an If-Match header: a decimal
// integer from 0, bare or quoted as an ETag ("3"). ok is false without
// the header.
func ifMatch(h http.Header) (version int64, ok bool, err error) {
	values := h.Values("If-Match")
	if len(values) == 0 {
		return 0, false, nil
	}
	const want = `If-Match: want the stream's expected version, a decimal integer from 0 (bare or quoted: 3 or "3")`
	if len(values) > 1 {
		return 0, false, badRequest("%s, got %d headers", want, len(values))
	}
	text := strings.TrimSpace(values[0])
	if len(text) >= 2 && text[0] == '"' && text[len(text)-1] == '"' {
		text = text[1 : len(text)-1]
	}
	n, ok := parseVersion(text)
	if !ok {
		return 0, false, badRequest("%s, got %q", want, values[0])
	}
	return n, true, nil
}

// parseVersion reads a stream version: decimal digits only (no sign,
// fraction or exponent), that fit an int64.
func parseVersion(text string) (int64, bool) {
	if text == "" {
		return 0, false
	}
	for i := 0; i < len(text); i++ {
		if text[i] < '0' || text[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	return n, err == nil
}
