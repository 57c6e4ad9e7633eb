package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/eventsource/eventsource/soak"
)

func init() {
	register("soak", "run a server under a steady load with faults for a while, checking invariants and resources", runSoak)
}

func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := configFromEnv(stderr)
	if err != nil {
		return err
	}
	sc := soak.DefaultConfig()
	fs := newFlagSet("soak", "[flags]", stderr)
	binary := fs.String("server-binary", "", "the eventsource `program` to soak, run as migrate and serve (default: this one)")
	fs.DurationVar(&sc.Duration, "duration", sc.Duration, "how long the load runs")
	fs.DurationVar(&sc.ReportEvery, "report-every", sc.ReportEvery, "interval of the report blocks")
	fs.DurationVar(&sc.Warmup, "warmup", 0, "time left out of the goroutine and heap trend (default --report-every, at most a fifth of --duration)")
	fs.DurationVar(&sc.AcceptTimeout, "accept-timeout", sc.AcceptTimeout, "the server's --accept-timeout, which the unaccepted streams wait out")
	fs.DurationVar(&sc.Stall, "stall", 0, "how long a call may hear nothing before it counts as a stream without a terminal (default --accept-timeout + 35s)")
	fs.DurationVar(&sc.Settle, "settle", sc.Settle, "how long the tap may lag behind a client, and the wait for late messages at the end")
	fs.IntVar(&sc.FetchStreams, "fetch-streams", sc.FetchStreams, "fetch streams at once, through the client package (negative: none)")
	fs.IntVar(&sc.Pids, "pids", sc.Pids, "pids seeded for the fetch streams")
	fs.IntVar(&sc.MinRows, "min-rows", sc.MinRows, "rows of the smallest seeded pid")
	fs.IntVar(&sc.MaxRows, "max-rows", sc.MaxRows, "rows of the largest seeded pid")
	windows := fs.String("windows", "1,8,32", "windows the fetch streams take in turn, comma-separated")
	fs.Float64Var(&sc.RowRate, "row-rate", sc.RowRate, "rows per second across all fetch streams (negative: unpaced)")
	fs.IntVar(&sc.Persisters, "persisters", sc.Persisters, "clients persisting, one call at a time each (negative: none)")
	fs.Float64Var(&sc.PersistRate, "persist-rate", sc.PersistRate, "persists per second across all persisters (negative: unpaced)")
	fs.IntVar(&sc.SSEReaders, "sse-readers", sc.SSEReaders, "GET /events readers of the soak's domain (negative: none)")
	fs.IntVar(&sc.Hangers, "unaccepted", sc.Hangers, "streams at once that never accept and must end \"timeout\" (negative: none)")
	fs.DurationVar(&sc.FaultEvery, "fault-every", sc.FaultEvery, "interval between injected faults (negative: none)")
	faults := fs.String("faults", "all", "faults in turn, comma-separated: redis-sub, mysql, bad-input, redis-pub; all or none")
	serverFlags := fs.String("server-flags", "", "more flags for serve, space-separated (e.g. \"--mysql-pool 8 --page-size 128\")")
	fs.StringVar(&sc.ServerLogLevel, "server-log-level", sc.ServerLogLevel, "the server's --log-level (its log goes to a file, kept when the soak fails)")
	fs.BoolVar(&sc.KeepLog, "keep-log", false, "keep the server's log file even when the soak passes")
	fs.BoolVar(&sc.JSON, "json", false, "print the report as JSON lines (one per interval, then the summary) instead of text")
	levelName := fs.String("log-level", "info", "log level of the soak's own progress notes on stderr: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*levelName)); err != nil {
		return usageError(fs, "--log-level: %v", err)
	}
	if sc.Faults, err = soak.ParseFaults(*faults); err != nil {
		return usageError(fs, "--faults: %v", err)
	}
	if len(sc.Faults) == 0 {
		sc.FaultEvery = -1
	}
	sc.Windows = nil
	for w := range strings.SplitSeq(*windows, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil {
			return usageError(fs, "--windows %q: %v", *windows, err)
		}
		sc.Windows = append(sc.Windows, n)
	}
	sc.ServerArgs = strings.Fields(*serverFlags)
	if len(cfg.Redis.Cluster) > 0 {
		return usageError(fs, "REDIS_CLUSTER is set: the soak needs one Redis, whose CLIENT LIST names the server's connections")
	}
	if sc.Binary = *binary; sc.Binary == "" {
		if sc.Binary, err = os.Executable(); err != nil {
			return fmt.Errorf("soak: find this program: %w", err)
		}
	}
	if sc.Duration <= 0 || sc.ReportEvery <= 0 || sc.AcceptTimeout <= 0 || sc.Settle <= 0 || sc.Warmup < 0 || sc.Stall < 0 {
		return usageError(fs, "--duration, --report-every, --accept-timeout and --settle must be positive, --warmup and --stall not negative")
	}
	sc.MySQL = cfg.MySQL.StoreConfig()
	sc.RedisAddr, sc.RedisPassword, sc.RedisDB = cfg.Redis.Addr(), cfg.Redis.Password, cfg.Redis.DB
	sc.Out = stdout
	sc.Logger = newLogger(stderr, false, level)

	began := time.Now()
	sum, err := soak.Run(ctx, sc)
	if err != nil {
		return err
	}
	if !sum.Passed {
		return fmt.Errorf("soak: invariants broken after %s (see the summary above)", time.Since(began).Round(time.Second))
	}
	return nil
}
