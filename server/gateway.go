package server

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"

	"github.com/eventsource/eventsource/gateway"
	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/sqlbuild"
)

// announceCommits publishes which rows a batch committed, per table, on
// the commit channel, so that the HTTP gateway of every server on this
// Redis fans them out. It runs on the batcher's goroutine, before the
// replies go out; the publish is queued, not waited for.
func (s *Server) announceCommits(committed []mysqlstore.Committed) {
	for _, note := range commitNotes(committed) {
		// This server's followers hear it at once; the echo from Redis
		// changes nothing then.
		s.heardCommit(note)
		if err := s.pub.Publish(s.cfg.CommitChannel, note.Encode(), nil); err != nil {
			// The gateways miss these rows' notifications; an SSE client
			// reconnecting with Last-Event-ID still reads them.
			s.logger.Warn("commit announcement dropped", slog.Any("err", err))
		}
	}
}

// commitNotes groups a batch's committed rows into notifications: one per
// table, consecutive ids merged into one range, and no more ranges in one
// notification than a gateway accepts (rows inserted one by one may not be
// consecutive, so a batch can name thousands).
func commitNotes(committed []mysqlstore.Committed) []messages.Committed {
	var notes []messages.Committed
	byTable := map[*sqlbuild.Table]int{}
	for _, c := range committed {
		if c.Uncertain {
			notes = append(notes, messages.Committed{Table: c.Table.QualifiedName(), Uncertain: true})
			continue
		}
		i, ok := byTable[c.Table]
		if !ok || len(notes[i].Ranges) == messages.MaxCommittedRanges {
			i = len(notes)
			byTable[c.Table] = i
			notes = append(notes, messages.Committed{Table: c.Table.QualifiedName()})
		}
		ranges := notes[i].Ranges
		// Requests of one batch usually hold consecutive ids: one range.
		if n := len(ranges); n > 0 && ranges[n-1][1]+1 == c.First {
			ranges[n-1][1] = c.Last
		} else {
			notes[i].Ranges = append(ranges, [2]int64{c.First, c.Last})
		}
	}
	return notes
}

// newGateway builds the HTTP gateway when one is configured; it is
// started once the router runs.
func (s *Server) newGateway(builder *sqlbuild.Builder, db *sql.DB) error {
	if !s.cfg.HTTP.Enabled() {
		return nil
	}
	cfg := s.cfg.HTTP
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = s.cfg.ReadTimeout
	}
	g, err := gateway.New(cfg, gateway.Deps{
		Builder: builder, Store: mysqlstore.Store{DB: db, Statements: s.stmts}, Persister: s.batch,
		System: s.system, Registry: s.registry, Metrics: s.metrics, Logger: s.logger.With(slog.String("component", "http")),
		Frontier:        s.frontier,
		ChildMiddleware: s.options.childMiddleware,
	})
	if err != nil {
		return fmt.Errorf("http gateway: %w", err)
	}
	s.gateway = g
	return nil
}

// toFrontier hands the frontier and the gateway what they hear on Redis:
// commit notifications (which go nowhere else) and interruptions (which
// the router hears too). It reports whether msg was theirs alone.
func (s *Server) toFrontier(msg any) bool {
	switch m := msg.(type) {
	case messages.Inbound:
		if m.Channel != s.cfg.CommitChannel {
			return false
		}
		// Decoded once, here, for both.
		note, err := messages.DecodeCommitted(m.Payload)
		if err != nil {
			s.metrics.CommitNotification("invalid")
			s.logger.Warn("commit notification ignored", slog.Any("err", err))
			return true
		}
		s.heardCommit(note)
		if s.gateway != nil {
			s.gateway.Committed(note)
		}
		return true
	case messages.BusInterrupted:
		if s.gateway != nil {
			s.gateway.Interrupted()
		}
	}
	return false
}

// startGateway starts listening (the commit channel is subscribed
// already).
func (s *Server) startGateway(context.Context) error {
	if s.gateway == nil {
		return nil
	}
	return s.gateway.Start()
}

// stopGateway ends the sessions and streams and closes the listener.
func (s *Server) stopGateway(ctx context.Context) error {
	if s.gateway == nil {
		return nil
	}
	return s.gateway.Shutdown(ctx)
}

// HTTPAddr is where the HTTP gateway listens (nil without one).
func (s *Server) HTTPAddr() net.Addr {
	if s.gateway == nil {
		return nil
	}
	return s.gateway.Addr()
}

// Gateway is the HTTP gateway (nil without one), for tests.
func (s *Server) Gateway() *gateway.Gateway { return s.gateway }
