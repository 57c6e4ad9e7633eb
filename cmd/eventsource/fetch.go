package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/messages"
)

func init() {
	register("fetch", "run a $select through a server and print its rows as JSON lines (--follow: and new rows as they commit)", runFetch)
}

// redisFlags are the connection flags that fetch, persist and replicas
// share.
type redisFlags struct {
	addr    string
	cluster string
	timeout time.Duration
	sec     redisSecurity // --redis-url, ACL user, TLS (connflags.go)
}

// bind adds --redis (default from REDIS_HOST and REDIS_PORT) and --timeout.
func (r *redisFlags) bind(fs *flag.FlagSet, defaultTimeout time.Duration) {
	host, port := os.Getenv("REDIS_HOST"), os.Getenv("REDIS_PORT")
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "6379"
	}
	fs.StringVar(&r.addr, "redis", net.JoinHostPort(host, port), "Redis `host:port` (REDIS_HOST, REDIS_PORT; REDIS_PASSWORD and REDIS_DB are read too)")
	fs.StringVar(&r.cluster, "redis-cluster", os.Getenv("REDIS_CLUSTER"), "seed nodes of a Redis Cluster, `host:port,...`, used instead of --redis (REDIS_CLUSTER)")
	fs.DurationVar(&r.timeout, "timeout", defaultTimeout, "give up after this long (0: no limit)")
	r.sec.bind(fs)
}

// connect checks the flags and the environment and returns the Redis
// client, of one Redis or of a cluster; a bad value is a usage error.
func (r *redisFlags) connect(fs *flag.FlagSet) (redis.UniversalClient, error) {
	if r.timeout < 0 {
		return nil, usageError(fs, "--timeout %s is negative", r.timeout)
	}
	if r.cluster != "" {
		nodes := strings.Split(r.cluster, ",")
		for _, n := range nodes {
			if _, _, err := net.SplitHostPort(n); err != nil {
				return nil, usageError(fs, "--redis-cluster node %q: %v", n, err)
			}
		}
		r.addr = r.cluster // what error messages name
		copt, err := r.sec.clusterOptions(fs, nodes)
		if err != nil {
			return nil, err
		}
		return redis.NewClusterClient(copt), nil
	}
	if _, _, err := net.SplitHostPort(r.addr); err != nil {
		return nil, usageError(fs, "--redis %q: %v", r.addr, err)
	}
	opts := &redis.Options{Addr: r.addr, Password: os.Getenv("REDIS_PASSWORD")}
	if v := os.Getenv("REDIS_DB"); v != "" {
		db, err := strconv.Atoi(v)
		if err != nil {
			return nil, usageError(fs, "REDIS_DB=%q is not a number", v)
		}
		opts.DB = db
	}
	if err := r.sec.apply(fs, opts); err != nil {
		return nil, err
	}
	r.addr = opts.Addr // a URL's
	return redis.NewClient(opts), nil
}

// withTimeout bounds ctx by --timeout when it is set.
func (r *redisFlags) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.timeout > 0 {
		return context.WithTimeout(ctx, r.timeout)
	}
	return context.WithCancel(ctx)
}

// usageError reports a misuse with the command's usage and returns errUsage.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "eventsource %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return fmt.Errorf("%s: %w", fs.Name(), errUsage)
}

func runFetch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("fetch", `(--query '{"$select":{...}}' | [--pid P] [--domain D] [--name N]) [flags]`, stderr)
	var conn redisFlags
	conn.bind(fs, 0)
	query := fs.String("query", "", "the query, a JSON object with $select")
	pid := fs.String("pid", "", "shorthand: rows whose pid is this")
	domain := fs.String("domain", "", "shorthand: rows whose domain is this")
	name := fs.String("name", "", "shorthand: rows whose name is this")
	channel := fs.String("fetch-channel", "fetch", "request channel of the server")
	window := fs.Int("window", 0, "rows the server may have in flight (0: one, the original behaviour)")
	decode := fs.Bool("decode", false, "ask for JSON columns as JSON values instead of JSON text")
	follow := fs.Bool("follow", false, "after the rows that match now, print each new matching row as it commits, until interrupted (or --timeout); a $select of one table with $columns and $where")
	consumer := fs.String("consumer", "", "durable consumer `name` (letters, digits, ._:-): start after the last row it accepted, and record the rows printed")
	reset := fs.Bool("reset", false, "with --consumer: start the consumer again at the beginning of this query, whatever query it had")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	shorthand := set["pid"] || set["domain"] || set["name"]

	var q any
	switch {
	case set["query"] && shorthand:
		return usageError(fs, "give --query or --pid/--domain/--name, not both")
	case set["query"]:
		raw, err := parseQueryArg("query", *query)
		if err != nil {
			return reportArgError(fs, err)
		}
		q = raw
	case shorthand:
		// Pointers leave out what was not given, in a fixed key order.
		var where struct {
			PID    *string `json:"pid,omitempty"`
			Domain *string `json:"domain,omitempty"`
			Name   *string `json:"name,omitempty"`
		}
		for _, f := range []struct {
			name  string
			value *string
			dst   **string
		}{{"pid", pid, &where.PID}, {"domain", domain, &where.Domain}, {"name", name, &where.Name}} {
			if !set[f.name] {
				continue
			}
			if *f.value == "" {
				return usageError(fs, "--%s is empty", f.name)
			}
			*f.dst = f.value
		}
		var sel struct {
			Select struct {
				Where any `json:"$where"`
			} `json:"$select"`
		}
		sel.Select.Where = where
		q = sel
	default:
		return usageError(fs, "give --query or at least one of --pid, --domain, --name")
	}
	if *window < 0 {
		return usageError(fs, "--window %d is negative", *window)
	}
	if set["consumer"] && !messages.ValidConsumer(*consumer) {
		return usageError(fs, "--consumer %q is not 1 to %d letters, digits and ._:-", *consumer, messages.MaxConsumer)
	}
	if *reset && !set["consumer"] {
		return usageError(fs, "--reset needs --consumer")
	}
	rdb, err := conn.connect(fs)
	if err != nil {
		return err
	}
	defer rdb.Close()

	c := client.New(rdb, client.WithFetchChannel(*channel), client.WithReason())
	defer c.Close()
	ctx, cancel := conn.withTimeout(ctx)
	defer cancel()
	var opts []client.FetchOption
	if *window > 0 {
		opts = append(opts, client.WithWindow(*window))
	}
	if *decode {
		opts = append(opts, client.WithDecode())
	}
	if set["consumer"] {
		opts = append(opts, client.WithConsumer(*consumer))
	}
	if *reset {
		opts = append(opts, client.WithReset())
	}
	rows := c.Fetch(ctx, q, opts...)
	if *follow {
		// Ends without an error when ctx does (Ctrl-C, SIGTERM, --timeout),
		// after telling the server.
		rows = c.Follow(ctx, q, opts...)
	}
	out := bufio.NewWriter(stdout)
	for row, err := range rows {
		if err != nil {
			return clientError(fs, &conn, "fetch-channel", err)
		}
		// Flushed per row: whoever reads the pipe sees each row as it comes.
		out.Write(row.Raw())
		out.WriteByte('\n')
		if err := out.Flush(); err != nil {
			return fmt.Errorf("fetch: write row: %w", err)
		}
	}
	return nil
}
