package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/server"
)

// env is what a run shares between its scenarios.
type env struct {
	cfg    Config
	log    *slog.Logger
	runID  string // hex, in every channel, database and pid the run makes
	prefix string // of the run's channels
	// fetchChannel is the server's fetch request channel.
	fetchChannel string

	admin    *sql.DB // no default database: seeding, processlist, cleanup
	database string  // of the event table
	table    string  // `database`.`event`

	// redisOpts reach one Redis node: the single Redis, or on a cluster
	// one of its nodes (classic pub/sub reaches every node from any).
	redisOpts *redis.Options
	rdb       redis.UniversalClient // the client's
	cl        *client.Client
	wireRdb   *redis.Client // the wire driver's
	wire      *wireFetcher
	fetcher   fetcher

	srv       *server.Server // nil for an external server
	scfg      server.Config  // the in-process server's, as started
	serverPID int
	redisPID  int
	mysqlPID  int

	seeded map[string][]string // "streams×rows" to the pids seeded for it
	seq    int                 // seeding counter, for distinct pids
	// persistPhases counts persist loads, whose event ids and streams
	// carry their number.
	persistPhases atomic.Int64
}

// Run runs the scenarios of cfg and returns the report. It cleans up after
// itself: the database it made (in-process) or the rows it seeded and
// persisted (external).
func Run(ctx context.Context, cfg Config) (report *Report, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &env{cfg: cfg, log: cfg.Logger, runID: randomHex(5), seeded: map[string][]string{}}
	e.prefix = "bench-" + e.runID + ":"
	report = &Report{
		Started: time.Now().UTC(),
		Host:    HostInfo{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()},
	}
	if err := e.setUp(ctx, report); err != nil {
		e.tearDown()
		return nil, err
	}
	defer func() {
		if terr := e.tearDown(); terr != nil && err == nil {
			err = terr
		}
	}()
	byName := map[string]*ScenarioResult{}
	for _, spec := range cfg.Scenarios {
		if err := ctx.Err(); err != nil {
			return report, fmt.Errorf("bench interrupted before %s: %w", spec.Name, err)
		}
		if len(report.Scenarios) > 0 {
			e.settle() // what the last scenario left behind is not this one's
		}
		e.progress().Note(fmt.Sprintf("scenario %s: %s", spec.Name, spec.Description))
		res := &ScenarioResult{Spec: spec}
		var serr error
		switch spec.Kind {
		case KindFetch:
			if spec.Driver == DriverWire {
				main := e.fetcher
				e.fetcher = e.wireDriver()
				serr = e.runFetch(ctx, spec, res)
				e.fetcher = main
			} else {
				serr = e.runFetch(ctx, spec, res)
			}
		case KindOpen:
			serr = e.runOpen(ctx, spec, res, byName)
		case KindPersist:
			serr = e.runPersist(ctx, spec, res)
		case KindMix:
			serr = e.runMix(ctx, spec, res)
		case KindInstrumentCost:
			serr = e.runInstrumentCost(ctx, spec, res)
		case KindCompare:
			serr = e.runCompare(ctx, spec, res)
		case KindSSE:
			serr = e.runSSE(ctx, spec, res)
		case KindFollow:
			serr = e.runFollow(ctx, spec, res)
		}
		if serr != nil {
			res.Error = serr.Error()
			e.log.Error("scenario failed", slog.String("scenario", spec.Name), slog.Any("err", serr))
		}
		report.Scenarios = append(report.Scenarios, res)
		byName[spec.Name] = res
		if ctx.Err() != nil {
			break
		}
	}
	report.Seconds = time.Since(report.Started).Seconds()
	report.judge()
	return report, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func (e *env) progress() Progress {
	if e.cfg.Progress == nil {
		return noProgress{}
	}
	return e.cfg.Progress
}

func (e *env) interval() time.Duration {
	if e.cfg.SampleInterval > 0 {
		return e.cfg.SampleInterval
	}
	return 250 * time.Millisecond
}

// setUp connects, makes the database and starts the server (in-process),
// and the client.
func (e *env) setUp(ctx context.Context, report *Report) error {
	scfg := e.cfg.Server
	store := scfg.MySQL.StoreConfig()
	store.Database, store.PoolSize = "", 8
	admin, err := mysqlstore.Open(store)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	e.admin = admin
	if err := admin.PingContext(ctx); err != nil {
		return fmt.Errorf("bench: connect to mysql %s:%d: %w", scfg.MySQL.Host, scfg.MySQL.Port, err)
	}
	cluster := scfg.Redis.Cluster
	if e.redisOpts, err = scfg.Redis.Options(); err != nil { // ACL user and TLS as the server's
		return fmt.Errorf("bench: %w", err)
	}
	e.redisOpts.ClientName = ""
	if len(cluster) > 0 {
		e.redisOpts.Addr = cluster[len(cluster)-1]
	}
	probe := redis.NewClient(e.redisOpts)
	pingErr := probe.Ping(ctx).Err()
	if pingErr == nil && len(cluster) == 0 {
		// On a cluster one node's CPU would be a third of the story.
		e.redisPID = redisPID(ctx, probe)
	}
	_ = probe.Close()
	if pingErr != nil {
		return fmt.Errorf("bench: connect to redis %s: %w", e.redisOpts.Addr, pingErr)
	}
	e.mysqlPID = mysqlPID(ctx, admin)

	fetchCh, persistCh := "", ""
	if ext := e.cfg.External; ext != nil {
		e.database = ext.Database
		e.table = quoteIdent(ext.Database) + ".`event`"
		var n int
		if err := admin.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+e.table+" WHERE 1=0").Scan(&n); err != nil {
			return fmt.Errorf("bench: the external server's table %s: %w", e.table, err)
		}
		fetchCh, persistCh = ext.FetchChannel, ext.PersistChannel
		e.serverPID = ext.PID
		report.Server = ServerInfo{Mode: "external", PID: ext.PID, Database: ext.Database, FetchChannel: fetchCh, PersistChannel: persistCh}
		if ext.PID > 0 {
			report.Server.Note = fmt.Sprintf("server CPU and RSS are those of process %d, read from /proc", ext.PID)
		} else {
			report.Server.Note = "no --server-pid: no server CPU or RSS"
		}
	} else {
		e.database = "es_bench_" + e.runID
		e.table = quoteIdent(e.database) + ".`event`"
		if _, err := mysqlstore.Migrate(ctx, admin, e.database); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		scfg.MySQL.Database = e.database
		scfg.Tables = []string{e.database + ".event"}
		scfg.FetchChannel, scfg.PersistChannel, scfg.FetchNextChannel = e.prefix+"fetch", e.prefix+"persist", e.prefix+"fetch-next"
		scfg.Redis.ClientName = "eventsource-bench-" + e.runID
		scfg.Admin, scfg.AdminToken = "", ""
		scfg.CommitChannel, scfg.FinishedChannel = e.prefix+"committed", e.prefix+"finished"
		if e.cfg.has(KindSSE) {
			// The sse scenario's subscribers need the HTTP gateway, on
			// loopback, open to them, and without a connection limit.
			scfg.HTTP.Addr, scfg.HTTP.Anonymous, scfg.HTTP.MaxConnections = "127.0.0.1:0", true, 0
		}
		srv, err := e.startServer(ctx, scfg, "server")
		if err != nil {
			return err
		}
		e.srv, e.scfg = srv, scfg
		e.serverPID = os.Getpid()
		fetchCh, persistCh = scfg.FetchChannel, scfg.PersistChannel
		report.Server = ServerInfo{
			Mode: "in-process", PID: e.serverPID, Database: e.database, MySQLPool: scfg.MySQL.PoolSize,
			AcceptTimeout: scfg.AcceptTimeout.String(), FetchChannel: fetchCh, PersistChannel: persistCh,
			Note: "in-process server: its CPU and RSS are the bench process's own, load generator and baselines included",
		}
	}
	report.Server.RedisPID, report.Server.MySQLPID = e.redisPID, e.mysqlPID
	e.fetchChannel = fetchCh

	if len(cluster) > 0 {
		copt, err := e.cfg.Server.Redis.ClusterOptions()
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		copt.ClientName, copt.PoolSize = "", e.cfg.ClientPoolSize
		cc := redis.NewClusterClient(copt)
		e.rdb = cc
		report.Server.ClientPool = cc.Options().PoolSize
		report.Server.RedisCluster = cluster
	} else {
		opts := *e.redisOpts
		opts.PoolSize = e.cfg.ClientPoolSize
		c := redis.NewClient(&opts)
		e.rdb = c
		report.Server.ClientPool = c.Options().PoolSize
	}
	e.cl = client.New(e.rdb, client.WithFetchChannel(fetchCh), client.WithPersistChannel(persistCh),
		client.WithChannelPrefix(e.prefix+"r:"), client.WithReason())
	e.fetcher = clientFetcher{e.cl}
	report.Server.Driver = DriverClient
	if e.cfg.Driver == DriverWire {
		e.fetcher = e.wireDriver()
		report.Server.Driver = DriverWire
	}
	return nil
}

