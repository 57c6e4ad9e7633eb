package server

import (
	"log/slog"
	"time"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/metrics"
)

// busChanged follows the subscriber's connection for the terminals that
// wait through an outage (replicas.Keeper): held from the moment it is
// lost, sent once it is back and the clients had ResubscribeGrace to come
// back too. It reports whether msg was for it alone.
func (s *Server) busChanged(msg any) bool {
	switch msg.(type) {
	case messages.BusInterrupted:
		// Before the router hears it and ends its streams: their
		// terminals must wait.
		s.keeper.BusDown()
		return false
	case messages.BusRestored:
		if s.gateway != nil {
			s.gateway.Restored()
		}
		gen := s.keeper.Outage()
		time.AfterFunc(s.cfg.ResubscribeGrace, func() { s.keeper.BusUp(gen) })
		s.logger.Info("redis subscriber back: held terminals go after the resubscribe grace",
			slog.Int("terminals", s.keeper.WaitingTerminals()), slog.Duration("grace", s.cfg.ResubscribeGrace))
		return true
	}
	return false
}

// routerBacklog is how many messages may wait for the router before the
// subscriber drops new requests: past it the router is behind by seconds,
// and a request is better left to another server (or its client's
// timeout) than queued without bound behind the others.
const routerBacklog = 1 << 16

// shed drops a request while the router is that far behind, and reports
// whether it did. Everything else (controls, confirmations) goes on.
func (s *Server) shed(msg any, routerDepth *metrics.Depth) bool {
	in, ok := msg.(messages.Inbound)
	if !ok || routerDepth.Len() < routerBacklog || (in.Channel != s.cfg.FetchChannel && in.Channel != s.cfg.PersistChannel) {
		return false
	}
	s.metrics.RequestRefused("overloaded")
	if n := s.shedCount.Add(1); n == 1 || n%1000 == 0 {
		s.logger.Warn("request dropped: the router is behind", slog.String("channel", in.Channel),
			slog.Int64("router_backlog", routerDepth.Len()), slog.Uint64("dropped_so_far", n))
	}
	return true
}
