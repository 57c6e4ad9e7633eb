package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/sqlbuild"
)

// persist writes events through the server's batcher, with the same
// validation, limits and group commit as a persist on Redis, and returns
// their ids in order. The insert is not tied to ctx once submitted: it
// commits even if the client goes away.
func (g *Gateway) persist(ctx context.Context, p *Principal, events []EventInput) ([]int64, error) {
	for i, e := range events {
		if !p.CanWrite(e.Domain) {
			return nil, forbidden("event %d: the token may not write domain %q", i, e.Domain)
		}
	}
	ins, err := g.deps.Builder.Insert(insertQuery(g.table.QualifiedName(), events))
	if err != nil {
		var qe *sqlbuild.QueryError
		if errors.As(err, &qe) {
			return nil, badRequest("%s", qe.Error())
		}
		return nil, err
	}
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
	if res.ok.InsertID <= 0 || res.ok.AffectedRows != int64(len(events)) {
		return nil, fmt.Errorf("insert of %d events reported id %d and %d rows", len(events), res.ok.InsertID, res.ok.AffectedRows)
	}
	ids := make([]int64, len(events))
	for i := range ids {
		ids[i] = res.ok.InsertID + int64(i)
	}
	return ids, nil
}

// postEvents is POST /events: one event or an array, answered with their
// ids.
func (g *Gateway) postEvents(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, g.cfg.MaxBodyBytes)
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	events, err := decodeEvents(body)
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	ids, err := g.persist(r.Context(), principal(r), events)
	if err != nil && r.Context().Err() != nil {
		return // the client left; the events commit all the same
	}
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string][]int64{"ids": ids})
}
