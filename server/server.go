// Package server wires the parts of eventsource into a running server:
// MySQL, the catalog, the Redis subscriber and publisher, and the actor
// system with its router. cmd/eventsource and end-to-end tests use it.
package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/actors"
	"github.com/eventsource/eventsource/admin"
	"github.com/eventsource/eventsource/frontier"
	"github.com/eventsource/eventsource/gateway"
	"github.com/eventsource/eventsource/internal/buildinfo"
	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/metrics"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/redisbus"
	"github.com/eventsource/eventsource/replicas"
	"github.com/eventsource/eventsource/sqlbuild"
	"github.com/eventsource/eventsource/supervision"
)

// Server is one running eventsource server.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	options options

	db    *sql.DB
	stmts *mysqlstore.Statements
	// rdb is the server's go-redis client: of one Redis, or of a cluster.
	rdb redis.UniversalClient
	sub *redisbus.Subscriber
	pub *redisbus.Publisher
	// keeper holds this server's claims and registration among the
	// servers on the same Redis.
	keeper *replicas.Keeper
	batch  *mysqlstore.Batcher
	// readers run the streams' page reads, one per MySQL connection.
	readers *actors.Readers
	// streams run the stream actors.
	streams *actors.Pool
	// shedCount counts the requests dropped while the router was behind.
	shedCount atomic.Uint64
	system    *actor.ActorSystem
	router    *actor.PID
	// gateway is the HTTP gateway; nil without --http.
	gateway *gateway.Gateway
	// frontier tells followed streams how far commits are settled.
	frontier *frontier.Frontier
	// consumers keeps durable consumers' positions; quit stops the
	// renewal of their leases.
	consumers *mysqlstore.Consumers
	quit      chan struct{}
	// builder builds the consumers' queries, to count their lag.
	builder *sqlbuild.Builder

	registry  *supervision.Registry
	metrics   *metrics.Metrics
	admin     *http.Server
	adminAddr net.Addr

	shutdownOnce sync.Once
	shutdownErr  error
}

type options struct {
	childMiddleware  []actor.ReceiverMiddleware
	routerMiddleware []actor.ReceiverMiddleware
	noClaims         bool
}

// Option changes how the server is built.
type Option func(*options)

// WithChildMiddleware wraps the Receive of every stream and persist actor.
func WithChildMiddleware(mw ...actor.ReceiverMiddleware) Option {
	return func(o *options) { o.childMiddleware = append(o.childMiddleware, mw...) }
}

// WithRouterMiddleware wraps the Receive of the router.
func WithRouterMiddleware(mw ...actor.ReceiverMiddleware) Option {
	return func(o *options) { o.routerMiddleware = append(o.routerMiddleware, mw...) }
}

// New checks the configuration; Start connects.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	s := &Server{cfg: cfg, logger: logger}
	for _, opt := range opts {
		opt(&s.options)
	}
	return s, nil
}

