package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/internal/buildinfo"
	"github.com/eventsource/eventsource/server"
)

func init() {
	register("serve", "run the server (configured by MYSQL_* and REDIS_* variables and flags)", runServe)
}

// bindServerFlags binds the flags of serve, over defaults already read from
// the environment: a flag given on the command line wins.
func bindServerFlags(cfg *server.Config, args []string, stderr io.Writer) (logJSON bool, level slog.Level, err error) {
	fs := newFlagSet("serve", "[flags]", stderr)
	fs.StringVar(&cfg.FetchChannel, "fetch-channel", cfg.FetchChannel, "request channel for fetches")
	fs.StringVar(&cfg.PersistChannel, "persist-channel", cfg.PersistChannel, "request channel for persists")
	fs.StringVar(&cfg.FetchNextChannel, "fetch-next-channel", cfg.FetchNextChannel, "legacy acceptance channel")
	fs.StringVar(&cfg.FinishedChannel, "finished-channel", cfg.FinishedChannel, "Redis channel where servers announce the end of each response channel's claim (reserved)")
	fs.DurationVar(&cfg.AcceptTimeout, "accept-timeout", cfg.AcceptTimeout, "how long a stream waits for \"accepted\"")
	fs.IntVar(&cfg.MaxStreams, "max-streams", cfg.MaxStreams, "concurrent streams and persists before requests are refused (0: no limit)")
	fs.IntVar(&cfg.MySQL.PoolSize, "mysql-pool", cfg.MySQL.PoolSize, "MySQL connection pool size")
	fs.IntVar(&cfg.Redis.Publishers, "redis-publishers", cfg.Redis.Publishers, "pipelines publishing rows and replies at once (per node of a cluster)")
	fs.IntVar(&cfg.Redis.PublishQueue, "redis-publish-queue", cfg.Redis.PublishQueue, "messages waiting for each publishing pipeline; past it streams hold their rows")
	cluster := fs.String("redis-cluster", strings.Join(cfg.Redis.Cluster, ","), "seed nodes of a Redis Cluster, `host:port,...`, used instead of REDIS_HOST and REDIS_PORT (default $REDIS_CLUSTER)")
	bindRedisTLSFlags(fs, &cfg.Redis.TLS)
	fs.IntVar(&cfg.MySQL.StatementCache, "mysql-statements", cfg.MySQL.StatementCache, "prepared statements kept by SQL text (0: prepare, run and close every query)")
	fs.IntVar(&cfg.PageSize, "page-size", cfg.PageSize, "rows a stream reads from MySQL at a time")
	fs.IntVar(&cfg.MaxBufferedRows, "max-buffered-rows", cfg.MaxBufferedRows, "largest result read in one statement (tables without an id column, grouped, joined and set queries)")
	fs.IntVar(&cfg.Query.MaxDepth, "max-query-depth", 32, "deepest nesting of a query's JSON")
	fs.IntVar(&cfg.Query.MaxNodes, "max-query-values", 10000, "most JSON values in one query")
	fs.IntVar(&cfg.Query.MaxIn, "max-in", 1000, "longest $in or $nin list")
	fs.Uint64Var(&cfg.Query.MaxLimit, "max-limit", 10_000_000, "largest $limit")
	fs.IntVar(&cfg.Query.MaxDocuments, "max-documents", 1000, "most documents in one $insert")
	fs.IntVar(&cfg.PersistBatch, "persist-batch", cfg.PersistBatch, "most persist requests committed together (1: each on its own)")
	fs.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", cfg.ShutdownGrace, "how long shutdown waits for persists in flight")
	fs.DurationVar(&cfg.ReadTimeout, "mysql-read-timeout", cfg.ReadTimeout, "deadline of each read of a stream's rows (a page, or a result read whole); past it the stream ends with \"error\" (reason db)")
	fs.DurationVar(&cfg.Replicas.TerminalRetry, "terminal-retry", cfg.Replicas.TerminalRetry, "how long a terminal Redis could not take (an outage, a lost connection) is kept and sent again before it is dropped")
	fs.DurationVar(&cfg.FollowGapWait, "follow-gap-wait", cfg.FollowGapWait, "how long an id no commit announcement covers holds followed streams back before it counts as rolled back")
	fs.DurationVar(&cfg.FollowIdle, "follow-idle", cfg.FollowIdle, "a followed stream whose response channel has had no subscriber this long is ended")
	fs.DurationVar(&cfg.ResubscribeGrace, "resubscribe-grace", cfg.ResubscribeGrace, "after a Redis outage, how long terminals wait once the server has resubscribed, for clients to resubscribe too")
	fs.StringVar(&cfg.Admin, "admin", "127.0.0.1:9090", "operators' HTTP listener: /actors, /metrics, /healthz, /readyz, /admin/actors (empty: none)")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "bearer token the admin listener requires (default $EVENTSOURCE_ADMIN_TOKEN); required off loopback")
	fs.BoolVar(&cfg.Instrument, "instrument", cfg.Instrument, "keep the live actor registry and the metrics")
	tables := fs.String("tables", strings.Join(cfg.Tables, ","), "allowed tables, schema.table, comma-separated; the first is the default")
	writable := fs.String("writable-tables", "", "allowed tables whose inserts may carry $onDuplicateKeyUpdate, comma-separated (default: none; the event table is append-only)")
	fs.BoolVar(&logJSON, "log-json", false, "log JSON lines instead of text")
	levelName := fs.String("log-level", "info", "log level: debug, info, warn, error")
	finishHTTP := bindHTTPFlags(fs, cfg)
	if err := parseFlags(fs, args); err != nil {
		return false, 0, err
	}
	if err := finishHTTP(); err != nil {
		fmt.Fprintf(stderr, "eventsource serve: %v\n", err)
		return false, 0, errUsage
	}
	cfg.Tables = strings.Split(*tables, ",")
	cfg.Redis.Cluster = nil
	if *cluster != "" {
		cfg.Redis.Cluster = strings.Split(*cluster, ",")
	}
	if *writable != "" {
		cfg.WritableTables = strings.Split(*writable, ",")
	}
	if cfg.AdminToken == "" {
		// Read after parsing, so that -h never prints the token.
		cfg.AdminToken = os.Getenv("EVENTSOURCE_ADMIN_TOKEN")
	}
	if err := level.UnmarshalText([]byte(*levelName)); err != nil {
		fmt.Fprintf(stderr, "eventsource serve: -log-level: %v\n", err)
		return false, 0, errUsage
	}
	return logJSON, level, nil
}

