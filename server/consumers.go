package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/eventsource/eventsource/admin"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/sqlbuild"
)

// consumerLagEvery is how often a server sets the lag metric of the
// durable consumers it holds.
const consumerLagEvery = 15 * time.Second

// newConsumers returns the durable consumers of the default table's
// database, or nil when that database has no consumer table yet (a
// database migrated by an earlier release): fetches that name a consumer
// are then refused, and the log says to run eventsource migrate.
func (s *Server) newConsumers(ctx context.Context, db *sql.DB, catalog *sqlbuild.Catalog) (*mysqlstore.Consumers, error) {
	database := catalog.Default().Schema
	c := mysqlstore.NewConsumers(db, database)
	migrated, err := c.Migrated(ctx)
	switch {
	case err != nil:
		return nil, err
	case !migrated:
		s.logger.Warn("durable consumers are off: run eventsource migrate to add their table",
			slog.String("database", database))
		return nil, nil
	}
	return c, nil
}

// Consumers is the store of durable consumers: nil before Start, and when
// the database has no consumer table.
func (s *Server) Consumers() *mysqlstore.Consumers { return s.consumers }

// errConsumersOff answers the admin's consumer requests on a database
// without the consumer table.
var errConsumersOff = errors.New("durable consumers are off: run eventsource migrate to add their table")

// consumerStatus is c as the admin listener shows it, with its lag.
func (s *Server) consumerStatus(ctx context.Context, c mysqlstore.Consumer) admin.ConsumerStatus {
	st := admin.ConsumerStatus{
		Name: c.Name, Query: admin.QueryJSON(c.Query), Position: c.Position,
		Held: c.Held, Holder: c.Holder, Server: c.Server, UpdatedAt: c.UpdatedAt,
	}
	if !c.HeldUntil.IsZero() {
		until := c.HeldUntil
		st.HeldUntil = &until
	}
	newest, lag, capped, err := s.consumers.Lag(ctx, s.builder, c.Query, c.Position, mysqlstore.MaxLag)
	if err != nil {
		st.LagError = err.Error()
		return st
	}
	st.Newest, st.Lag, st.LagCapped = newest, lag, capped
	return st
}

// ListConsumers lists every durable consumer with its lag, and sets the
// lag metric of each (admin.ConsumerBackend).
func (s *Server) ListConsumers(ctx context.Context) ([]admin.ConsumerStatus, error) {
	if s.consumers == nil {
		return nil, errConsumersOff
	}
	list, err := s.consumers.List(ctx)
	if err != nil {
		return nil, err
	}
	statuses := make([]admin.ConsumerStatus, 0, len(list))
	lags := make(map[string]int64, len(list))
	for _, c := range list {
		st := s.consumerStatus(ctx, c)
		if st.LagError == "" {
			lags[c.Name] = st.Lag
		}
		statuses = append(statuses, st)
	}
	s.metrics.ConsumerLags(lags)
	return statuses, nil
}

// ResetConsumer sets a consumer's position and frees it
// (admin.ConsumerBackend): the stream that held it ends when it next
// records a position.
func (s *Server) ResetConsumer(ctx context.Context, name string, position int64) (admin.ConsumerStatus, error) {
	if s.consumers == nil {
		return admin.ConsumerStatus{}, errConsumersOff
	}
	if err := s.consumers.Reset(ctx, name, position); err != nil {
		return admin.ConsumerStatus{}, adminConsumerError(err)
	}
	c, err := s.consumers.Get(ctx, name)
	if err != nil {
		return admin.ConsumerStatus{}, adminConsumerError(err)
	}
	st := s.consumerStatus(ctx, c)
	if st.LagError == "" {
		s.metrics.ConsumerLag(name, st.Lag)
	}
	return st, nil
}

// DeleteConsumer removes a consumer (admin.ConsumerBackend).
func (s *Server) DeleteConsumer(ctx context.Context, name string) error {
	if s.consumers == nil {
		return errConsumersOff
	}
	if err := s.consumers.Delete(ctx, name); err != nil {
		return adminConsumerError(err)
	}
	s.metrics.ForgetConsumer(name)
	return nil
}

// adminConsumerError tells the admin listener that a consumer is unknown.
func adminConsumerError(err error) error {
	if errors.Is(err, mysqlstore.ErrNoConsumer) {
		return fmt.Errorf("%w: %w", admin.ErrNoConsumer, err)
	}
	return err
}

// watchConsumerLag sets the lag metric of the consumers this server holds
// every consumerLagEvery, until quit. Each server sets its own: a
// consumer's lag is reported by the server that serves it.
func (s *Server) watchConsumerLag(quit <-chan struct{}) {
	if s.metrics == nil {
		return
	}
	t := time.NewTicker(consumerLagEvery)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), consumerLagEvery)
			s.setHeldLags(ctx)
			cancel()
		}
	}
}

// setHeldLags sets the lag metric of the consumers this server holds.
func (s *Server) setHeldLags(ctx context.Context) {
	list, err := s.consumers.List(ctx)
	if err != nil {
		s.logger.Warn("list durable consumers for their lag", slog.Any("err", err))
		return
	}
	id := s.ServerID()
	for _, c := range list {
		if !c.Held || c.Server != id {
			continue
		}
		_, lag, _, err := s.consumers.Lag(ctx, s.builder, c.Query, c.Position, mysqlstore.MaxLag)
		if err != nil {
			s.logger.Debug("count the lag of a durable consumer", slog.String("consumer", c.Name), slog.Any("err", err))
			continue
		}
		s.metrics.ConsumerLag(c.Name, lag)
	}
}

var _ admin.ConsumerBackend = (*Server)(nil)