// wireDriver is the run's wire driver, started on first use.
func (e *env) wireDriver() *wireFetcher {
	if e.wire == nil {
		e.wireRdb = redis.NewClient(e.redisOpts)
		e.wire = newWireFetcher(e.wireRdb, e.fetchChannel, e.prefix+"w:", func(err error) {
			e.log.Warn("wire driver publish", slog.Any("err", err))
		})
	}
	return e.wire
}

// startServer starts an in-process server with scfg.
func (e *env) startServer(ctx context.Context, scfg server.Config, component string, opts ...server.Option) (*server.Server, error) {
	srv, err := server.New(scfg, e.log.With(slog.String("component", component)), opts...)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = srv.Start(startCtx)
	cancel()
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return nil, fmt.Errorf("bench: start the in-process %s: %w", component, err)
	}
	return srv, nil
}

// startSideServer starts another in-process server, beside the run's main
// one, on the main one's configuration changed by change, with request
// channels under the run's prefix and name, no admin or HTTP listener, and
// its Redis connections named after it. stop shuts it down.
func (e *env) startSideServer(ctx context.Context, name string, change func(*server.Config), opts ...server.Option) (scfg server.Config, srv *server.Server, stop func(), err error) {
	scfg = e.scfg
	change(&scfg)
	p := e.sidePrefix(name)
	scfg.FetchChannel, scfg.PersistChannel, scfg.FetchNextChannel = p+"fetch", p+"persist", p+"fetch-next"
	scfg.Redis.ClientName += "-" + name
	scfg.Admin, scfg.HTTP.Addr = "", ""
	if srv, err = e.startServer(ctx, scfg, name+" server", opts...); err != nil {
		return scfg, nil, nil, err
	}
	stop = func() {
		sctx, cancel := context.WithTimeout(context.Background(), phaseTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			e.log.Warn("stop a side server", slog.String("server", name), slog.Any("err", err))
		}
	}
	return scfg, srv, stop, nil
}