// Start connects to MySQL and Redis, reads the catalog, starts the actors,
// and returns once Redis confirmed the request subscriptions: from then on
// no request is lost.
func (s *Server) Start(ctx context.Context) error {
	cfg := s.cfg
	store := cfg.MySQL.StoreConfig()
	// A second past a read's own deadline, the database stops the
	// statement too (the driver only drops the connection).
	store.StatementTimeout = cfg.ReadTimeout + time.Second
	db, err := mysqlstore.Open(store)
	if err != nil {
		return err
	}
	s.db = db
	if err := db.PingContext(ctx); err != nil {
		s.closeConnections()
		return fmt.Errorf("connect to mysql %s:%d: %w", cfg.MySQL.Host, cfg.MySQL.Port, err)
	}
	catalog, err := mysqlstore.LoadCatalog(ctx, db, cfg.Tables)
	if err != nil {
		s.closeConnections()
		return err
	}
	for _, t := range catalog.Tables() {
		t.Writable = slices.Contains(cfg.WritableTables, t.QualifiedName())
		if t.Key == "" {
			s.logger.Warn("table has no AUTO_INCREMENT key: its results are read whole, up to the buffered-rows limit",
				slog.String("table", t.QualifiedName()), slog.Int("max_buffered_rows", cfg.MaxBufferedRows))
		}
	}
	builder := sqlbuild.NewBuilder(catalog, cfg.Query)
	s.frontier = s.newFrontier(catalog)
	go s.frontier.Run()
	if cfg.Instrument {
		s.registry, s.metrics = supervision.NewRegistry(), metrics.New()
	}
	s.builder = builder
	if s.consumers, err = s.newConsumers(ctx, db, catalog); err != nil {
		s.closeConnections()
		return err
	}
	var batchOpts []mysqlstore.BatcherOption
	if cfg.MySQL.StatementCache > 0 {
		s.stmts = mysqlstore.NewStatements(db, cfg.MySQL.StatementCache)
		batchOpts = append(batchOpts, mysqlstore.WithStatements(s.stmts))
	}
	batchOpts = append(batchOpts, mysqlstore.WithCommitted(s.announceCommits), mysqlstore.WithMaxBatch(cfg.PersistBatch))
	if s.batch, err = mysqlstore.NewBatcher(ctx, db, s.logger, s.batchObserver(), batchOpts...); err != nil {
		s.closeConnections()
		return err
	}

	connOpt, topo, err := s.connectRedis(ctx)
	if err != nil {
		s.closeConnections()
		return err
	}
	// A channel's messages go to the node of its claim's slot, where its
	// terminal's script runs: one connection to one node, in order.
	group := cfg.FetchChannel
	s.pub = redisbus.NewPublisher(connOpt, cfg.Redis.Publishers, cfg.Redis.PublishQueue, s.logger, redisbus.PublisherObservedBy(s.metrics),
		redisbus.OnTopology(topo, func(channel string) string { return replicas.ClaimKey(group, channel) }))
	s.metrics.WatchPool(db)
	s.keeper = s.newKeeper()

	actorLogger := s.logger.With(slog.String("component", "protoactor"))
	s.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return actorLogger }))
	if s.metrics != nil {
		s.system.EventStream.Subscribe(func(evt any) {
			if e, ok := evt.(*actor.SupervisorEvent); ok {
				s.metrics.SupervisorEvent(strings.ToLower(strings.TrimSuffix(e.Directive.String(), "Directive")))
			}
		})
	}
	// The subscriber needs the router's PID and the router needs the
	// subscriber: the sink reads the PID once it is set.
	var routerPID *actor.PID
	ready := make(chan struct{})
	routes := &actors.Routes{}
	if err := s.newGateway(builder, db); err != nil {
		s.closeConnections()
		return err
	}
	channels := cfg.Channels()
	finished := actors.NewFinished(s.keeper.Tombstone())
	routerDepth := s.metrics.MailboxDepth("router")
	s.sub = redisbus.NewSubscriber(connOpt, func(msg any) {
		<-ready
		if s.toFrontier(msg) || s.busChanged(msg) || s.shed(msg, routerDepth) {
			return
		}
		s.system.Root.Send(routerPID, msg)
	}, s.logger, redisbus.WithFilter(func(channel, payload []byte, seq uint64) bool {
		if string(channel) == cfg.FinishedChannel {
			// Recorded here, in the order heard: the router asks about the
			// requests heard after it.
			finished.Add(payload, seq)
			return true
		}
		if channels.ReservedBytes(channel) {
			return false
		}
		// Every row the server publishes comes back to it on the response
		// channel; dropping those echoes here spares the actors half their
		// messages. Only a client's control strings matter there, and a
		// running stream gets them directly; one still starting gets them
		// through the router.
		kind := messages.ParseControl(payload)
		return kind == messages.ControlNone || routes.Deliver(s.system.Root, channel, kind)
	}), redisbus.WithMaxPayload(cfg.Request.MaxBytes), redisbus.ObservedBy(s.metrics), redisbus.SubscribeOn(topo))
	s.readers = actors.NewReaders(cfg.MySQL.PoolSize)
	s.streams = actors.NewStreamPool()
	// Requests are decoded under the builder's query limits: the same
	// limits as the HTTP side's.
	requestLimits := cfg.Request
	requestLimits.MaxQueryDepth, requestLimits.MaxQueryValues = builder.Limits().MaxDepth, builder.Limits().MaxNodes
	deps := actors.Deps{Builder: builder, Store: mysqlstore.Store{DB: db, Statements: s.stmts}, Persister: s.batch, Subscriptions: s.sub, Publisher: s.pub,
		Claims: s.claims(), Finished: finished, Logger: s.logger,
		Registry: s.registry, Metrics: s.metrics, Routes: routes, Readers: s.readers, Dispatcher: s.streams,
		Frontier: s.frontier, Listeners: s}
	if s.consumers != nil {
		deps.Consumers = s.consumers
	}
	props := actors.NewRouterProps(actors.Config{
		Channels: channels, AcceptTimeout: cfg.AcceptTimeout, MaxStreams: cfg.MaxStreams, PageSize: cfg.PageSize,
		MaxBufferedRows: cfg.MaxBufferedRows, ReadTimeout: cfg.ReadTimeout, Request: requestLimits, ChildMiddleware: s.options.childMiddleware,
		RouterMiddleware: s.options.routerMiddleware, FollowIdle: cfg.FollowIdle, ServerID: s.keeper.ID(),
	}, deps)
	// Unbounded: a full mailbox would stop the subscriber, and with it
	// every stream's "accepted"; the subscriber sheds requests instead
	// (shed).
	props = props.Clone(actor.WithMailbox(actor.Unbounded(routerDepth)))
	routerPID, err = s.system.Root.WithGuardian(supervision.RestartRouter(10, 10*time.Second)).SpawnNamed(props, "router")
	if err != nil {
		close(ready)
		s.closeConnections()
		return fmt.Errorf("start router: %w", err)
	}
	s.router = routerPID
	close(ready)
	s.registry.Add("router", "", "router", "", "running")

	// The finished channel first: a request heard after it is sure to be
	// heard after every end announced from then on.
	if err := s.sub.SubscribeWait(ctx, cfg.FinishedChannel); err != nil {
		s.closeConnections()
		return err
	}
	if err := s.keeper.Start(ctx); err != nil {
		s.closeConnections()
		return err
	}
	// Commits announced by every server: followed streams and the gateway
	// read new rows from them. Before the requests: a follower's first
	// frontier is read after it.
	if err := s.sub.SubscribeWait(ctx, cfg.CommitChannel); err != nil {
		s.closeConnections()
		return err
	}
	if s.consumers != nil {
		s.quit = make(chan struct{})
		go s.renewConsumers(s.quit)
		go s.watchConsumerLag(s.quit)
	}
	if err := s.sub.SubscribeWait(ctx, cfg.FetchChannel, cfg.PersistChannel, cfg.FetchNextChannel); err != nil {
		s.closeConnections()
		return err
	}
	if err := s.startGateway(ctx); err != nil {
		s.closeConnections()
		return err
	}
	if cfg.Admin != "" {
		if err := s.serveAdmin(); err != nil {
			s.closeConnections()
			return err
		}
	}
	// The build, as registered (cfg.Version) or else as the binary records
	// it: what /readyz and eventsource_build_info say too.
	version := cfg.Version
	if version == "" {
		version = buildinfo.Read().String()
	}
	s.logger.Info("eventsource serving", slog.String("server", s.keeper.ID()), slog.String("version", version),
		slog.String("redis", cfg.Redis.Addr()), slog.String("mysql", fmt.Sprintf("%s:%d", cfg.MySQL.Host, cfg.MySQL.Port)),
		slog.String("fetch", cfg.FetchChannel), slog.String("persist", cfg.PersistChannel), slog.String("fetch_next", cfg.FetchNextChannel))
	return nil
}

