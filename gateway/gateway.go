package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/eventsource/eventsource/cursor"
	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/metrics"
	"github.com/eventsource/eventsource/sqlbuild"
	"github.com/eventsource/eventsource/supervision"
)

// Deps are the server's parts the gateway uses.
type Deps struct {
	// Builder validates queries and inserts; its catalog's default table
	// is the event table the gateway serves.
	Builder *sqlbuild.Builder
	// Store reads pages (mysqlstore.Store).
	Store cursor.Store
	// Persister commits inserts (the server's mysqlstore.Batcher).
	Persister Persister
	// System hosts the "http" supervisor.
	System *actor.ActorSystem
	// Registry, if not nil, lists the gateway's actors for operators.
	Registry *supervision.Registry
	// Metrics, if not nil, counts requests, SSE streams and the commit
	// feed.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// ChildMiddleware wraps the Receive of every session and stream actor
	// (fault injection in tests).
	ChildMiddleware []actor.ReceiverMiddleware
	// Frontier tells follow tasks how far commits are settled (the
	// server's, which hears every server's commits).
	Frontier Frontier
}

// Persister commits inserts, batching concurrent ones; done runs on
// another goroutine once the insert committed or failed.
type Persister interface {
	Submit(ins *sqlbuild.Insert, done func(messages.OK, error))
}

// Gateway is the HTTP listener and the actors behind it.
type Gateway struct {
	cfg    Config
	deps   Deps
	logger *slog.Logger
	table  *sqlbuild.Table
	auth   *authenticator
	adm    *admission
	hub    *hub
	// frontier serves follow tasks (Deps.Frontier).
	frontier Frontier

	sup      *actor.PID
	sessions sync.Map // session id to *sessionRef
	nSession atomic.Int64
	connSeq  atomic.Uint64

	notes chan messages.Committed
	quit  chan struct{}
	wg    sync.WaitGroup

	srv     *http.Server
	ln      net.Listener
	closing atomic.Bool
	once    sync.Once
}

// New checks the configuration and the event table; Start serves.
func New(cfg Config, deps Deps) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	auth, err := newAuthenticator(cfg)
	if err != nil {
		return nil, err
	}
	table := deps.Builder.Catalog().Default()
	for _, col := range eventColumns {
		if table.Column(col) == nil {
			return nil, fmt.Errorf("the HTTP gateway serves %s, which has no %q column", table.QualifiedName(), col)
		}
	}
	if table.Key != "id" {
		return nil, fmt.Errorf("the HTTP gateway serves %s, whose id column is not its AUTO_INCREMENT primary key", table.QualifiedName())
	}
	g := &Gateway{cfg: cfg, deps: deps, logger: deps.Logger, table: table, auth: auth, hub: newHub(),
		notes: make(chan messages.Committed, commitQueue), quit: make(chan struct{})}
	g.adm = newAdmission(cfg, deps.Metrics, func(w http.ResponseWriter, err error) { writeError(w, g.logger, err) })
	if deps.Frontier == nil {
		return nil, fmt.Errorf("the HTTP gateway needs the server's frontier for follow tasks")
	}
	g.frontier = deps.Frontier
	return g, nil
}

// Start spawns the "http" supervisor, starts the commit reader and the
// ticker, and listens.
func (g *Gateway) Start() error {
	ln, err := net.Listen("tcp", g.cfg.Addr)
	if err != nil {
		return fmt.Errorf("http listener on %s: %w", g.cfg.Addr, err)
	}
	props := newSupervisorProps(g.deps.Registry, g.logger)
	sup, err := g.deps.System.Root.WithGuardian(supervision.RestartRouter(10, 10*time.Second)).SpawnNamed(props, "http")
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("start the http supervisor: %w", err)
	}
	g.sup, g.ln = sup, ln
	g.deps.Registry.Add("http", "", "http", ln.Addr().String(), "running")
	g.wg.Add(2)
	go g.readCommits()
	go g.tick()
	g.srv = &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(g.logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := g.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.logger.Error("http listener failed", slog.Any("err", err))
		}
	}()
	g.logger.Info("http gateway listening", slog.String("addr", ln.Addr().String()), slog.Bool("anonymous", g.cfg.Anonymous))
	return nil
}

// Addr is where the gateway listens (nil before Start).
func (g *Gateway) Addr() net.Addr {
	if g.ln == nil {
		return nil
	}
	return g.ln.Addr()
}

func (g *Gateway) tick() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-g.quit:
			return
		case now := <-t.C:
			g.hub.tick(now)
		}
	}
}

// spawn starts a child of the "http" supervisor.
// The child hears its registry entry as its first message, a
// *supervision.Live.
func (g *Gateway) spawn(name, kind, channel string, producer actor.Producer, fail func(string), gone func()) (*actor.PID, *supervision.Live, error) {
	props := actor.PropsFromProducer(producer, actor.WithReceiverMiddleware(g.deps.ChildMiddleware...))
	msg := spawnChild{name: name, kind: kind, channel: channel, props: props, fail: fail, gone: gone}
	res, err := g.deps.System.Root.RequestFuture(g.sup, msg, 5*time.Second).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("ask the http supervisor for %s: %w", name, err)
	}
	s, _ := res.(spawned)
	if s.err != nil {
		return nil, nil, s.err
	}
	return s.pid, s.live, nil
}

// StopActor ends one session or stream, by registry name, as an operator
// asks (admin's POST /actors/{name}/stop).
func (g *Gateway) StopActor(ctx context.Context, name string) (bool, error) {
	if !strings.HasPrefix(name, "session:") && !strings.HasPrefix(name, "sse:") {
		return false, nil
	}
	deadline := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	res, err := g.deps.System.Root.RequestFuture(g.sup, stopChild{name: name}, deadline).Result()
	if err != nil {
		return false, fmt.Errorf("ask the http supervisor to stop %s: %w", name, err)
	}
	found, _ := res.(bool)
	return found, nil
}

// Shutdown refuses new requests, ends every session (with "closed") and
// stream, waits for them within ctx, and closes the listener.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var err error
	g.once.Do(func() { err = g.shutdown(ctx) })
	return err
}

func (g *Gateway) shutdown(ctx context.Context) error {
	var errs []error
	g.closing.Store(true)
	if g.sup != nil {
		drain := &drainChildren{reason: "shutdown", done: make(chan struct{})}
		g.deps.System.Root.Send(g.sup, drain)
		select {
		case <-drain.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("end http sessions and streams: %w", ctx.Err()))
		}
	}
	if g.srv != nil {
		if err := g.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop http listener: %w", err))
		}
	}
	if g.sup != nil {
		if err := g.deps.System.Root.PoisonFuture(g.sup).Wait(); err != nil {
			errs = append(errs, fmt.Errorf("stop the http supervisor: %w", err))
		}
		g.deps.Registry.Remove("http")
	}
	close(g.quit)
	g.wg.Wait()
	g.logger.Info("http gateway stopped")
	return errors.Join(errs...)
}