// sidePrefix is where a side server's channels, and its clients' response
// channels, live.
func (e *env) sidePrefix(name string) string { return e.prefix + name + ":" }

// tearDown stops what setUp started and removes what the run wrote.
func (e *env) tearDown() error {
	var errs []error
	if e.wire != nil {
		e.wire.close()
	}
	if e.wireRdb != nil {
		_ = e.wireRdb.Close()
	}
	if e.cl != nil {
		_ = e.cl.Close()
	}
	if e.rdb != nil {
		_ = e.rdb.Close()
	}
	if e.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := e.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("bench: stop the in-process server: %w", err))
		}
		cancel()
	}
	if e.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		switch {
		case e.cfg.External == nil && e.database != "":
			if _, err := e.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(e.database)); err != nil {
				errs = append(errs, fmt.Errorf("bench: drop database %s: %w", e.database, err))
			}
		case e.cfg.External != nil && e.table != "":
			if _, err := e.admin.ExecContext(ctx, "DELETE FROM "+e.table+" WHERE pid LIKE ?", e.pidPrefix()+"%"); err != nil {
				errs = append(errs, fmt.Errorf("bench: delete the bench's rows from %s: %w", e.table, err))
			}
		}
		cancel()
		_ = e.admin.Close()
	}
	return errors.Join(errs...)
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// pidPrefix starts every pid the run writes.
func (e *env) pidPrefix() string { return "bench-" + e.runID + "-" }