// redisLogger adapts slog to go-redis's logging interface.
type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.WarnContext(ctx, fmt.Sprintf(format, v...))
}

func newLogger(w io.Writer, asJSON bool, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if asJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// configFromEnv reads the defaults and the environment.
func configFromEnv(stderr io.Writer) (server.Config, error) {
	cfg := server.DefaultConfig()
	if err := cfg.FromEnv(os.Getenv); err != nil {
		fmt.Fprintln(stderr, "eventsource:", err)
		return cfg, errUsage
	}
	// The default table follows MYSQL_DATABASE.
	cfg.Tables = []string{cfg.MySQL.Database + ".event"}
	return cfg, nil
}

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg, err := configFromEnv(stderr)
	if err != nil {
		return err
	}
	logJSON, level, err := bindServerFlags(&cfg, args, stderr)
	if err != nil {
		return err
	}
	cfg.Version = buildinfo.Read().String()
	logger := newLogger(stderr, logJSON, level)
	// go-redis logs its own reconnects through a global logger: route them
	// to ours instead of the standard logger.
	redis.SetLogger(redisLogger{logger.With(slog.String("component", "go-redis"))})
	srv, err := server.New(cfg, logger)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		srv.Shutdown(context.Background())
		return fmt.Errorf("start: %w", err)
	}
	<-ctx.Done()
	logger.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace+5*time.Second)
	defer cancel()
	if err := srv.Shutdown(stopCtx); err != nil {
		logger.Warn("shutdown was not clean", slog.Any("err", err))
	}
	return nil
}
