package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/eventsource/eventsource/frontier"
	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/redisbus"
	"github.com/eventsource/eventsource/sqlbuild"
)

// newFrontier follows how far each allowed table's commits are settled,
// for followed streams: fed by the commit announcements of every server
// (this one's at once, before Redis echoes them) and by polling.
func (s *Server) newFrontier(catalog *sqlbuild.Catalog) *frontier.Frontier {
	tables := map[string]*sqlbuild.Table{}
	for _, t := range catalog.Tables() {
		tables[t.QualifiedName()] = t
	}
	return frontier.New(frontier.Config{
		GapWait: s.cfg.FollowGapWait,
		Logger:  s.logger.With(slog.String("component", "frontier")),
		Highest: func(ctx context.Context, name string) (int64, error) {
			t := tables[name]
			if t == nil || t.Key == "" {
				return 0, fmt.Errorf("table %s has no key to follow", name)
			}
			var highest int64
			err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(`"+t.Key+"`), 0) FROM `"+t.Schema+"`.`"+t.Name+"`").Scan(&highest)
			if err != nil {
				return 0, fmt.Errorf("read the highest %s of %s: %w", t.Key, name, err)
			}
			return highest, nil
		},
		Skipped: func(table string, ids int64) {
			s.logger.Debug("followed streams passed ids no commit announced", slog.String("table", table), slog.Int64("ids", ids))
		},
	})
}

// heardCommit hands a commit notification to the frontier.
func (s *Server) heardCommit(note messages.Committed) {
	if note.Uncertain {
		s.frontier.Uncertain(note.Table)
		return
	}
	s.frontier.Committed(note.Table, note.Ranges)
}

// Listeners counts the subscribers of channels (redisbus.Subscribers).
func (s *Server) Listeners(ctx context.Context, channels []string) (map[string]int64, error) {
	return redisbus.Subscribers(ctx, s.rdb, channels)
}

// consumerRenewal is how often the server renews the leases of the
// durable consumers it holds (mysqlstore.ConsumerLease is 15 s).
const consumerRenewal = 5 * time.Second

// renewConsumers keeps this server's consumers held until quit.
func (s *Server) renewConsumers(quit <-chan struct{}) {
	t := time.NewTicker(consumerRenewal)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), consumerRenewal)
			if err := s.consumers.RenewServer(ctx, s.keeper.ID()); err != nil {
				s.logger.Warn("renew the leases of durable consumers", slog.Any("err", err))
			}
			cancel()
		}
	}
}