// redisPID is Redis's process id when Redis runs on this machine.
func redisPID(ctx context.Context, rdb *redis.Client) int {
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return 0
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, _ := strconv.Atoi(v)
			if _, err := readProc(pid); err == nil {
				return pid
			}
		}
	}
	return 0
}

// mysqlPID is the MySQL server's process id when it runs on this machine
// and its pid file is readable.
func mysqlPID(ctx context.Context, db *sql.DB) int {
	var path string
	if err := db.QueryRowContext(ctx, "SELECT @@pid_file").Scan(&path); err != nil {
		return 0
	}
	if !filepath.IsAbs(path) {
		var datadir string
		if err := db.QueryRowContext(ctx, "SELECT @@datadir").Scan(&datadir); err != nil {
			return 0
		}
		path = filepath.Join(datadir, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if _, err := readProc(pid); err != nil {
		return 0
	}
	return pid
}

// watchList is the processes a phase follows: the server first.
func (e *env) watchList() []*watched {
	var ws []*watched
	if e.serverPID > 0 {
		name := "server"
		if e.srv != nil {
			name = "bench+server"
		}
		ws = append(ws, &watched{name: name, pid: e.serverPID})
	}
	if e.redisPID > 0 {
		ws = append(ws, &watched{name: "redis", pid: e.redisPID})
	}
	if e.mysqlPID > 0 {
		ws = append(ws, &watched{name: "mysql", pid: e.mysqlPID})
	}
	return ws
}

// conns reports the server's MySQL connections: open and busy. In-process
// they are its pool's stats; for an external server, the connections MySQL
// lists with its database as their default (the bench's own have none).
func (e *env) conns() (open, inUse int, ok bool) {
	if e.srv != nil {
		st := e.srv.DBStats()
		return st.OpenConnections, st.InUse, true
	}
	if e.admin == nil {
		return 0, 0, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := e.admin.QueryRowContext(ctx,
		"SELECT COUNT(*), COALESCE(SUM(COMMAND NOT IN ('Sleep','Daemon')),0) FROM information_schema.PROCESSLIST WHERE DB = ?",
		e.database).Scan(&open, &inUse)
	return open, inUse, err == nil
}

// threadsConnected is MySQL's count of client connections, whoever holds
// them.
func (e *env) threadsConnected(ctx context.Context) (int, error) {
	var name string
	var n int
	if err := e.admin.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Threads_connected'").Scan(&name, &n); err != nil {
		return 0, fmt.Errorf("read Threads_connected: %w", err)
	}
	return n, nil
}

// settle returns memory to the OS when the server runs in this process, so
// RSS readings before and after compare live memory.
func (e *env) settle() {
	if e.srv != nil {
		runtime.GC()
		debug.FreeOSMemory()
	}
	time.Sleep(300 * time.Millisecond)
}

// profile starts a CPU profile of the named scenario's server phase; the
// returned func stops it.
func (e *env) profile(name string) func() {
	if e.cfg.CPUProfileDir == "" {
		return func() {}
	}
	if err := os.MkdirAll(e.cfg.CPUProfileDir, 0o755); err != nil {
		e.log.Warn("cpu profile", slog.Any("err", err))
		return func() {}
	}
	path := filepath.Join(e.cfg.CPUProfileDir, name+".pprof")
	f, err := os.Create(path)
	if err != nil {
		e.log.Warn("cpu profile", slog.Any("err", err))
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		e.log.Warn("cpu profile", slog.Any("err", err))
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			e.log.Warn("cpu profile", slog.Any("err", err))
		}
		e.progress().Note("cpu profile written to " + path)
	}
}
