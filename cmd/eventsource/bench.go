package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/eventsource/eventsource/bench"
)

func init() {
	register("bench", "measure streams and persists against their baselines (Redis ping-pong, raw INSERTs)", runBench)
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := configFromEnv(stderr)
	if err != nil {
		return err
	}
	fs := newFlagSet("bench", "[flags]", stderr)
	sizes := bench.DefaultSizes()
	scenarios := fs.String("scenarios", "default", "comma-separated scenarios to run, or \"default\" for all (see --list)")
	list := fs.Bool("list", false, "list the scenarios and exit")
	asJSON := fs.Bool("json", false, "print the report as JSON on stdout instead of tables")
	report := fs.String("report", "", "also write a self-contained HTML report with charts to this `file`")
	redisAddr := fs.String("redis", cfg.Redis.Addr(), "Redis `host:port` (REDIS_HOST, REDIS_PORT; REDIS_PASSWORD and REDIS_DB are read too)")
	cluster := fs.String("redis-cluster", strings.Join(cfg.Redis.Cluster, ","), "seed nodes of a Redis Cluster, `host:port,...`, to run on instead of --redis: the server and the client through the cluster, the ping-pong and the wire driver on its last node (default $REDIS_CLUSTER)")
	bindRedisTLSFlags(fs, &cfg.Redis.TLS)
	fetchCh := fs.String("fetch-channel", "", "measure the running server with this fetch channel instead of starting one in-process")
	persistCh := fs.String("persist-channel", "", "the running server's persist channel (default \"persist\" with --fetch-channel)")
	database := fs.String("database", cfg.MySQL.Database, "the running server's database, whose event table the bench seeds and cleans (MYSQL_DATABASE)")
	serverPID := fs.Int("server-pid", 0, "the running server's process id, to read its CPU and RSS from /proc")
	fs.IntVar(&cfg.MySQL.PoolSize, "mysql-pool", cfg.MySQL.PoolSize, "in-process server: MySQL connection pool size")
	fs.DurationVar(&cfg.AcceptTimeout, "accept-timeout", 2*time.Minute, "in-process server: how long a stream waits for \"accepted\" (the open scenario holds streams unaccepted for a while)")
	fs.IntVar(&cfg.PageSize, "page-size", cfg.PageSize, "in-process server: rows a stream reads from MySQL at a time")
	fs.BoolVar(&cfg.Instrument, "instrument", cfg.Instrument, "in-process server: keep the live actor registry and the metrics")
	fs.IntVar(&sizes.SingleRows, "single-rows", sizes.SingleRows, "rows of the single-stream scenarios")
	fs.IntVar(&sizes.OpenStreams, "open-streams", sizes.OpenStreams, "streams the open scenario holds")
	fs.DurationVar(&sizes.PersistDuration, "persist-duration", sizes.PersistDuration, "how long each persist level and its baseline run")
	fs.IntVar(&sizes.SSESubscribers, "sse-subscribers", sizes.SSESubscribers, "SSE subscribers the sse scenario holds (in a child process: each needs a file descriptor on both ends)")
	fs.IntVar(&sizes.SSEEvents, "sse-events", sizes.SSEEvents, "events the sse scenario persists")
	fs.Float64Var(&sizes.SSERate, "sse-rate", sizes.SSERate, "events per second the sse scenario persists")
	fs.IntVar(&sizes.Rounds, "rounds", sizes.Rounds, "paired rounds (baseline, then server) of streams-100, streams-1000 and the persist scenarios; each reports its round of median ratio")
	driver := fs.String("driver", string(bench.DriverClient), "how streams talk to the server: client (the client package, as services do) or wire (pipelined like the ping-pong's client side; persists use the client either way)")
	clientPool := fs.Int("client-pool", 0, "go-redis pool size of the bench's client (0: go-redis's default, 10 per CPU)")
	interval := fs.Duration("sample-interval", 250*time.Millisecond, "step of the timelines")
	profileDir := fs.String("cpuprofile", "", "write a CPU profile of each scenario's server phase to `dir`/<scenario>.pprof (in-process server)")
	levelName := fs.String("log-level", "warn", "log level of the bench and the in-process server: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	specs := bench.DefaultSpecs(sizes)
	if *list {
		for _, s := range specs {
			fmt.Fprintf(stdout, "%-15s %s\n", s.Name, s.Description)
		}
		return nil
	}
	external := *fetchCh != "" || *persistCh != ""
	cfg.Redis.Cluster = nil
	for n := range strings.SplitSeq(*cluster, ",") {
		if n = strings.TrimSpace(n); n != "" {
			if _, _, err := net.SplitHostPort(n); err != nil {
				return usageError(fs, "--redis-cluster node %q: %v", n, err)
			}
			cfg.Redis.Cluster = append(cfg.Redis.Cluster, n)
		}
	}
	if name := strings.TrimSpace(*scenarios); name == "" || name == "default" {
		// Named, they report that they cannot run.
		specs = slices.DeleteFunc(specs, func(s bench.Spec) bool {
			return external && s.Kind == bench.KindInstrumentCost || // it compares two in-process servers
				len(cfg.Redis.Cluster) > 0 && s.Compare == bench.CompareCluster // the run is on a cluster already
		})
	}
	selected, err := bench.SelectSpecs(specs, *scenarios)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*levelName)); err != nil {
		return usageError(fs, "--log-level: %v", err)
	}
	host, port, err := net.SplitHostPort(*redisAddr)
	if err != nil {
		return usageError(fs, "--redis %q: %v", *redisAddr, err)
	}
	if cfg.Redis.Port, err = strconv.Atoi(port); err != nil {
		return usageError(fs, "--redis %q: port is not a number", *redisAddr)
	}
	cfg.Redis.Host = host
	if *interval <= 0 || *clientPool < 0 || sizes.SingleRows <= 0 || sizes.OpenStreams <= 0 || sizes.PersistDuration <= 0 ||
		sizes.SSESubscribers <= 0 || sizes.SSEEvents <= 0 || !(sizes.SSERate > 0) || sizes.Rounds <= 0 {
		return usageError(fs, "--sample-interval, --single-rows, --open-streams, --persist-duration, --rounds and the --sse flags must be positive, --client-pool not negative")
	}

	bcfg := bench.Config{
		Scenarios:      selected,
		Server:         cfg,
		Logger:         newLogger(stderr, false, level),
		SampleInterval: *interval,
		CPUProfileDir:  *profileDir,
		ClientPoolSize: *clientPool,
		Driver:         bench.Driver(*driver),
	}
	if exe, err := os.Executable(); err == nil {
		bcfg.SubscriberCommand = []string{exe, "bench-pool"}
	}
	if bcfg.Driver != bench.DriverClient && bcfg.Driver != bench.DriverWire {
		return usageError(fs, "--driver %q: want client or wire", *driver)
	}
	if external {
		ext := &bench.External{FetchChannel: *fetchCh, PersistChannel: *persistCh, Database: *database, PID: *serverPID}
		if ext.FetchChannel == "" {
			ext.FetchChannel = "fetch"
		}
		if ext.PersistChannel == "" {
			ext.PersistChannel = "persist"
		}
		bcfg.External = ext
		if *profileDir != "" {
			return usageError(fs, "--cpuprofile profiles the in-process server only; profile a running server through its own means")
		}
	} else if *serverPID != 0 {
		return usageError(fs, "--server-pid is for a running server: give its --fetch-channel too")
	}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bcfg.Progress = bench.NewBar(stderr)
	} else {
		bcfg.Progress = bench.NewLines(stderr)
	}

	rep, err := bench.Run(ctx, bcfg)
	if rep == nil {
		return err
	}
	if *report != "" {
		if werr := writeHTMLReport(*report, rep); werr != nil {
			err = errors.Join(err, werr)
		} else {
			fmt.Fprintf(stderr, "bench: HTML report written to %s\n", *report)
		}
	}
	if *asJSON {
		err = errors.Join(err, bench.WriteJSON(stdout, rep))
	} else {
		err = errors.Join(err, bench.WriteText(stdout, rep))
	}
	var failed []string
	for _, s := range rep.Scenarios {
		if s.Error != "" {
			failed = append(failed, s.Spec.Name)
		}
	}
	if len(failed) > 0 {
		err = errors.Join(err, fmt.Errorf("bench: scenarios failed: %s", strings.Join(failed, ", ")))
	}
	return err
}

func writeHTMLReport(path string, rep *bench.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := bench.WriteHTML(f, rep); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	return nil
}
