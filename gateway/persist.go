package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/sqlbuild"
)

// insertEvents translates events into the INSERT that stores them, inside
// p's scope (a token limited to some domains writes only those).
func (g *Gateway) insertEvents(p *Principal, events []EventInput) (*sqlbuild.Insert, error) {
	ins, err := g.deps.Builder.Insert(insertQuery(g.table.QualifiedName(), events), p.scope(g.table))
	if err != nil {
		return nil, queryError(err)
	}
	return ins, nil
}

// commit writes an insert of events through the server's batcher, with the
// same validation, limits and group commit as a persist on Redis, and
// returns their ids in order. The insert is not tied to ctx once
// submitted: it commits even if the client goes away.
func (g *Gateway) commit(ctx context.Context, ins *sqlbuild.Insert) ([]int64, error) {
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
		return nil, fmt.Errorf("wait for the commit: %w", ctx.Err())
	}
	if res.err != nil {
		g.logger.Warn("http persist failed", "reason", string(messages.ReasonDB), "err", res.err)
		return nil, newError(http.StatusServiceUnavailable, "unavailable", "the database failed to store the events")
	}
	if res.ok.InsertID <= 0 || res.ok.AffectedRows != int64(ins.Rows) {
		return nil, fmt.Errorf("insert of %d events reported id %d and %d rows", ins.Rows, res.ok.InsertID, res.ok.AffectedRows)
	}
	ids := make([]int64, ins.Rows)
	for i := range ids {
		ids[i] = res.ok.InsertID + int64(i)
	}
	return ids, nil
}

// postEvents is POST /events: one event or an array, answered with their
// ids.
func (g *Gateway) postEvents(w http.ResponseWriter, r *http.Request) {
	body, err := g.readBody(w, r)
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	var ins *sqlbuild.Insert
	v, err := g.decodeBody(body, "events")
	if err == nil {
		var events []EventInput
		if events, err = decodeEvents(v); err == nil {
			ins, err = g.insertEvents(principal(r), events)
		}
	}
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	ids, err := g.commit(r.Context(), ins)
	if err != nil && r.Context().Err() != nil {
		return // the client left; the events commit all the same
	}
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string][]int64{"ids": ids})
}