// System and Router expose the actor system, for operators and tests.
func (s *Server) System() *actor.ActorSystem { return s.system }

// serveAdmin starts the operators' HTTP listener.
func (s *Server) serveAdmin() error {
	ln, err := net.Listen("tcp", s.cfg.Admin)
	if err != nil {
		return fmt.Errorf("admin listener on %s: %w", s.cfg.Admin, err)
	}
	var reg *prometheus.Registry
	if s.metrics != nil {
		reg = s.metrics.Registry
	}
	s.adminAddr = ln.Addr()
	s.admin = &http.Server{Handler: admin.Handler(s, reg, s.cfg.AdminToken, s.logger), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("admin listener failed", slog.Any("err", err))
		}
	}()
	s.logger.Info("admin listening", slog.String("addr", ln.Addr().String()))
	return nil
}

// AdminAddr is where the admin listener listens (nil without one).
func (s *Server) AdminAddr() net.Addr { return s.adminAddr }

// Actors lists the live actor tree (admin.Backend).
func (s *Server) Actors(f supervision.Filter, offset, limit int) ([]supervision.Entry, int) {
	return s.registry.List(f, offset, limit)
}

// StopActor ends one stream by name (admin.Backend).
func (s *Server) StopActor(ctx context.Context, name string) (bool, error) {
	if s.gateway != nil {
		if found, err := s.gateway.StopActor(ctx, name); found || err != nil {
			return found, err
		}
	}
	deadline := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	res, err := s.system.Root.RequestFuture(s.router, actors.StopChild{Name: name}, deadline).Result()
	if err != nil {
		return false, fmt.Errorf("ask router to stop %s: %w", name, err)
	}
	stopped, _ := res.(bool)
	return stopped, nil
}

// Ready reports whether Redis (the subscriber and a ping) and MySQL answer
// (admin.Backend).
func (s *Server) Ready(ctx context.Context) error {
	if !s.sub.Healthy() {
		return errors.New("redis subscriber connection is down")
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	return nil
}

func (s *Server) batchObserver() func(int) {
	if s.metrics == nil {
		return nil
	}
	return s.metrics.BatchCommitted
}

// DBStats reports the MySQL pool, for operators and tests.
func (s *Server) DBStats() sql.DBStats { return s.db.Stats() }

// Router is the router's PID.
func (s *Server) Router() *actor.PID { return s.router }

// Shutdown stops admitting requests, lets persists in flight commit and
// reply, ends open streams with "error" so no client waits for a timeout,
// then closes the connections. It is bounded by ctx and the configured
// grace period, and runs once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	var errs []error
	if s.sub != nil {
		reqCtx, cancel := context.WithTimeout(ctx, time.Second)
		if err := s.sub.Unsubscribe(reqCtx, s.cfg.FetchChannel, s.cfg.PersistChannel, s.cfg.FetchNextChannel); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	if s.router != nil {
		drain := &actors.Drain{Done: make(chan struct{})}
		s.system.Root.Send(s.router, drain)
		grace, cancel := context.WithTimeout(ctx, s.cfg.ShutdownGrace)
		select {
		case <-drain.Done:
		case <-grace.Done():
			errs = append(errs, fmt.Errorf("drain streams: %w", grace.Err()))
		}
		cancel()
		if err := s.system.Root.PoisonFuture(s.router).Wait(); err != nil {
			errs = append(errs, fmt.Errorf("stop router: %w", err))
		}
	}
	if err := s.stopGateway(ctx); err != nil {
		errs = append(errs, err)
	}
	if s.admin != nil {
		if err := s.admin.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop admin listener: %w", err))
		}
	}
	s.closeConnections()
	s.logger.Info("eventsource stopped")
	return errors.Join(errs...)
}

// closeConnections closes in dependency order: the batcher commits what is
// queued, the publisher sends what is queued (the last replies and
// terminals), then Redis and MySQL close.
func (s *Server) closeConnections() {
	if s.quit != nil {
		close(s.quit)
		s.quit = nil
	}
	if s.frontier != nil {
		s.frontier.Close()
	}
	if s.batch != nil {
		s.batch.Close()
	}
	if s.pub != nil {
		s.pub.Close()
	}
	if s.keeper != nil {
		// After the publisher: the last terminals' scripts have run.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := s.keeper.Close(ctx); err != nil {
			s.logger.Warn("deregister", slog.Any("err", err))
		}
		cancel()
	}
	if s.sub != nil {
		if err := s.sub.Close(); err != nil {
			s.logger.Warn("close subscriber", slog.Any("err", err))
		}
	}
	if s.system != nil {
		s.system.Shutdown()
	}
	if s.streams != nil {
		s.streams.Close()
	}
	if s.readers != nil {
		s.readers.Close() // after the streams: reads still queued see their stream stopped
	}
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
	if s.stmts != nil {
		s.stmts.Close()
	}
	if s.db != nil {
		_ = s.db.Close()
	}
}
